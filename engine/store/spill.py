"""The spill: recorder batches the store could not take yet, on local disk, in
batch-id order, until they are written. Owns the files under
``data_dir/spill/``; knows nothing of what a batch holds.

  segment files  <first batch id, 20 digits>.spill, read in name order
  record         magic "HSB1" | flags u32 | length u32 | crc32 u32 | batch id u64 | payload
  cursor         "<segment name> <offset>": where the next unwritten record starts

A process killed mid-append leaves a short last record: found at start-up (a
length past the end, a bad magic) and cut off. A crc mismatch (disk damage)
drops that one record, logged and counted. Writes reach the OS at each append
(enough for a killed process; fsync for power loss is SPILL_FSYNC).

Thread-safe: the recorder thread appends, the delivery thread reads the head,
commits it, and prepends batches it took from memory (always older than
everything already here: the recorder spills only once memory is full).
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

from loguru import logger

log = logger.bind(component="history.spill")

MAGIC = b"HSB1"
_RECORD = struct.Struct("<4sIIIQ")  # magic, flags, length, crc32, batch id
FLAG_MAYBE_SENT = 1
SUFFIX = ".spill"
# A new segment starts past this size. Smaller files free disk sooner as they
# are replayed; larger ones mean fewer files. A batch is never split.
SEGMENT_BYTES = 64 << 20
# fsync every append: survives a power cut, costs a disk flush per batch
# (milliseconds on many disks) while spilling. A killed process needs none.
SPILL_FSYNC = False


@dataclass(frozen=True)
class SpillRecord:
    batch_id: int
    payload: bytes
    maybe_sent: bool


@dataclass
class _Segment:
    path: Path
    size: int  # bytes of whole records
    offset: int = 0  # next record to read


def _encode(batch_id: int, payload: bytes, maybe_sent: bool) -> bytes:
    flags = FLAG_MAYBE_SENT if maybe_sent else 0
    return _RECORD.pack(MAGIC, flags, len(payload), zlib.crc32(payload), batch_id) + payload


class Spill:
    def __init__(self, directory: Path, max_bytes: int, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.torn = 0  # records cut off at start-up (a killed writer)
        self.corrupt = 0  # records dropped for a bad crc
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._active: tuple[_Segment, object] | None = None  # (segment, append file)
        self._bytes = 0
        self._batches = 0
        self._max_id = 0
        # Ids of the unwritten records found at start-up (the recorder skips
        # journal files of batches that made it here before a kill).
        self.recovered_ids: set[int] = set()
        # The head was handed out before (to a killed process, or to a write
        # that failed): whoever writes it must check what already arrived.
        self._head_maybe_sent = False
        directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    # ------------------------------------------------------------ start-up

    def _recover(self) -> None:
        cursor_name, cursor_offset = self._read_cursor()
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            segment = _Segment(path, 0)
            self._scan(segment)
            if path.name < cursor_name or (path.name == cursor_name and cursor_offset >= segment.size):
                path.unlink()  # written before the kill; its deletion was cut short
                continue
            if path.name == cursor_name:
                segment.offset = cursor_offset
            if segment.offset >= segment.size:
                path.unlink()
                continue
            self._segments.append(segment)
            self._count(segment)
        self._head_maybe_sent = self._batches > 0
        if self._batches:
            log.info("spill recovered batches={} bytes={} torn={} dir={}",
                     self._batches, self._bytes, self.torn, self.directory)

    def _scan(self, segment: _Segment) -> None:
        """Sets segment.size to the end of its last whole record; truncates the rest."""
        data = segment.path.read_bytes()
        offset = 0
        while offset + _RECORD.size <= len(data):
            magic, _, length, _, batch_id = _RECORD.unpack_from(data, offset)
            end = offset + _RECORD.size + length
            if magic != MAGIC or end > len(data):
                break
            self._max_id = max(self._max_id, batch_id)
            offset = end
        if offset < len(data):
            self.torn += 1
            log.warning("spill segment {} ends in a partial record at {} of {} bytes: cut off",
                        segment.path.name, offset, len(data))
            with open(segment.path, "r+b") as f:
                f.truncate(offset)
        segment.size = offset

    def _count(self, segment: _Segment) -> None:
        with open(segment.path, "rb") as f:
            f.seek(segment.offset)
            position = segment.offset
            while position < segment.size:
                _, _, length, _, batch_id = _RECORD.unpack(f.read(_RECORD.size))
                self.recovered_ids.add(batch_id)
                f.seek(length, os.SEEK_CUR)
                position += _RECORD.size + length
                self._batches += 1
                self._bytes += _RECORD.size + length

    def _read_cursor(self) -> tuple[str, int]:
        try:
            name, offset = (self.directory / "cursor").read_text().split()
            return name, int(offset)
        except FileNotFoundError:  # nothing committed since the spill was last empty
            return "", 0
        except (OSError, ValueError) as exc:
            log.error("spill cursor unreadable ({}): replaying every segment from its start", exc)
            return "", 0

    # ------------------------------------------------------------- writing

    def append(self, batch_id: int, payload: bytes, maybe_sent: bool = False) -> bool:
        """Adds a batch after everything here; False (nothing written) when it
        would pass ``max_bytes``."""
        record = _encode(batch_id, payload, maybe_sent)
        with self._lock:
            if self._bytes + len(record) > self.max_bytes:
                return False
            if self._active is None or self._active[0].size >= self.segment_bytes:
                self._roll(batch_id)
            assert self._active is not None
            segment, f = self._active
            f.write(record)  # type: ignore[attr-defined]
            f.flush()  # type: ignore[attr-defined]
            if SPILL_FSYNC:
                os.fsync(f.fileno())  # type: ignore[attr-defined]
            segment.size += len(record)
            self._added(batch_id, len(record))
        return True

    def prepend(self, records: list[tuple[int, bytes, bool]]) -> None:
        """Puts batches older than everything here in front, ignoring
        ``max_bytes`` (a few batches the delivery thread held in memory)."""
        if not records:
            return
        with self._lock:
            first = records[0][0]
            assert all(a[0] < b[0] for a, b in zip(records, records[1:])), "prepend out of order"
            assert not self._segments or first < self._first_id(self._segments[0]), \
                "prepended batches must be older than the spilled ones"
            # Only before the first commit since the spill was last empty, so no
            # cursor can point past the new segment.
            assert not self._segments or self._segments[0].offset == 0, "prepend after a commit"
            path = self.directory / f"{first:020d}{SUFFIX}"
            data = b"".join(_encode(*r) for r in records)
            path.write_bytes(data)
            self._segments.insert(0, _Segment(path, len(data)))
            for batch_id, payload, _ in records:
                self._added(batch_id, _RECORD.size + len(payload))

    def _roll(self, first_id: int) -> None:
        if self._active is not None:
            self._active[1].close()  # type: ignore[attr-defined]
        segment = _Segment(self.directory / f"{first_id:020d}{SUFFIX}", 0)
        self._segments.append(segment)
        self._active = (segment, open(segment.path, "ab"))  # noqa: SIM115 - closed by the next _roll or close

    def _added(self, batch_id: int, size: int) -> None:
        self._bytes += size
        self._batches += 1
        self._max_id = max(self._max_id, batch_id)

    @staticmethod
    def _first_id(segment: _Segment) -> int:
        return int(segment.path.name.removesuffix(SUFFIX))

    # ------------------------------------------------------------- reading

    def head(self) -> SpillRecord | None:
        """The oldest batch not yet committed (None when empty), for writing.
        Handed out again (a failed write) or first after start-up (a killed
        process may have been writing it), it comes marked maybe-sent."""
        with self._lock:
            while self._segments:
                segment = self._segments[0]
                if segment.offset >= segment.size:
                    if self._active is not None and self._active[0] is segment:
                        return None
                    self._drop_segment()
                    continue
                with open(segment.path, "rb") as f:
                    f.seek(segment.offset)
                    magic, flags, length, crc, batch_id = _RECORD.unpack(f.read(_RECORD.size))
                    payload = f.read(length)
                if zlib.crc32(payload) != crc:
                    self.corrupt += 1
                    log.error("spill record batch={} in {} fails its crc: dropped",
                              batch_id, segment.path.name)
                    self._advance(segment, _RECORD.size + length)
                    continue
                maybe_sent = bool(flags & FLAG_MAYBE_SENT) or self._head_maybe_sent
                self._head_maybe_sent = True
                return SpillRecord(batch_id, payload, maybe_sent)
            return None

    def commit(self, batch_id: int) -> None:
        """The head batch is stored: move past it."""
        with self._lock:
            segment = self._segments[0]
            with open(segment.path, "rb") as f:
                f.seek(segment.offset)
                _, _, length, _, head_id = _RECORD.unpack(f.read(_RECORD.size))
            assert head_id == batch_id, f"commit {batch_id} but the head is {head_id}"
            self._head_maybe_sent = False
            self._advance(segment, _RECORD.size + length)

    def _advance(self, segment: _Segment, size: int) -> None:
        segment.offset += size
        self._bytes -= size
        self._batches -= 1
        if self._batches == 0:
            self._clear()
            return
        active = self._active is not None and self._active[0] is segment
        if segment.offset >= segment.size and not active:
            self._drop_segment()
        else:
            self._write_cursor(segment)

    def _drop_segment(self) -> None:
        segment = self._segments.pop(0)
        segment.path.unlink(missing_ok=True)
        if self._segments:
            self._write_cursor(self._segments[0])

    def _clear(self) -> None:
        """All written: no file, no cursor (the next spill starts afresh)."""
        if self._active is not None:
            self._active[1].close()  # type: ignore[attr-defined]
            self._active = None
        for segment in self._segments:
            segment.path.unlink(missing_ok=True)
        self._segments.clear()
        (self.directory / "cursor").unlink(missing_ok=True)

    def _write_cursor(self, segment: _Segment) -> None:
        tmp = self.directory / "cursor.tmp"
        tmp.write_text(f"{segment.path.name} {segment.offset}\n")
        os.replace(tmp, self.directory / "cursor")

    # --------------------------------------------------------------- views

    @property
    def bytes_used(self) -> int:
        return self._bytes

    @property
    def batches(self) -> int:
        return self._batches

    def empty(self) -> bool:
        return self._batches == 0

    def max_batch_id(self) -> int:
        """Highest batch id ever seen here (also of batches already replayed)."""
        return self._max_id

    def close(self) -> None:
        with self._lock:
            if self._active is not None:
                self._active[1].close()  # type: ignore[attr-defined]
                self._active = None

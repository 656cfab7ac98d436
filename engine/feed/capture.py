"""Raw-traffic capture files (docs/architecture.md, Capture format): a thread-safe
writer that rotates by size or time, and a reader for plain, .gz and .zst files.
Owns the on-disk format only; never parses venue payloads.

One record per line::

  {"t": <receive ns>, "src": "ws"|"rest", "conn": "<connection id>",
   "url": "<endpoint with query>", "data": "<payload as text>"}

A payload that is not UTF-8 text (HTX gzip frames) is stored base64 with
``"enc": "b64"``; the reader hands it back as bytes.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

import orjson
import zstandard
from loguru import logger

log = logger.bind(component="feed.capture")

Compression = Literal["none", "gzip", "zstd"]
SUFFIX = {"none": ".jsonl", "gzip": ".jsonl.gz", "zstd": ".jsonl.zst"}
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# zstd level 3 is the library default: ~4x smaller JSON than plain at a few
# hundred MB/s; higher levels cost CPU on the recording thread for little gain.
ZSTD_LEVEL = 3
READ_CHUNK = 1 << 16  # bytes per read: large enough to amortize calls, small for memory
# gzip level 6: zlib's default balance; 9 is ~2x slower for ~3% smaller files.
GZIP_LEVEL = 6


@dataclass(slots=True)
class CaptureRecord:
    t: int  # receive time, ns
    src: str  # "ws" | "rest"
    conn: str
    url: str
    data: str | bytes  # bytes when the record was stored base64


def encode_record(recv_ns: int, src: str, conn_id: str, url: str, data: str | bytes) -> bytes:
    """One capture line (with its newline) for a received payload."""
    record: dict = {"t": recv_ns, "src": src, "conn": conn_id, "url": url}
    if isinstance(data, str):
        record["data"] = data
    else:
        raw = bytes(data)
        try:
            record["data"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            record["data"] = base64.b64encode(raw).decode("ascii")
            record["enc"] = "b64"
    return orjson.dumps(record) + b"\n"


class CaptureWriter:
    """Appends records to ``<dir>/capture-<UTC start>-<n>.jsonl[.gz|.zst]``.

    A new file starts when the current one holds ``rotate_bytes`` of records
    (uncompressed) or spans ``rotate_s`` of receive time (0 disables either).
    ``write`` may be called from any thread; ``flush`` makes everything written
    so far readable (a zstd frame or gzip member ends), ``close`` finishes.
    """

    def __init__(self, directory: str | os.PathLike, rotate_bytes: int = 256 << 20,
                 rotate_s: float = 3600.0, compression: Compression = "zstd",
                 prefix: str = "capture") -> None:
        if compression not in SUFFIX:
            raise ValueError(f"compression must be one of {sorted(SUFFIX)}, got {compression!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rotate_bytes = rotate_bytes
        self.rotate_ns = int(rotate_s * 1e9)
        self.compression = compression
        self.prefix = prefix
        self.files: list[Path] = []  # every file this writer opened, oldest first
        self.records = 0
        self._lock = threading.Lock()
        self._raw: IO[bytes] | None = None
        self._out: Any = None  # file, GzipFile or zstd stream writer
        self._bytes = 0
        self._start_ns = 0
        self._closed = False

    def write(self, recv_ns: int, src: str, conn_id: str, url: str, data: str | bytes) -> None:
        line = encode_record(recv_ns, src, conn_id, url, data)
        with self._lock:
            if self._closed:
                raise ValueError("capture writer is closed")
            if self._out is None or self._due(recv_ns):
                self._rotate(recv_ns)
            assert self._out is not None
            self._out.write(line)
            self._bytes += len(line)
            self.records += 1

    def _due(self, recv_ns: int) -> bool:
        return ((self.rotate_bytes > 0 and self._bytes >= self.rotate_bytes)
                or (self.rotate_ns > 0 and recv_ns - self._start_ns >= self.rotate_ns))

    def _rotate(self, recv_ns: int) -> None:
        self._close_file()
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(recv_ns / 1e9))
        n = len(self.files)
        while True:  # another writer (a restarted daemon) may own the same stamp
            path = self.directory / f"{self.prefix}-{stamp}-{n:04d}{SUFFIX[self.compression]}"
            try:
                raw = open(path, "xb")  # noqa: SIM115 - closed in _close_file
                break
            except FileExistsError:
                n += 1
        if self.compression == "gzip":
            out: Any = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL)
        elif self.compression == "zstd":
            out = zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw, closefd=False)
        else:
            out = raw
        self._raw, self._out = raw, out
        self._bytes, self._start_ns = 0, recv_ns
        self.files.append(path)
        log.info("capture file opened path={}", path)

    def flush(self) -> None:
        with self._lock:
            if self._out is None:
                return
            if self.compression == "zstd":
                self._out.flush(zstandard.FLUSH_FRAME)
            else:
                self._out.flush()
            if self._raw is not self._out:
                assert self._raw is not None
                self._raw.flush()

    def _close_file(self) -> None:
        if self._out is None:
            return
        self._out.close()
        if self._raw is not None and self._raw is not self._out:
            self._raw.close()
        self._raw = self._out = None

    def close(self) -> None:
        with self._lock:
            self._close_file()
            self._closed = True

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_capture(path: str | os.PathLike) -> Any:
    """A binary stream of the file's JSON lines, decompressed by its magic bytes."""
    raw = open(path, "rb")  # noqa: SIM115 - the caller closes the returned stream
    head = raw.read(4)
    raw.seek(0)
    if head.startswith(GZIP_MAGIC):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if head == ZSTD_MAGIC:
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True,
                                                            closefd=True)
        return io.BufferedReader(reader)
    return raw


class CaptureReader:
    """Iterates CaptureRecords of one file; lines that are not valid records are
    counted in ``bad_lines`` and skipped, and a truncated compressed tail (a
    recorder that died mid-write) ends the iteration with ``truncated`` set
    instead of raising."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.bad_lines = 0
        self.truncated = False

    def __iter__(self) -> Iterator[CaptureRecord]:
        pending = b""
        for chunk in self._chunks():
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield from self._line(line)
        yield from self._line(pending)

    def _line(self, line: bytes) -> Iterator[CaptureRecord]:
        if not line.strip():
            return
        record = self._record(line)
        if record is None:
            self.bad_lines += 1
        else:
            yield record

    def _chunks(self) -> Iterator[bytes]:
        """Decompressed bytes; gzip members and zstd frames may be concatenated."""
        with open(self.path, "rb") as raw:
            head = raw.read(4)
            raw.seek(0)
            new: Callable[[], Any]
            if head.startswith(GZIP_MAGIC):
                new = lambda: zlib.decompressobj(wbits=31)  # 31: gzip header
            elif head == ZSTD_MAGIC:
                new = zstandard.ZstdDecompressor().decompressobj
            else:
                while chunk := raw.read(READ_CHUNK):
                    yield chunk
                return
            decoder, in_frame = new(), False
            while chunk := raw.read(READ_CHUNK):
                while chunk:
                    try:
                        out = decoder.decompress(chunk)
                    except (zlib.error, zstandard.ZstdError) as exc:
                        self.truncated = True
                        log.warning("capture file corrupt path={} error={}", self.path, exc)
                        return
                    in_frame = True
                    if out:
                        yield out
                    if decoder.eof:
                        chunk, decoder, in_frame = decoder.unused_data, new(), False
                    else:
                        chunk = b""
            if in_frame:
                self.truncated = True
                log.warning("capture file truncated path={}", self.path)

    @staticmethod
    def _record(line: bytes) -> CaptureRecord | None:
        try:
            obj = orjson.loads(line)
            t, src, data = obj["t"], obj["src"], obj["data"]
            if not isinstance(t, int) or src not in ("ws", "rest") or not isinstance(data, str):
                return None
            payload: str | bytes = base64.b64decode(data, validate=True) if obj.get("enc") == "b64" else data
            return CaptureRecord(t, src, str(obj.get("conn", "")), str(obj.get("url", "")), payload)
        except Exception:  # noqa: BLE001 - any malformed line is just counted
            return None


def read_capture(path: str | os.PathLike) -> Iterator[CaptureRecord]:
    """Records of a capture file (plain, .gz or .zst), malformed lines skipped."""
    return iter(CaptureReader(path))

"""The recorder's write-ahead journal: every event the recorder thread takes
from its queue is written here before it joins a batch, and stays until that
batch is durable (in the store, or in the spill). So a killed process loses
only what was still in the queue. Owns the files under ``data_dir/journal/``;
knows nothing of batches beyond their ids.

  open.jnl            events of the batch being built: one line per drained
                      chunk, a JSON array of compact event arrays
  <batch id>.jnl      the same file renamed when its batch is cut; deleted
                      once the batch is stored or spilled (Delivery tells us)

At start-up every file left is read back (a last line cut short by a kill is
ignored: its events had not joined a batch) and the recorder rebuilds those
batches, under their own ids, checked against the store like any batch that
may have been sent (engine/store/history.py), so each is stored exactly once.

Writes reach the OS at once (a killed process loses nothing written); the
disk gets them at ``fsync_interval_s`` (0: at every write, for power loss).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import orjson
from loguru import logger

from engine.model import BookDelta, BookSnapshot, Market, Side, Trade
from engine.store.losses import Loss

log = logger.bind(component="recorder.journal")

OPEN = "open.jnl"
SUFFIX = ".jnl"


def _encode(event: Any) -> list[Any]:
    kind = event.__class__
    if kind is Trade:
        return ["t", event.venue, event.market.value, event.pair, event.price, event.size,
                event.taker_side.value, event.trade_id, event.exch_ns, event.recv_ns]
    if kind is BookDelta:
        return ["d", event.venue, event.market.value, event.pair, event.bids, event.asks,
                event.first_seq, event.last_seq, event.prev_seq, event.exch_ns, event.recv_ns]
    if kind is BookSnapshot:
        return ["s", event.venue, event.market.value, event.pair, event.bids, event.asks, event.seq,
                event.exch_ns, event.recv_ns]
    return ["l", event.venue, event.market, event.pair, event.reason, event.kinds]  # a Loss


def _plain(value: Any) -> list[Any]:
    """orjson's fallback: the C decoder's immutable ``Levels`` (a sequence of
    (price, size) floats, engine/venues/wire.fast_levels) is written as a list."""
    if hasattr(value, "__len__") and hasattr(value, "__getitem__"):
        return [tuple(level) for level in value]
    raise TypeError(f"Type is not JSON serializable: {type(value).__name__}")


def _decode(item: list[Any]) -> Any:
    tag = item[0]
    if tag == "t":
        _, venue, market, pair, price, size, side, trade_id, exch_ns, recv_ns = item
        return Trade(venue, Market(market), pair, price, size, Side(side), trade_id, exch_ns, recv_ns)
    if tag == "d":
        _, venue, market, pair, bids, asks, first, last, prev, exch_ns, recv_ns = item
        return BookDelta(venue, Market(market), pair, [tuple(x) for x in bids],  # type: ignore[misc]
                         [tuple(x) for x in asks], first, last, prev, exch_ns, recv_ns)
    if tag == "s":
        _, venue, market, pair, bids, asks, seq, exch_ns, recv_ns = item
        return BookSnapshot(venue, Market(market), pair, [tuple(x) for x in bids],  # type: ignore[misc]
                            [tuple(x) for x in asks], seq, exch_ns, recv_ns)
    if tag == "l":
        _, venue, market, pair, reason, kinds = item
        return Loss(venue, market, pair, reason, kinds)
    raise ValueError(f"unknown journal item {tag!r}")


def batch_file(directory: Path, batch_id: int) -> Path:
    return directory / f"{batch_id:020d}{SUFFIX}"


class Journal:
    """Recorder thread: append, seal. Delivery thread: done. Start-up: recover."""

    def __init__(self, directory: Path, fsync_interval_s: float) -> None:
        self.directory = directory
        self.fsync_interval_s = fsync_interval_s
        self.torn = 0  # lines cut short by a kill, found at start-up
        self.bytes_written = 0
        self._fd: int | None = None
        self._synced = time.monotonic()
        directory.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ start-up

    def recover(self) -> tuple[list[tuple[int, list[Any]]], list[Any]]:
        """(batch id, events) of every sealed file left, oldest first, and the
        events of the batch that was being built (not cut: it needs an id)."""
        sealed = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            if path.name == OPEN:
                continue
            try:
                batch_id = int(path.name.removesuffix(SUFFIX))
            except ValueError:
                continue
            sealed.append((batch_id, self._read(path)))
        open_path = self.directory / OPEN
        pending = self._read(open_path) if open_path.exists() else []
        if sealed or pending:
            log.info("journal recovered batches={} events={} open_events={} torn_lines={}",
                     len(sealed), sum(len(events) for _, events in sealed), len(pending), self.torn)
        return sealed, pending

    def _read(self, path: Path) -> list[Any]:
        events: list[Any] = []
        lines = path.read_bytes().split(b"\n")
        for n, line in enumerate(lines):
            if not line:
                continue
            try:
                events.extend(_decode(item) for item in orjson.loads(line))
            except (orjson.JSONDecodeError, ValueError, TypeError) as exc:
                self.torn += 1
                last = n >= len(lines) - 2  # only the last line can be cut short by a kill
                log.log("WARNING" if last else "ERROR", "journal {} line {} unreadable ({}): skipped",
                        path.name, n + 1, exc)
        return events

    def adopt_open(self, batch_id: int) -> None:
        """The recovered open file becomes the sealed file of ``batch_id``."""
        open_path = self.directory / OPEN
        if open_path.exists():
            os.replace(open_path, batch_file(self.directory, batch_id))

    # ------------------------------------------------------------- writing

    def append(self, events: list[Any]) -> None:
        """Writes one chunk (raises OSError; the caller counts it)."""
        data = orjson.dumps([_encode(e) for e in events], default=_plain) + b"\n"
        if self._fd is None:
            self._fd = os.open(self.directory / OPEN, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.bytes_written += len(data)
        if self.fsync_interval_s <= 0 or time.monotonic() - self._synced >= self.fsync_interval_s:
            os.fsync(self._fd)
            self._synced = time.monotonic()

    def seal(self, batch_id: int) -> None:
        """The batch being built was cut as ``batch_id``: its file keeps that name."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)
        os.replace(self.directory / OPEN, batch_file(self.directory, batch_id))

    def done(self, batch_id: int) -> None:
        """The batch is durable elsewhere (any thread)."""
        batch_file(self.directory, batch_id).unlink(missing_ok=True)

    def files(self) -> int:
        return sum(1 for _ in self.directory.glob(f"*{SUFFIX}"))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

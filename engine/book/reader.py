"""Reader side of the BookStore, usable from any process: attaches by segment
name and returns consistent copies of books without taking a lock (seqlock:
copy, then retry if the version moved). Never writes to the segment.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from engine.book import layout as L
from engine.book.store import BookStore, UnknownBook
from engine.model import SyncState

# A write takes a few microseconds; a reader that still sees the version odd
# after this many spins yields its time slice (the writer may be descheduled).
SPINS_BEFORE_YIELD = 64


class TornReadError(RuntimeError):
    """The writer kept the book busy for longer than the reader's budget."""


@dataclass(slots=True)
class BookView:
    """A consistent copy of one book's mirrored top levels."""

    key: str
    index: int
    version: int
    seq: int
    exch_ns: int
    recv_ns: int
    state: SyncState
    updates: int
    bid_px: np.ndarray
    bid_sz: np.ndarray
    ask_px: np.ndarray
    ask_sz: np.ndarray

    @property
    def bids(self) -> np.ndarray:
        """(n, 2) array of [price, size], best first."""
        return np.column_stack((self.bid_px, self.bid_sz))

    @property
    def asks(self) -> np.ndarray:
        return np.column_stack((self.ask_px, self.ask_sz))

    @property
    def synced(self) -> bool:
        return self.state == SyncState.SYNCED

    @property
    def best_bid(self) -> float:
        return float(self.bid_px[0]) if len(self.bid_px) else math.nan

    @property
    def best_ask(self) -> float:
        return float(self.ask_px[0]) if len(self.ask_px) else math.nan

    @property
    def mid(self) -> float:
        return (self.best_bid + self.best_ask) / 2.0

    @property
    def spread(self) -> float:
        return self.best_ask - self.best_bid

    def to_dict(self, depth: int | None = None) -> dict:
        n = depth if depth is not None else len(self.bid_px) + len(self.ask_px)
        return {
            "book": self.key, "state": self.state.name.lower(), "synced": self.synced,
            "seq": self.seq, "version": self.version, "exch_ns": self.exch_ns,
            "recv_ns": self.recv_ns, "updates": self.updates,
            "bids": [[float(p), float(s)] for p, s in zip(self.bid_px[:n], self.bid_sz[:n])],
            "asks": [[float(p), float(s)] for p, s in zip(self.ask_px[:n], self.ask_sz[:n])],
            "best_bid": None if math.isnan(self.best_bid) else self.best_bid,
            "best_ask": None if math.isnan(self.best_ask) else self.best_ask,
        }


class BookReader:
    """Lock-free consistent reads of a BookStore (attached, or the owner's)."""

    def __init__(self, store: BookStore) -> None:
        self.store = store
        self.layout = store.layout
        self.retries = 0  # reads that had to copy again: contention gauge

    @classmethod
    def attach(cls, name: str) -> BookReader:
        return cls(BookStore.attach(name))

    def close(self) -> None:
        if not self.store.owner:
            self.store.close()

    def keys(self) -> dict[str, int]:
        return self.store.keys()

    def index(self, key: str) -> int:
        return self.store.index(key)

    def version(self, index: int) -> int:
        """The book's seqlock version; cheap change detection for pollers."""
        return L.VERSION.unpack_from(self.store.buf, self.layout.record_offset(index))[0]

    def read_raw(self, index: int, timeout_s: float = 1.0) -> bytes:
        """A consistent copy of the whole record (header + levels)."""
        if not 0 <= index < self.store.count():
            raise UnknownBook(index)
        buf = self.store.buf
        off = self.layout.record_offset(index)
        end = off + self.layout.record_size
        unpack = L.VERSION.unpack_from
        spins = 0
        deadline = 0.0
        while True:
            v1 = unpack(buf, off)[0]
            if not v1 & 1:
                raw = bytes(buf[off:end])
                if unpack(buf, off)[0] == v1:
                    return raw
            self.retries += 1
            spins += 1
            if spins % SPINS_BEFORE_YIELD == 0:
                now = time.monotonic()
                if deadline == 0.0:
                    deadline = now + timeout_s
                elif now > deadline:
                    raise TornReadError(f"book {index} busy for over {timeout_s}s")
                time.sleep(0)

    def read(self, book: int | str, depth: int | None = None) -> BookView:
        """Consistent copy of the top ``depth`` levels (default: all mirrored)."""
        index = book if isinstance(book, int) else self.index(book)
        raw = self.read_raw(index)
        version, seq, exch_ns, recv_ns, state, nb, na, updates = _HEADER_UNPACK(raw)
        d = self.layout.depth
        levels = np.frombuffer(raw, dtype=np.float64, count=4 * d, offset=L.BOOK_HEADER_SIZE)
        if depth is not None:
            nb, na = min(nb, depth), min(na, depth)
        return BookView(self.store.key_of(index), index, version, seq, exch_ns, recv_ns,
                        _STATES[state], updates, levels[:nb], levels[d:d + nb],
                        levels[2 * d:2 * d + na], levels[3 * d:3 * d + na])


_HEADER_UNPACK = L.BOOK_HEADER.unpack_from
_STATES = tuple(SyncState(v) for v in range(len(SyncState)))

"""Reader side of the BookStore, usable from any process: attaches by segment
name and returns consistent copies of books without taking a lock (seqlock:
copy, then retry if the version moved). Never writes to the segment.
"""

from __future__ import annotations

import math
import struct
import time

import numpy as np

from engine.book import layout as L
from engine.book.store import BookStore, UnknownBook
from engine.model import SyncState

try:  # the compiled seqlock copy (engine/book/_core.c); the loop below is the reference
    from engine.book._core import RecordReader  # type: ignore[import-not-found]
except ImportError:
    RecordReader = None

# A write takes a few microseconds; a reader that still sees the version odd
# after this many spins yields its time slice (the writer may be descheduled).
SPINS_BEFORE_YIELD = 64


class TornReadError(RuntimeError):
    """The writer kept the book busy for longer than the reader's budget."""


class BookView:
    """A consistent copy of one book's mirrored top levels.

    ``read()`` keeps the copied record bytes and builds the numpy arrays only
    when asked (best bid/ask come straight from the bytes): many readers want
    the top of book, and the copy is what makes a read consistent."""

    __slots__ = ("key", "index", "version", "seq", "exch_ns", "recv_ns", "state", "updates",
                 "_raw", "_depth", "_nb", "_na", "_arrays")

    def __init__(self, key: str, index: int, version: int, seq: int, exch_ns: int, recv_ns: int,
                 state: SyncState, updates: int, bid_px: np.ndarray, bid_sz: np.ndarray,
                 ask_px: np.ndarray, ask_sz: np.ndarray) -> None:
        self.key, self.index, self.version, self.seq = key, index, version, seq
        self.exch_ns, self.recv_ns, self.state, self.updates = exch_ns, recv_ns, state, updates
        self._raw = b""
        self._depth = 0
        self._nb, self._na = len(bid_px), len(ask_px)
        self._arrays: tuple[np.ndarray, ...] | None = (bid_px, bid_sz, ask_px, ask_sz)

    @classmethod
    def _from_record(cls, key: str, index: int, header: tuple, raw: bytes, depth: int,
                     nb: int, na: int) -> BookView:
        view = cls.__new__(cls)
        (view.version, view.seq, view.exch_ns, view.recv_ns, state, _, _, view.updates) = header
        view.key, view.index, view.state = key, index, _STATES[state]
        view._raw, view._depth, view._nb, view._na, view._arrays = raw, depth, nb, na, None
        return view

    def _levels(self) -> tuple[np.ndarray, ...]:
        arrays = self._arrays
        if arrays is None:
            d, nb, na = self._depth, self._nb, self._na
            lv = np.frombuffer(self._raw, dtype=np.float64, count=4 * d, offset=L.BOOK_HEADER_SIZE)
            arrays = self._arrays = (lv[:nb], lv[d:d + nb], lv[2 * d:2 * d + na],
                                     lv[3 * d:3 * d + na])
        return arrays

    @property
    def bid_px(self) -> np.ndarray:
        return self._levels()[0]

    @property
    def bid_sz(self) -> np.ndarray:
        return self._levels()[1]

    @property
    def ask_px(self) -> np.ndarray:
        return self._levels()[2]

    @property
    def ask_sz(self) -> np.ndarray:
        return self._levels()[3]

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
        if not self._nb:
            return math.nan
        if self._arrays is None:
            return _DOUBLE(self._raw, L.BOOK_HEADER_SIZE)[0]
        return float(self._arrays[0][0])

    @property
    def best_ask(self) -> float:
        if not self._na:
            return math.nan
        if self._arrays is None:
            return _DOUBLE(self._raw, L.BOOK_HEADER_SIZE + 16 * self._depth)[0]
        return float(self._arrays[2][0])

    @property
    def mid(self) -> float:
        return (self.best_bid + self.best_ask) / 2.0

    @property
    def spread(self) -> float:
        return self.best_ask - self.best_bid

    def __repr__(self) -> str:
        return (f"BookView({self.key!r}, state={self.state.name}, seq={self.seq}, "
                f"bids={self._nb}, asks={self._na}, best={self.best_bid}/{self.best_ask})")

    def to_dict(self, depth: int | None = None) -> dict:
        n = depth if depth is not None else self._nb + self._na
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

    def __init__(self, store: BookStore, compiled: bool | None = None) -> None:
        """``compiled``: copy with the C seqlock reader (default: when built)."""
        self.store = store
        self.layout = store.layout
        self._retries = 0  # reads that had to copy again: contention gauge
        if compiled and RecordReader is None:
            raise RuntimeError("compiled book reader requested but engine.book._core is not built")
        use_c = RecordReader is not None if compiled is None else compiled
        self._c = RecordReader(self.layout.books_offset, self.layout.record_size) if use_c else None
        self.compiled = self._c is not None

    @property
    def retries(self) -> int:
        return self._retries + (self._c.retries if self._c is not None else 0)

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
        c = self._c
        if c is not None:
            raw = c.read(self.store.buf, index, SPINS_BEFORE_YIELD)
            if raw.__class__ is bytes:
                return raw
            if raw is False:
                raise UnknownBook(index)
            return self._read_raw_slow(index, timeout_s)
        return self._read_raw_slow(index, timeout_s)

    def _read_raw_slow(self, index: int, timeout_s: float) -> bytes:
        """The reference seqlock copy; also the compiled path's wait for a busy book."""
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
            self._retries += 1
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
        index = book if book.__class__ is int else self.index(book)  # type: ignore[arg-type]
        c = self._c
        raw = c.read(self.store.buf, index, SPINS_BEFORE_YIELD) if c is not None else None
        if raw.__class__ is not bytes:  # the reference path, a busy book or an unknown index
            raw = self.read_raw(index)  # type: ignore[arg-type]
        # BookView._from_record inlined: a read is a few microseconds, a call is a tenth of one
        view = _new_view(BookView)
        (view.version, view.seq, view.exch_ns, view.recv_ns, state, nb, na,
         view.updates) = _HEADER_UNPACK(raw)  # type: ignore[arg-type]
        if depth is not None:
            if nb > depth:
                nb = depth
            if na > depth:
                na = depth
        names = self.store._names
        view.key = names[index] if index < len(names) else self.store.key_of(index)
        view.index, view.state, view._raw, view._depth = index, _STATES[state], raw, self.layout.depth
        view._nb, view._na, view._arrays = nb, na, None
        return view


_HEADER_UNPACK = L.BOOK_HEADER.unpack_from
_new_view = object.__new__
_STATES = tuple(SyncState(v) for v in range(len(SyncState)))
_DOUBLE = struct.Struct("<d").unpack_from

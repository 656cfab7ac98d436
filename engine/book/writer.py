"""Writer side of the BookStore: the authoritative full-depth book per index,
kept in this process, and the seqlocked mirror of its top levels in shared
memory. Applies snapshots and deltas only; venue sync rules live in feed/.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from engine.book import layout as L
from engine.book.store import BookStore
from engine.model import Level, SyncState

INF = float("inf")


class BookDataError(ValueError):
    """A level no venue could mean: NaN, infinite, zero or negative price, negative size."""


class BookSide:
    """One side at full depth: sizes by key and the keys kept sorted best-first.

    Keys are prices for asks and negated prices for bids, so both sides sort
    ascending best-first. A plain sorted list with bisect beats a tree here:
    books are at most a few thousand levels, so insort's memmove is cheap,
    and the top N is a slice.
    """

    __slots__ = ("sizes", "keys")

    def __init__(self) -> None:
        self.sizes: dict[float, float] = {}
        self.keys: list[float] = []

    def replace(self, sizes: dict[float, float]) -> None:
        self.sizes = sizes
        self.keys = sorted(sizes)

    def clear(self) -> None:
        self.sizes = {}
        self.keys = []

    def __len__(self) -> int:
        return len(self.keys)


class FullBook:
    """Both sides of one book at full depth."""

    __slots__ = ("bids", "asks")

    def __init__(self) -> None:
        self.bids = BookSide()
        self.asks = BookSide()

    def top(self, depth: int) -> tuple[list[Level], list[Level]]:
        bs, as_ = self.bids.sizes, self.asks.sizes
        return ([(-k, bs[k]) for k in self.bids.keys[:depth]],
                [(k, as_[k]) for k in self.asks.keys[:depth]])


def _check(px: float, sz: float) -> None:
    if not (0.0 < px < INF and 0.0 <= sz < INF):
        raise BookDataError(f"bad level price={px!r} size={sz!r}")


class BookWriter:
    """Applies events to books in ``store`` (which must be the owner).

    Thread safety: every public method takes the book's stripe lock, so a WS
    thread and a resync thread may write one book; readers never lock.
    """

    def __init__(self, store: BookStore) -> None:
        assert store.owner, "BookWriter needs the owning BookStore"
        self.store = store
        self.layout = store.layout
        self.depth = store.layout.depth
        self._books: dict[int, FullBook] = {}
        self._versions: dict[int, int] = {}
        self._states: dict[int, int] = {}
        self._updates: dict[int, int] = {}
        self._zeros = [0.0] * (2 * self.depth)
        self.crossed_count = 0

    def book(self, index: int) -> FullBook:
        b = self._books.get(index)
        if b is None:
            b = self._books[index] = FullBook()
            self._versions[index] = 0
            self._states[index] = SyncState.EMPTY
            self._updates[index] = 0
        return b

    # ---------------------------------------------------------------- writes

    def apply_snapshot(self, index: int, bids: Iterable[Level], asks: Iterable[Level],
                       seq: int = 0, exch_ns: int = 0, recv_ns: int = 0) -> bool:
        """Replace the book. Returns False (and marks it resyncing) if crossed."""
        new_bids: dict[float, float] = {}
        new_asks: dict[float, float] = {}
        for px, sz in bids:
            _check(px, sz)
            if sz > 0.0:
                new_bids[-px] = sz
        for px, sz in asks:
            _check(px, sz)
            if sz > 0.0:
                new_asks[px] = sz
        with self.store.lock_for(index):
            b = self.book(index)
            b.bids.replace(new_bids)
            b.asks.replace(new_asks)
            ok = self._not_crossed(b)
            if not ok:
                self.crossed_count += 1
            self._states[index] = SyncState.SYNCED if ok else SyncState.RESYNCING
            self._publish(index, b, seq, exch_ns, recv_ns, True, True)
        return ok

    def apply_delta(self, index: int, bids: Iterable[Level], asks: Iterable[Level],
                    seq: int = 0, exch_ns: int = 0, recv_ns: int = 0) -> bool:
        """Apply absolute level sizes (0 deletes; deleting an unknown level is
        normal). Returns False (and marks the book resyncing) if it crossed."""
        depth = self.depth
        with self.store.lock_for(index):
            b = self._books.get(index) or self.book(index)
            bids_dirty = _apply_side(b.bids, bids, -1.0, depth)
            asks_dirty = _apply_side(b.asks, asks, 1.0, depth)
            ok = self._not_crossed(b)
            if not ok:
                self.crossed_count += 1
                self._states[index] = SyncState.RESYNCING
            self._publish(index, b, seq, exch_ns, recv_ns, bids_dirty, asks_dirty)
        return ok

    def set_state(self, index: int, state: SyncState) -> None:
        """Mark a book (e.g. RESYNCING on a gap or reconnect); levels stay visible."""
        with self.store.lock_for(index):
            b = self.book(index)
            self._states[index] = state
            off = self.layout.record_offset(index)
            seq, exch_ns, recv_ns = L.BOOK_HEADER.unpack_from(self.store.buf, off)[1:4]
            self._publish(index, b, seq, exch_ns, recv_ns, True, True)

    def clear(self, index: int, state: SyncState = SyncState.RESYNCING) -> None:
        with self.store.lock_for(index):
            b = self.book(index)
            b.bids.clear()
            b.asks.clear()
            self._states[index] = state
            self._publish(index, b, 0, 0, 0, True, True)

    # ----------------------------------------------------------------- reads

    def state(self, index: int) -> SyncState:
        return SyncState(self._states.get(index, SyncState.EMPTY))

    def levels(self, index: int, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """Full-depth (or top ``depth``) levels, best first, from the writer's book."""
        with self.store.lock_for(index):
            b = self.book(index)
            n = len(b.bids) + len(b.asks) if depth is None else depth
            return b.top(n)

    # -------------------------------------------------------------- internals

    @staticmethod
    def _not_crossed(b: FullBook) -> bool:
        bk, ak = b.bids.keys, b.asks.keys
        return not bk or not ak or -bk[0] < ak[0]

    def _publish(self, index: int, b: FullBook, seq: int, exch_ns: int, recv_ns: int,
                 bids_dirty: bool, asks_dirty: bool) -> None:
        """Mirror the top levels under the seqlock. Caller holds the stripe lock.
        A side whose top levels did not change is not rewritten."""
        depth = self.depth
        buf = self.store.buf
        off = self.layout.record_offset(index)
        bid_keys = b.bids.keys[:depth]
        ask_keys = b.asks.keys[:depth]
        nb, na = len(bid_keys), len(ask_keys)
        version = self._versions[index] + 1  # odd: write in progress
        L.VERSION.pack_into(buf, off, version)
        updates = self._updates[index] + 1
        self._updates[index] = updates
        self.layout.body_struct.pack_into(buf, off + L.OFF_BODY, seq, exch_ns, recv_ns,
                                          self._states[index], nb, na, updates)
        pack_side = self.layout.side_struct.pack_into
        lev = off + L.BOOK_HEADER_SIZE
        if bids_dirty:
            sizes = b.bids.sizes
            pad = self._zeros[: depth - nb]
            pack_side(buf, lev, *[-k for k in bid_keys], *pad, *[sizes[k] for k in bid_keys], *pad)
        if asks_dirty:
            sizes = b.asks.sizes
            pad = self._zeros[: depth - na]
            pack_side(buf, lev + 16 * depth, *ask_keys, *pad, *[sizes[k] for k in ask_keys], *pad)
        version += 1
        L.VERSION.pack_into(buf, off, version)  # even: consistent
        self._versions[index] = version


def _apply_side(side: BookSide, changes: Iterable[Level], sign: float, depth: int) -> bool:
    """Apply (price, size) changes to one side; True if its top ``depth`` moved."""
    sizes, keys = side.sizes, side.keys
    dirty = False
    for px, sz in changes:
        if not (0.0 < px < INF and 0.0 <= sz < INF):
            _check(px, sz)
        k = sign * px
        if sz == 0.0:
            if sizes.pop(k, None) is not None:
                i = bisect_left(keys, k)
                del keys[i]
                if i < depth:
                    dirty = True
        elif k in sizes:
            sizes[k] = sz
            if not dirty and (len(keys) <= depth or k <= keys[depth - 1]):
                dirty = True
        else:
            sizes[k] = sz
            i = bisect_left(keys, k)
            keys.insert(i, k)
            if i < depth:
                dirty = True
    return dirty

"""Writer side of the BookStore: the authoritative full-depth book per index,
kept in this process, and the seqlocked mirror of its top levels in shared
memory. Applies snapshots and deltas only; venue sync rules live in feed/.
"""

from __future__ import annotations

import struct
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
    """Both sides of one book at full depth, plus the writer's bookkeeping for
    its shared-memory record (one object per book keeps the hot path to a
    single lookup)."""

    __slots__ = ("bids", "asks", "version", "updates", "state", "offset", "lock", "nb", "na")

    def __init__(self, offset: int, lock) -> None:
        self.bids = BookSide()
        self.asks = BookSide()
        self.version = 0  # seqlock word as last published (even)
        self.updates = 0
        self.state = int(SyncState.EMPTY)
        self.offset = offset  # record offset in the segment
        self.lock = lock  # the store's stripe lock for this book
        self.nb = 0  # mirrored level counts
        self.na = 0

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
        self._zeros = [0.0] * (2 * self.depth)
        self._body_pack = store.layout.body_struct.pack_into
        self._structs: dict[int, struct.Struct] = {}
        self.crossed_count = 0

    def book(self, index: int) -> FullBook:
        b = self._books.get(index)
        if b is None:
            if not 0 <= index < self.store.count():
                raise IndexError(f"book index {index} is not registered")
            b = self._books[index] = FullBook(self.layout.record_offset(index),
                                              self.store.lock_for(index))
        return b

    # ---------------------------------------------------------------- writes

    def apply_snapshot(self, index: int, bids: Iterable[Level], asks: Iterable[Level],
                       seq: int = 0, exch_ns: int = 0, recv_ns: int = 0) -> bool:
        """Replace the book. Returns False (and marks it resyncing) if crossed.
        Bad levels raise BookDataError before anything changes."""
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
        b = self.book(index)
        with b.lock:
            b.bids.replace(new_bids)
            b.asks.replace(new_asks)
            ok = self._not_crossed(b)
            if not ok:
                self.crossed_count += 1
            b.state = SyncState.SYNCED if ok else SyncState.RESYNCING
            self._publish(b, seq, exch_ns, recv_ns)
        return ok

    def apply_delta(self, index: int, bids: Iterable[Level], asks: Iterable[Level],
                    seq: int = 0, exch_ns: int = 0, recv_ns: int = 0) -> bool:
        """Apply absolute level sizes (0 deletes; deleting an unknown level is
        normal). Returns False (and marks the book resyncing) if it crossed.

        The mirror is patched in place under the seqlock: a size change in the
        top N writes one slot; an insert or delete rewrites the side from the
        first shifted slot down. A bad level raises BookDataError and leaves
        the book RESYNCING (it may be partly applied; a resync replaces it)."""
        b = self._books.get(index) or self.book(index)
        depth = self.depth
        buf = self.store.buf
        off = b.offset
        lev = off + L.BOOK_HEADER_SIZE
        with b.lock:
            version = b.version + 1
            VERSION_PACK(buf, off, version)  # odd: write in progress
            try:
                if bids:
                    b.nb = _patch_side(b.bids, bids, -1.0, depth, buf, lev, self._struct_for)
                if asks:
                    b.na = _patch_side(b.asks, asks, 1.0, depth, buf, lev + 16 * depth,
                                       self._struct_for)
            except BookDataError:
                b.state = SyncState.RESYNCING
                b.nb, b.na = min(len(b.bids.keys), depth), min(len(b.asks.keys), depth)
                self._finish(b, version, seq, exch_ns, recv_ns)
                raise
            bk, ak = b.bids.keys, b.asks.keys
            if bk and ak and -bk[0] >= ak[0]:
                ok = False
                self.crossed_count += 1
                b.state = SyncState.RESYNCING
            else:
                ok = True
            b.updates += 1
            self._body_pack(buf, off + L.OFF_BODY, seq, exch_ns, recv_ns, b.state, b.nb, b.na,
                            b.updates)
            b.version = version + 1
            VERSION_PACK(buf, off, version + 1)  # even: consistent
        return ok

    def set_state(self, index: int, state: SyncState) -> None:
        """Mark a book (e.g. RESYNCING on a gap or reconnect); levels stay visible."""
        b = self.book(index)
        with b.lock:
            b.state = state
            seq, exch_ns, recv_ns = L.BOOK_HEADER.unpack_from(self.store.buf, b.offset)[1:4]
            self._publish(b, seq, exch_ns, recv_ns)

    def clear(self, index: int, state: SyncState = SyncState.RESYNCING) -> None:
        b = self.book(index)
        with b.lock:
            b.bids.clear()
            b.asks.clear()
            b.state = state
            self._publish(b, 0, 0, 0)

    # ----------------------------------------------------------------- reads

    def state(self, index: int) -> SyncState:
        b = self._books.get(index)
        return SyncState(b.state) if b is not None else SyncState.EMPTY

    def levels(self, index: int, depth: int | None = None) -> tuple[list[Level], list[Level]]:
        """Full-depth (or top ``depth``) levels, best first, from the writer's book."""
        b = self.book(index)
        with b.lock:
            n = len(b.bids) + len(b.asks) if depth is None else depth
            return b.top(n)

    # -------------------------------------------------------------- internals

    @staticmethod
    def _not_crossed(b: FullBook) -> bool:
        bk, ak = b.bids.keys, b.asks.keys
        return not bk or not ak or -bk[0] < ak[0]

    def _struct_for(self, count: int) -> struct.Struct:
        st = self._structs.get(count)
        if st is None:
            st = self._structs[count] = struct.Struct(f"<{count}d")
        return st

    def _finish(self, b: FullBook, version: int, seq: int, exch_ns: int, recv_ns: int) -> None:
        """Write the header body and close the seqlock (``version`` is odd)."""
        b.updates += 1
        self._body_pack(self.store.buf, b.offset + L.OFF_BODY, seq, exch_ns, recv_ns, b.state,
                        b.nb, b.na, b.updates)
        b.version = version + 1
        VERSION_PACK(self.store.buf, b.offset, version + 1)  # even: consistent

    def _publish(self, b: FullBook, seq: int, exch_ns: int, recv_ns: int) -> None:
        """Rewrite the whole mirror under the seqlock. Caller holds the stripe lock."""
        depth = self.depth
        buf = self.store.buf
        bid_keys = b.bids.keys[:depth]
        ask_keys = b.asks.keys[:depth]
        b.nb, b.na = len(bid_keys), len(ask_keys)
        version = b.version + 1
        VERSION_PACK(buf, b.offset, version)  # odd: write in progress
        pack_side = self.layout.side_struct.pack_into
        lev = b.offset + L.BOOK_HEADER_SIZE
        sizes = b.bids.sizes
        pad = self._zeros[: depth - b.nb]
        pack_side(buf, lev, *[-k for k in bid_keys], *pad, *[sizes[k] for k in bid_keys], *pad)
        sizes = b.asks.sizes
        pad = self._zeros[: depth - b.na]
        pack_side(buf, lev + 16 * depth, *ask_keys, *pad, *[sizes[k] for k in ask_keys], *pad)
        self._finish(b, version, seq, exch_ns, recv_ns)


VERSION_PACK = L.VERSION.pack_into
_SIZE_PACK = struct.Struct("<d").pack_into


def _patch_side(side: BookSide, changes: Iterable[Level], sign: float, depth: int,
                buf: memoryview, lev: int, struct_for) -> int:
    """Apply (price, size) changes to one side and patch its mirror at ``lev``
    (prices at lev, sizes at lev + 8*depth). Returns the mirrored level count."""
    sizes, keys = side.sizes, side.keys
    old_count = min(len(keys), depth)
    shift_from = depth  # first mirrored slot whose price moved
    sz_base = lev + 8 * depth
    for px, sz in changes:
        if not (0.0 < px < INF and 0.0 <= sz < INF):
            _check(px, sz)
        k = sign * px
        if sz == 0.0:
            if sizes.pop(k, None) is not None:
                i = bisect_left(keys, k)
                del keys[i]
                if i < shift_from:
                    shift_from = i
        elif k in sizes:
            sizes[k] = sz
            if len(keys) <= depth or k <= keys[depth - 1]:
                i = bisect_left(keys, k)
                if i < shift_from:
                    _SIZE_PACK(buf, sz_base + 8 * i, sz)
        else:
            sizes[k] = sz
            i = bisect_left(keys, k)
            keys.insert(i, k)
            if i < shift_from:
                shift_from = i
    count = min(len(keys), depth)
    if shift_from < depth:
        tail = keys[shift_from:count]
        n = max(count, old_count) - shift_from
        pad = [0.0] * (n - len(tail))
        st = struct_for(n)
        st.pack_into(buf, lev + 8 * shift_from, *[sign * k for k in tail], *pad)
        st.pack_into(buf, sz_base + 8 * shift_from, *[sizes[k] for k in tail], *pad)
    return count

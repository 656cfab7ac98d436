"""Writer side of the BookStore: the authoritative full-depth book per index,
kept in this process, and the seqlocked mirror of its top levels in shared
memory. Applies snapshots and deltas only; venue sync rules live in feed/.
"""

from __future__ import annotations

import struct
from array import array
from bisect import bisect_left
from collections.abc import Iterable

from engine.book import layout as L
from engine.book.store import BookStore
from engine.model import Level, SyncState

INF = float("inf")


class BookDataError(ValueError):
    """A level no venue could mean: NaN, infinite, zero or negative price, negative size."""


class BookSide:
    """One side at full depth: sizes by key and the keys kept sorted best-first,
    plus ``mpx``/``msz``, a copy of the mirrored top levels as C double arrays.

    Keys are prices for asks and negated prices for bids, so both sides sort
    ascending best-first. A plain sorted list with bisect beats a tree here:
    books are at most a few thousand levels, so insort's memmove is cheap.
    The arrays follow every insert and delete in the top N with the same
    memmoves, so the shared mirror is patched by copying raw bytes.
    """

    __slots__ = ("sizes", "keys", "mpx", "msz")

    def __init__(self) -> None:
        self.sizes: dict[float, float] = {}
        self.keys: list[float] = []
        self.mpx = array("d")  # mirrored prices (positive), best first
        self.msz = array("d")  # mirrored sizes

    def replace(self, sizes: dict[float, float], sign: float, depth: int) -> None:
        self.sizes = sizes
        self.keys = sorted(sizes)
        top = self.keys[:depth]
        self.mpx = array("d", [sign * k for k in top])
        self.msz = array("d", [sizes[k] for k in top])

    def clear(self) -> None:
        self.sizes = {}
        self.keys = []
        self.mpx = array("d")
        self.msz = array("d")

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
        self._zero_bytes = bytes(8 * self.depth)
        self._body_pack = store.layout.body_struct.pack_into
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
            b.bids.replace(new_bids, -1.0, self.depth)
            b.asks.replace(new_asks, 1.0, self.depth)
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
        lock = b.lock
        lock.acquire()  # not ``with``: half the cost on this hot path
        try:
            version = b.version + 1
            VERSION_PACK(buf, off, version)  # odd: write in progress
            try:
                if bids:
                    b.nb = _patch_side(b.bids, bids, -1.0, depth, buf, lev)
                if asks:
                    b.na = _patch_side(b.asks, asks, 1.0, depth, buf, lev + 16 * depth)
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
        finally:
            lock.release()
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
        b.nb, b.na = len(b.bids.mpx), len(b.asks.mpx)
        version = b.version + 1
        VERSION_PACK(buf, b.offset, version)  # odd: write in progress
        lev = b.offset + L.BOOK_HEADER_SIZE
        for side, base in ((b.bids, lev), (b.asks, lev + 16 * depth)):
            n8, d8 = 8 * len(side.mpx), 8 * depth
            buf[base:base + n8] = memoryview(side.mpx).cast("B")
            buf[base + n8:base + d8] = self._zero_bytes[: d8 - n8]
            buf[base + d8:base + d8 + n8] = memoryview(side.msz).cast("B")
            buf[base + d8 + n8:base + 2 * d8] = self._zero_bytes[: d8 - n8]
        self._finish(b, version, seq, exch_ns, recv_ns)


VERSION_PACK = L.VERSION.pack_into
_SIZE_PACK = struct.Struct("<d").pack_into


def _patch_side(side: BookSide, changes: Iterable[Level], sign: float, depth: int,
                buf: memoryview, lev: int) -> int:
    """Apply (price, size) changes to one side and patch its mirror at ``lev``
    (prices at lev, sizes at lev + 8*depth). Returns the mirrored level count.

    A size change inside the top N writes its one slot at once; inserts and
    deletes there shift ``mpx``/``msz`` and the shifted suffix is copied once
    at the end."""
    sizes, keys, mpx, msz = side.sizes, side.keys, side.mpx, side.msz
    old_count = len(mpx)
    shift_from = depth  # first mirrored slot whose price moved
    sz_base = lev + 8 * depth
    try:
        for px, sz in changes:
            if not (0.0 < px < INF and 0.0 <= sz < INF):
                _check(px, sz)
            k = sign * px
            if sz == 0.0:
                if sizes.pop(k, None) is not None:
                    i = bisect_left(keys, k)
                    del keys[i]
                    if i < depth:
                        del mpx[i]
                        del msz[i]
                        if len(keys) >= depth:  # the next level moves up into the mirror
                            k2 = keys[depth - 1]
                            mpx.append(sign * k2)
                            msz.append(sizes[k2])
                        if i < shift_from:
                            shift_from = i
            elif k in sizes:
                sizes[k] = sz
                if len(keys) <= depth or k <= keys[depth - 1]:
                    i = bisect_left(keys, k)
                    msz[i] = sz
                    if i < shift_from:
                        _SIZE_PACK(buf, sz_base + 8 * i, sz)
            else:
                sizes[k] = sz
                i = bisect_left(keys, k)
                keys.insert(i, k)
                if i < depth:
                    mpx.insert(i, px)
                    msz.insert(i, sz)
                    if len(mpx) > depth:
                        del mpx[depth]
                        del msz[depth]
                    if i < shift_from:
                        shift_from = i
    finally:  # also after a bad level: the mirror shows what was applied
        count = len(mpx)
        if shift_from < depth:
            s8, e8, o8 = 8 * shift_from, 8 * count, 8 * old_count
            if e8 > s8:
                buf[lev + s8:lev + e8] = memoryview(mpx).cast("B")[s8:e8]
                buf[sz_base + s8:sz_base + e8] = memoryview(msz).cast("B")[s8:e8]
            if o8 > e8:  # the side got shorter: clear the slots it left
                zeros = bytes(o8 - e8)
                buf[lev + e8:lev + o8] = zeros
                buf[sz_base + e8:sz_base + o8] = zeros
    return count

"""A full-depth replica of every recorded book, kept by the recorder thread in
record order, so the recorder can store whole books: at every venue snapshot
(bridged with the deltas the venue says follow it) and every
``interval_ns`` of receive time. Pure: no I/O, no clock, one thread.

Applies exactly the rule the book-at-time query uses (engine/store/queries.py):
after a stored snapshot with seq s, a delta changes the book iff s == 0 or
its last_seq > s. So a rebuilt book equals this replica at any stored point.

A REST snapshot (Binance) arrives after deltas it does not include: the venue
says to apply those with last_seq > s, starting with one that brackets s + 1.
They are recorded before the snapshot, so the replica keeps the last
RING_DELTAS deltas of each book and folds the bridging ones into the snapshot
it stores; deltas recorded later follow the rule above.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from engine.model import BookDelta, BookSnapshot, Level

# Deltas kept per book to bridge a REST snapshot. At Binance's 10 messages/s
# per book, 64 cover 6 s between the gap and the snapshot's arrival; more
# covers slower snapshots at ~1 KB per delta per book (500 books: 32 MB).
RING_DELTAS = 64

BookKey = tuple[str, str, str]  # venue, market, pair


@dataclass(slots=True)
class StoredBook:
    """A whole book to store: best first, as of ``recv_ns``."""

    bids: list[Level]
    asks: list[Level]
    seq: int
    recv_ns: int


class _Replica:
    __slots__ = ("bids", "asks", "base_seq", "last_seq", "recv_ns", "synced", "ring", "stored_ns")

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.base_seq = 0  # seq of the last stored snapshot: the apply rule's s
        self.last_seq = 0  # highest last_seq applied since
        self.recv_ns = 0  # latest recv_ns in the book
        self.synced = False  # has a snapshot and no known loss since
        self.ring: deque[BookDelta] = deque(maxlen=RING_DELTAS)
        self.stored_ns = 0  # recv_ns of the last stored snapshot

    def apply(self, delta: BookDelta) -> None:
        bids, asks = self.bids, self.asks
        for price, size in delta.bids:
            if size:
                bids[price] = size
            else:
                bids.pop(price, None)
        for price, size in delta.asks:
            if size:
                asks[price] = size
            else:
                asks.pop(price, None)
        if delta.last_seq > self.last_seq:
            self.last_seq = delta.last_seq
        if delta.recv_ns > self.recv_ns:
            self.recv_ns = delta.recv_ns

    def stored(self) -> StoredBook:
        """The book as stored now; later deltas are measured against it."""
        self.base_seq = self.last_seq
        self.stored_ns = self.recv_ns
        return StoredBook(sorted(self.bids.items(), reverse=True), sorted(self.asks.items()),
                          self.last_seq, self.recv_ns)


def bridging(ring: deque[BookDelta], seq: int) -> list[BookDelta]:
    """The recorded deltas a snapshot with ``seq`` needs, in order: those with
    last_seq > seq, starting at one that brackets seq + 1 (or names seq as its
    previous), each following the last; empty when they do not connect."""
    out: list[BookDelta] = []
    for delta in ring:
        if delta.last_seq <= seq:
            continue
        if not out:
            if not (delta.first_seq <= seq + 1 or delta.prev_seq == seq):
                return []
        else:
            previous = out[-1].last_seq
            follows = (delta.prev_seq == previous if delta.prev_seq != -1
                       else delta.first_seq <= previous + 1)
            if not follows:
                break
        out.append(delta)
    return out


class BookTracker:
    def __init__(self, interval_ns: int) -> None:
        self.interval_ns = interval_ns  # 0: no periodic snapshots
        self.books: dict[BookKey, _Replica] = {}
        self.folded = 0  # deltas folded into stored REST snapshots

    def _replica(self, key: BookKey) -> _Replica:
        replica = self.books.get(key)
        if replica is None:
            replica = self.books[key] = _Replica()
        return replica

    def on_snapshot(self, snap: BookSnapshot) -> StoredBook:
        """The venue's snapshot with its bridging deltas folded in."""
        replica = self._replica((snap.venue, snap.market.value, snap.pair))
        replica.bids = {price: size for price, size in snap.bids if size}
        replica.asks = {price: size for price, size in snap.asks if size}
        replica.last_seq = snap.seq
        replica.recv_ns = snap.recv_ns
        if snap.seq:
            for delta in bridging(replica.ring, snap.seq):
                replica.apply(delta)
                self.folded += 1
        replica.ring.clear()
        replica.synced = True
        return replica.stored()

    def on_delta(self, delta: BookDelta) -> StoredBook | None:
        """Applies ``delta``; returns a periodic book to store when one is due."""
        replica = self._replica((delta.venue, delta.market.value, delta.pair))
        replica.ring.append(delta)
        if not replica.synced:
            return None
        if replica.base_seq == 0 or delta.last_seq > replica.base_seq:
            replica.apply(delta)
        if self.interval_ns and replica.recv_ns - replica.stored_ns >= self.interval_ns:
            return replica.stored()
        return None

    def invalidate(self, key: BookKey) -> None:
        """Events of this book were lost: no stored book from the replica until
        the venue's next snapshot."""
        replica = self._replica(key)
        replica.synced = False
        replica.ring.clear()

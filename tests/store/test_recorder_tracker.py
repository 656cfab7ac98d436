"""The recorder's book replica (engine/store/tracker.py): whole books stored
at venue snapshots, bridged the way Binance says, and every interval."""

from __future__ import annotations

from engine.model import BookDelta, BookSnapshot, Market
from engine.store.tracker import RING_DELTAS, BookTracker, bridging

S = 1_000_000_000


def delta(first: int, last: int, recv_s: float, bids=(), asks=(), prev: int = -1) -> BookDelta:
    return BookDelta("binance", Market.SPOT, "BTC/USDT", list(bids), list(asks), first, last, prev,
                     0, int(recv_s * S))


def snapshot(seq: int, recv_s: float, bids, asks) -> BookSnapshot:
    return BookSnapshot("binance", Market.SPOT, "BTC/USDT", list(bids), list(asks), seq, 0,
                        int(recv_s * S))


def test_tracker_rest_snapshot_folds_the_deltas_that_follow_its_id() -> None:
    tracker = BookTracker(interval_ns=0)
    assert tracker.on_delta(delta(98, 100, 1, bids=[(9.0, 5.0)])) is None  # before the snapshot id
    tracker.on_delta(delta(101, 103, 2, bids=[(10.0, 2.0)]))  # brackets 101: applies
    tracker.on_delta(delta(104, 104, 3, asks=[(11.0, 0.0)]))
    stored = tracker.on_snapshot(snapshot(100, 4, [(10.0, 1.0), (9.0, 1.0)], [(11.0, 1.0), (12.0, 1.0)]))
    assert stored.bids == [(10.0, 2.0), (9.0, 1.0)]
    assert stored.asks == [(12.0, 1.0)]
    assert stored.seq == 104 and stored.recv_ns == 4 * S
    assert tracker.folded == 2


def test_tracker_snapshot_without_bridge_stores_the_venue_book() -> None:
    tracker = BookTracker(interval_ns=0)
    tracker.on_delta(delta(150, 151, 1, bids=[(10.0, 2.0)]))  # later than 101: no bridge
    stored = tracker.on_snapshot(snapshot(100, 2, [(10.0, 1.0)], [(11.0, 1.0)]))
    assert stored.bids == [(10.0, 1.0)] and stored.seq == 100


def test_tracker_bridging_follows_prev_ids_and_stops_at_a_break() -> None:
    ring = [delta(5, 9, 1, prev=4), delta(10, 12, 2, prev=9), delta(13, 14, 3, prev=11)]
    assert [d.last_seq for d in bridging(ring, 8)] == [9, 12]  # type: ignore[arg-type]


def test_tracker_deltas_after_snapshot_apply_when_newer_than_it() -> None:
    tracker = BookTracker(interval_ns=0)
    tracker.on_snapshot(snapshot(100, 1, [(10.0, 1.0)], [(11.0, 1.0)]))
    tracker.on_delta(delta(99, 100, 2, bids=[(10.0, 7.0)]))  # stale: ignored
    tracker.on_delta(delta(101, 101, 3, bids=[(9.5, 3.0)], asks=[(11.0, 0.0)]))
    replica = tracker.books[("binance", "spot", "BTC/USDT")]
    assert replica.bids == {10.0: 1.0, 9.5: 3.0} and replica.asks == {}


def test_tracker_periodic_book_every_interval_of_receive_time() -> None:
    tracker = BookTracker(interval_ns=10 * S)
    tracker.on_snapshot(snapshot(1, 0, [(10.0, 1.0)], [(11.0, 1.0)]))
    stored = [tracker.on_delta(delta(n, n, n, bids=[(10.0, float(n))])) for n in range(2, 25)]
    due = [(s.seq, s.recv_ns // S, s.bids) for s in stored if s is not None]
    assert due == [(10, 10, [(10.0, 10.0)]), (20, 20, [(10.0, 20.0)])]


def test_tracker_no_book_before_a_snapshot_or_after_a_loss() -> None:
    tracker = BookTracker(interval_ns=1)
    assert tracker.on_delta(delta(1, 1, 1, bids=[(10.0, 1.0)])) is None
    tracker.on_snapshot(snapshot(1, 2, [(10.0, 1.0)], []))
    assert tracker.on_delta(delta(2, 2, 3, bids=[(10.0, 2.0)])) is not None
    tracker.invalidate(("binance", "spot", "BTC/USDT"))
    assert tracker.on_delta(delta(3, 3, 4, bids=[(10.0, 3.0)])) is None


def test_tracker_ring_is_bounded() -> None:
    tracker = BookTracker(interval_ns=0)
    for n in range(RING_DELTAS * 3):
        tracker.on_delta(delta(n, n, n))
    assert len(tracker.books[("binance", "spot", "BTC/USDT")].ring) == RING_DELTAS

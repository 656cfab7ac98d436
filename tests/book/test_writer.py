"""BookWriter against a reference model: random snapshot/delta sequences
(hypothesis) must leave the shared-memory mirror and the full book equal to
a plain dict model, and bad input must be refused."""

import math
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookDataError, BookWriter
from engine.model import SyncState

DEPTH = 8


@pytest.fixture
def store():
    s = BookStore.create(f"t_{uuid.uuid4().hex[:12]}", capacity=4, depth=DEPTH)
    yield s
    s.close()


# Prices on a tick grid so bids and asks collide often; sizes include 0 (delete).
bid_px = st.integers(1, 60).map(lambda i: i / 4)
ask_px = st.integers(40, 100).map(lambda i: i / 4)
size = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.5, 7.0])
levels = lambda px: st.lists(st.tuples(px, size), max_size=12)
op = st.one_of(
    st.tuples(st.just("snapshot"), levels(bid_px), levels(ask_px)),
    st.tuples(st.just("delta"), levels(bid_px), levels(ask_px)),
)


def reference_apply(ref: dict, bids, asks, replace: bool) -> None:
    if replace:
        ref["b"], ref["a"] = {}, {}
    for side, changes in (("b", bids), ("a", asks)):
        for px, sz in changes:
            if sz == 0.0:
                ref[side].pop(px, None)
            else:
                ref[side][px] = sz


def top(ref: dict, depth: int):
    bids = sorted(ref["b"].items(), key=lambda kv: -kv[0])[:depth]
    asks = sorted(ref["a"].items())[:depth]
    return bids, asks


@settings(max_examples=150, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=40))
def test_writer_random_sequences_match_reference_model(ops):
    s = BookStore.create(f"t_{uuid.uuid4().hex[:12]}", capacity=2, depth=DEPTH)
    try:
        w, r = BookWriter(s), BookReader(s)
        i = s.register("x:spot:A/B")
        ref = {"b": {}, "a": {}}
        seq = 0
        for kind, bids, asks in ops:
            seq += 1
            if kind == "snapshot":
                # A snapshot lists each price once (the last change wins in the model).
                bids, asks = list(dict(bids).items()), list(dict(asks).items())
                ok = w.apply_snapshot(i, bids, asks, seq=seq)
            else:
                ok = w.apply_delta(i, bids, asks, seq=seq)
            reference_apply(ref, bids, asks, replace=(kind == "snapshot"))
            exp_bids, exp_asks = top(ref, DEPTH)
            crossed = bool(exp_bids and exp_asks and exp_bids[0][0] >= exp_asks[0][0])
            assert ok is (not crossed)
            view = r.read(i)
            assert [tuple(x) for x in view.bids.tolist()] == exp_bids
            assert [tuple(x) for x in view.asks.tolist()] == exp_asks
            assert view.seq == seq
            full_bids, full_asks = w.levels(i)
            assert full_bids == sorted(ref["b"].items(), key=lambda kv: -kv[0])
            assert full_asks == sorted(ref["a"].items())
            if crossed:
                assert view.state == SyncState.RESYNCING
    finally:
        s.close()


def test_writer_crossed_delta_marks_book_resyncing(store):
    w, r = BookWriter(store), BookReader(store)
    i = store.register("x:spot:A/B")
    assert w.apply_snapshot(i, [(10.0, 1.0)], [(11.0, 1.0)], seq=1)
    assert r.read(i).state == SyncState.SYNCED
    assert not w.apply_delta(i, [(11.5, 1.0)], [], seq=2)
    view = r.read(i)
    assert view.state == SyncState.RESYNCING
    assert w.crossed_count == 1
    assert w.apply_snapshot(i, [(10.0, 1.0)], [(11.0, 1.0)], seq=3)
    assert r.read(i).state == SyncState.SYNCED


@pytest.mark.parametrize("level", [(math.nan, 1.0), (-1.0, 1.0), (0.0, 1.0), (math.inf, 1.0),
                                   (10.0, -1.0), (10.0, math.nan)])
def test_writer_bad_level_raises_and_keeps_book(store, level):
    w, r = BookWriter(store), BookReader(store)
    i = store.register("x:spot:A/B")
    w.apply_snapshot(i, [(10.0, 1.0)], [(11.0, 1.0)], seq=1)
    with pytest.raises(BookDataError, match="bad level"):
        w.apply_delta(i, [level], [], seq=2)
    with pytest.raises(BookDataError):
        w.apply_snapshot(i, [level], [], seq=3)
    view = r.read(i)
    assert view.best_bid == 10.0 and view.best_ask == 11.0


def test_writer_set_state_keeps_levels_and_seq(store):
    w, r = BookWriter(store), BookReader(store)
    i = store.register("x:spot:A/B")
    w.apply_snapshot(i, [(10.0, 1.0)], [(11.0, 2.0)], seq=42, exch_ns=5, recv_ns=6)
    w.set_state(i, SyncState.RESYNCING)
    view = r.read(i)
    assert view.state == SyncState.RESYNCING
    assert (view.seq, view.exch_ns, view.recv_ns) == (42, 5, 6)
    assert view.bids.tolist() == [[10.0, 1.0]]


def test_writer_deep_book_mirrors_only_top_levels(store):
    w, r = BookWriter(store), BookReader(store)
    i = store.register("x:spot:A/B")
    bids = [(1000.0 - k, 1.0 + k) for k in range(1000)]
    asks = [(1001.0 + k, 1.0 + k) for k in range(1000)]
    w.apply_snapshot(i, bids, asks, seq=1)
    # A change deep in the book must not disturb the mirror; one at the top must.
    w.apply_delta(i, [(500.0, 0.0)], [(1500.0, 9.0)], seq=2)
    view = r.read(i)
    assert view.bids.tolist() == [list(b) for b in bids[:DEPTH]]
    assert view.seq == 2
    w.apply_delta(i, [(1000.0, 0.0), (1000.5, 3.0)], [], seq=3)
    view = r.read(i, 3)
    assert view.bids.tolist() == [[1000.5, 3.0], [999.0, 2.0], [998.0, 3.0]]
    full_bids, _ = w.levels(i)
    assert len(full_bids) == 999 and (500.0, 501.0) not in full_bids


def test_writer_clear_empties_book_and_marks_state(store):
    w, r = BookWriter(store), BookReader(store)
    i = store.register("x:spot:A/B")
    w.apply_snapshot(i, [(10.0, 1.0)], [(11.0, 2.0)], seq=4)
    w.clear(i)
    view = r.read(i)
    assert view.state == SyncState.RESYNCING and len(view.bids) == 0 and len(view.asks) == 0
    assert w.levels(i) == ([], [])

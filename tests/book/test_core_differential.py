"""The compiled book core against the pure-Python reference: the same random
snapshot/delta/state sequences drive both, and after every call the published
shared-memory record (version, seq, timestamps, state, counts, every mirrored
level and the zeroed slots) must be byte-identical, as must the full-depth
books, the return values and the errors."""

import math
import os
import random
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.book import core
from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookDataError, BookWriter
from engine.model import SyncState

DEPTH = 6

if not core.compiled_available():
    if os.environ.get("CI"):
        raise RuntimeError(f"engine.book._core is not built ({core.IMPORT_ERROR}): run pip install -e .")
    pytest.skip("compiled book core not built (pip install -e .)", allow_module_level=True)


class Pair:
    """One store per core, one book each, driven in lockstep."""

    def __init__(self, depth: int = DEPTH) -> None:
        self.stores = [BookStore.create(f"t_{uuid.uuid4().hex[:12]}", capacity=2, depth=depth)
                       for _ in range(2)]
        self.writers = [BookWriter(self.stores[0]), core.CompiledBookWriter(self.stores[1])]
        self.readers = [BookReader(s, compiled=c) for s, c in zip(self.stores, (False, True))]
        self.index = [s.register("x:spot:A/B") for s in self.stores]
        self.calls = 0

    def close(self) -> None:
        for s in self.stores:
            s.close()

    def call(self, method: str, *args, **kwargs):
        outcomes = []
        for w, i in zip(self.writers, self.index):
            try:
                outcomes.append(("ok", getattr(w, method)(i, *args, **kwargs)))
            except BookDataError as exc:
                outcomes.append(("BookDataError", str(exc)))
        self.calls += 1
        assert outcomes[0] == outcomes[1], f"call {self.calls} {method}{args}: {outcomes}"
        self.check()
        return outcomes[0]

    def check(self) -> None:
        raw = [r.read_raw(i) for r, i in zip(self.readers, self.index)]
        assert raw[0] == raw[1], f"published records differ after call {self.calls}"
        py_levels, c_levels = (w.levels(i) for w, i in zip(self.writers, self.index))
        assert py_levels == c_levels
        assert self.writers[0].state(self.index[0]) == self.writers[1].state(self.index[1])
        assert self.writers[0].crossed_count == self.writers[1].crossed_count


# Prices on a tick grid so levels collide and books cross; sizes include 0
# (delete); now and then a level no venue could mean, or an int price.
bid_px = st.integers(1, 60).map(lambda i: i / 4)
ask_px = st.integers(40, 100).map(lambda i: i / 4)
size = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.5, 7.0])
bad = st.sampled_from([(math.nan, 1.0), (-1.0, 1.0), (0.0, 1.0), (math.inf, 1.0), (10.0, -1.0),
                       (10.0, math.nan), (10.0, math.inf)])


def levels(px):
    good = st.tuples(px, size) | st.tuples(px.map(int).filter(bool), size).map(list)
    return st.lists(st.one_of(good, good, good, good, good, good, good, good, good, bad),
                    max_size=14)


op = st.one_of(
    st.tuples(st.just("apply_snapshot"), levels(bid_px), levels(ask_px)),
    st.tuples(st.just("apply_delta"), levels(bid_px), levels(ask_px)),
    st.tuples(st.just("apply_delta"), levels(bid_px), levels(ask_px)),
    st.tuples(st.just("set_state"), st.sampled_from(list(SyncState))),
    st.tuples(st.just("clear"), st.sampled_from(list(SyncState))),
)


@settings(max_examples=300, deadline=None)
@given(ops=st.lists(op, min_size=1, max_size=40))
def test_core_random_sequences_publish_what_the_reference_publishes(ops):
    pair = Pair()
    try:
        for seq, (kind, *args) in enumerate(ops, 1):
            if kind in ("apply_snapshot", "apply_delta"):
                pair.call(kind, args[0], args[1], seq, seq * 10, seq * 100)
            else:
                pair.call(kind, args[0])
    finally:
        pair.close()


def test_core_deep_books_with_real_frame_mix_match_the_reference():
    """1-2k-level books, 30-40 changes a frame (40 % inserts, 40 % deletes)
    spread over the top few hundred levels: the shape of real Binance frames."""
    rng = random.Random(11)
    pair = Pair(depth=50)
    try:
        tick = 0.01
        bids = [(round(1000 - k * tick, 2), 1.0 + k % 7) for k in range(1500)]
        asks = [(round(1000 + tick + k * tick, 2), 1.0 + k % 5) for k in range(1500)]
        pair.call("apply_snapshot", bids, asks, seq=1)
        live = [set(p for p, _ in bids), set(p for p, _ in asks)]
        for seq in range(2, 1500):
            frame: list[list] = [[], []]
            for _ in range(rng.randint(30, 40)):
                s = rng.randrange(2)
                pos = min(int(rng.expovariate(1 / 90)), 600)
                px = round(1000 - pos * tick, 2) if s == 0 else round(1000 + tick + pos * tick, 2)
                r = rng.random()
                if r < 0.4 and px in live[s]:
                    frame[s].append((px, 0.0))
                    live[s].discard(px)
                elif r < 0.8:
                    half = round(px + (tick / 2 if s else -tick / 2), 3)
                    frame[s].append((half, rng.uniform(0.1, 9)))
                    live[s].add(half)
                else:
                    frame[s].append((px, rng.uniform(0.1, 9)))
                    live[s].add(px)
            pair.call("apply_delta", frame[0], frame[1], seq, seq, seq)
    finally:
        pair.close()


def test_core_snapshot_duplicates_last_listing_wins_and_zero_sizes_skipped():
    pair = Pair()
    try:
        pair.call("apply_snapshot", [(10.0, 1.0), (9.0, 2.0), (10.0, 3.0), (9.0, 0.0), (8.0, 0.0)],
                  [(12.0, 1.0), (11.0, 5.0), (12.0, 4.0)], 7)
        assert pair.writers[1].levels(pair.index[1]) == ([(10.0, 3.0), (9.0, 2.0)],
                                                        [(11.0, 5.0), (12.0, 4.0)])
    finally:
        pair.close()


def test_core_bad_snapshot_changes_nothing_bad_delta_flags_resyncing():
    pair = Pair()
    try:
        pair.call("apply_snapshot", [(10.0, 1.0)], [(11.0, 1.0)], 1)
        assert pair.call("apply_snapshot", [(9.0, 1.0), (math.nan, 1.0)], [], 2)[0] == "BookDataError"
        assert pair.writers[1].levels(pair.index[1]) == ([(10.0, 1.0)], [(11.0, 1.0)])
        outcome = pair.call("apply_delta", [(9.5, 1.0), (-1.0, 1.0), (9.0, 1.0)], [(10.5, 1.0)], 3)
        assert outcome == ("BookDataError", "bad level price=-1.0 size=1.0")
        # applied up to the bad level, the asks untouched, the book flagged
        assert pair.writers[1].levels(pair.index[1]) == ([(10.0, 1.0), (9.5, 1.0)], [(11.0, 1.0)])
        assert pair.readers[1].read(pair.index[1]).state == SyncState.RESYNCING
    finally:
        pair.close()


def test_core_accepts_any_iterable_of_pairs_and_refuses_malformed_levels():
    pair = Pair()
    try:
        for w, i in zip(pair.writers, pair.index):  # fresh one-shot iterables for each core
            w.apply_snapshot(i, iter([[10, 1], (9.5, 2)]), ((11.0, 1.0),), 1)
            w.apply_delta(i, (lv for lv in [(9.0, 1.0)]), [], 2)
        pair.check()
        w, i = pair.writers[1], pair.index[1]
        with pytest.raises(ValueError, match="pair"):
            w.apply_delta(i, [(9.0, 1.0, 3.0)], [], 3)
        with pytest.raises(TypeError):
            w.apply_delta(i, [("9.0", 1.0)], [], 3)
        with pytest.raises(IndexError, match="not registered"):
            w.apply_delta(1, [], [], 3)
        assert w.levels(i) == ([(10.0, 1.0), (9.5, 2.0), (9.0, 1.0)], [(11.0, 1.0)])
    finally:
        pair.close()


def test_core_after_store_close_refuses_instead_of_touching_unmapped_memory():
    pair = Pair()
    w, i = pair.writers[1], pair.index[1]
    pair.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.apply_delta(i, [(1.0, 1.0)], [])


def test_make_writer_selects_explicitly_and_names_the_core():
    s = BookStore.create(f"t_{uuid.uuid4().hex[:12]}", capacity=1, depth=4)
    try:
        assert core.core_name(core.make_writer(s, "python")) == "python (reference)"
        assert core.core_name(core.make_writer(s, "compiled")) == "compiled"
        with pytest.raises(ValueError, match="books.core"):
            core.make_writer(s, "fast")
    finally:
        s.close()

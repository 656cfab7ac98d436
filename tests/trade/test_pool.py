"""The strategy worker pool with real spawned processes attached to a real
shared-memory BookStore: decisions read the newest book (a burst is
coalesced, not queued), a killed worker is restarted and its strategies keep
running, a slow strategy does not hold up the others, and a strategy that
keeps killing workers is quarantined."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal

import pytest

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.strategies.base import Intent, Place, Rules
from engine.trade.pool import PoolSettings, StrategyPool
from engine.trade.strategy import OwnState, StrategySpec, make_spec, register
from tests.support.eventually import eventually
from tests.trade.test_pool_strategies import Echo

RULES = Rules(Decimal("0.01"), Decimal("0.001"))
FAST = PoolSettings(workers=2, slow_strategy_s=0.3, hung_strategy_s=30.0, ack_timeout_s=0.5,
                    strategy_modules=("tests.trade.test_pool_strategies",))


class RecordingSink:
    """Stands where the slot manager stands: records what each strategy asked for."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: dict[str, list[tuple[float, Decimal]]] = {}  # sid -> (monotonic, bid)

    def attach(self, spec: StrategySpec) -> None:
        self.seen.setdefault(spec.strategy_id, [])

    def detach(self, strategy_id: str) -> None:
        pass

    def listen(self, listener: Callable[[str], None]) -> None:
        pass  # its strategies' state never changes

    def unlisten(self, listener: Callable[[str], None]) -> None:
        pass

    def handle(self, strategy_id: str, intents: Iterable[Intent]) -> list[str]:
        with self.lock:
            for intent in intents:
                assert isinstance(intent, Place)
                self.seen[strategy_id].append((time.monotonic(), intent.price))
        return []

    def snapshot(self, strategy_id: str) -> OwnState:
        return OwnState()

    def bids(self, sid: str) -> list[Decimal]:
        with self.lock:
            return [bid for _, bid in self.seen.get(sid, [])]


@pytest.fixture
def books() -> Iterator[tuple[BookStore, BookWriter]]:
    store = BookStore.create(f"test_pool_{uuid.uuid4().hex[:12]}", 16, 5)
    yield store, BookWriter(store)
    store.close()


@pytest.fixture
def run_pool(books) -> Iterator:
    pools: list[StrategyPool] = []

    def start(settings: PoolSettings = FAST) -> tuple[StrategyPool, RecordingSink]:
        sink = RecordingSink()
        pool = StrategyPool(books[0].name, sink, settings)
        pool.start()
        pools.append(pool)
        return pool, sink

    yield start
    for pool in pools:
        pool.stop(5.0)


def echo(pair: str, sid: str, **params: object) -> StrategySpec:
    return make_spec(sid, Echo.name, "binance", "spot", pair, params, RULES)


def set_bid(books: tuple[BookStore, BookWriter], pair: str, bid: float) -> None:
    store, writer = books
    index = store.register(f"binance:spot:{pair}")
    writer.apply_snapshot(index, [(bid, 1.0)], [(bid + 1000.0, 1.0)])


def test_pool_decides_on_the_newest_book_and_coalesces_a_burst(books, run_pool):
    pool, sink = run_pool()
    set_bid(books, "A/USDT", 1.0)
    pool.set_strategies([echo("A/USDT", "a", sleep_s=0.05)])
    eventually(lambda: sink.bids("a") == [Decimal("1.0")], timeout=30)
    for bid in range(2, 1002):  # 1000 versions while each decision takes 50 ms
        set_bid(books, "A/USDT", float(bid))
    eventually(lambda: sink.bids("a")[-1] == Decimal("1001.0"), timeout=10)
    seen = sink.bids("a")
    assert len(seen) < 100, f"{len(seen)} decisions for 1000 versions: not coalesced"
    assert seen == sorted(seen)  # never an older book after a newer one


def test_pool_killed_worker_is_restarted_and_its_strategies_keep_running(books, run_pool):
    pool, sink = run_pool()
    for pair in ("A/USDT", "B/USDT"):
        set_bid(books, pair, 1.0)
    pool.set_strategies([echo("A/USDT", "a"), echo("B/USDT", "b")])
    eventually(lambda: sink.bids("a") and sink.bids("b"), timeout=30)
    victim = pool.running()["a"]
    os.kill(pool.worker_pids()[victim], signal.SIGKILL)
    eventually(lambda: pool.restarts == 1, timeout=10)
    set_bid(books, "A/USDT", 2.0)
    set_bid(books, "B/USDT", 2.0)
    eventually(lambda: sink.bids("a")[-1] == 2 and sink.bids("b")[-1] == 2, timeout=30)
    assert all(p is not None for p in pool.worker_pids())
    assert next(h for h in pool.health() if h.component == "strategy-pool").ok


def test_pool_slow_strategy_does_not_delay_the_others(books, run_pool):
    pool, sink = run_pool()
    for pair in ("S/USDT", "F/USDT", "G/USDT"):
        set_bid(books, pair, 1.0)
    pool.set_strategies([echo("S/USDT", "slow", slow_at=2.0, slow_s=4.0),
                         echo("F/USDT", "fast1"), echo("G/USDT", "fast2")])
    eventually(lambda: all(sink.bids(s) for s in ("slow", "fast1", "fast2")), timeout=30)
    stuck_worker = pool.running()["slow"]
    set_bid(books, "S/USDT", 2.0)  # the slow strategy now sleeps 4 s inside decide()
    time.sleep(0.1)
    for bid in (2.0, 3.0, 4.0):
        written = time.monotonic()
        set_bid(books, "F/USDT", bid)
        set_bid(books, "G/USDT", bid)
        eventually(lambda b=bid: sink.bids("fast1")[-1] == b and sink.bids("fast2")[-1] == b,
                   timeout=3)
        assert time.monotonic() - written < 1.5  # not 4 s behind the slow one
    assert all(w != stuck_worker for s, w in pool.running().items() if s != "slow")
    assert any(h.component == "strategy:slow" and not h.ok for h in pool.health())
    eventually(lambda: sink.bids("slow")[-1] == 2, timeout=10)  # and it finishes in the end


def test_pool_strategy_that_keeps_killing_workers_is_quarantined(books, run_pool):
    pool, sink = run_pool(PoolSettings(workers=2, max_crashes=2, strategy_modules=(
        "tests.trade.test_pool_strategies",)))
    set_bid(books, "K/USDT", 1.0)
    set_bid(books, "OK/USDT", 1.0)
    pool.set_strategies([echo("K/USDT", "killer", crash_at=5.0), echo("OK/USDT", "fine")])
    eventually(lambda: sink.bids("killer") and sink.bids("fine"), timeout=30)
    set_bid(books, "K/USDT", 5.0)
    eventually(lambda: pool.restarts >= 2, timeout=30)
    eventually(lambda: "killer" in pool.status()["quarantined"], timeout=10)
    assert any(h.component == "strategy:killer" and not h.ok for h in pool.health())
    set_bid(books, "OK/USDT", 7.0)
    eventually(lambda: sink.bids("fine")[-1] == 7, timeout=30)  # the others run on


def test_pool_strategy_exception_shows_on_health_and_the_strategy_runs_on(books, run_pool):
    pool, sink = run_pool()
    set_bid(books, "R/USDT", 1.0)
    pool.set_strategies([echo("R/USDT", "r", raise_at=2.0)])
    eventually(lambda: sink.bids("r"), timeout=30)
    set_bid(books, "R/USDT", 2.0)
    eventually(lambda: any(h.component == "strategy:r" and "cursed" in h.reason
                           for h in pool.health()), timeout=10)
    set_bid(books, "R/USDT", 3.0)
    eventually(lambda: sink.bids("r")[-1] == 3, timeout=10)


def test_pool_removed_strategy_stops_deciding(books, run_pool):
    pool, sink = run_pool()
    set_bid(books, "A/USDT", 1.0)
    pool.set_strategies([echo("A/USDT", "a")])
    eventually(lambda: sink.bids("a"), timeout=30)
    pool.set_strategies([])
    assert pool.running() == {}
    time.sleep(0.2)
    set_bid(books, "A/USDT", 9.0)
    time.sleep(0.5)
    assert Decimal("9.0") not in sink.bids("a")


def test_register_refuses_a_taken_name():
    with pytest.raises(ValueError, match="taken"):
        register(type("Other", (Echo,), {"name": "grid"}))

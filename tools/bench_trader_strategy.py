"""Strategy-pool benchmark: book change to order on the wire, and slot reads.

Run: python tools/bench.py trader [--samples N] [--interval-ms MS] [--workers W]
     [--slots N]   (or python tools/bench_trader_strategy.py ...)

decision_to_wire: the local venue runs in its own process (as in
production); this process owns a shared-memory BookStore, a TraderService
(SQLite task DB), the slot manager and a pool of spawned strategy workers.
Every `interval-ms` the book's best bid moves one tick; a strategy in a
worker reads the new version, decides to open a grid slot at that bid (one
Place intent), the slot manager commits the slot, the executor commits the
intent and writes the order request to the venue's socket. The clock starts
when the book write is published and stops when the executor spends the order
token right before the request is written (Executor.on_wire), both on this
process's monotonic clock. Paced so no order waits for a rate token.

Metrics (target: decision_to_wire_p99_ms < 5, slot_access_us < 5):
  decision_to_wire_p50_ms / _p99_ms   the whole path above
  book_to_intent_p50_ms / _p99_ms     its first part: write -> intents at the router
  slot_access_us                      SlotManager.slot(strategy, slot) on N slots
  slot_commit_p50_ms                  one slot transition committed to SQLite
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from engine import config as config_mod
from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.limiter import RestLimiter
from engine.model import Side
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.store.taskdb import TaskDb
from engine.strategies.base import (
    Cancel,
    Intent,
    Place,
    SlotState,
    Strategy,
    View,
    money,
)
from engine.trade.actions import PlaceOrder
from engine.trade.instruments import Instruments
from engine.trade.orders import OrderStore
from engine.trade.pool import PoolSettings, StrategyPool
from engine.trade.positions import PositionBook
from engine.trade.service import TraderService
from engine.trade.settings import RiskConfig, TraderConfig
from engine.trade.slots import SlotManager
from engine.trade.slotstore import Slot
from engine.trade.sources import rules_from
from engine.trade.strategy import STRATEGIES, make_spec, register
from engine.venues import make_trading_driver

KEY_ENV, SECRET_ENV = "BENCH_STRATEGY_KEY", "BENCH_STRATEGY_SECRET"
KEY = "binance:spot:BTC/USDT"


@dataclass(frozen=True)
class _Params:
    size: Decimal = Decimal("0.001")


class BenchEcho(Strategy):
    """Opens one slot at the best bid of every new book version and cancels
    the oldest pending ones beyond ten, as a grid trailing a rising price does
    (so the state a worker is sent stays the size of a real grid's)."""

    name = "bench_echo"
    Params = _Params
    wake_s = 3600.0

    def __init__(self, params: _Params) -> None:
        super().__init__(params)
        self.last = 0.0

    def decide(self, view: View) -> Sequence[Intent]:
        book = view.book
        if book is None or not book.synced or book.best_bid == self.last:
            return []
        self.last = book.best_bid
        bid = money(book.best_bid)
        pending = sorted((s for s in view.slots if s.state == SlotState.PENDING
                          and s.client_order_id and not s.closing), key=lambda s: s.entry_price)
        return [Place(Side.BUY, bid, self.params.size, exit_price=bid * 2)] + \
            [Cancel(s.client_order_id) for s in pending[:max(0, len(pending) - 10)]]


if STRATEGIES.get(BenchEcho.name) is None:
    register(BenchEcho)


def row(metric: str, value: float, unit: str) -> dict:
    return {"bench": "trader", "metric": metric, "value": round(value, 4), "unit": unit}


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def _venue_process(data_dir: str, urls: mp.Queue, stop: mp.Event) -> None:  # type: ignore[valid-type]
    account = account_config("bench", {"USDT": "100000000", "BTC": "10"})
    venue = LocalVenue(venue_config(accounts=[account], market="none"), Path(data_dir),
                       limits=Limits(orders_per_10s=100_000, orders_per_day=10_000_000))
    venue.start()
    urls.put((venue.rest_url, venue.ws_url))
    stop.wait()
    venue.stop()


def decision_to_wire(tmp: Path, samples: int, interval_s: float, workers: int
                     ) -> Iterator[dict]:
    context = mp.get_context("spawn")
    urls: mp.Queue = context.Queue()
    stop = context.Event()
    venue = context.Process(target=_venue_process, args=(str(tmp / "venue"), urls, stop),
                            daemon=True)
    venue.start()
    rest, ws = urls.get(timeout=60)
    os.environ[KEY_ENV], os.environ[SECRET_ENV] = "bench-key", "bench-secret"
    config = config_mod.parse({
        "daemon": {"data_dir": str(tmp / "trader"), "id": "bench"},
        "exchanges": {"binance": {"spot": {"rest": rest, "ws": ws}, "api_key_env": KEY_ENV,
                                  "api_secret_env": SECRET_ENV}}})
    settings = TraderConfig(orders_per_s=1000.0, order_burst=100, venues=("binance",),
                            pairs=("binance:BTC/USDT",),
                            risk=RiskConfig(max_open_orders=samples + 100,
                                            max_order_notional="", error_burst=1000))
    store = BookStore.create(f"bench_strategy_{uuid.uuid4().hex[:8]}", 4, 20)
    writer = BookWriter(store)
    reader = BookReader(store)
    index = store.register(KEY)
    started: list = []
    try:
        trader = TraderService(config, "bench", lambda v, m, w: RestLimiter(w, 60.0, fraction=1.0),
                               make_trading_driver, books=lambda: reader, settings=settings)
        trader.start()
        started.append(trader)
        slots = SlotManager(TaskDb.from_config(config), trader.store, trader.positions,
                            trader.instruments, lambda: trader.executor)
        slots.start()
        started.append(slots)
        pool = StrategyPool(store.name, slots, PoolSettings(
            workers=workers, strategy_modules=("bench_trader_strategy",)))
        pool.start()
        started.append(pool)
        written: dict[Decimal, float] = {}
        routed: list[float] = []
        wired: list[float] = []
        assert trader.executor is not None

        def on_intents(sid: str, recv_ns: int, intents: list) -> None:
            now = time.monotonic()
            for intent in intents:
                price = getattr(intent, "price", None)
                if isinstance(intent, Place) and price in written:
                    routed.append(now - written[price])

        def on_wire(action: object, mono: float) -> None:
            price = getattr(action, "price", None)
            if isinstance(action, PlaceOrder) and price in written:
                wired.append(mono - written[price])

        pool.on_intents = on_intents
        trader.executor.on_wire = on_wire
        bid = 20000.0
        writer.apply_snapshot(index, [(bid, 1.0)], [(bid + 5000, 1.0)], recv_ns=time.time_ns())
        pool.set_strategies([make_spec("bench", BenchEcho.name, "binance", "spot", "BTC/USDT",
                                       {}, rules_from(trader)("binance", "BTC/USDT"))])
        time.sleep(2.0)  # workers warm: the first decisions import and build
        written.clear()
        for _ in range(samples):
            bid = round(bid + 0.01, 2)
            written[money(bid)] = time.monotonic()
            writer.apply_snapshot(index, [(bid, 1.0)], [(bid + 5000, 1.0)],
                                  recv_ns=time.time_ns())
            time.sleep(interval_s)
        deadline = time.monotonic() + 30
        while len(wired) < samples and time.monotonic() < deadline:
            time.sleep(0.05)
        yield row("decision_to_wire_p50_ms", pct(wired, 0.5) * 1000, "ms")
        yield row("decision_to_wire_p99_ms", pct(wired, 0.99) * 1000, "ms")
        yield row("book_to_intent_p50_ms", pct(routed, 0.5) * 1000, "ms")
        yield row("book_to_intent_p99_ms", pct(routed, 0.99) * 1000, "ms")
        yield row("decision_to_wire_samples", len(wired), "orders")
    finally:
        for component in reversed(started):
            component.stop(5.0)
        store.close()
        stop.set()
        venue.join(10)


def slot_access(tmp: Path, count: int) -> Iterator[dict]:
    config = config_mod.parse({"daemon": {"data_dir": str(tmp / "slots")}})
    db = TaskDb.from_config(config)
    # Only slot reads and commits are timed: no executor, no orders, no positions.
    slots = SlotManager(db, OrderStore(db, "bench"), PositionBook(), Instruments(), lambda: None)
    slots.store.ensure_schema()
    commits: list[float] = []
    for i in range(count):
        slot = Slot("s1", i, "binance", "BTC/USDT", updated_ms=1,
                    entry_price=Decimal(20000 + i), quantity=Decimal("0.001"))
        begin = time.perf_counter()
        with slots.db.transaction():
            slots.store.write(slot, insert=True)
        commits.append(time.perf_counter() - begin)
    rules = rules_stub()
    slots.attach(make_spec("s1", "grid", "binance", "spot", "BTC/USDT",
                           {"order_size": "0.001", "interval": "1"}, rules))
    ids = [random.randrange(count) for _ in range(100_000)]
    lookup = slots.slot
    begin = time.perf_counter()
    for slot_id in ids:
        lookup("s1", slot_id)
    elapsed = time.perf_counter() - begin
    yield row("slot_access_us", elapsed / len(ids) * 1e6, "us")
    yield row("slot_commit_p50_ms", pct(commits, 0.5) * 1000, "ms")
    slots.store.close()


def rules_stub():  # a Rules value
    from engine.strategies.base import Rules

    return replace(Rules(Decimal("0.01"), Decimal("0.00001")), min_notional=Decimal("5"))


def run(args: list[str]) -> Iterator[dict]:
    parser = argparse.ArgumentParser(prog="bench.py trader (strategy pool)")
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--slots", type=int, default=1000)
    options, _ = parser.parse_known_args(args)  # bench.py passes one list to both trader benches
    with tempfile.TemporaryDirectory(prefix="bench_strategy_") as tmp:
        yield from slot_access(Path(tmp), options.slots)
        yield from decision_to_wire(Path(tmp), options.samples, options.interval_ms / 1000,
                                    options.workers)


if __name__ == "__main__":
    import orjson

    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

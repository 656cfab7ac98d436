"""The grid end to end with no internet: the local venue's synthetic market,
the daemon's real Binance feed keeping a shared-memory book, spawned strategy
workers running the grid on it, the slot manager and the real executor
trading on the venue over its wire. At least 20 full cycles complete, and
the realized PnL the slots booked equals sell - buy - fees computed from the
venue's own trade list for those cycles.

``Stack`` is the trader role exactly as the proposed app wiring builds it
(docs/strategies.md "Wiring"), so test_grid_crash.py runs it in a child
process it can SIGKILL. The `--role both --demo` tests at the bottom drive
run.py itself through the wiring in engine/app.py."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import requests

from engine import config as config_mod
from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config_storage import TaskDbConfig
from engine.feed.limiter import RestLimiter
from engine.feed.service import FeedService
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.store.taskdb import TaskDb
from engine.trade.pool import PoolSettings, StrategyPool
from engine.trade.service import TraderService
from engine.trade.settings import RiskConfig, TraderConfig
from engine.trade.slots import SlotManager
from engine.trade.sources import ConfiguredStrategy, StrategySource, rules_from
from engine.venues import make_trading_driver
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV, SECRET_ENV = "ENGINE_TEST_GRID_KEY", "ENGINE_TEST_GRID_SECRET"
# 0.01 BTC at ~30000, levels $30 apart: a cycle earns ~0.1% gross against
# 0.01% maker fees. The buyer's fee is paid in BTC and is not a whole lot, so
# every cycle leaves dust that is carried (at cost) into the slot's next one.
# The synthetic walk has no mean reversion: room for 100 levels of inventory
# keeps the grid cycling on the bounces of a drifting price.
GRID = {"order_size": "0.01", "interval": "30", "window": 4, "max_inventory": "1",
        "rearm_s": 1.0, "idle_alert_s": 600}
SETTINGS = TraderConfig(venues=("binance",), pairs=("binance:BTC/USDT",), request_timeout_s=2.0,
                        risk=RiskConfig(error_burst=1000, max_order_notional="",
                                        max_open_orders=1000))


def synthetic_venue(data_dir: Path, port: int = 0) -> LocalVenue:
    alice = dataclasses.replace(account_config("alice"), maker_fee="0.0001", taker_fee="0.0005")
    venue = LocalVenue(venue_config(market="synthetic", tick_ms=50, volatility_bps=4.0, levels=10,
                                    port=port, seed=7, accounts=[alice, account_config("bob")]),
                       data_dir)
    venue.start()
    return venue


class Stack:
    """books ─► feed ─► TraderService ─► SlotManager ─► StrategyPool ─► StrategySource,
    stopped in reverse (the proposed trader-role wiring, minus HTTP)."""

    def __init__(self, data_dir: Path, rest: str, ws: str, params: dict[str, Any] | None = None,
                 workers: int = 2, daemon_id: str = "grid-e2e",
                 trade_at: Any = None, transport: str = "ws_api") -> None:
        """``trade_at``: a PaperVenue the trader trades on while the feed reads
        ``rest``/``ws`` (paper mode); None: the trader trades there too."""
        os.environ.setdefault(KEY_ENV, "alice-key")
        os.environ.setdefault(SECRET_ENV, "alice-secret")
        self.config = config_mod.parse({
            "daemon": {"data_dir": str(data_dir), "id": daemon_id},
            "books": {"capacity": 8, "depth": 20},
            "exchanges": {"binance": {"spot": {"rest": rest, "ws": ws},
                                      "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}},
            "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT",
                                        "depth": 20}]}})
        self.trading = self.config
        self.trade_at = trade_at
        self.transport = transport
        if trade_at is not None:
            os.environ["ENGINE_TEST_PAPER_KEY"] = trade_at.api_key
            os.environ["ENGINE_TEST_PAPER_SECRET"] = trade_at.api_secret
            binance = dataclasses.replace(
                self.config.exchanges["binance"], api_key_env="ENGINE_TEST_PAPER_KEY",
                api_secret_env="ENGINE_TEST_PAPER_SECRET",
                spot=config_mod.EndpointConfig(trade_at.url, trade_at.ws))
            self.trading = dataclasses.replace(self.config, exchanges={"binance": binance})
        self.params = params if params is not None else GRID
        self.workers = workers
        self.daemon_id = daemon_id
        self.started: list[Any] = []

    def start(self) -> Stack:
        segment = f"grid_e2e_{uuid.uuid4().hex[:10]}"
        self.books = BookStore.create(segment, 8, 20)
        self.started.append(_Closer(self.books))
        reader, writer = BookReader(self.books), BookWriter(self.books)
        on_event = None
        if self.trade_at is not None:
            self.trade_at.books = lambda: reader
            on_event = self.trade_at.on_event
        self.feed = self._start(FeedService(self.config, lambda: writer, on_event=on_event))
        if self.trade_at is not None:
            self._start(self.trade_at)
        self.trader = TraderService(
            self.trading, self.daemon_id,
            lambda venue, market, weight: RestLimiter(weight, 60.0, fraction=1.0),
            make_trading_driver, books=lambda: reader, settings=dataclasses.replace(SETTINGS, order_transport=self.transport),
            slots_for=lambda venue: self.slots.slots_for(venue))  # asked at its start
        self.slots = SlotManager(TaskDb.from_config(self.config), self.trader.store,
                                 self.trader.positions, self.trader.instruments,
                                 lambda: self.trader.executor)
        self._start(self.trader)
        self._start(self.slots)
        self.pool = StrategyPool(segment, self.slots, PoolSettings(workers=self.workers))
        self._start(self.pool)
        strategies = [ConfiguredStrategy("grid1", "grid", "binance", "spot", "BTC/USDT",
                                         self.params)] if self.params else []
        self.source = self._start(StrategySource(strategies, self.pool.set_strategies,
                                                 rules_from(self.trader), self.daemon_id))
        return self

    def _start(self, component: Any) -> Any:
        component.start()
        self.started.append(component)
        return component

    def drain(self, timeout_s: float = 10.0) -> bool:
        """A graceful end of trading: no new decisions (the strategy source and
        the pool stop), while the slots stay attached so the outcome of every
        order still in flight is booked into its slot; then wait until the
        executor is idle. (``pool.set_strategies([])`` would detach the slots:
        a detached strategy's slots are hands-off, so an answer that lands
        after it leaves its slot pointing at a dead order until the next
        attach.) True if the executor went idle within ``timeout_s``."""
        for component in (self.source, self.pool):
            component.stop(5.0)
            self.started.remove(component)
        deadline = time.monotonic() + timeout_s
        while not self.trader.executor.idle():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self) -> None:
        for component in reversed(self.started):
            component.stop(5.0)
        self.started.clear()


class _Closer:
    def __init__(self, store: BookStore) -> None:
        self.store = store

    def stop(self, timeout_s: float) -> None:
        self.store.close()


def cycle_pnl_from_venue(db: TaskDb, client: BinanceClient) -> tuple[D, D, D, int]:
    """(booked profit, sell - buy - fees of the booked cycles' trades as the
    venue lists them, dust carried out of the last cycles at cost, cycles)."""
    trades = {}
    from_id = 0
    while True:
        page = client.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT", limit=1000,
                             fromId=from_id).json()
        trades.update({(str(t["id"]), "buy" if t["isBuyer"] else "sell"): t for t in page})
        if len(page) < 1000:
            break
        from_id = max(int(t["id"]) for t in page) + 1
    booked = {(s, slot): n for s, slot, n in db.query(
        "SELECT STRATEGY_ID, SLOT_ID, MAX(CYCLE) FROM TRADER_SLOT_CYCLES GROUP BY STRATEGY_ID, "
        "SLOT_ID")}
    venue_pnl = D(0)
    for trade_id, side, sid, slot, cycle in db.query(
            "SELECT TRADE_ID, SIDE, STRATEGY_ID, SLOT_ID, CYCLE FROM TRADER_SLOT_FILLS"):
        if cycle > booked.get((sid, slot), 0):
            continue  # a cycle still running
        t = trades[(trade_id, side)]
        notional = D(t["price"]) * D(t["qty"])
        quote_fee = D(t["commission"]) if t["commissionAsset"] == "USDT" else D(0)
        venue_pnl += (notional if side == "sell" else -notional) - quote_fee
    profit = sum((D(p) for (p,) in db.query("SELECT PROFIT FROM TRADER_SLOT_CYCLES")), D(0))
    carried = sum((D(c) for (c,) in db.query(
        "SELECT CARRY_COST FROM TRADER_SLOT_CYCLES c WHERE CYCLE = (SELECT MAX(CYCLE) FROM "
        "TRADER_SLOT_CYCLES d WHERE d.STRATEGY_ID = c.STRATEGY_ID AND d.SLOT_ID = c.SLOT_ID)")),
        D(0))
    cycles = db.query("SELECT COUNT(*) FROM TRADER_SLOT_CYCLES")[0][0]
    return profit, venue_pnl, carried, int(cycles)


def test_grid_e2e_twenty_cycles_and_booked_pnl_equals_the_venue_trade_list(tmp_path: Path):
    venue = synthetic_venue(tmp_path / "venue")
    stack = Stack(tmp_path / "trader", venue.rest_url, venue.ws_url)
    try:
        stack.start()
        try:
            eventually(lambda: stack.slots.cycles_booked >= 20, timeout=300, interval=0.5)
        except AssertionError:
            raise AssertionError(f"fewer than 20 cycles: {stack.slots.status()} "
                                 f"{stack.pool.status()} {stack.trader.status()}") from None
        stack.pool.set_strategies([])  # no new decisions; what is booked stays booked
        eventually(stack.trader.executor.idle, timeout=10)
        health = {h.component: h for h in stack.slots.health()}
        assert all(h.ok for h in health.values()), health
        assert stack.pool.status()["decisions_routed"] > 0
    finally:
        stack.stop()
    db = TaskDb.from_config(stack.config)
    client = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    profit, venue_pnl, carried, cycles = cycle_pnl_from_venue(db, client)
    venue.stop()
    assert cycles >= 20
    # Over the booked cycles: what the venue says we received, minus what we
    # paid, minus fees, is the booked profit less the dust (base below one
    # lot) still held at its cost: that is carried into each slot's next
    # cycle, not booked as a loss.
    assert venue_pnl == profit - carried, (profit, venue_pnl, carried)
    assert profit > 0


# --------------------------------------------------- the role through run.py


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_daemon(tmp_path: Path, http_port: int) -> subprocess.Popen:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "daemon": {"data_dir": str(tmp_path / "data"), "id": "demo-e2e"},
        "http": {"port": http_port},
        "storage": {"history": {"backend": "none"}},
        "exchanges": {"binance": {}},
        "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT", "depth": 20}]},
        "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "binance",
                                   "pair": "BTC/USDT", "params": GRID}]}}))
    log = (tmp_path / "daemon.log").open("wb")
    return subprocess.Popen([sys.executable, "run.py", "--role", "both", "--demo", "--config",
                             str(config)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def test_role_both_demo_completes_twenty_grid_cycles_with_pnl_from_the_venue(tmp_path: Path):
    port = free_port()
    daemon = demo_daemon(tmp_path, port)
    try:
        def cycles() -> int:
            if daemon.poll() is not None:
                raise RuntimeError(f"daemon exited {daemon.returncode}: "
                                   f"{(tmp_path / 'daemon.log').read_text()[-2000:]}")
            status = requests.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
            if "strategy-pool" in status.get("not_built_yet", []):
                raise RuntimeError("the trader role is not wired in engine/app.py")
            return sum(s["cycles"] for s in status["components"]["slots"].values())
        eventually(lambda: cycles() >= 20, timeout=300, interval=1.0,
                   ignoring=(AssertionError, OSError, KeyError, ValueError))
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]
    # The venue's own trade list, from the state the demo venue saved.
    venue = LocalVenue(venue_config(market="none", accounts=[account_config("demo")]),
                       tmp_path / "data")
    venue.start()
    try:
        profit, venue_pnl, carried, count = cycle_pnl_from_venue(
            TaskDb(TaskDbConfig(), tmp_path / "data"),
            BinanceClient(venue.rest_url, "demo-key", "demo-secret"))
    finally:
        venue.stop()
    assert count >= 20 and venue_pnl == profit - carried

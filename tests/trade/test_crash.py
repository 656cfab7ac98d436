"""Crash safety with a real trader process killed by SIGKILL: mid-send (the
venue accepted an order whose answer never came; a request still in flight)
and mid-fill, with orders over REST and over the WebSocket API. After a
restart and a replay of the same intents there is no duplicate order and no
orphan order, and every fill is recorded once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.model import Side
from engine.trade.actions import ActionResult
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.fault_proxy import (
    FORWARD_THEN_HANG,
    HOLD_THEN_FORWARD,
    NEW_ORDER_CALLS,
    Fault,
    FaultProxy,
)
from tests.trade.rig import Orders, open_orders, venue_orders

ROOT = Path(__file__).resolve().parents[2]
GRID = 10


def nth_new_order(n: int) -> Callable[[str, str], bool]:
    seen = [0]

    def match(method: str, path: str) -> bool:
        if (method, path) in NEW_ORDER_CALLS:
            seen[0] += 1
            return seen[0] == n
        return False
    return match


@pytest.fixture
def spawn(tmp_path: Path, proxy: FaultProxy,
          transport: str) -> Iterator[Callable[[], subprocess.Popen]]:
    children: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(tmp_path / f"child{len(children)}.log", "wb")  # noqa: SIM115 - closed by the OS
        child = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/trade/crash_child.py"), str(tmp_path / "trader"),
             proxy.url, proxy.ws_url, str(GRID), transport], stdout=subprocess.PIPE, stderr=log,
            cwd=ROOT,
            env=os.environ.copy())
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"READY", (tmp_path / "child0.log").read_text()
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(10)


def kill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)


def replay_and_check(trader: TraderService, alice: BinanceClient) -> None:
    """The strategy replays its intents (same ids); the venue must end with
    exactly one order per id, and every open order of ours known to the DB."""
    results: list[ActionResult] = []
    trader.executor.on_result(results.append)
    orders = Orders()
    trader.executor.submit_many([orders.place(Side.BUY, str(29000 - i), "0.01")
                                 for i in range(GRID)])
    eventually(lambda: len(results) == GRID, timeout=30)
    eventually(trader.executor.idle)
    ids = [o["clientOrderId"] for o in venue_orders(alice)]
    assert len(ids) == GRID and len(set(ids)) == GRID, ids
    open_ids = {o["clientOrderId"] for o in open_orders(alice)}
    live_ids = {r.client_order_id for r in trader.store.live_orders("binance")}
    assert open_ids == live_ids  # no orphan, nothing the DB thinks live that is gone


def test_sigkill_while_an_accepted_order_awaits_its_answer(
        spawn: Callable[[], subprocess.Popen], proxy: FaultProxy, alice: BinanceClient,
        start_trader: Callable[..., TraderService], transport: str) -> None:
    proxy.add(Fault(nth_new_order(5), FORWARD_THEN_HANG, delay_s=60))
    child = spawn()
    # Nothing about order 5 reaches the child, so it stays an intent: over REST
    # its answer never comes and the streams are held; over the WebSocket API
    # the fault stalls that socket right after order 5 (answers and pushes).
    if transport == "rest":
        proxy.hold_streams(True)
    eventually(lambda: len(venue_orders(alice)) == 5, timeout=20)
    eventually(lambda: proxy.count_any(NEW_ORDER_CALLS) == 5)
    kill(child)
    trader = start_trader(direct=True)
    kinds = sorted(d.kind for d in trader.reports["binance"].differences)
    assert trader.reports["binance"].ok and kinds == ["adopted"], trader.reports["binance"].text()
    replay_and_check(trader, alice)


def test_sigkill_while_a_request_is_still_on_its_way(
        spawn: Callable[[], subprocess.Popen], proxy: FaultProxy, alice: BinanceClient,
        start_trader: Callable[..., TraderService]) -> None:
    """Killed while order 3 is held in the network; it reaches the venue after
    the restart began. Reconcile waits out recvWindow before deciding."""
    proxy.add(Fault(nth_new_order(3), HOLD_THEN_FORWARD, delay_s=2.0))
    child = spawn()
    eventually(lambda: proxy.count_any(NEW_ORDER_CALLS) == 3, timeout=20)
    kill(child)
    trader = start_trader(direct=True)
    report = trader.reports["binance"]
    assert report.ok and [d.kind for d in report.differences] == ["adopted"], report.text()
    replay_and_check(trader, alice)


def test_sigkill_mid_fill_loses_no_fill_and_counts_none_twice(
        spawn: Callable[[], subprocess.Popen], alice: BinanceClient, bob: BinanceClient,
        start_trader: Callable[..., TraderService], tmp_path: Path) -> None:
    child = spawn()
    assert child.stdout is not None and child.stdout.readline().strip() == b"SUBMITTED"
    eventually(lambda: len(open_orders(alice)) == GRID, timeout=20)
    bob.order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.03")
    import sqlite3  # read the child's DB while it runs

    db_path = tmp_path / "trader" / "tasks.sqlite"
    eventually(lambda: sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM TRADER_FILLS").fetchone()[0] == 3, timeout=20)
    bob.order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.03")
    kill(child)  # the second batch of fills is in flight
    trader = start_trader(direct=True)
    assert trader.reports["binance"].ok, trader.reports["binance"].text()
    venue_trades = alice.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()
    assert len(venue_trades) == 6
    assert trader.db.query("SELECT COUNT(*) FROM TRADER_FILLS") == [(6,)]
    states = sorted(r[0] for r in trader.db.query("SELECT STATE FROM TRADER_ORDERS"))
    assert states == ["filled"] * 6 + ["open"] * 4
    from decimal import Decimal

    assert trader.positions.position("binance", "BTC/USDT").quantity == Decimal("0.05994")
    replay_and_check(trader, alice)

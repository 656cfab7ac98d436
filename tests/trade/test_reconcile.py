"""Reconciliation at start against the local venue: catch-up is corrected
silently, small drift is corrected and logged, large drift halts with a
report, orders that are not ours are never touched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from engine.model import Side
from engine.store.migrations import migrate
from engine.store.taskdb import TaskDb
from engine.trade.orders import OrderStore
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.store.test_taskdb_fixtures import open_db, sqlite_config
from tests.trade.rig import Orders, open_orders, write_config
from tests.trade.test_userstream import place_all


def cancel_by_hand(client: BinanceClient, client_order_id: str) -> None:
    reply = client.signed("DELETE", "/api/v3/order", symbol="BTCUSDT",
                          origClientOrderId=client_order_id)
    assert reply.status_code == 200, reply.text


def test_catch_up_after_downtime_is_corrected_without_halting(
        start_trader: Callable[..., TraderService], alice: BinanceClient,
        bob: BinanceClient) -> None:
    trader = start_trader()
    orders = Orders()
    grid = [orders.place(Side.BUY, str(29000 - i), "0.01") for i in range(10)]
    place_all(trader, grid)
    trader.stop(3.0)
    bob.order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.03")  # 3 fills, away
    alice.limit("BUY", "0.01", "20000", newClientOrderId="manual-1")  # a human's order
    again = start_trader()
    report = again.reports["binance"]
    assert report.ok and not report.drift, report.text()
    assert report.foreign_open == 1 and report.fills_added == 3
    assert sorted(d.kind for d in report.differences) == ["filled_while_away"] * 3
    assert again.store.live_count("binance") == 7
    assert "manual-1" in [o["clientOrderId"] for o in open_orders(alice)]  # left alone
    assert not again.risk.breaker.active().get("binance/reconcile")


def test_small_drift_is_corrected_and_logged(start_trader: Callable[..., TraderService],
                                             alice: BinanceClient) -> None:
    trader = start_trader()
    orders = Orders()
    grid = [orders.place(Side.BUY, str(29000 - i), "0.01") for i in range(50)]
    place_all(trader, grid)
    trader.stop(3.0)
    cancel_by_hand(alice, grid[0].client_order_id)  # canceled behind our back: drift
    alice.limit("BUY", "0.01", "20000", newClientOrderId="Et1-zz-0")  # our id, no intent
    again = start_trader()
    report = again.reports["binance"]
    assert report.ok, report.text()
    assert sorted(d.kind for d in report.drift) == ["canceled_elsewhere", "orphan"]
    assert again.store.get("binance", grid[0].client_order_id).state == "canceled"
    assert "Et1-zz-0" not in [o["clientOrderId"] for o in open_orders(alice)]  # orphan canceled
    assert again.risk.check_place(orders.place(Side.BUY, "100")) is None


def test_a_cancel_in_flight_at_a_kill_is_ours_not_drift(start_trader: Callable[..., TraderService],
                                                         alice: BinanceClient) -> None:
    """The dispatcher commits a cancel before sending it; the venue cancels, and
    the process dies before the answer is recorded. On restart that order is
    known as canceled at our request: caught up, not drift, no halt."""
    trader = start_trader()
    orders = Orders()
    grid = [orders.place(Side.BUY, str(29000 - i), "0.01") for i in range(10)]
    place_all(trader, grid)
    trader.stop(3.0)
    mine, theirs = grid[0].client_order_id, grid[1].client_order_id
    trader.store.note_cancel("binance", mine)  # what dispatch.cancel commits first
    cancel_by_hand(alice, mine)  # the request landed; its answer was never recorded
    cancel_by_hand(alice, theirs)  # and one canceled by someone else: still drift
    again = start_trader()
    report = again.reports["binance"]
    kinds = sorted(d.kind for d in report.differences)
    assert kinds == ["canceled_by_us", "canceled_elsewhere"], report.text()
    assert [d.kind for d in report.drift] == ["canceled_elsewhere"]
    assert again.store.get("binance", mine).state == "canceled"


def test_large_drift_halts_with_a_clear_report(start_trader: Callable[..., TraderService],
                                               alice: BinanceClient) -> None:
    trader = start_trader()
    orders = Orders()
    grid = [orders.place(Side.BUY, str(29000 - i), "0.01") for i in range(10)]
    place_all(trader, grid)
    trader.stop(3.0)
    for order in grid[:3]:
        cancel_by_hand(alice, order.client_order_id)
    again = start_trader()
    report = again.reports["binance"]
    assert not report.ok and len(report.drift) == 3
    text = report.text()
    assert "HALT" in text and "30.0%" in text and grid[0].client_order_id in text
    reason = again.risk.check_place(orders.place(Side.BUY, "100"))
    assert reason is not None and "reconcile" in reason
    health = {h.component: h for h in again.health()}
    assert not health["risk"].ok and "reconcile" in health["risk"].reason


def test_intent_never_sent_before_a_crash_is_marked_absent(
        start_trader: Callable[..., TraderService], tmp_path: Path,
        alice: BinanceClient) -> None:
    db = open_db(sqlite_config(tmp_path / "trader"))
    migrate(db)
    order = Orders().place(Side.BUY, "29000")
    OrderStore(db).record_intent(order, sent_ms=1)  # the crash came before the send
    db.close()
    trader = start_trader()
    report = trader.reports["binance"]
    assert report.ok and [d.kind for d in report.differences] == ["never_sent"]
    assert trader.store.get("binance", order.client_order_id).state == "absent"
    assert open_orders(alice) == []


def test_reconcile_tool_prints_the_report_without_changing_anything(
        start_trader: Callable[..., TraderService], alice: BinanceClient, tmp_path: Path) -> None:
    import subprocess
    import sys

    trader = start_trader(direct=True)
    orders = Orders()
    grid = [orders.place(Side.BUY, str(29000 - i), "0.01") for i in range(4)]
    place_all(trader, grid)
    trader.stop(3.0)
    cancel_by_hand(alice, grid[0].client_order_id)
    config_path = tmp_path / "trader.yaml"
    endpoints = trader.sessions["binance"].driver.endpoints
    write_config(config_path, tmp_path / "trader", endpoints.rest, endpoints.ws)
    done = subprocess.run([sys.executable, "tools/reconcile.py", "--config", str(config_path)],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 3, done.stderr
    assert "HALT" in done.stdout and "canceled_elsewhere" in done.stdout
    db = TaskDb(sqlite_config(tmp_path / "trader").storage.tasks, tmp_path / "trader")
    state = db.query("SELECT STATE FROM TRADER_ORDERS WHERE CLIENT_ORDER_ID = ?",
                     (grid[0].client_order_id,))
    assert state == [("open",)]  # a dry run: the DB is untouched

"""The trader service end to end against the local venue: the halt switch
(cancels ours, leaves others', refuses new orders, survives a restart), the
admin key check, the paper-trading guard, and the same flow on MariaDB."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from engine.model import Side
from engine.trade.actions import ActionResult, Outcome
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.store.test_taskdb_fixtures import mysql_config, open_db, scratch_database
from tests.support.eventually import eventually
from tests.trade.rig import Orders, make_service, open_orders, trader_config
from tests.trade.test_userstream import place_all


def test_halt_cancels_ours_only_refuses_new_orders_and_survives_a_restart(
        start_trader: Callable[..., TraderService], alice: BinanceClient) -> None:
    trader = start_trader()
    orders = Orders()
    place_all(trader, [orders.place(Side.BUY, str(29000 - i)) for i in range(3)])
    alice.limit("BUY", "0.01", "20000", newClientOrderId="manual-1")
    answer = trader.halt("operator pressed the button")
    assert answer["cancels_queued"] == 3
    eventually(lambda: [o["clientOrderId"] for o in open_orders(alice)] == ["manual-1"])
    eventually(lambda: trader.store.live_count("binance") == 0)
    results: list[ActionResult] = []
    trader.executor.on_result(results.append)
    trader.executor.submit(orders.place(Side.BUY, "28000"))
    result = eventually(lambda: results and results[0])
    assert result.outcome == Outcome.REJECTED and "operator pressed the button" in result.reason
    health = {h.component: h for h in trader.health()}
    assert not health["risk"].ok and "halted" in health["risk"].reason
    trader.stop(3.0)
    again = start_trader()
    assert again.risk.halted  # a halt is not undone by a restart
    again.resume()
    assert not again.risk.halted and again.store.flags() == {}


def test_admin_key_comes_from_the_environment(start_trader: Callable[..., TraderService],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    trader = start_trader()
    assert trader.authorized("let-me-halt") and not trader.authorized("guess")
    monkeypatch.delenv("ENGINE_TEST_ADMIN_KEY")
    assert not trader.authorized("") and not trader.authorized("let-me-halt")


def test_paper_mode_refuses_the_live_endpoints(tmp_path: Path) -> None:
    config = trader_config(tmp_path, "", "")
    service = make_service(config)
    with pytest.raises(ValueError, match="paper is true"):
        service.start()
    service.stop(1.0)


def test_status_reports_executor_positions_streams_and_reconcile(
        start_trader: Callable[..., TraderService]) -> None:
    trader = start_trader()
    status = trader.status()
    assert set(status) >= {"executor", "risk", "positions", "user_streams", "reconcile"}
    assert "OK" in status["reconcile"]["binance"]
    assert status["user_streams"]["userstream:binance"]["connected"]


def test_trader_on_mariadb_keeps_its_orders_across_a_restart(
        mariadb, tmp_path: Path, start_trader: Callable[..., TraderService],
        alice: BinanceClient) -> None:
    database = scratch_database(mariadb)
    config = mysql_config(mariadb, database, tmp_path)
    trader = start_trader(db=open_db(config, mariadb))
    orders = Orders()
    grid = [orders.place(Side.BUY, str(29000 - i)) for i in range(3)]
    place_all(trader, grid)
    trader.stop(3.0)
    again = start_trader(db=open_db(config, mariadb))
    assert again.reports["binance"].ok and not again.reports["binance"].differences
    assert {r.client_order_id for r in again.store.live_orders()} == \
        {o.client_order_id for o in grid}

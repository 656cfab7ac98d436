"""The trader on a Binance USD-M account, against the local venue's USD-M
dialect over its real wire: GTX post-only refusals (-5022) and the fallback,
reduce-only, one-way and hedge position modes, leverage set at start, positions
as the venue reports them, funding paid into PnL (durable), a position that
the fills do not explain (reconcile trips the breaker), and a liquidation the
trader sees, records and reports."""

from __future__ import annotations

import dataclasses
import os
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.model import Side
from engine.model_trade import PositionSide
from engine.sim.server import LocalVenue
from engine.store.taskdb import TaskDb
from engine.trade.actions import ActionResult, Outcome
from engine.trade.service import TraderService
from tests.support.eventually import eventually
from tests.trade.futures_rig import (
    FUTURES,
    PAIR,
    VENUE,
    WS_API,
    PerpMarket,
    client,
    place,
    signed,
    start_venue,
    trader_config,
    venue_funding,
    venue_position,
)
from tests.trade.rig import KEY_ENV, SECRET_ENV, make_service


@pytest.fixture
def venue(tmp_path: Path):
    v = start_venue(tmp_path / "venue")
    yield v
    v.stop()


def trader(venue: LocalVenue, data_dir: Path, settings: Any = FUTURES, **futures: Any
           ) -> TraderService:
    alice = venue.config.accounts[0]
    os.environ[KEY_ENV], os.environ[SECRET_ENV] = alice.api_key, alice.api_secret
    assert venue.usdm is not None
    config = trader_config(data_dir, venue.usdm.url, venue.usdm.ws_url)
    if futures:
        settings = dataclasses.replace(settings, futures=dataclasses.replace(
            settings.futures, **futures))
    service = make_service(config, settings)
    service.start()
    return service


def results_of(service: TraderService) -> list[ActionResult]:
    out: list[ActionResult] = []
    assert service.executor is not None
    service.executor.on_result(out.append)
    return out


def bob_quotes(venue: LocalVenue, bid: str = "29990", ask: str = "30010", size: str = "1") -> None:
    bob = client(venue, venue.config.accounts[1])
    for side, price in (("BUY", bid), ("SELL", ask)):
        signed(bob, "POST", "/fapi/v1/order", symbol="BTCUSDT", side=side, type="LIMIT",
               timeInForce="GTC", quantity=size, price=price)


def test_gtx_refusal_falls_back_and_fills_build_the_position_the_venue_reports(
        venue: LocalVenue, tmp_path: Path):
    bob_quotes(venue)
    service = trader(venue, tmp_path, leverage=7)
    try:
        results = results_of(service)
        assert service.executor is not None
        # Post-only sell at the bid would take: -5022, re-sent as a plain limit (fallback).
        service.executor.submit(place(1, Side.SELL, "29990", "0.02", post_only=True))
        service.executor.submit(place(2, Side.SELL, "30050", "0.01", post_only=True))
        eventually(lambda: len(results) == 2, timeout=20)
        by_slot = {r.action.slot_id: r for r in results}
        assert by_slot[2].outcome == Outcome.ACKNOWLEDGED and not by_slot[2].fallback
        # Re-priced one tick up (29990.01): resting above the bid, acknowledged.
        assert by_slot[1].outcome == Outcome.ACKNOWLEDGED and by_slot[1].fallback == "reprice"
        assert service.executor.status()["post_only_fallbacks"] == {"reprice": 1}
        assert service.store.get(VENUE, by_slot[1].action.client_order_id).price == "29990.01"
        mine = client(venue, venue.config.accounts[0])
        # Leverage was set at start (trader.futures.leverage).
        rows = signed(mine, "GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")
        assert {str(r.get("leverage", "7")) for r in rows} <= {"7"}, rows
        # A plain limit that crosses: filled, short 0.02, as the venue says.
        service.executor.submit(place(3, Side.SELL, "29990", "0.02"))
        eventually(lambda: service.positions.position(VENUE, PAIR).quantity == D("-0.02"),
                   timeout=20)
        assert venue_position(mine) == D("-0.02")
        account = service.futures[VENUE]
        account.catch_up()
        reported = service.positions.position(VENUE, PAIR).reported
        assert D(reported["both"].quantity) == D("-0.02")
        assert D(reported["both"].entry_price) == D("29990")
        assert D(reported["both"].liquidation_price) > D("29990")  # a short dies upwards
        # Reduce-only reaches the venue: a sell that would grow the short is refused
        # (-2022, definitive), a buy that shrinks it goes through.
        service.executor.submit(place(4, Side.SELL, "29990", "0.01", reduce_only=True))
        eventually(lambda: len(results) == 4, timeout=20)
        assert results[3].outcome == Outcome.REJECTED and results[3].code == -2022, results[3]
        service.executor.submit(place(5, Side.BUY, "30010", "0.01", reduce_only=True))
        eventually(lambda: len(results) == 5, timeout=20)
        assert results[4].outcome == Outcome.ACKNOWLEDGED, results[4]
        eventually(lambda: venue_position(mine) == D("-0.01"), timeout=20)
        status = service.status()["futures"][VENUE]
        assert status["position_drift"] == [] and status["leverage"] == 7
        db = TaskDb.from_config(service.config)
        try:
            assert db.query("SELECT QUANTITY FROM TRADER_POSITIONS WHERE VENUE = ?", (VENUE,))
        finally:
            db.close()
    finally:
        service.stop(5)


def test_hedge_mode_sends_position_sides_and_both_legs_are_reported(
        venue: LocalVenue, tmp_path: Path):
    bob_quotes(venue)
    service = trader(venue, tmp_path, position_mode="hedge")
    try:
        results = results_of(service)
        assert service.executor is not None
        service.executor.submit(place(1, Side.BUY, "30010", "0.03",
                                      position_side=PositionSide.LONG))
        service.executor.submit(place(2, Side.SELL, "29990", "0.01",
                                      position_side=PositionSide.SHORT))
        eventually(lambda: len(results) == 2, timeout=20)
        assert all(r.outcome == Outcome.ACKNOWLEDGED for r in results), results
        mine = client(venue, venue.config.accounts[0])
        legs = {r["positionSide"]: D(r["positionAmt"]) for r in
                signed(mine, "GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")}
        assert legs.get("LONG") == D("0.03") and legs.get("SHORT") == D("-0.01"), legs
        # Our net position is the legs' sum; reconcile agrees with the venue.
        eventually(lambda: service.positions.position(VENUE, PAIR).quantity == D("0.02"))
        checks = service.futures[VENUE].reconcile()
        assert all(c.ok for c in checks), [c.text() for c in checks]
    finally:
        service.stop(5)


def test_a_position_the_fills_do_not_explain_trips_the_breaker_at_start(
        venue: LocalVenue, tmp_path: Path):
    bob_quotes(venue)
    mine = client(venue, venue.config.accounts[0])
    # Someone trades the account by hand before the trader starts.
    signed(mine, "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT",
           timeInForce="GTC", quantity="0.01", price="30010", newClientOrderId="manual-1")
    service = trader(venue, tmp_path)
    try:
        status = service.status()["futures"][VENUE]
        assert status["position_drift"] == ["BTC/USDT: venue 0.01000, fills 0"] or \
            status["position_drift"] and "venue 0.01" in status["position_drift"][0], status
        trips = service.risk.status()["trips"]
        assert any("position" in k for k in trips), trips
        results = results_of(service)
        assert service.executor is not None
        service.executor.submit(place(1, Side.BUY, "29000", "0.01"))
        eventually(lambda: results, timeout=10)
        assert results[0].outcome == Outcome.REJECTED and "breaker" in results[0].reason
    finally:
        service.stop(5)


def test_funding_payments_are_booked_once_and_survive_a_restart(tmp_path: Path):
    venue = start_venue(tmp_path / "venue", funding_interval_s=2)
    try:
        bob_quotes(venue)
        service = trader(venue, tmp_path)
        mine = client(venue, venue.config.accounts[0])
        try:
            results = results_of(service)
            assert service.executor is not None
            service.executor.submit(place(1, Side.BUY, "30010", "0.1"))
            eventually(lambda: results, timeout=20)
            eventually(lambda: len(venue_funding(mine)) >= 2, timeout=30, interval=1.0)
            account = service.futures[VENUE]

            def caught_up() -> bool:
                account.catch_up()
                return account.funding_inserted == len(venue_funding(mine))
            eventually(caught_up, timeout=20, interval=1.0)
            paid = sum((D(r["income"]) for r in venue_funding(mine)), D(0))
            position = service.positions.position(VENUE, PAIR)
            assert position.funding == paid != 0
            before = position.realized_pnl
            account.catch_up()  # read again: nothing new is booked twice
            assert service.positions.position(VENUE, PAIR).funding == paid
        finally:
            service.stop(5)
        rows = venue_funding(mine)
        again = trader(venue, tmp_path)  # restart: funding comes back from the DB
        try:
            position = again.positions.position(VENUE, PAIR)
            assert position.funding >= sum((D(r["income"]) for r in rows), D(0)) - abs(paid) \
                and position.funding != 0
            assert position.realized_pnl != 0 and before != 0
        finally:
            again.stop(5)
    finally:
        venue.stop()


def test_a_liquidation_is_seen_recorded_and_stops_new_orders(tmp_path: Path):
    venue = start_venue(tmp_path / "venue", alice_usdt="200")
    bob = client(venue, venue.config.accounts[1])
    market = None
    try:
        bob_quotes(venue, size="5")
        service = trader(venue, tmp_path, leverage=20)
        try:
            results = results_of(service)
            assert service.executor is not None
            service.executor.submit(place(1, Side.BUY, "30010", "0.1"))  # 3000 notional on 200
            eventually(lambda: results, timeout=20)
            assert results[0].outcome == Outcome.ACKNOWLEDGED, results[0]
            eventually(lambda: service.positions.position(VENUE, PAIR).quantity == D("0.1"))
            market = PerpMarket(bob, mid="30000", step="100", moves=(-1,), size="5",
                                period_s=0.1).start()
            account = service.futures[VENUE]
            eventually(lambda: account.liquidations, timeout=60,
                       message="the trader never saw the liquidation")
            market.stop()
            mine = client(venue, venue.config.accounts[0])
            eventually(lambda: venue_position(mine) == 0, timeout=20)
            # The forced close is in our position and in the DB, once.
            eventually(lambda: service.positions.position(VENUE, PAIR).quantity == 0,
                       timeout=20)
            assert service.positions.position(VENUE, PAIR).liquidations >= 1
            db = TaskDb.from_config(service.config)
            try:
                rows = db.query("SELECT SIDE, QUANTITY FROM TRADER_LIQUIDATIONS")
            finally:
                db.close()
            assert rows and all(side == "sell" for side, _ in rows)
            assert sum((D(q) for _, q in rows), D(0)) == D("0.1")
            # Reported: breaker trip with the reason, /health, /status.
            trips = service.risk.status()["trips"]
            assert any("liquidation" in k for k in trips), trips
            assert "LIQUIDATION BTC/USDT" in service.status()["futures"][VENUE]["liquidations"][0]
            assert any(not h.ok and "LIQUIDATION" in h.reason for h in service.health())
            service.executor.submit(place(2, Side.BUY, "20000", "0.001"))
            eventually(lambda: len(results) == 2, timeout=10)
            assert results[1].outcome == Outcome.REJECTED and "liquidation" in results[1].reason.lower()
            service.resume()  # the operator looked: trading may go on
            assert not any("liquidation" in k for k in service.risk.status()["trips"])
        finally:
            service.stop(5)
    finally:
        if market is not None:
            market.stop()
        venue.stop()


def test_orders_go_over_the_ws_fapi_socket_and_fall_back_to_rest(
        venue: LocalVenue, tmp_path: Path):
    bob_quotes(venue)
    service = trader(venue, tmp_path, WS_API)
    try:
        session = service.sessions[VENUE]
        [keeper] = service.order_sockets
        eventually(keeper.up.is_set, timeout=20)
        results = results_of(service)
        assert service.executor is not None
        service.executor.submit(place(1, Side.SELL, "29990", "0.01", post_only=True))  # -5022
        service.executor.submit(place(2, Side.BUY, "30010", "0.02"))
        eventually(lambda: len(results) == 2, timeout=20)
        assert [r.outcome for r in results] == [Outcome.ACKNOWLEDGED] * 2, results
        assert results[0].fallback == "reprice"  # the WS API's -5022 is "would take" too
        assert session.calls_by_transport["ws"] >= 3, session.status()
        eventually(lambda: service.positions.position(VENUE, PAIR).quantity == D("0.02"))
        rest_before = session.calls_by_transport["rest"]
        keeper.stop(5)  # the socket goes: orders take REST
        eventually(lambda: not session.ws_ready())
        service.executor.submit(place(3, Side.BUY, "29000", "0.01"))
        eventually(lambda: len(results) == 3, timeout=20)
        assert results[2].outcome == Outcome.ACKNOWLEDGED
        assert session.calls_by_transport["rest"] > rest_before
    finally:
        service.stop(5)

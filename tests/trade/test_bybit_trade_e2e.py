"""The trader on a Bybit unified account, spot (venue ``bybit``) and linear
USDT perpetuals (``bybit_futures``), against the local venue's Bybit v5 dialect
over its real wire: REST /v5/order/*, /v5/position/*, /v5/account/*; the private
stream (auth, order / execution / position / wallet) and the trade socket
(auth, order.create / order.cancel) as the fast path. What the trader books is
checked against the venue's own execution list and position list."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine.model import Side
from engine.sim.server import LocalVenue
from engine.trade.actions import ActionResult, Outcome
from engine.trade.service import TraderService
from tests.support.eventually import eventually
from tests.trade.bybit_rig import (
    LINEAR_REST,
    LINEAR_VENUE,
    LINEAR_WS,
    SPOT_REST,
    SPOT_VENUE,
    SPOT_WS,
    SYMBOL,
    client,
    place,
    start_venue,
    trader_config,
    use_keys,
)
from tests.trade.rig import make_service


@pytest.fixture
def venue(tmp_path: Path):
    v = start_venue(tmp_path / "venue")
    yield v
    v.stop()


def trader(venue: LocalVenue, data_dir: Path, settings: Any, monkeypatch: Any) -> TraderService:
    use_keys(monkeypatch, venue)
    assert venue.bybit is not None
    service = make_service(trader_config(data_dir, venue.bybit.url, venue.bybit.ws_url),
                           settings)
    service.start()
    for keeper in service.order_sockets:  # ws_api: orders once the trade socket is up
        assert keeper.up.wait(30), "the trade socket never came up"
    return service


def results_of(service: TraderService) -> list[ActionResult]:
    out: list[ActionResult] = []
    assert service.executor is not None
    service.executor.on_result(out.append)
    return out


def bob_quotes(venue: LocalVenue, category: str, bid: str = "29990", ask: str = "30010",
               size: str = "1") -> None:
    bob = client(venue, "bob")
    for side, price in (("Buy", bid), ("Sell", ask)):
        bob.call("POST", "/v5/order/create", category=category, symbol=SYMBOL, side=side,
                 orderType="Limit", qty=size, price=price, timeInForce="GTC")


def state(service: TraderService, venue_id: str, cid: str) -> str:
    found = service.store.get(venue_id, cid)
    return found.state if found is not None else ""


@pytest.mark.parametrize("settings", [SPOT_REST, SPOT_WS], ids=["rest", "ws_api"])
def test_spot_order_lifecycle_and_fills_match_the_venue(venue: LocalVenue, tmp_path: Path,
                                                        monkeypatch: Any, settings: Any) -> None:
    service = trader(venue, tmp_path, settings, monkeypatch)
    try:
        results = results_of(service)
        assert service.executor is not None
        resting = place(1, Side.BUY, "25000", "0.01", post_only=True)
        service.executor.submit(resting)
        eventually(lambda: state(service, SPOT_VENUE, resting.client_order_id) == "open",
                   timeout=20)
        assert eventually(lambda: results)[0].outcome == Outcome.ACKNOWLEDGED
        sent = service.sessions[SPOT_VENUE].calls_by_transport
        assert (sent["ws"] > 0) == (settings is SPOT_WS)  # order.create on the trade socket
        # bob sells into our bid: the fill arrives on the private stream
        bob = client(venue, "bob")
        bob.call("POST", "/v5/order/create", category="spot", symbol=SYMBOL, side="Sell",
                 orderType="Limit", qty="0.004", price="25000", timeInForce="GTC")
        eventually(lambda: state(service, SPOT_VENUE, resting.client_order_id) ==
                   "partially_filled", timeout=20)
        theirs = client(venue).executions("spot")
        assert len(theirs) == 1
        eventually(lambda: [(f.trade_id, f.price, f.quantity, f.fee, f.fee_asset)
                            for f in service.store.fills(SPOT_VENUE)] ==
                   [(e["execId"], e["execPrice"], e["execQty"], e["execFee"],
                     e["feeCurrency"]) for e in theirs], timeout=20)
        service.executor.submit(_cancel(resting))
        eventually(lambda: state(service, SPOT_VENUE, resting.client_order_id) ==
                   "canceled", timeout=20)
        assert not client(venue).orders("spot", open_only=True) or all(
            o["orderStatus"] not in ("New", "PartiallyFilled")
            for o in client(venue).orders("spot", open_only=True))
        if settings is SPOT_WS:  # the cancel too
            assert service.sessions[SPOT_VENUE].calls_by_transport["ws"] >= 2
    finally:
        service.stop(5.0)


def _cancel(order: Any) -> Any:
    from tests.trade.rig import Orders

    return Orders.cancel(order)


def test_spot_post_only_that_would_take_is_refused_by_the_venue(venue: LocalVenue,
                                                                tmp_path: Path,
                                                                monkeypatch: Any) -> None:
    bob_quotes(venue, "spot")
    service = trader(venue, tmp_path, SPOT_REST, monkeypatch)
    try:
        assert service.executor is not None
        crossing = place(2, Side.BUY, "30010", "0.01", post_only=True)
        service.executor.submit(crossing)
        eventually(lambda: state(service, SPOT_VENUE, crossing.client_order_id) ==
                   "rejected", timeout=20)
        stream = next(s for s in service.streams if s.venue == SPOT_VENUE)
        assert stream.post_only_refused == 1
        assert not [f for f in service.store.fills() if f.venue == SPOT_VENUE]
    finally:
        service.stop(5.0)


@pytest.mark.parametrize("settings", [LINEAR_REST, LINEAR_WS], ids=["rest", "ws_api"])
def test_linear_fills_build_the_position_the_venue_reports(venue: LocalVenue, tmp_path: Path,
                                                           monkeypatch: Any,
                                                           settings: Any) -> None:
    bob_quotes(venue, "linear")
    service = trader(venue, tmp_path, settings, monkeypatch)
    try:
        assert service.executor is not None
        results = results_of(service)
        short = place(3, Side.SELL, "29990", "0.02", venue=LINEAR_VENUE)  # takes bob's bid
        service.executor.submit(short)
        eventually(lambda: state(service, LINEAR_VENUE, short.client_order_id) ==
                   "filled", timeout=20)
        assert eventually(lambda: results)[0].outcome == Outcome.ACKNOWLEDGED
        alice = client(venue)
        assert alice.position() == D("-0.02")
        eventually(lambda: service.positions.position(LINEAR_VENUE, "BTC/USDT").quantity ==
                   D("-0.02"), timeout=20)
        theirs = alice.executions("linear")
        assert theirs
        eventually(lambda: sorted((f.trade_id, f.price, f.quantity, f.fee)
                                  for f in service.store.fills(LINEAR_VENUE)) ==
                   sorted((e["execId"], e["execPrice"], e["execQty"], e["execFee"])
                          for e in theirs), timeout=20)
        reported = eventually(lambda: service.positions.position(
            LINEAR_VENUE, "BTC/USDT").reported.get("both"), timeout=20)
        assert D(reported.quantity) == D("-0.02") and D(reported.entry_price) == D("29990")
    finally:
        service.stop(5.0)


def test_linear_hedge_mode_and_leverage_set_at_start_legs_reported(venue: LocalVenue,
                                                                    tmp_path: Path,
                                                                    monkeypatch: Any) -> None:
    import dataclasses

    from engine.model_trade import PositionSide

    bob_quotes(venue, "linear")
    settings = dataclasses.replace(LINEAR_REST, futures=dataclasses.replace(
        LINEAR_REST.futures, position_mode="hedge", leverage=5))
    service = trader(venue, tmp_path, settings, monkeypatch)
    try:
        assert service.executor is not None
        opened = place(4, Side.BUY, "30010", "0.02", venue=LINEAR_VENUE)  # takes bob's ask
        service.executor.submit(opened)
        eventually(lambda: state(service, LINEAR_VENUE, opened.client_order_id) == "filled",
                   timeout=20)
        closing = place(5, Side.SELL, "29990", "0.01", venue=LINEAR_VENUE, reduce_only=True)
        service.executor.submit(closing)
        eventually(lambda: state(service, LINEAR_VENUE, closing.client_order_id) == "filled",
                   timeout=20)
        rows = client(venue).call("GET", "/v5/position/list", category="linear",
                                  symbol=SYMBOL)["list"]
        legs = {int(r["positionIdx"]): r for r in rows}
        assert D(legs[1]["size"]) == D("0.01") and legs[1]["leverage"] == "5", legs
        reported = eventually(lambda: service.positions.position(
            LINEAR_VENUE, "BTC/USDT").reported.get(PositionSide.LONG.value), timeout=20)
        eventually(lambda: D(service.positions.position(LINEAR_VENUE, "BTC/USDT").reported[
            PositionSide.LONG.value].quantity) == D("0.01"), timeout=20)
        assert reported.position_side == PositionSide.LONG
        assert service.positions.position(LINEAR_VENUE, "BTC/USDT").quantity == D("0.01")
    finally:
        service.stop(5.0)

"""The USD-M dialect over real sockets with a docs-only client: its error
codes, hedge mode, the user stream (fills, positions, liquidation),
funding at a configured interval booked to income, mark price streams and
the WebSocket API (session.logon, order.place)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websocket

from engine.config import UsdmVenueConfig
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from tests.sim.binance_client import BinanceClient
from tests.sim.conftest import recv_json


@pytest.fixture
def usdm(tmp_path: Path) -> Iterator[Callable[..., LocalVenue]]:
    started: list[LocalVenue] = []

    def start(**usdm_options: Any) -> LocalVenue:
        accounts = (account_config("alice"), account_config("bob"),
                    account_config("carol", {"USDT": "300"}))
        config = dataclasses.replace(venue_config(accounts=accounts),
                                     usdm=UsdmVenueConfig(enabled=True, **usdm_options))
        venue = LocalVenue(config, tmp_path / f"v{len(started)}")
        venue.start()
        started.append(venue)
        return venue
    yield start
    for venue in started:
        venue.stop()


def clients(venue: LocalVenue) -> tuple[BinanceClient, BinanceClient, BinanceClient]:
    assert venue.usdm is not None
    return tuple(BinanceClient(venue.usdm.url, f"{n}-key", f"{n}-secret")  # type: ignore[return-value]
                 for n in ("alice", "bob", "carol"))


def order(client: BinanceClient, **params: object) -> Any:
    params.setdefault("symbol", "BTCUSDT")
    return client.signed("POST", "/fapi/v1/order", **params)


def test_usdm_rejections_use_binance_futures_codes(usdm: Callable[..., LocalVenue]) -> None:
    alice, bob, carol = clients(usdm())
    assert order(bob, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.1",
                 price="30000").status_code == 200
    gtx = order(alice, side="BUY", type="LIMIT", timeInForce="GTX", quantity="0.1",
                price="30000")
    assert (gtx.status_code, gtx.json()["code"]) == (400, -5022)
    assert order(carol, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1",
                 price="29000").json()["code"] == -2019
    assert order(alice, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1",
                 price="29000", positionSide="LONG").json()["code"] == -4061
    assert order(alice, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.1",
                 price="31000", reduceOnly="true").json()["code"] == -2022
    assert order(alice, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1",
                 price="29000.005").json()["code"] == -4014
    margin = alice.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT",
                          marginType="CROSSED")
    assert margin.json()["code"] == -4046
    assert bob.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT",
                      marginType="ISOLATED").json()["code"] == -4047
    assert bob.signed("POST", "/fapi/v1/positionSide/dual",
                      dualSidePosition="true").json()["code"] == -4067
    assert alice.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT",
                        leverage=200).json()["code"] == -4028
    unknown = alice.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=999)
    assert unknown.json()["code"] == -2013


def test_hedge_mode_holds_long_and_short_positions(usdm: Callable[..., LocalVenue]) -> None:
    alice, bob, _ = clients(usdm())
    assert alice.signed("POST", "/fapi/v1/positionSide/dual",
                        dualSidePosition="true").json() == {"code": 200, "msg": "success"}
    assert alice.signed("GET", "/fapi/v1/positionSide/dual").json() == {
        "dualSidePosition": True}
    order(bob, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.2", price="30000")
    order(bob, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="29900")
    assert order(alice, side="BUY", type="MARKET", quantity="0.2",
                 positionSide="LONG").json()["status"] == "FILLED"
    assert order(alice, side="SELL", type="MARKET", quantity="0.1",
                 positionSide="SHORT").json()["status"] == "FILLED"
    sides = {p["positionSide"]: p["positionAmt"] for p in
             alice.signed("GET", "/fapi/v3/positionRisk").json()}
    assert sides == {"LONG": "0.20000", "SHORT": "-0.10000"}
    assert alice.signed("POST", "/fapi/v1/positionSide/dual",
                        dualSidePosition="false").json()["code"] == -4068


def test_user_stream_reports_fills_positions_and_a_liquidation(
        usdm: Callable[..., LocalVenue]) -> None:
    venue = usdm(mark_interval_ms=100)
    assert venue.usdm is not None
    alice, bob, carol = clients(venue)
    key = carol.keyed("POST", "/fapi/v1/listenKey").json()["listenKey"]
    ws = websocket.create_connection(f"{venue.usdm.ws_url}/private/ws?listenKey={key}",
                                     timeout=15)
    try:
        order(bob, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.1",
              price="30000")
        assert order(carol, side="BUY", type="MARKET", quantity="0.1").json()[
            "status"] == "FILLED"  # 3000 at 20x on 300
        fill = recv_json(ws, lambda m: m.get("e") == "ORDER_TRADE_UPDATE"
                         and m["o"]["x"] == "TRADE")
        assert fill["o"]["X"] == "FILLED" and fill["o"]["N"] == "USDT"
        update = recv_json(ws, lambda m: m.get("e") == "ACCOUNT_UPDATE")
        assert update["a"]["P"][0]["pa"] == "0.10000"
        assert update["a"]["P"][0]["ep"].startswith("30000.")
        # the market falls: bob bids 27000, alice and bob trade at 27050
        order(bob, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.5",
              price="27000")
        order(bob, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.01",
              price="27050")
        order(alice, side="BUY", type="MARKET", quantity="0.01")
        call = recv_json(ws, lambda m: m.get("e") == "MARGIN_CALL")
        assert call["p"][0]["s"] == "BTCUSDT" and call["p"][0]["pa"] == "0.10000"
        liquidation = recv_json(ws, lambda m: m.get("e") == "ORDER_TRADE_UPDATE"
                                and m["o"]["c"].startswith("autoclose-")
                                and m["o"]["X"] == "FILLED")
        assert liquidation["o"]["o"] == "LIQUIDATION" and liquidation["o"]["S"] == "SELL"
        assert liquidation["o"]["L"] == "27000.00"
        flat = recv_json(ws, lambda m: m.get("e") == "ACCOUNT_UPDATE")
        assert flat["a"]["P"][0]["pa"] == "0.00000"
    finally:
        ws.close()
    positions = carol.signed("GET", "/fapi/v3/positionRisk").json()
    assert positions == []
    income = carol.signed("GET", "/fapi/v1/income", incomeType="REALIZED_PNL").json()
    assert income[-1]["income"] == "-300.00000000"  # (27000 - 30000) x 0.1, all she had
    wallet = carol.signed("GET", "/fapi/v3/balance").json()[0]["balance"]
    assert wallet == "0.00000000"


def test_funding_is_paid_at_the_configured_interval_and_booked_as_income(
        usdm: Callable[..., LocalVenue]) -> None:
    venue = usdm(funding_interval_s=1, mark_interval_ms=100)
    assert venue.usdm is not None
    alice, bob, _ = clients(venue)
    order(bob, side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="30000")
    order(alice, side="BUY", type="MARKET", quantity="1")
    ws = websocket.create_connection(f"{venue.usdm.ws_url}/market/ws/btcusdt@markPrice@1s",
                                     timeout=15)
    try:
        mark = recv_json(ws, lambda m: m.get("e") == "markPriceUpdate")
        assert mark["s"] == "BTCUSDT" and mark["p"] == "30000.00"
        assert mark["T"] % 1000 == 0  # next funding time on the interval grid
    finally:
        ws.close()
    deadline = time.monotonic() + 20
    paid: list = []
    while not paid and time.monotonic() < deadline:
        paid = alice.signed("GET", "/fapi/v1/income", incomeType="FUNDING_FEE").json()
        time.sleep(0.2)
    received = bob.signed("GET", "/fapi/v1/income", incomeType="FUNDING_FEE").json()
    assert paid and received  # no spot book: premium 0, rate = the 0.01% interest
    assert paid[0]["income"] == "-3.00000000" and received[0]["income"] == "3.00000000"
    history = alice.public("GET", "/fapi/v1/fundingRate", symbol="BTCUSDT").json()
    assert history[0]["fundingRate"] == "0.00010000"


def test_ws_api_logon_then_place_and_query(usdm: Callable[..., LocalVenue]) -> None:
    venue = usdm()
    assert venue.usdm is not None
    _, bob, _ = clients(venue)
    order(bob, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.1", price="30000")
    ws = websocket.create_connection(venue.usdm.ws_url + "/ws-fapi/v1", timeout=15)

    def call(method: str, **params: object) -> Any:
        ws.send(orjson.dumps({"id": method, "method": method, "params": params}))
        return recv_json(ws, lambda m: m.get("id") == method)
    try:
        logon = {"apiKey": "alice-key", "timestamp": int(time.time() * 1000)}
        payload = "&".join(f"{k}={v}" for k, v in sorted(logon.items()))
        logon["signature"] = hmac.new(b"alice-secret", payload.encode(),
                                      hashlib.sha256).hexdigest()
        assert call("session.logon", **logon)["result"]["apiKey"] == "alice-key"
        placed = call("order.place", symbol="BTCUSDT", side="BUY", type="MARKET",
                      quantity="0.1", timestamp=int(time.time() * 1000))
        assert placed["status"] == 200 and placed["result"]["status"] == "FILLED"
        status = call("order.status", symbol="BTCUSDT", orderId=placed["result"]["orderId"],
                      timestamp=int(time.time() * 1000))
        assert status["result"]["executedQty"] == "0.10000"
        rejected = call("order.place", symbol="BTCUSDT", side="BUY", type="LIMIT",
                        timeInForce="GTC", quantity="0.1", price="29000",
                        positionSide="SHORT", timestamp=int(time.time() * 1000))
        assert rejected["status"] == 400 and rejected["error"]["code"] == -4061
    finally:
        ws.close()


def test_streams_follow_the_2026_routed_paths(usdm: Callable[..., LocalVenue]) -> None:
    """markPrice lives on /market; subscribed on /public it is accepted and
    never delivered (Binance's "Important WebSocket Change Notice")."""
    venue = usdm(mark_interval_ms=100)
    assert venue.usdm is not None
    alice, bob, _ = clients(venue)
    order(bob, side="SELL", type="LIMIT", timeInForce="GTC", quantity="0.1", price="30000")
    order(alice, side="BUY", type="MARKET", quantity="0.05")
    public = websocket.create_connection(venue.usdm.ws_url + "/public/ws", timeout=15)
    market = websocket.create_connection(venue.usdm.ws_url + "/market/ws", timeout=15)
    try:
        for ws in (public, market):
            ws.send(orjson.dumps({"method": "SUBSCRIBE", "id": 1,
                                  "params": ["btcusdt@markPrice@1s", "btcusdt@bookTicker"]}))
            assert recv_json(ws, lambda m: m.get("id") == 1) == {"result": None, "id": 1}
        assert recv_json(market, lambda m: m.get("e") == "markPriceUpdate")["s"] == "BTCUSDT"
        order(bob, side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.1", price="29000")
        assert recv_json(public, lambda m: True)["e"] == "bookTicker"  # first thing it gets
        with pytest.raises(AssertionError):
            recv_json(public, lambda m: m.get("e") == "markPriceUpdate", timeout_s=2.5)
    finally:
        public.close()
        market.close()


def test_one_ledger_serves_both_dialects(usdm: Callable[..., LocalVenue]) -> None:
    """USD-M margin and fees come out of the same USDT the spot port shows,
    and the spot port lists only spot orders."""
    venue = usdm()
    alice, bob, _ = clients(venue)
    spot = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    order(bob, side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="30000")
    order(alice, side="BUY", type="MARKET", quantity="1")  # fee 30000 x 0.05% = 15
    assert order(alice, side="BUY", type="LIMIT", timeInForce="GTC", quantity="1",
                 price="20000").status_code == 200  # reserves 20000 / 20 = 1000
    assert spot.balances()["USDT"] == ("98985.00000000", "1000.00000000")
    assert spot.signed("GET", "/api/v3/openOrders").json() == []
    assert spot.limit("BUY", "0.01", "25000").status_code == 200
    assert [o["symbol"] for o in spot.signed("GET", "/api/v3/openOrders").json()] == [
        "BTCUSDT"]

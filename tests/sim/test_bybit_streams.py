"""The Bybit dialect's WebSockets over real sockets: public book/trade
messages shaped like the recorded real ones (tests/data/bybit), acks and
pongs per the connect page, the private stream (auth, order, execution,
position, wallet) and the trade WebSocket (order.create / order.cancel with
reqId and X-BAPI-TIMESTAMP)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import websocket

from engine.sim.server import LocalVenue
from tests.sim.bybit_client import BybitClient
from tests.sim.conftest import recv_json

REAL_DELTA = Path(__file__).parents[1] / "data" / "bybit" / "book_delta.v5hist.jsonl"


def _auth_args(key: str, secret: str) -> list[str]:
    expires = str(int(time.time() * 1000) + 10_000)
    signature = hmac.new(secret.encode(), f"GET/realtime{expires}".encode(),
                         hashlib.sha256).hexdigest()
    return [key, expires, signature]


def _send(ws: websocket.WebSocket, payload: dict) -> None:
    ws.send(orjson.dumps(payload).decode())


def _real_shape() -> tuple[set[str], set[str]]:
    line = REAL_DELTA.read_text().splitlines()[0]
    message = orjson.loads(line)
    message = message.get("data") if "topic" not in message else message
    if isinstance(message, str):
        message = orjson.loads(message)
    return set(message), set(message["data"])


def test_bybit_public_stream_acks_pongs_and_book_like_the_real_one(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    assert venue.bybit is not None
    key, secret = venue.bybit.keys["bob"]
    bob = BybitClient(venue.bybit.url, key, secret)
    ws = websocket.create_connection(venue.bybit.ws_url + "/v5/public/spot", timeout=15)
    try:
        _send(ws, {"req_id": "p1", "op": "ping"})
        pong = recv_json(ws)
        assert (pong["success"], pong["ret_msg"], pong["op"], pong["req_id"]) == (
            True, "pong", "ping", "p1") and pong["conn_id"]
        _send(ws, {"req_id": "s1", "op": "subscribe",
                   "args": ["orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"]})
        ack = recv_json(ws)
        assert (ack["success"], ack["ret_msg"], ack["op"], ack["req_id"]) == (
            True, "subscribe", "subscribe", "s1")
        snapshot = recv_json(ws, lambda m: m.get("topic") == "orderbook.50.BTCUSDT")
        assert snapshot["type"] == "snapshot" and snapshot["data"]["b"] == []
        bob.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT", side="Buy",
               orderType="Limit", qty="0.5", price="29000")
        delta = recv_json(ws, lambda m: m.get("type") == "delta")
        top, data = _real_shape()
        assert set(delta) == top and set(delta["data"]) == data  # the recorded message's keys
        assert delta["data"]["u"] == snapshot["data"]["u"] + 1
        assert delta["data"]["b"] == [["29000.00", "0.50000"]]
        alice = BybitClient(venue.bybit.url, *venue.bybit.keys["alice"])
        alice.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT", side="Sell",
                 orderType="Market", qty="0.1")
        trade = recv_json(ws, lambda m: m.get("topic") == "publicTrade.BTCUSDT")
        row = trade["data"][0]
        assert (row["S"], row["p"], row["v"], row["BT"]) == ("Sell", "29000.00", "0.10000",
                                                            False)
        _send(ws, {"req_id": "s2", "op": "subscribe", "args": ["orderbook.7.BTCUSDT"]})
        refused = recv_json(ws, lambda m: m.get("req_id") == "s2")
        assert refused["success"] is False and "orderbook.7.BTCUSDT" in refused["ret_msg"]
        _send(ws, {"req_id": "s3", "op": "subscribe",
                   "args": [f"publicTrade.X{i}" for i in range(11)]})
        assert recv_json(ws, lambda m: m.get("req_id") == "s3")["ret_msg"] == "args size >10"
    finally:
        ws.close()


def test_bybit_private_stream_pushes_order_execution_position_and_wallet(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    assert venue.bybit is not None
    key, secret = venue.bybit.keys["alice"]
    alice = BybitClient(venue.bybit.url, key, secret)
    bob = BybitClient(venue.bybit.url, *venue.bybit.keys["bob"])
    ws = websocket.create_connection(venue.bybit.ws_url + "/v5/private", timeout=15)
    try:
        _send(ws, {"req_id": "early", "op": "subscribe", "args": ["order"]})
        assert recv_json(ws)["success"] is False  # not authenticated yet
        _send(ws, {"req_id": "a0", "op": "auth", "args": [key, "1", "00"]})
        assert recv_json(ws)["success"] is False  # expired
        _send(ws, {"req_id": "a1", "op": "auth", "args": _auth_args(key, secret)})
        auth = recv_json(ws)
        assert (auth["success"], auth["op"]) == (True, "auth")
        _send(ws, {"req_id": "s1", "op": "subscribe",
                   "args": ["order", "execution", "position", "wallet"]})
        assert recv_json(ws)["success"] is True
        _send(ws, {"req_id": "p1", "op": "ping"})
        assert recv_json(ws, lambda m: m.get("op") == "pong")["args"][0].isdigit()
        bob.ok("POST", "/v5/order/create", category="linear", symbol="BTCUSDT", side="Sell",
               orderType="Limit", qty="0.01", price="30000")
        alice.ok("POST", "/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
                 orderType="Limit", qty="0.01", price="30000", orderLinkId="long-1")
        seen: dict[str, Any] = {}
        ids: list[str] = []
        while len(seen) < 4:
            message = recv_json(ws, lambda m: "topic" in m)
            seen.setdefault(message["topic"], message)
            ids.append(message["id"])
        assert len(set(ids)) == len(ids)  # one id per message, even within a millisecond
        order = seen["order"]["data"][-1]
        assert (order["orderLinkId"], order["orderStatus"], order["category"]) == (
            "long-1", "Filled", "linear")
        fill = seen["execution"]["data"][0]
        assert (fill["execQty"], fill["execPrice"], fill["isMaker"]) == ("0.01000", "30000.00",
                                                                         False)
        position = seen["position"]["data"][0]
        assert (position["side"], position["size"], position["category"]) == (
            "Buy", "0.01000", "linear")
        coins = {c["coin"] for c in seen["wallet"]["data"][0]["coin"]}
        assert "USDT" in coins and seen["wallet"]["data"][0]["accountType"] == "UNIFIED"
        # PostOnly that would take: the order topic tells the reason
        bob.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT", side="Sell",
               orderType="Limit", qty="0.01", price="30000")
        alice.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT", side="Buy",
                 orderType="Limit", qty="0.01", price="30001", timeInForce="PostOnly",
                 orderLinkId="po-1")
        cancelled = recv_json(ws, lambda m: m.get("topic") == "order" and
                              m["data"][0]["orderLinkId"] == "po-1")["data"][0]
        assert (cancelled["orderStatus"], cancelled["rejectReason"]) == (
            "Cancelled", "EC_PostOnlyWillTakeLiquidity")
    finally:
        ws.close()


def test_bybit_trade_websocket_creates_and_cancels(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    assert venue.bybit is not None
    key, secret = venue.bybit.keys["alice"]
    alice = BybitClient(venue.bybit.url, key, secret)
    ws = websocket.create_connection(venue.bybit.ws_url + "/v5/trade", timeout=15)

    def request(req_id: str, op: str, args: dict, stamp: int | None = None) -> Any:
        _send(ws, {"reqId": req_id, "op": op, "args": [args], "header": {
            "X-BAPI-TIMESTAMP": str(stamp or int(time.time() * 1000)),
            "X-BAPI-RECV-WINDOW": "8000"}})
        return recv_json(ws, lambda m: m.get("reqId") == req_id)
    try:
        order = {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                 "qty": "0.01", "price": "28000", "orderLinkId": "ws-1"}
        assert request("r0", "order.create", order)["retCode"] == 10003  # before auth
        _send(ws, {"reqId": "auth", "op": "auth", "args": _auth_args(key, secret)})
        assert recv_json(ws)["retCode"] == 0
        created = request("r1", "order.create", order)
        assert created["retCode"] == 0 and created["data"]["orderLinkId"] == "ws-1"
        assert created["header"]["X-Bapi-Limit"] == "20" and created["header"]["Timenow"]
        rows = alice.ok("GET", "/v5/order/realtime", category="spot")["list"]
        assert [r["orderLinkId"] for r in rows] == ["ws-1"]
        assert request("r2", "order.create", order)["retCode"] == 170141
        assert request("r2", "order.create", order)["retCode"] == 20006  # reqId again
        stale = request("r3", "order.create", order | {"orderLinkId": "ws-2"},
                        stamp=int(time.time() * 1000) - 60_000)
        assert stale["retCode"] == 10002
        gone = request("r4", "order.cancel", {"category": "spot", "symbol": "BTCUSDT",
                                              "orderLinkId": "ws-1"})
        assert gone["retCode"] == 0 and gone["data"]["orderId"] == created["data"]["orderId"]
        assert alice.ok("GET", "/v5/order/realtime", category="spot")["list"] == []
    finally:
        ws.close()


def test_bybit_linear_tickers_and_depth_one_snapshots(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    assert venue.bybit is not None
    bob = BybitClient(venue.bybit.url, *venue.bybit.keys["bob"])
    ws = websocket.create_connection(venue.bybit.ws_url + "/v5/public/linear", timeout=15)
    try:
        _send(ws, {"req_id": "t", "op": "subscribe",
                   "args": ["tickers.BTCUSDT", "orderbook.1.BTCUSDT"]})
        assert recv_json(ws)["success"] is True
        ticker = recv_json(ws, lambda m: m.get("topic") == "tickers.BTCUSDT")
        assert {"markPrice", "indexPrice", "fundingRate", "nextFundingTime", "bid1Price"} <= set(
            ticker["data"])
        first = recv_json(ws, lambda m: m.get("topic") == "orderbook.1.BTCUSDT")
        bob.ok("POST", "/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
               orderType="Limit", qty="0.01", price="29500")
        top = recv_json(ws, lambda m: m.get("topic") == "orderbook.1.BTCUSDT")
        assert top["type"] == "snapshot" and top["data"]["b"] == [["29500.00", "0.01000"]]
        assert top["data"]["u"] == first["data"]["u"] + 1
        changed = recv_json(ws, lambda m: m.get("topic") == "tickers.BTCUSDT"
                            and m["data"]["bid1Price"] == "29500.00")
        assert changed["type"] == "snapshot"
    finally:
        ws.close()

"""The venue's WebSocket API (/ws-api/v3) driven by a plain client written
from web-socket-api.md: envelopes, signing (HMAC and Ed25519), session logon,
user data subscriptions and their events, orders, errors and rate limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import websocket
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.config import VenueAccountConfig
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config
from tests.sim.binance_client import BinanceClient
from tests.sim.conftest import recv_json

Connect = Callable[[str], websocket.WebSocket]
# web-socket-api.md, "SIGNED request example (HMAC)": the documented keys and result
DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PAYLOAD = ("apiKey=vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A&"
               "newOrderRespType=ACK&price=52000.00&quantity=0.01000000&recvWindow=100&"
               "side=SELL&symbol=BTCUSDT&timeInForce=GTC&timestamp=1645423376532&type=LIMIT")
DOC_SIGNATURE = "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"


class WsApiClient:
    """One /ws-api/v3 connection; signs like the docs (sorted params)."""

    def __init__(self, ws: websocket.WebSocket, key: str = "", secret: str = "",
                 private_key: Ed25519PrivateKey | None = None) -> None:
        self.ws, self.key, self.secret, self.private_key = ws, key, secret, private_key
        self.next_id = 0

    def signed_params(self, **params: Any) -> dict[str, Any]:
        params = {"apiKey": self.key, "timestamp": int(time.time() * 1000), **params}
        payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
        if self.private_key is not None:
            params["signature"] = base64.b64encode(
                self.private_key.sign(payload.encode())).decode()
        else:
            params["signature"] = hmac.new(self.secret.encode(), payload.encode(),
                                           hashlib.sha256).hexdigest()
        return params

    def request(self, method: str, params: dict[str, Any] | None = None) -> dict:
        self.next_id += 1
        request_id = f"req-{self.next_id}"
        message: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        self.ws.send(json.dumps(message))
        return recv_json(self.ws, lambda m: m.get("id") == request_id)

    def signed(self, method: str, **params: Any) -> dict:
        return self.request(method, self.signed_params(**params))

    def event(self, match: Callable[[dict], bool] = lambda e: True) -> dict:
        return recv_json(self.ws, lambda m: "event" in m and match(m["event"]))["event"]


def _ed25519_account(name: str) -> tuple[VenueAccountConfig, Ed25519PrivateKey]:
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    base = account_config(name)
    return VenueAccountConfig(name=name, api_key=f"{name}-key", api_secret="",
                              balances=base.balances, public_key=pem.decode()), private


@pytest.fixture
def ed_venue(start_venue: Callable[..., LocalVenue]) -> tuple[LocalVenue, Ed25519PrivateKey]:
    carol, private = _ed25519_account("carol")
    return start_venue(accounts=[account_config("alice"), account_config("bob"), carol]), private


def test_doc_hmac_example_signature() -> None:
    assert hmac.new(DOC_SECRET.encode(), DOC_PAYLOAD.encode(),
                    hashlib.sha256).hexdigest() == DOC_SIGNATURE


def test_public_methods_and_envelope(venue: LocalVenue, ws_connect: Connect) -> None:
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"))
    pong = api.request("ping")
    assert pong["status"] == 200 and pong["result"] == {}
    assert pong["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    assert pong["rateLimits"][0]["count"] >= 3  # connect (2) + ping (1)
    assert api.request("v3/time")["result"]["serverTime"] > 0
    info = api.request("exchangeInfo", {"symbols": ["BTCUSDT"]})
    assert [s["symbol"] for s in info["result"]["symbols"]] == ["BTCUSDT"]
    book = api.request("depth", {"symbol": "BTCUSDT", "limit": 5})
    assert set(book["result"]) == {"lastUpdateId", "bids", "asks"}
    quiet = api.request("time", {"returnRateLimits": False})
    assert "rateLimits" not in quiet
    unknown = api.request("nope.nothing")
    assert unknown["status"] == 400 and unknown["error"]["code"] == -1020


def test_bad_requests_answer_with_null_id(venue: LocalVenue, ws_connect: Connect) -> None:
    ws = ws_connect(venue.ws_url + "/ws-api/v3?returnRateLimits=false")
    ws.send("{not json")
    assert recv_json(ws) == {"id": None, "status": 400, "error": {
        "code": -1135, "msg": "Invalid JSON Request"}}
    ws.send(json.dumps({"id": "has spaces", "method": "ping"}))
    assert recv_json(ws)["error"]["code"] == -1135
    ws.send(json.dumps({"id": 7, "method": "time"}))
    reply = recv_json(ws)
    assert reply["id"] == 7 and "rateLimits" not in reply


def test_hmac_order_flow_and_user_data_events(venue: LocalVenue, ws_connect: Connect,
                                              bob: BinanceClient) -> None:
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"), "alice-key", "alice-secret")
    logon = api.signed("session.logon")
    assert logon["status"] == 400 and logon["error"]["code"] == -4056  # Ed25519 only
    sub = api.signed("userDataStream.subscribe.signature")
    assert sub["status"] == 200 and sub["result"] == {"subscriptionId": 0}
    again = api.signed("userDataStream.subscribe.signature")
    assert again["error"]["code"] == -2035
    assert api.request("session.subscriptions")["result"] == [{"subscriptionId": 0}]
    placed = api.signed("order.place", symbol="BTCUSDT", side="SELL", type="LIMIT",
                        timeInForce="GTC", quantity="0.01", price="30000",
                        newClientOrderId="ws-sell-1")
    assert placed["status"] == 200, placed
    assert placed["result"]["clientOrderId"] == "ws-sell-1"
    assert {r["rateLimitType"] for r in placed["rateLimits"]} == {"ORDERS", "REQUEST_WEIGHT"}
    report = api.event(lambda e: e["e"] == "executionReport")
    assert (report["c"], report["x"], report["X"]) == ("ws-sell-1", "NEW", "NEW")
    position = api.event(lambda e: e["e"] == "outboundAccountPosition")
    assert {b["a"] for b in position["B"]} >= {"BTC"}
    bob.limit("BUY", "0.004", "30000")
    fill = api.event(lambda e: e["e"] == "executionReport" and e["x"] == "TRADE")
    assert (fill["l"], fill["X"]) == ("0.00400000", "PARTIALLY_FILLED")
    status = api.signed("order.status", symbol="BTCUSDT", origClientOrderId="ws-sell-1")
    assert status["result"]["executedQty"] == "0.00400000"
    opened = api.signed("openOrders.status", symbol="BTCUSDT")
    assert [o["clientOrderId"] for o in opened["result"]] == ["ws-sell-1"]
    canceled = api.signed("order.cancel", symbol="BTCUSDT", orderId=placed["result"]["orderId"])
    assert canceled["result"]["status"] == "CANCELED"
    assert api.event(lambda e: e.get("x") == "CANCELED")["c"] != ""
    unknown = api.signed("order.cancel", symbol="BTCUSDT", orderId=999)
    assert unknown["status"] == 400 and unknown["error"]["code"] == -2011
    account = api.signed("account.status")
    assert any(b["asset"] == "USDT" for b in account["result"]["balances"])
    assert api.request("userDataStream.unsubscribe", {"subscriptionId": 0})["result"] == {}
    assert api.event(lambda e: e["e"] == "eventStreamTerminated")
    assert api.request("session.subscriptions")["result"] == []


def test_bad_signature_and_missing_key(venue: LocalVenue, ws_connect: Connect) -> None:
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"), "alice-key", "wrong")
    assert api.signed("order.status", symbol="BTCUSDT", orderId=1)["error"]["code"] == -1022
    reply = api.request("order.status", {"symbol": "BTCUSDT", "orderId": 1,
                                         "timestamp": int(time.time() * 1000)})
    assert reply["error"] == {"code": -1102, "msg": "Mandatory parameter 'apiKey' was not "
                                                    "sent, was empty/null, or malformed."}
    nobody = WsApiClient(api.ws, "nobody", "x").signed("account.status")
    assert nobody["status"] == 401 and nobody["error"]["code"] == -2015


def test_ed25519_session_logon_subscribe_and_trade(
        ed_venue: tuple[LocalVenue, Ed25519PrivateKey], ws_connect: Connect) -> None:
    venue, private = ed_venue
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"), "carol-key",
                      private_key=private)
    assert api.request("session.status")["result"]["apiKey"] is None
    logon = api.signed("session.logon")
    assert logon["status"] == 200 and logon["result"]["apiKey"] == "carol-key"
    assert logon["result"]["userDataStream"] is False
    assert api.request("userDataStream.subscribe")["result"] == {"subscriptionId": 0}
    assert api.request("session.status")["result"]["userDataStream"] is True
    # after logon, SIGNED requests need only a timestamp
    placed = api.request("order.place", {
        "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "0.01", "price": "20000", "timestamp": int(time.time() * 1000)})
    assert placed["status"] == 200, placed
    assert api.event(lambda e: e["e"] == "executionReport")["i"] == placed["result"]["orderId"]
    no_time = api.request("openOrders.status", {"symbol": "BTCUSDT"})
    assert no_time["error"]["code"] == -1102
    canceled = api.request("openOrders.cancelAll", {"symbol": "BTCUSDT",
                                                    "timestamp": int(time.time() * 1000)})
    assert [o["status"] for o in canceled["result"]] == ["CANCELED"]
    logout = api.request("session.logout")
    assert logout["result"]["apiKey"] is None and logout["result"]["userDataStream"] is False
    assert api.event(lambda e: e["e"] == "eventStreamTerminated")


def test_order_rate_limit_answers_429_with_retry_after(
        start_venue: Callable[..., LocalVenue], ws_connect: Connect) -> None:
    venue = start_venue(limits=Limits(orders_per_10s=1))
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"), "alice-key", "alice-secret")
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.01", "price": "20000"}
    assert api.signed("order.place", **order)["status"] == 200
    refused = api.signed("order.place", **order)
    assert refused["status"] == 429 and refused["error"]["code"] == -1015
    data = refused["error"]["data"]
    assert data["retryAfter"] > data["serverTime"] and data["retryAfter"] % 10_000 == 0


def test_weight_limit_answers_429_with_retry_after(
        start_venue: Callable[..., LocalVenue], ws_connect: Connect) -> None:
    venue = start_venue(limits=Limits(weight_per_minute=30))
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"))
    statuses = []
    for _ in range(4):  # connect 2 + exchangeInfo 20 each: the second one is over 30
        reply = api.request("exchangeInfo")
        statuses.append(reply["status"])
        if reply["status"] != 200:
            break
    if statuses[-1] == 200:  # the minute rolled over between requests
        reply = api.request("exchangeInfo")
    assert reply["status"] == 429 and reply["error"]["code"] == -1003
    data = reply["error"]["data"]
    assert data["retryAfter"] > data["serverTime"] and data["retryAfter"] % 60_000 == 0
    assert reply["rateLimits"][0]["count"] > 30


def test_cancel_replace_partial_failure_is_409_with_both_halves(
        venue: LocalVenue, ws_connect: Connect) -> None:
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"), "alice-key", "alice-secret")
    reply = api.signed("order.cancelReplace", symbol="BTCUSDT", side="BUY", type="LIMIT",
                       timeInForce="GTC", quantity="0.01", price="20000",
                       cancelReplaceMode="ALLOW_FAILURE", cancelOrderId=12345)
    assert reply["status"] == 409 and reply["error"]["code"] == -2021
    data = reply["error"]["data"]
    assert (data["cancelResult"], data["newOrderResult"]) == ("FAILURE", "SUCCESS")


def test_closing_the_socket_ends_its_subscriptions(venue: LocalVenue,
                                                   ws_connect: Connect) -> None:
    from tests.support.eventually import eventually

    ws = ws_connect(venue.ws_url + "/ws-api/v3")
    api = WsApiClient(ws, "alice-key", "alice-secret")
    assert api.signed("userDataStream.subscribe.signature")["status"] == 200
    assert venue.exchange is not None
    assert "alice" in venue.exchange.listening  # balance snapshots are now computed
    ws.close()
    eventually(lambda: "alice" not in venue.exchange.listening, timeout=15)


def test_recv_window_takes_microsecond_decimals(venue: LocalVenue, ws_connect: Connect) -> None:
    """web-socket-api.md today: recvWindow is a DECIMAL with up to 3 places."""
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"), "alice-key", "alice-secret")
    assert api.signed("account.status", recvWindow=6000.346)["status"] == 200
    assert api.signed("account.status", recvWindow="1.2345")["error"]["code"] == -1100


def test_params_null_or_not_an_object(venue: LocalVenue, ws_connect: Connect) -> None:
    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"))
    assert api.request("ping", None)["status"] == 200
    api.ws.send(json.dumps({"id": "p1", "method": "ping", "params": None}))
    assert recv_json(api.ws, lambda m: m.get("id") == "p1")["status"] == 200
    api.ws.send(json.dumps({"id": "p2", "method": "ping", "params": [1]}))
    assert recv_json(api.ws, lambda m: m.get("id") == "p2")["error"]["code"] == -1135
    api.ws.send(json.dumps({"id": "p3", "params": {}}))
    assert recv_json(api.ws, lambda m: m.get("id") == "p3")["error"]["code"] == -1102


def test_signature_over_percent_encoded_values_is_accepted(venue: LocalVenue,
                                                           ws_connect: Connect) -> None:
    """A client that percent-encodes values before signing (RFC 3986, as Binance
    asks of REST payloads since 2026-01-15) is understood as well as one that
    signs them raw."""
    from urllib.parse import quote

    api = WsApiClient(ws_connect(venue.ws_url + "/ws-api/v3"), "alice-key", "alice-secret")
    params = {"apiKey": "alice-key", "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT",
              "timeInForce": "GTC", "quantity": "0.01", "price": "20000",
              "newClientOrderId": "raw-1", "timestamp": int(time.time() * 1000)}
    raw = api.signed_params(**{k: v for k, v in params.items() if k != "apiKey"})
    assert api.request("order.place", raw)["status"] == 200
    params["newClientOrderId"] = "x:y"  # ':' is not in the allowed id pattern: -1100 after auth
    payload = "&".join(f"{k}={quote(str(v), safe='-_.~')}" for k, v in sorted(params.items()))
    params["signature"] = hmac.new(b"alice-secret", payload.encode(), hashlib.sha256).hexdigest()
    assert api.request("order.place", params)["error"]["code"] == -1100  # not -1022

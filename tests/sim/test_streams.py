"""WebSocket streams checked with a real client (websocket-client) while
orders flow, against web-socket-streams.md and user-data-stream.md."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
import websocket

from engine.clock import TestClock
from engine.sim.server import LocalVenue
from tests.sim.binance_client import BinanceClient
from tests.sim.conftest import recv_json
from tests.support.eventually import eventually

Connect = Callable[[str], websocket.WebSocket]


def send(ws: websocket.WebSocket, message: dict) -> None:
    ws.send(json.dumps(message))


def is_reply(request_id: object) -> Callable[[object], bool]:
    return lambda m: isinstance(m, dict) and m.get("id") == request_id and "e" not in m


def test_raw_trade_stream_reports_each_trade(venue: LocalVenue, ws_connect: Connect,
                                             alice: BinanceClient, bob: BinanceClient) -> None:
    ws = ws_connect(venue.ws_url + "/ws/btcusdt@trade")
    alice.limit("SELL", "0.01", "30000")
    bob.limit("BUY", "0.01", "30000")
    event = recv_json(ws)
    assert {k: event[k] for k in ("e", "s", "t", "p", "q", "m")} == {
        "e": "trade", "s": "BTCUSDT", "t": 1, "p": "30000.00000000", "q": "0.01000000",
        "m": False}
    assert event["T"] <= event["E"]


def test_combined_stream_wraps_payloads(venue: LocalVenue, ws_connect: Connect,
                                        alice: BinanceClient, bob: BinanceClient) -> None:
    ws = ws_connect(venue.ws_url + "/stream?streams=btcusdt@aggTrade/btcusdt@bookTicker")
    alice.limit("SELL", "0.01", "30000")
    alice.limit("SELL", "0.01", "30000")
    bob.limit("BUY", "0.02", "30000")
    agg = recv_json(ws, lambda m: m["stream"] == "btcusdt@aggTrade")["data"]
    assert (agg["e"], agg["a"], agg["f"], agg["l"], agg["q"]) == ("aggTrade", 1, 1, 2,
                                                                  "0.02000000")
    ticker = recv_json(ws, lambda m: m["stream"] == "btcusdt@bookTicker")["data"]
    assert set(ticker) == {"u", "s", "b", "B", "a", "A"} and ticker["s"] == "BTCUSDT"


def test_subscribe_list_unsubscribe(venue: LocalVenue, ws_connect: Connect) -> None:
    ws = ws_connect(venue.ws_url + "/ws")
    send(ws, {"method": "SUBSCRIBE", "params": ["btcusdt@trade", "btcusdt@depth"], "id": 1})
    assert recv_json(ws, is_reply(1)) == {"result": None, "id": 1}
    send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 3})
    assert recv_json(ws, is_reply(3)) == {"result": ["btcusdt@depth", "btcusdt@trade"], "id": 3}
    send(ws, {"method": "UNSUBSCRIBE", "params": ["btcusdt@depth"], "id": 312})
    assert recv_json(ws, is_reply(312)) == {"result": None, "id": 312}
    send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": "four"})
    assert recv_json(ws, is_reply("four"))["result"] == ["btcusdt@trade"]


def test_combined_property_switches_wrapping(venue: LocalVenue, ws_connect: Connect,
                                             alice: BinanceClient, bob: BinanceClient) -> None:
    ws = ws_connect(venue.ws_url + "/ws/btcusdt@trade")
    send(ws, {"method": "GET_PROPERTY", "params": ["combined"], "id": 2})
    assert recv_json(ws, is_reply(2)) == {"result": False, "id": 2}
    send(ws, {"method": "SET_PROPERTY", "params": ["combined", True], "id": 5})
    assert recv_json(ws, is_reply(5)) == {"result": None, "id": 5}
    alice.limit("SELL", "0.01", "30000")
    bob.limit("BUY", "0.01", "30000")
    assert recv_json(ws, lambda m: "stream" in m)["stream"] == "btcusdt@trade"


@pytest.mark.parametrize("raw, expected_code", [
    ("not json", 3),
    (json.dumps({"params": [], "id": 1}), 2),
    (json.dumps({"method": "SUBSCRIBE_ALL", "id": 1}), 2),
    (json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@nonsense"], "id": 1}), 2),
    (json.dumps({"method": "GET_PROPERTY", "params": ["colour"], "id": 1}), 0),
    (json.dumps({"method": "SET_PROPERTY", "params": ["combined", "yes"], "id": 1}), 1),
])
def test_control_message_errors(venue: LocalVenue, ws_connect: Connect, raw: str,
                                expected_code: int) -> None:
    ws = ws_connect(venue.ws_url + "/ws")
    ws.send(raw)
    assert recv_json(ws)["code"] == expected_code


def test_unknown_stream_in_combined_path_is_refused(venue: LocalVenue) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as err:
        websocket.create_connection(venue.ws_url + "/stream?streams=dogeusdt@trade", timeout=5)
    assert err.value.status_code == 400


def test_any_name_under_ws_then_subscribe(venue: LocalVenue, ws_connect: Connect,
                                          alice: BinanceClient, bob: BinanceClient) -> None:
    """Binance accepts /ws/<any name> and streams what is SUBSCRIBEd (ccxt does this)."""
    ws = ws_connect(venue.ws_url + "/ws/dogeusdt@trade")
    send(ws, {"method": "LIST_SUBSCRIPTIONS", "id": 1})
    assert recv_json(ws, is_reply(1)) == {"result": [], "id": 1}
    other = ws_connect(venue.ws_url + "/ws/0")
    send(other, {"method": "SUBSCRIBE", "params": ["btcusdt@trade"], "id": 2})
    assert recv_json(other, is_reply(2)) == {"result": None, "id": 2}
    alice.limit("SELL", "0.01", "30000")
    bob.limit("BUY", "0.01", "30000")
    assert recv_json(other, lambda m: m.get("e") == "trade")["p"] == "30000.00000000"


def test_ping_gets_pong(venue: LocalVenue, ws_connect: Connect) -> None:
    ws = ws_connect(venue.ws_url + "/ws/btcusdt@trade")
    ws.ping(b"hello")
    opcode, frame = ws.recv_data_frame(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_PONG and frame.data == b"hello"


def test_partial_depth_and_diff_depth(venue: LocalVenue, ws_connect: Connect,
                                      bob: BinanceClient) -> None:
    ws = ws_connect(venue.ws_url + "/stream?streams=btcusdt@depth5@100ms/btcusdt@depth@100ms")
    for price in ("29000", "29100", "29200", "29300", "29400", "29500"):
        bob.limit("BUY", "0.01", price)
    partial, diffs = None, []
    while partial is None or not diffs or diffs[-1]["u"] < 6:
        message = recv_json(ws)
        if message["stream"] == "btcusdt@depth@100ms":
            diffs.append(message["data"])
        elif message["data"]["lastUpdateId"] == 6:
            partial = message["data"]
    assert [level[0] for level in partial["bids"]] == [
        "29500.00000000", "29400.00000000", "29300.00000000", "29200.00000000",
        "29100.00000000"]
    assert diffs[0]["e"] == "depthUpdate" and diffs[0]["U"] == 1
    assert all(b["U"] == a["u"] + 1 for a, b in zip(diffs, diffs[1:]))
    assert sorted(level[0] for d in diffs for level in d["b"])[0] == "29000.00000000"


def test_kline_and_ticker_streams(venue: LocalVenue, ws_connect: Connect, alice: BinanceClient,
                                  bob: BinanceClient) -> None:
    ws = ws_connect(venue.ws_url + "/stream?streams=btcusdt@kline_1m/btcusdt@ticker")
    alice.limit("SELL", "0.01", "30000")
    bob.limit("BUY", "0.01", "30000")
    # a minute may roll over first: then the closed candle (x true) carries the trade
    kline = recv_json(ws, lambda m: m["stream"] == "btcusdt@kline_1m"
                      and m["data"]["k"]["n"] == 1)["data"]
    assert kline["e"] == "kline" and kline["k"]["i"] == "1m" and kline["s"] == "BTCUSDT"
    assert (kline["k"]["o"], kline["k"]["c"], kline["k"]["v"]) == (
        "30000.00000000", "30000.00000000", "0.01000000")
    assert kline["k"]["T"] - kline["k"]["t"] == 59_999
    ticker = recv_json(ws, lambda m: m["stream"] == "btcusdt@ticker")["data"]
    assert ticker["e"] == "24hrTicker" and ticker["c"] == "30000.00000000" and ticker["n"] == 1


@pytest.mark.legacy_listen_keys
def test_user_data_stream_reports_orders_and_balances(venue: LocalVenue, ws_connect: Connect,
                                                      alice: BinanceClient,
                                                      bob: BinanceClient) -> None:
    key = alice.keyed("POST", "/api/v3/userDataStream").json()["listenKey"]
    ws = ws_connect(f"{venue.ws_url}/ws/{key}")
    eventually(lambda: "alice" in venue.exchange.listening)
    placed = alice.limit("SELL", "0.02", "30000", newClientOrderId="mine").json()
    new = recv_json(ws, lambda m: m["e"] == "executionReport")
    assert (new["x"], new["X"], new["c"], new["i"], new["q"], new["p"]) == (
        "NEW", "NEW", "mine", placed["orderId"], "0.02000000", "30000.00000000")
    position = recv_json(ws, lambda m: m["e"] == "outboundAccountPosition")
    assert {b["a"]: (b["f"], b["l"]) for b in position["B"]}["BTC"] == ("9.98000000",
                                                                        "0.02000000")
    bob.limit("BUY", "0.01", "30000")
    trade = recv_json(ws, lambda m: m["e"] == "executionReport")
    assert (trade["x"], trade["X"], trade["l"], trade["z"], trade["L"], trade["n"],
            trade["N"], trade["m"], trade["t"]) == (
        "TRADE", "PARTIALLY_FILLED", "0.01000000", "0.01000000", "30000.00000000",
        "0.30000000", "USDT", True, 1)
    alice.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="mine",
                 newClientOrderId="undo")
    canceled = recv_json(ws, lambda m: m["e"] == "executionReport" and m["x"] == "CANCELED")
    assert (canceled["c"], canceled["C"], canceled["X"]) == ("undo", "mine", "CANCELED")


@pytest.mark.legacy_listen_keys
def test_closing_the_listen_key_ends_the_stream(venue: LocalVenue, ws_connect: Connect,
                                                alice: BinanceClient) -> None:
    key = alice.keyed("POST", "/api/v3/userDataStream").json()["listenKey"]
    ws = ws_connect(f"{venue.ws_url}/ws/{key}")
    eventually(lambda: "alice" in venue.exchange.listening)
    alice.keyed("DELETE", "/api/v3/userDataStream", listenKey=key)
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        while True:
            ws.recv()
    eventually(lambda: "alice" not in venue.exchange.listening)


@pytest.mark.legacy_listen_keys
def test_other_accounts_orders_stay_private(venue: LocalVenue, ws_connect: Connect,
                                            alice: BinanceClient, bob: BinanceClient) -> None:
    key = alice.keyed("POST", "/api/v3/userDataStream").json()["listenKey"]
    ws = ws_connect(f"{venue.ws_url}/ws/{key}")
    eventually(lambda: "alice" in venue.exchange.listening)
    bob.limit("BUY", "0.01", "20000")
    alice.limit("BUY", "0.01", "20001", newClientOrderId="after")
    first = recv_json(ws, lambda m: m["e"] == "executionReport")
    assert first["c"] == "after"


@pytest.mark.legacy_listen_keys
def test_listen_key_expiry_sends_the_event_and_closes(start_venue: Callable[..., LocalVenue],
                                                      ws_connect: Connect) -> None:
    clock = TestClock(start_ns=time.time_ns())
    venue = start_venue(clock=clock, legacy_listen_keys=True)
    alice = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    key = alice.keyed("POST", "/api/v3/userDataStream").json()["listenKey"]
    ws = ws_connect(f"{venue.ws_url}/ws/{key}")
    eventually(lambda: "alice" in venue.exchange.listening)
    clock.advance(61 * 60 * 1_000_000_000)  # past the hour without a keepalive
    expired = recv_json(ws, lambda m: m.get("e") == "listenKeyExpired", timeout_s=10)
    assert expired["listenKey"] == key
    ws.close()  # answers the venue's close frame
    eventually(lambda: "alice" not in venue.exchange.listening)

"""The Binance spot WebSocket API side of the driver, Sans-I/O, on frames taken
from Binance's web-socket-api docs: the HMAC signature of sorted params (the
docs' worked example), request frames, responses (ok, refused, throttled,
banned) with their rateLimits, and user-data pushes wrapped in ``event``."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from engine.model import OrderStatus, Side
from engine.model_trade import OrderSpec, RateLimitKind, ReplyKind, TradingEndpoints, tightest_rate
from engine.venues import TRADING_DRIVERS, known_exchanges, make_trading_driver
from engine.venues.binance_trade import BinanceSpotTrade, ws_signed_params

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
RATE_LIMITS = [
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50, "count": 12},
    {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000,
     "count": 4043},
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000,
     "count": 321}]


@pytest.fixture
def driver() -> BinanceSpotTrade:
    return BinanceSpotTrade(TradingEndpoints("http://venue", "ws://127.0.0.1:9"), DOC_KEY,
                            DOC_SECRET)


def test_wsapi_signature_matches_the_docs_worked_example() -> None:
    # web-socket-api.md "SIGNED request example (HMAC)": params sorted by name.
    params = {"symbol": "BTCUSDT", "side": "SELL", "type": "LIMIT", "timeInForce": "GTC",
              "quantity": "0.01000000", "price": "52000.00", "newOrderRespType": "ACK",
              "recvWindow": 100, "timestamp": 1645423376532}
    signed = ws_signed_params(params, DOC_KEY, DOC_SECRET.encode())
    assert signed["signature"] == \
        "cc15477742bd704c29492d96c7ead9414dfd8e0ec4a00f947bb5bb454ddbd08a"
    assert signed["apiKey"] == DOC_KEY


def test_wsapi_order_place_frame_is_signed_post_only_with_exact_strings(
        driver: BinanceSpotTrade) -> None:
    request = driver.ws_new_order(OrderSpec("BTC/USDT", Side.BUY, "29000.01", "0.00100",
                                            "Et1-1-0"), 1700000000000, "req-7")
    frame = orjson.loads(request.body)
    assert (request.transport, request.request_id, request.counts_order, request.weight) == (
        "ws", "req-7", True, 1)
    assert frame["id"] == "req-7" and frame["method"] == "order.place"
    params = frame["params"]
    assert (params["type"], params["price"], params["quantity"], params["newClientOrderId"]) == (
        "LIMIT_MAKER", "29000.01", "0.00100", "Et1-1-0")
    assert "timeInForce" not in params and params["recvWindow"] == 5000
    payload = "&".join(f"{k}={params[k]}" for k in sorted(params) if k != "signature")
    assert params["signature"] == hmac.new(DOC_SECRET.encode(), payload.encode(),
                                           hashlib.sha256).hexdigest()
    assert request.url == "ws://127.0.0.1:9/ws-api/v3" and request.timestamp_ms == 1700000000000


@pytest.mark.parametrize("build, method, weight", [
    (lambda d: d.ws_query_order("BTC/USDT", "Et1-1-0", 1, "q"), "order.status", 4),
    (lambda d: d.ws_cancel_order("BTC/USDT", "Et1-1-0", 1, "q"), "order.cancel", 1),
    (lambda d: d.ws_open_orders("BTC/USDT", 1, "q"), "openOrders.status", 6),
    (lambda d: d.ws_subscribe_user(1, "q"), "userDataStream.subscribe.signature", 2),
    (lambda d: d.ws_cancel_replace("Et1-1-0", OrderSpec("BTC/USDT", Side.SELL, "1", "2",
                                                        "Et1-1-1"), 1, "q"),
     "order.cancelReplace", 1),
])
def test_wsapi_requests_name_todays_methods_and_weights(driver: BinanceSpotTrade, build, method,
                                                         weight) -> None:
    request = build(driver)
    frame = orjson.loads(request.body)
    assert frame["method"] == method and request.weight == weight
    assert "signature" in frame["params"] and frame["params"]["apiKey"] == DOC_KEY


def test_wsapi_ok_response_carries_the_order_and_the_usage(driver: BinanceSpotTrade) -> None:
    frame = orjson.dumps({"id": "req-7", "status": 200, "result": {
        "symbol": "BTCUSDT", "orderId": 12510053279, "orderListId": -1,
        "clientOrderId": "Et1-1-0", "transactTime": 1655716096505, "price": "0.10000000",
        "origQty": "10.00000000", "executedQty": "0.00000000", "cummulativeQuoteQty": "0.00000000",
        "status": "NEW", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
        "workingTime": 1655716096505, "selfTradePreventionMode": "NONE"},
        "rateLimits": RATE_LIMITS})
    message = driver.parse_ws(frame, 3)
    assert message.request_id == "req-7" and message.event is None
    reply = message.reply
    assert reply is not None and reply.kind == ReplyKind.OK
    assert reply.usage == {"ORDERS:10s": 12, "ORDERS:1d": 4043, "REQUEST_WEIGHT:1m": 321}
    assert reply.used_weight == 321
    update = driver.order_update(reply.body, 3)
    assert (update.client_order_id, update.venue_order_id, update.status, update.pair) == (
        "Et1-1-0", "12510053279", OrderStatus.NEW, "BTC/USDT")


@pytest.mark.parametrize("status, error, kind, flag", [
    (400, {"code": -2010, "msg": "Order would immediately match and take."}, "rejected",
     "would_take"),
    (400, {"code": -2010, "msg": "Duplicate order sent."}, "rejected", "duplicate"),
    (400, {"code": -2013, "msg": "Order does not exist."}, "rejected", "not_found"),
    (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."},
     "rejected", None),
    (429, {"code": -1015, "msg": "Too many new orders; current limit is 50 orders per 10 SECOND."},
     "retry", "order_rate_limited"),
    (500, {"code": -1007, "msg": "Timeout waiting for response from backend server."},
     "unknown", None),
    (503, {"code": -1008, "msg": "Server is currently overloaded with other requests."},
     "retry", None),
])
def test_wsapi_error_responses_are_classified_like_rest(driver: BinanceSpotTrade, status, error,
                                                        kind, flag) -> None:
    reply = driver.parse_ws(orjson.dumps({"id": 9, "status": status, "error": error,
                                          "rateLimits": RATE_LIMITS}), 0).reply
    assert reply is not None and reply.kind == kind and reply.code == error["code"]
    flags = {"would_take", "duplicate", "not_found", "order_rate_limited"}
    for name in flags:
        assert getattr(reply, name) == (name == flag), name


def test_wsapi_ban_answer_gives_the_wait_until_retry_after(driver: BinanceSpotTrade) -> None:
    frame = orjson.dumps({"id": "fc93", "status": 418, "error": {
        "code": -1003, "msg": "Way too much request weight used; IP banned until 1659146400000.",
        "data": {"serverTime": 1659142907531, "retryAfter": 1659146400000}}})
    reply = driver.parse_ws(frame, 0).reply
    assert reply is not None and reply.kind == ReplyKind.RETRY
    assert reply.retry_after_s == pytest.approx(3492.469)


def test_wsapi_user_event_push_and_garbage(driver: BinanceSpotTrade) -> None:
    push = driver.parse_ws(orjson.dumps({"subscriptionId": 0, "event": {
        "e": "executionReport", "E": 1, "s": "BTCUSDT", "c": "Et1-1-0", "S": "BUY",
        "o": "LIMIT_MAKER", "f": "GTC", "q": "0.01", "p": "29000.01", "x": "TRADE",
        "X": "FILLED", "i": 5, "l": "0.01", "z": "0.01", "L": "29000.01", "n": "0.00001",
        "N": "BTC", "T": 2, "t": 77, "m": True, "Z": "290.0001", "C": ""}}), 9)
    assert push.reply is None and push.event is not None
    (fill,) = push.event.fills
    assert (fill.trade_id, fill.client_order_id, fill.is_maker) == ("77", "Et1-1-0", True)
    balances = driver.parse_ws(b'{"event":{"e":"outboundAccountPosition","E":1,"u":1,"B":'
                               b'[{"a":"ABC","f":"11818.00000000","l":"182.00000000"}]}}', 0)
    assert balances.event is not None and balances.event.balances == {
        "ABC": ("11818.00000000", "182.00000000")}
    ended = driver.parse_ws(b'{"subscriptionId":0,"event":{"e":"eventStreamTerminated",'
                            b'"E":1}}', 0)
    assert ended.event is not None and ended.event.expired
    assert driver.parse_ws(b"{not json", 0).error
    assert driver.parse_ws(b'{"hello":1}', 0).error


def test_wsapi_url_defaults_live_and_follows_a_local_venue() -> None:
    live = BinanceSpotTrade(TradingEndpoints(), "k", "s")
    assert live.ws_api_url() == "wss://ws-api.binance.com:443/ws-api/v3"
    stream_host = BinanceSpotTrade(TradingEndpoints(ws="wss://stream.binance.com:9443"), "k", "s")
    assert stream_host.ws_api_url() == "wss://ws-api.binance.com:443/ws-api/v3"
    local = BinanceSpotTrade(TradingEndpoints(ws="ws://127.0.0.1:8765/"), "k", "s")
    assert local.ws_api_url() == "ws://127.0.0.1:8765/ws-api/v3"
    explicit = BinanceSpotTrade(TradingEndpoints(ws_api="ws://h:1/x"), "k", "s")
    assert explicit.ws_api_url() == "ws://h:1/x"


def test_rate_limits_from_exchange_info_and_the_defaults(driver: BinanceSpotTrade) -> None:
    rules = driver.rate_limits({"rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
         "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 50},
        {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 160000},
        {"rateLimitType": "SOMETHING_NEW", "interval": "MINUTE", "intervalNum": 1, "limit": 1}]})
    assert [r.key for r in rules] == ["REQUEST_WEIGHT:1m", "ORDERS:10s", "ORDERS:1d"]
    assert tightest_rate(rules, RateLimitKind.ORDERS) == 160000 / 86400
    assert tightest_rate(driver.default_rate_limits, RateLimitKind.REQUEST_WEIGHT) == 100.0


def test_registry_builds_drivers_and_names_what_it_lacks() -> None:
    assert TRADING_DRIVERS[("binance", "spot")] is BinanceSpotTrade  # type: ignore[index]
    driver = make_trading_driver("binance", "spot", TradingEndpoints(), "k", "s")
    assert driver.ws_api and driver.user_stream == "ws_api"
    with pytest.raises(ValueError, match="no trading driver for coinbase spot"):
        make_trading_driver("coinbase", "spot", TradingEndpoints(), "k", "s")
    assert "binance" in known_exchanges() and "okx" in known_exchanges()
    with pytest.raises(NotImplementedError, match="no positions"):
        driver.positions(1)
    with pytest.raises(NotImplementedError, match="no listenKey"):
        driver.listen_key("POST")

"""The Binance spot trading driver, Sans-I/O: signatures as rest-api.md's
worked example, every reply class (ok / rejected / unknown / retry), and the
user data stream's frames as the docs show them. (WebSocket API: test_binance_wsapi.py.)"""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from engine.model import OrderStatus, Side
from engine.model_trade import OrderSpec, TimeInForce, TradingEndpoints
from engine.trade.instruments import Instrument
from engine.venues.binance_trade import BinanceSpotTrade

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"


@pytest.fixture
def driver() -> BinanceSpotTrade:
    return BinanceSpotTrade(TradingEndpoints("http://venue", "ws://venue"), DOC_KEY, DOC_SECRET)


def test_signature_matches_the_rest_api_worked_example(driver: BinanceSpotTrade) -> None:
    # rest-api.md "Example 1": the query with recvWindow=5000 and this timestamp.
    request = driver._signed("POST", "/api/v3/order", "new_order", {
        "symbol": "LTCBTC", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
        "quantity": "1", "price": "0.1"}, 1499827319559)
    assert request.url.endswith("&recvWindow=5000&timestamp=1499827319559&signature="
                                "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")
    assert request.headers == {"X-MBX-APIKEY": DOC_KEY}


def test_post_only_is_limit_maker_and_money_is_the_exact_string(driver: BinanceSpotTrade) -> None:
    maker = driver.new_order(OrderSpec("BTC/USDT", Side.BUY, "29000.01", "0.00100", "Et1-1-0"), 1)
    assert "type=LIMIT_MAKER" in maker.url and "timeInForce" not in maker.url
    assert "price=29000.01&" in maker.url and "quantity=0.00100&" in maker.url
    assert maker.counts_order and maker.weight == 1
    plain = driver.new_order(OrderSpec("BTC/USDT", Side.SELL, "1", "2", "Et1-1-0", False,
                                       TimeInForce.IOC), 1)
    assert "type=LIMIT&" in plain.url and "timeInForce=IOC" in plain.url


@pytest.mark.parametrize("status, body, headers, kind", [
    (200, {"orderId": 1}, {}, "ok"),
    (400, {"code": -2010, "msg": "Order would immediately match and take."}, {}, "rejected"),
    (400, {"code": -2010, "msg": "Account has insufficient balance for requested action."}, {},
     "rejected"),
    (400, {"code": -1013, "msg": "Filter failure: PRICE_FILTER"}, {}, "rejected"),
    (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}, {},
     "rejected"),
    (429, {"code": -1003, "msg": "Too much request weight used"}, {"Retry-After": "7"}, "retry"),
    (418, {"code": -1003, "msg": "IP banned"}, {"Retry-After": "120"}, "retry"),
    (429, {"code": -1015, "msg": "Too many new orders"}, {}, "retry"),
    (400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
     {}, "retry"),
    (503, {"code": -1008, "msg": "Server is currently overloaded"}, {}, "retry"),
    (502, "<html>Bad Gateway</html>", {}, "unknown"),
    (500, {"code": -1000, "msg": "An unknown error occurred"}, {}, "unknown"),
    (200, {"code": -1007, "msg": "Timeout waiting for response from backend server."}, {},
     "unknown"),
    (200, "", {}, "unknown"),
])
def test_classify(driver: BinanceSpotTrade, status: int, body: object, headers: dict,
                  kind: str) -> None:
    raw = body.encode() if isinstance(body, str) else orjson.dumps(body)
    reply = driver.classify(status, raw, {**headers, "X-MBX-USED-WEIGHT-1M": "42",
                                          "X-MBX-ORDER-COUNT-10S": "3"})
    assert reply.kind == kind and reply.used_weight == 42
    assert reply.usage == {"REQUEST_WEIGHT:1m": 42, "ORDERS:10s": 3}
    assert reply.order_rate_limited == (reply.code == -1015)
    if "Retry-After" in headers:
        assert reply.retry_after_s == float(headers["Retry-After"])


def test_reply_flags(driver: BinanceSpotTrade) -> None:
    take = driver.classify(400, b'{"code":-2010,"msg":"Order would immediately match and '
                                      b'take."}', {})
    duplicate = driver.classify(400, b'{"code":-2010,"msg":"Duplicate order sent."}', {})
    missing = driver.classify(400, b'{"code":-2013,"msg":"Order does not exist."}', {})
    unknown_cancel = driver.classify(400, b'{"code":-2011,"msg":"Unknown order sent."}', {})
    assert take.would_take and not take.duplicate
    assert duplicate.duplicate and not duplicate.would_take
    assert missing.not_found and unknown_cancel.not_found


def test_execution_report_trade_is_an_update_and_a_fill(driver: BinanceSpotTrade) -> None:
    frame = orjson.dumps({
        "e": "executionReport", "E": 1499405658658, "s": "ETHBTC", "c": "Et1-1a-3", "S": "BUY",
        "o": "LIMIT", "f": "GTC", "q": "1.00000000", "p": "0.10264410", "P": "0.00000000",
        "x": "TRADE", "X": "PARTIALLY_FILLED", "r": "NONE", "i": 4293153, "l": "0.50000000",
        "z": "0.50000000", "L": "0.10264410", "n": "0.00050000", "N": "ETH",
        "T": 1499405658657, "t": 7, "w": False, "m": True, "Z": "0.05132205", "C": ""})
    event = driver.parse_user(frame, 5)
    (update,) = event.updates
    (fill,) = event.fills
    assert (update.pair, update.client_order_id, update.status, update.filled, update.update_id) \
        == ("ETH/BTC", "Et1-1a-3", OrderStatus.PARTIALLY_FILLED, "0.50000000", 7)
    assert Decimal(update.average_price) == Decimal("0.1026441")
    assert (fill.trade_id, fill.price, fill.quantity, fill.fee, fill.fee_asset, fill.is_maker) == (
        "7", "0.10264410", "0.50000000", "0.00050000", "ETH", True)
    assert fill.exch_ns == 1499405658657 * 1_000_000 and update.recv_ns == 5


def test_execution_report_cancel_names_our_order_by_C(driver: BinanceSpotTrade) -> None:
    frame = orjson.dumps({
        "e": "executionReport", "E": 1, "s": "BTCUSDT", "c": "web_cancel_42", "S": "SELL",
        "o": "LIMIT", "f": "GTC", "q": "0.01", "p": "31000", "x": "CANCELED", "X": "CANCELED",
        "i": 9, "l": "0", "z": "0", "L": "0", "n": "0", "N": None, "T": 2, "t": -1,
        "Z": "0", "C": "Et1-2-0"})
    event = driver.parse_user(frame, 0)
    assert [(u.client_order_id, u.status) for u in event.updates] == [
        ("Et1-2-0", OrderStatus.CANCELED)]
    assert event.fills == []


def test_account_position_expiry_and_garbage(driver: BinanceSpotTrade) -> None:
    balances = driver.parse_user(b'{"e":"outboundAccountPosition","E":1,"u":1,"B":[{"a":"BTC",'
                                 b'"f":"1.5","l":"0.25"}]}', 0)
    assert balances.balances == {"BTC": ("1.5", "0.25")}
    assert driver.parse_user(b'{"e":"listenKeyExpired","E":1,"listenKey":"k"}', 0).expired
    assert driver.parse_user(b"not json", 0).error
    assert driver.parse_user(b'{"e":"executionReport"}', 0).error


def test_exchange_info_filters_become_instrument_rules(driver: BinanceSpotTrade) -> None:
    body = {"symbols": [{"symbol": "BTCUSDT", "baseAsset": "BTC", "quoteAsset": "USDT",
                         "filters": [
                             {"filterType": "PRICE_FILTER", "minPrice": "0.01",
                              "maxPrice": "1000000", "tickSize": "0.01000000"},
                             {"filterType": "LOT_SIZE", "minQty": "0.00001000",
                              "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                             {"filterType": "NOTIONAL", "minNotional": "5.00000000"}]}]}
    rules = driver.instrument_rules(body)
    instrument = Instrument.from_rules("binance", rules["BTC/USDT"])
    assert instrument.price(Decimal("29000.019"), Side.BUY) == Decimal("29000.01")
    assert instrument.price(Decimal("29000.011"), Side.SELL) == Decimal("29000.02")
    assert instrument.quantity(Decimal("0.123456789")) == Decimal("0.12345")
    assert instrument.tick_away(Decimal("29000.01"), Side.BUY) == Decimal("29000.00")
    instrument.check(Decimal("29000.01"), Decimal("0.001"))
    with pytest.raises(ValueError, match="tick"):
        instrument.check(Decimal("29000.001"), Decimal("0.001"))
    with pytest.raises(ValueError, match="notional"):
        instrument.check(Decimal("1.00"), Decimal("0.001"))

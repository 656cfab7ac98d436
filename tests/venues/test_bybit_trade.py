"""The Bybit v5 trading drivers (engine/venues/bybit_trade*.py) on frames and
answers shaped as Bybit's v5 docs show them (docs/venues/bybit.md "Trading"):
signing, every outcome's class, acknowledgements, the private stream's pushes."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from engine.model import Market, OrderStatus, Side
from engine.model_trade import (
    MarginType,
    OrderSpec,
    PositionMode,
    PositionSide,
    ReplyKind,
    TradingEndpoints,
)
from engine.venues import make_trading_driver
from engine.venues.bybit_trade import BybitSpotTrade
from engine.venues.bybit_trade_linear import BybitLinearTrade

KEY, SECRET = "XXXXXXXXXX", "YYYYYYYYYYYYYYYYYY"
TS = 1_711_001_595_207
ENDS = TradingEndpoints("http://127.0.0.1:9", "ws://127.0.0.1:9")


def spot() -> BybitSpotTrade:
    return BybitSpotTrade(ENDS, KEY, SECRET)


def linear() -> BybitLinearTrade:
    return BybitLinearTrade(ENDS, KEY, SECRET)


def sign(payload: str) -> str:
    return hmac.new(SECRET.encode(), payload.encode(), hashlib.sha256).hexdigest()


def answer(code: int = 0, result: object = None, msg: str = "OK", time_ms: int = TS) -> bytes:
    return orjson.dumps({"retCode": code, "retMsg": msg, "result": {} if result is None
                         else result, "retExtInfo": {}, "time": time_ms})


SPEC = OrderSpec("BTC/USDT", Side.BUY, "30000.1", "0.001", "E7-1a-3")


# ------------------------------------------------------------------ requests

def test_registry_bybit_spot_and_linear_drivers() -> None:
    assert isinstance(make_trading_driver("bybit", "spot", ENDS, KEY, SECRET), BybitSpotTrade)
    driver = make_trading_driver("bybit", Market.FUTURES, ENDS, KEY, SECRET)
    assert isinstance(driver, BybitLinearTrade) and driver.venue == "bybit_futures"


def test_new_order_post_body_signed_over_timestamp_key_window_body() -> None:
    request = spot().new_order(SPEC, TS)
    assert request.method == "POST" and request.url == "http://127.0.0.1:9/v5/order/create"
    body = orjson.loads(request.body)
    assert body == {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
                    "qty": "0.001", "price": "30000.1", "timeInForce": "PostOnly",
                    "orderLinkId": "E7-1a-3"}
    h = request.headers
    assert h["X-BAPI-TIMESTAMP"] == str(TS) and h["X-BAPI-RECV-WINDOW"] == "5000"
    assert h["X-BAPI-SIGN"] == sign(f"{TS}{KEY}5000{request.body}")
    assert request.counts_order and request.timestamp_ms == TS


def test_query_order_get_signed_over_query_string() -> None:
    request = spot().query_order("ETH/USDT", "E7-1a-3", TS)
    query = urlsplit(request.url).query
    assert dict(parse_qsl(query)) == {"category": "spot", "symbol": "ETHUSDT",
                                      "orderLinkId": "E7-1a-3"}
    assert request.headers["X-BAPI-SIGN"] == sign(f"{TS}{KEY}5000{query}")
    assert request.body == "" and not request.counts_order


def test_limit_order_without_post_only_uses_time_in_force() -> None:
    from dataclasses import replace
    body = orjson.loads(spot().new_order(replace(SPEC, post_only=False), TS).body)
    assert body["timeInForce"] == "GTC"


@pytest.mark.parametrize("bad", ["", "a" * 37, "E7.1a", "E7 1a", "E7/1"])
def test_client_id_outside_bybit_charset_refused(bad: str) -> None:
    from dataclasses import replace
    with pytest.raises(ValueError, match="orderLinkId"):
        spot().new_order(replace(SPEC, client_order_id=bad), TS)


def test_linear_hedge_mode_position_index_and_reduce_only() -> None:
    driver = linear()
    from dataclasses import replace
    close_long = replace(SPEC, side=Side.SELL, reduce_only=True)
    one_way = orjson.loads(driver.new_order(close_long, TS).body)
    assert one_way["positionIdx"] == 0 and one_way["reduceOnly"] is True
    driver.set_position_mode(PositionMode.HEDGE, TS)
    body = orjson.loads(driver.new_order(close_long, TS).body)
    assert body["positionIdx"] == 1 and "reduceOnly" not in body  # the leg says it
    assert orjson.loads(driver.new_order(replace(SPEC, side=Side.SELL), TS).body)[
        "positionIdx"] == 2
    assert body["category"] == "linear"


def test_linear_settings_requests() -> None:
    driver = linear()
    lev = orjson.loads(driver.set_leverage("BTC/USDT", 5, TS).body)
    assert lev == {"category": "linear", "symbol": "BTCUSDT", "buyLeverage": "5",
                   "sellLeverage": "5"}
    assert orjson.loads(driver.set_margin_type("BTC/USDT", MarginType.ISOLATED, TS).body) == \
        {"setMarginMode": "ISOLATED_MARGIN"}
    assert orjson.loads(driver.set_position_mode(PositionMode.HEDGE, TS).body)["mode"] == 3
    with pytest.raises(ValueError):
        driver.set_leverage("BTC/USDT", 0, TS)
    with pytest.raises(NotImplementedError):
        spot().positions(TS)


def test_fills_request_start_capped_to_seven_days() -> None:
    request = spot().my_trades("BTC/USDT", TS, start_ms=0, limit=1000)
    params = dict(parse_qsl(urlsplit(request.url).query))
    assert params["limit"] == "100"
    assert int(params["startTime"]) == TS - 7 * 86_400_000 + 60_000


def test_trade_socket_frames_and_auth() -> None:
    driver = spot()
    frame = orjson.loads(driver.ws_new_order(SPEC, TS, "r9").body)
    assert frame["op"] == "order.create" and frame["reqId"] == "r9"
    assert frame["header"] == {"X-BAPI-TIMESTAMP": str(TS), "X-BAPI-RECV-WINDOW": "5000"}
    assert frame["args"][0]["orderLinkId"] == "E7-1a-3"
    logon = driver.ws_logon(TS, "r1")
    assert logon is not None and logon.request_id == "auth"
    auth = orjson.loads(logon.body)
    expires = auth["args"][1]
    assert auth["op"] == "auth" and auth["args"][0] == KEY and expires > TS
    assert auth["args"][2] == sign(f"GET/realtime{expires}")
    assert driver.user_stream_url("") == "ws://127.0.0.1:9/v5/private"
    assert driver.ws_api_url() == "ws://127.0.0.1:9/v5/trade"
    sub = orjson.loads(linear().ws_subscribe_user(TS, "r2").body)
    assert sub["args"] == ["order", "execution", "position", "wallet"]


def test_live_defaults_when_no_endpoints() -> None:
    driver = BybitSpotTrade(TradingEndpoints(), KEY, SECRET)
    assert driver.rest_base == "https://api.bybit.com"
    assert driver.user_stream_url("") == "wss://stream.bybit.com/v5/private"
    assert driver.ws_api_url() == "wss://stream.bybit.com/v5/trade"


# ------------------------------------------------------------------- answers

def test_classify_ok_returns_result() -> None:
    reply = spot().classify(200, answer(0, {"orderId": "1", "orderLinkId": "E7-1a-3"}),
                            {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "19"})
    assert reply.kind == ReplyKind.OK and reply.body["orderId"] == "1"
    assert reply.usage == {"ENDPOINT:1s": 1}


@pytest.mark.parametrize(("status", "code", "kind", "flag"), [
    (200, 110001, ReplyKind.REJECTED, "not_found"),
    (200, 170213, ReplyKind.REJECTED, "not_found"),
    (200, 110072, ReplyKind.REJECTED, "duplicate"),
    (200, 110007, ReplyKind.REJECTED, ""),
    (200, 10001, ReplyKind.REJECTED, ""),
    (200, 10004, ReplyKind.REJECTED, ""),
    (200, 10006, ReplyKind.RETRY, "order_rate_limited"),
    (200, 10002, ReplyKind.RETRY, "clock_skew"),
    (200, 10000, ReplyKind.UNKNOWN, ""),
    (200, 10016, ReplyKind.UNKNOWN, ""),
    (200, 110043, ReplyKind.OK, ""),
    (200, 110025, ReplyKind.OK, ""),
    (502, 0, ReplyKind.UNKNOWN, ""),
    (429, 0, ReplyKind.RETRY, ""),
    (401, 0, ReplyKind.REJECTED, ""),
])
def test_classify_every_outcome(status: int, code: int, kind: ReplyKind, flag: str) -> None:
    body = answer(code, msg="x") if status == 200 else b"<html>bad gateway</html>"
    reply = spot().classify(status, body, {})
    assert reply.kind == kind
    for name in ("not_found", "duplicate", "order_rate_limited", "clock_skew"):
        assert getattr(reply, name) is (name == flag), name


def test_classify_ip_ban_waits_ten_minutes() -> None:
    reply = spot().classify(403, b"access too frequent", {})
    assert reply.kind == ReplyKind.RETRY and reply.retry_after_s == 600.0


def test_classify_rate_limit_retry_after_from_reset_header() -> None:
    reply = spot().classify(200, answer(10006, msg="Too many visits!", time_ms=TS),
                            {"X-Bapi-Limit-Reset-Timestamp": str(TS + 750)})
    assert reply.retry_after_s == pytest.approx(0.75)


def test_complete_ack_carries_the_order_asked_for() -> None:
    driver = spot()
    request = driver.new_order(SPEC, TS)
    reply = driver.complete(request, driver.classify(200, answer(0, {
        "orderId": "1321003749386327552", "orderLinkId": "E7-1a-3"}), {}))
    update = driver.order_update(reply.body, 5)
    assert (update.client_order_id, update.venue_order_id, update.status, update.side,
            update.price, update.quantity, update.filled) == (
        "E7-1a-3", "1321003749386327552", OrderStatus.NEW, Side.BUY, "30000.1", "0.001", "0")
    ws = driver.ws_new_order(SPEC, TS, "r3")
    message = driver.parse_ws(orjson.dumps({
        "reqId": "r3", "retCode": 0, "retMsg": "OK", "op": "order.create",
        "data": {"orderId": "77", "orderLinkId": "E7-1a-3"},
        "header": {"X-Bapi-Limit": "20", "X-Bapi-Limit-Status": "18",
                   "X-Bapi-Limit-Reset-Timestamp": str(TS), "Timenow": str(TS)},
        "connId": "c1"}), 5)
    assert message.request_id == "r3" and message.reply is not None
    assert message.reply.usage == {"ENDPOINT:1s": 2}
    done = driver.complete(ws, message.reply)
    assert driver.order_update(done.body, 5).venue_order_id == "77"


def test_complete_empty_lookup_is_not_found() -> None:
    driver = spot()
    request = driver.query_order("BTC/USDT", "E7-1a-3", TS)
    reply = driver.complete(request, driver.classify(200, answer(0, {"list": [],
                                                                     "nextPageCursor": ""}), {}))
    assert reply.kind == ReplyKind.REJECTED and reply.not_found


def test_trade_socket_refusal_classified() -> None:
    message = spot().parse_ws(orjson.dumps({
        "reqId": "r4", "retCode": 10429, "retMsg": "System level frequency protection",
        "op": "order.create", "data": {}, "header": {}}), 5)
    assert message.reply is not None and message.reply.kind == ReplyKind.RETRY
    message = spot().parse_ws(orjson.dumps({"reqId": "r5", "retCode": 110007,
                                            "retMsg": "Insufficient balance",
                                            "op": "order.create", "data": {}}), 5)
    assert message.reply is not None and message.reply.kind == ReplyKind.REJECTED


def test_private_stream_auth_answers() -> None:
    ok = spot().parse_ws(b'{"success":true,"ret_msg":"","op":"auth","conn_id":"c","req_id":"auth"}',
                         5)
    assert ok.request_id == "auth" and ok.reply is not None and ok.reply.kind == ReplyKind.OK
    trade = spot().parse_ws(b'{"retCode":0,"retMsg":"OK","op":"auth","connId":"c"}', 5)
    assert trade.request_id == "auth" and trade.reply is not None
    assert trade.reply.kind == ReplyKind.OK
    sub = spot().parse_ws(b'{"success":true,"ret_msg":"","op":"subscribe","req_id":"r2"}', 5)
    assert sub.request_id == "r2" and sub.reply is not None
    bad = spot().parse_ws(b'{"success":false,"ret_msg":"Params Error","op":"auth",'
                          b'"conn_id":"c","req_id":"r1"}', 5)
    assert bad.reply is not None and bad.reply.kind == ReplyKind.REJECTED
    assert "Params Error" in bad.reply.message
    pong = spot().parse_ws(b'{"req_id":"x","op":"pong","args":["1675418560633"],"conn_id":"c"}', 5)
    assert pong.reply is None and pong.event is None and not pong.error


@pytest.mark.parametrize("frame", [b"not json", b"[1,2]", b'{"reqId":"r","retCode":"x"}',
                                   b'{"topic":"order","data":[{"symbol":"BTCUSDT"}]}'])
def test_bad_frames_never_raise(frame: bytes) -> None:
    message = spot().parse_ws(frame, 5)
    assert message.error or (message.event is not None and message.event.error)


# ---------------------------------------------------------------- pushes

ORDER_ROW = {"symbol": "BTCUSDT", "orderId": "fd43", "side": "Buy", "orderType": "Limit",
             "cancelType": "UNKNOWN", "price": "30000", "qty": "0.01", "timeInForce": "PostOnly",
             "orderStatus": "PartiallyFilled", "orderLinkId": "E7-1a-3", "cumExecQty": "0.004",
             "cumExecValue": "120", "avgPrice": "30000", "cumExecFee": "0.00000400",
             "rejectReason": "EC_NoError", "updatedTime": "1672364262457", "category": "spot",
             "feeCurrency": "BTC"}


def push(topic: str, rows: list[dict]) -> bytes:
    return orjson.dumps({"id": "1", "topic": topic, "creationTime": 1672364262474, "data": rows})


def test_order_push_becomes_update() -> None:
    event = spot().parse_user(push("order", [ORDER_ROW]), 9)
    (update,) = event.updates
    assert (update.pair, update.client_order_id, update.status, update.filled,
            update.average_price, update.exch_ns) == (
        "BTC/USDT", "E7-1a-3", OrderStatus.PARTIALLY_FILLED, "0.004", "30000",
        1672364262457 * 1_000_000)


def test_post_only_refusal_recognised_as_would_take() -> None:
    row = {**ORDER_ROW, "orderStatus": "Cancelled", "cumExecQty": "0", "avgPrice": "",
           "rejectReason": "EC_PostOnlyWillTakeLiquidity"}
    event = spot().parse_user(push("order", [row]), 9)
    assert event.updates[0].status == OrderStatus.REJECTED
    assert event.would_take == ["E7-1a-3"]


def test_pushes_of_another_category_skipped() -> None:
    event = linear().parse_user(push("order", [ORDER_ROW]), 9)
    assert event.updates == [] and not event.error


EXEC_ROW = {"category": "linear", "symbol": "BTCUSDT", "execFee": "0.0264", "execId": "0ab1",
            "execPrice": "95900.1", "execQty": "0.5", "execType": "Trade", "orderId": "9aac",
            "orderLinkId": "E7-1a-3", "side": "Sell", "execTime": "1746270400353",
            "isMaker": True, "execPnl": "0.05", "feeCurrency": "", "positionIdx": 0}


def test_execution_push_fills_liquidation_and_funding() -> None:
    rows = [EXEC_ROW, {**EXEC_ROW, "execId": "b2", "execType": "BustTrade", "orderLinkId": ""},
            {**EXEC_ROW, "execId": "f3", "execType": "Funding"}]
    event = linear().parse_user(push("execution", rows), 9)
    trade, bust = event.fills
    assert (trade.trade_id, trade.side, trade.price, trade.quantity, trade.fee,
            trade.fee_asset, trade.is_maker, trade.realized_pnl, trade.position_side) == (
        "0ab1", Side.SELL, "95900.1", "0.5", "0.0264", "USDT", True, "0.05", "both")
    assert bust.liquidation and not trade.liquidation
    assert event.funding_due


def test_spot_fill_fee_asset_is_fee_currency() -> None:
    row = {**EXEC_ROW, "category": "spot", "feeCurrency": "BTC", "side": "Buy"}
    (fill,) = spot().fills({"list": [row], "nextPageCursor": ""})
    assert fill.fee_asset == "BTC" and fill.realized_pnl == "" and fill.market == Market.SPOT


def test_fills_cursor_only_while_page_full() -> None:
    driver = spot()
    assert driver.fills_cursor({"list": [EXEC_ROW], "nextPageCursor": "abc"}) is None
    full = {"list": [EXEC_ROW] * driver.fills_page, "nextPageCursor": "abc"}
    assert driver.fills_cursor(full) == "abc"


def test_position_push_and_rest_rows_signed() -> None:
    row = {"positionIdx": 0, "tradeMode": 0, "symbol": "BTCUSDT", "side": "Sell", "size": "0.01",
           "entryPrice": "30000", "leverage": "10", "markPrice": "29950", "unrealisedPnl": "0.5",
           "liqPrice": "45000", "updatedTime": "1697682317038", "category": "linear"}
    (report,) = linear().parse_user(push("position", [row]), 9).positions
    assert (report.quantity, report.entry_price, report.liquidation_price, report.margin_type,
            report.position_side) == ("-0.01", "30000", "45000", MarginType.CROSS,
                                      PositionSide.BOTH)
    rest = {**row, "avgPrice": "30001", "side": "Buy", "tradeMode": 1, "positionIM": "30"}
    rest.pop("entryPrice")
    (report,) = linear().position_reports({"list": [rest]})
    assert (report.quantity, report.entry_price, report.margin_type, report.isolated_margin) == (
        "0.01", "30001", MarginType.ISOLATED, "30")


def test_wallet_push_balances() -> None:
    row = {"accountType": "UNIFIED", "coin": [
        {"coin": "USDT", "walletBalance": "1000.5", "locked": "100.5"},
        {"coin": "BTC", "walletBalance": "0.1", "locked": ""}]}
    assert spot().parse_user(push("wallet", [row]), 9).balances == {
        "USDT": ("900.0", "100.5"), "BTC": ("0.1", "0")}


def test_funding_list_books_wallet_change() -> None:
    rows = [{"id": "592324_BTCUSDT_161440249321", "symbol": "BTCUSDT", "category": "linear",
             "transactionTime": "1697530800000", "type": "SETTLEMENT", "funding": "0.003676",
             "change": "-0.003676", "currency": "USDT"},
            {"id": "t", "symbol": "BTCUSDT", "type": "TRADE", "transactionTime": "1",
             "change": "5"}]
    (fee,) = linear().funding_list({"list": rows})
    assert (fee.pair, fee.amount, fee.asset, fee.funding_id) == (
        "BTC/USDT", "-0.003676", "USDT", "592324_BTCUSDT_161440249321")


def test_instrument_rules_spot_and_linear() -> None:
    spot_rows = {"category": "spot", "list": [{
        "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "Trading",
        "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001",
                          "minOrderQty": "0.000048", "maxOrderQty": "71.73956243",
                          "minOrderAmt": "1", "maxOrderAmt": "2000000"},
        "priceFilter": {"tickSize": "0.01"}}]}
    rules = spot().instrument_rules(spot_rows)["BTC/USDT"]
    assert (rules.tick_size, rules.step_size, rules.min_qty, rules.min_notional) == (
        "0.01", "0.000001", "0.000048", "1")
    linear_rows = {"category": "linear", "list": [{
        "symbol": "ETHUSDT", "baseCoin": "ETH", "quoteCoin": "USDT", "status": "Trading",
        "lotSizeFilter": {"maxOrderQty": "7240", "minOrderQty": "0.01", "qtyStep": "0.01",
                          "minNotionalValue": "5"},
        "priceFilter": {"minPrice": "0.01", "maxPrice": "199999.98", "tickSize": "0.01"}},
        {"symbol": "OLDUSDT", "baseCoin": "OLD", "quoteCoin": "USDT", "status": "Closed",
         "lotSizeFilter": {"qtyStep": "1"}, "priceFilter": {"tickSize": "1"}}]}
    rules_by_pair = linear().instrument_rules(linear_rows)
    assert list(rules_by_pair) == ["ETH/USDT"]
    assert rules_by_pair["ETH/USDT"].step_size == "0.01"
    assert rules_by_pair["ETH/USDT"].min_notional == "5"


def test_server_time_from_time_nano() -> None:
    reply = spot().classify(200, answer(0, {"timeSecond": "1688639403",
                                            "timeNano": "1688639403423213947"}), {})
    assert spot().server_time_ms(reply.body) == 1688639403423

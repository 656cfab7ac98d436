"""The OKX v5 trading driver, Sans-I/O: requests signed exactly as OKX documents
(checked against ccxt's own OKX signer), clOrdId within OKX's charset and
length and mapped back, every documented answer classified (sCode inside a
code "1" envelope, 50011 / 429 retry, 50004 unknown, 51603 not found, 51016
duplicate, 50061 order rate), the private socket's login / subscribe / op
answers matched to their ids, and orders / positions pushes from the docs
parsed into base-unit order updates, fills and positions."""

from __future__ import annotations

import base64
import hashlib
import hmac
from decimal import Decimal

import ccxt
import orjson
import pytest

from engine.model import Market, OrderStatus, Side
from engine.model_trade import (
    MarginType,
    OrderSpec,
    PositionMode,
    PositionSide,
    ReplyKind,
    TimeInForce,
    TradingEndpoints,
)
from engine.trade.actions import make_client_order_id, parse_client_order_id
from engine.venues import make_trading_driver
from engine.venues.okx_trade import OkxSpotTrade
from engine.venues.okx_trade_swap import OkxSwapTrade
from engine.venues.okx_trade_wire import our_client_id, wire_client_id

KEY, SECRET, PASSPHRASE = "okx-key", "okx-secret", "okx-pass"
TS = 1_700_000_000_123  # 2023-11-14T22:13:20.123Z

SPOT_INSTRUMENTS = {"code": "0", "msg": "", "data": [
    {"instType": "SPOT", "instId": "BTC-USDT", "baseCcy": "BTC", "quoteCcy": "USDT",
     "tickSz": "0.1", "lotSz": "0.00000001", "minSz": "0.00001", "maxLmtSz": "9999999999",
     "state": "live", "instIdCode": 1000001},
    {"instType": "SPOT", "instId": "OLD-USDT", "baseCcy": "OLD", "quoteCcy": "USDT",
     "tickSz": "0.1", "lotSz": "1", "minSz": "1", "state": "suspend"}]}
SWAP_INSTRUMENTS = {"code": "0", "msg": "", "data": [
    {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "ctVal": "0.01", "ctValCcy": "BTC",
     "settleCcy": "USDT", "ctType": "linear", "tickSz": "0.1", "lotSz": "0.01",
     "minSz": "0.01", "maxLmtSz": "100000", "state": "live", "instIdCode": 2000001},
    {"instType": "SWAP", "instId": "BTC-USD-SWAP", "ctVal": "100", "ctValCcy": "USD",
     "settleCcy": "BTC", "ctType": "inverse", "tickSz": "0.1", "lotSz": "1", "minSz": "1",
     "state": "live"}]}


def spot() -> OkxSpotTrade:
    d = make_trading_driver("okx", Market.SPOT, TradingEndpoints(), KEY, SECRET,
                            passphrase=PASSPHRASE)
    assert isinstance(d, OkxSpotTrade)
    return d


def swap() -> OkxSwapTrade:
    d = make_trading_driver("okx", Market.FUTURES, TradingEndpoints(), KEY, SECRET,
                            passphrase=PASSPHRASE)
    assert isinstance(d, OkxSwapTrade)
    d.instrument_rules(SWAP_INSTRUMENTS)
    return d


def spec(cid: str = "E7-1a-3", post_only: bool = True, **kw: object) -> OrderSpec:
    base = {"pair": "BTC/USDT", "side": Side.BUY, "price": "30000.1", "quantity": "0.01",
            "client_order_id": cid, "post_only": post_only}
    return OrderSpec(**{**base, **kw})  # type: ignore[arg-type]


def ccxt_signature(method: str, path: str, params: dict) -> str:
    """ccxt's own OKX signer (an independent implementation) for the same call."""
    exchange = ccxt.okx({"apiKey": KEY, "secret": SECRET, "password": PASSPHRASE})
    exchange.nonce = lambda: TS
    return exchange.sign(path, ["private"], method, dict(params))["headers"]["OK-ACCESS-SIGN"]


# ------------------------------------------------------------------ client ids


def test_client_id_fits_okx_rule_and_maps_back() -> None:
    for cid in ("E7-1a-3", make_client_order_id("grid_X1", 35, 10**6), "EX-x-0"):
        wire = wire_client_id(cid)
        assert wire.isalnum() and wire.isascii() and len(wire) <= 32, wire
        assert our_client_id(wire) == cid
    assert wire_client_id("E7-1a-3") == "E7XA1aXA3"
    parsed = parse_client_order_id(our_client_id(wire_client_id("E7-1a-3")))
    assert parsed is not None and parsed.slot_id == 46 and parsed.generation == 3


def test_client_id_of_someone_else_unchanged_and_too_long_refused() -> None:
    assert our_client_id("manualOrder7") == "manualOrder7"
    assert our_client_id("abcXQ") == "abcXQ"  # not our escape: left alone
    with pytest.raises(ValueError, match="does not fit OKX clOrdId"):
        wire_client_id(make_client_order_id("a" * 16, 10**9, 10**9))


# -------------------------------------------------------------------- requests


def test_new_order_rest_signed_like_ccxt() -> None:
    request = spot().new_order(spec(), TS)
    assert request.method == "POST" and request.url == "https://www.okx.com/api/v5/trade/order"
    body = orjson.loads(request.body)
    assert body == {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy",
                    "ordType": "post_only", "px": "30000.1", "sz": "0.01",
                    "clOrdId": "E7XA1aXA3"}
    assert request.counts_order and request.kind == "new_order"
    h = request.headers
    assert h["OK-ACCESS-TIMESTAMP"] == "2023-11-14T22:13:20.123Z"
    assert h["OK-ACCESS-PASSPHRASE"] == PASSPHRASE and h["OK-ACCESS-KEY"] == KEY
    assert h["expTime"] == str(TS + 5000)
    assert h["OK-ACCESS-SIGN"] == ccxt_signature("POST", "trade/order", body)
    expected = base64.b64encode(hmac.new(SECRET.encode(), (
        "2023-11-14T22:13:20.123ZPOST/api/v5/trade/order" + request.body).encode(),
        hashlib.sha256).digest()).decode()
    assert h["OK-ACCESS-SIGN"] == expected


def test_query_signs_path_with_query_like_ccxt() -> None:
    request = spot().query_order("BTC/USDT", "E7-1a-3", TS)
    assert request.url == ("https://www.okx.com/api/v5/trade/order?instId=BTC-USDT&"
                           "clOrdId=E7XA1aXA3")
    assert request.body == ""
    assert request.headers["OK-ACCESS-SIGN"] == ccxt_signature(
        "GET", "trade/order", {"instId": "BTC-USDT", "clOrdId": "E7XA1aXA3"})


def test_limit_ioc_and_time_in_force_mapping() -> None:
    d = spot()
    assert orjson.loads(d.new_order(spec(post_only=False), TS).body)["ordType"] == "limit"
    ioc = spec(post_only=False, time_in_force=TimeInForce.IOC)
    assert orjson.loads(d.new_order(ioc, TS).body)["ordType"] == "ioc"


def test_passphrase_required() -> None:
    with pytest.raises(ValueError, match="passphrase"):
        make_trading_driver("okx", Market.SPOT, TradingEndpoints(), KEY, SECRET)


def test_local_endpoints_private_socket_url() -> None:
    d = make_trading_driver("okx", Market.SPOT, TradingEndpoints(
        "http://127.0.0.1:8769", "ws://127.0.0.1:8769/ws/v5/public"), KEY, SECRET,
        passphrase=PASSPHRASE)
    assert d.ws_api_url() == "ws://127.0.0.1:8769/ws/v5/private"
    assert d.new_order(spec(), TS).url == "http://127.0.0.1:8769/api/v5/trade/order"


def test_ws_order_uses_inst_id_code_once_known() -> None:
    d = spot()
    before = orjson.loads(d.ws_new_order(spec(), TS, "r5").body)
    assert before["args"][0]["instId"] == "BTC-USDT"
    d.instrument_rules(SPOT_INSTRUMENTS)
    message = orjson.loads(d.ws_new_order(spec(), TS, "r6").body)
    assert message["id"] == "r6" and message["op"] == "order"
    assert message["expTime"] == str(TS + 5000)
    args = message["args"][0]
    assert args["instIdCode"] == 1000001 and "instId" not in args
    assert args["clOrdId"] == "E7XA1aXA3" and args["ordType"] == "post_only"
    cancel = orjson.loads(d.ws_cancel_order("BTC/USDT", "E7-1a-3", TS, "r7").body)
    assert cancel["op"] == "cancel-order" and cancel["args"] == [
        {"instIdCode": 1000001, "clOrdId": "E7XA1aXA3"}]


def test_login_signature_documented_recipe() -> None:
    login = spot().ws_logon(TS, "r1")
    assert login is not None
    args = orjson.loads(login.body)["args"][0]
    assert args["timestamp"] == "1700000000"
    expected = base64.b64encode(hmac.new(SECRET.encode(), b"1700000000GET/users/self/verify",
                                         hashlib.sha256).digest()).decode()
    assert args == {"apiKey": KEY, "passphrase": PASSPHRASE, "timestamp": "1700000000",
                    "sign": expected}


# ------------------------------------------------------------- classification


@pytest.mark.parametrize(("status", "body", "kind", "flag"), [
    (200, {"code": "0", "msg": "", "data": [{"ordId": "1", "clOrdId": "a", "sCode": "0"}]},
     ReplyKind.OK, ""),
    (200, {"code": "1", "msg": "Operation failed.", "data": [
        {"ordId": "", "clOrdId": "a", "sCode": "51008", "sMsg": "Insufficient balance"}]},
     ReplyKind.REJECTED, ""),
    (429, {"code": "50011", "msg": "Rate limit reached.", "data": []}, ReplyKind.RETRY, ""),
    (200, {"code": "1", "msg": "", "data": [{"sCode": "50061", "sMsg": "order rate"}]},
     ReplyKind.RETRY, "order_rate_limited"),
    (200, {"code": "50004", "msg": "API endpoint request timeout", "data": []},
     ReplyKind.UNKNOWN, ""),
    (503, None, ReplyKind.UNKNOWN, ""),
    (200, {"code": "51603", "msg": "Order does not exist", "data": []},
     ReplyKind.REJECTED, "not_found"),
    (200, {"code": "1", "msg": "", "data": [{"sCode": "51400", "sMsg": "cancel failed"}]},
     ReplyKind.REJECTED, "not_found"),
    (200, {"code": "1", "msg": "", "data": [{"sCode": "51016", "sMsg": "Duplicated clOrdId"}]},
     ReplyKind.REJECTED, "duplicate"),
    (401, {"code": "50113", "msg": "Invalid Sign", "data": []}, ReplyKind.REJECTED, ""),
    (200, {"code": "50102", "msg": "Timestamp request expired", "data": []}, ReplyKind.RETRY,
     "clock_skew"),
])
def test_classify(status: int, body: object, kind: ReplyKind, flag: str) -> None:
    reply = spot().classify(status, orjson.dumps(body) if body is not None else b"", {})
    assert reply.kind == kind
    for name in ("not_found", "duplicate", "order_rate_limited", "would_take", "clock_skew"):
        assert getattr(reply, name) == (name == flag), name


def test_classify_reads_sub_code_message() -> None:
    reply = spot().classify(200, orjson.dumps({"code": "1", "msg": "Operation failed.", "data": [
        {"sCode": "51008", "sMsg": "Order failed. Insufficient USDT balance"}]}), {})
    assert reply.code == 51008 and "Insufficient" in reply.message


# ------------------------------------------------------------ private socket


def test_login_and_two_channel_subscribe_answered_by_id() -> None:
    d = swap()
    assert d.ws_logon(TS, "r1") is not None
    message = d.parse_ws('{"event":"login","code":"0","msg":"","connId":"a4d3ae55"}', 1)
    assert message.request_id == "r1" and message.reply is not None
    assert message.reply.kind == ReplyKind.OK
    sub = orjson.loads(d.ws_subscribe_user(TS, "r2").body)
    assert sub["args"] == [{"channel": "orders", "instType": "SWAP"},
                           {"channel": "positions", "instType": "SWAP"}]
    first = d.parse_ws('{"id":"r2","event":"subscribe","arg":{"channel":"orders",'
                       '"instType":"SWAP"},"connId":"a4d3ae55"}', 1)
    assert first.reply is None and not first.error
    second = d.parse_ws('{"id":"r2","event":"subscribe","arg":{"channel":"positions",'
                        '"instType":"SWAP"},"connId":"a4d3ae55"}', 1)
    assert second.request_id == "r2" and second.reply is not None
    assert second.reply.kind == ReplyKind.OK


def test_login_failure_is_refused() -> None:
    d = spot()
    d.ws_logon(TS, "r1")
    message = d.parse_ws('{"event":"error","code":"60009","msg":"Login failed.",'
                         '"connId":"a4d3ae55"}', 1)
    assert message.request_id == "r1" and message.reply is not None
    assert message.reply.kind == ReplyKind.REJECTED and message.reply.code == 60009


def test_ws_op_answer_classified() -> None:
    d = spot()
    ok = d.parse_ws('{"id":"r7","op":"order","data":[{"clOrdId":"E7XA1aXA3","ordId":'
                    '"12345689","tag":"","ts":"1695190491421","sCode":"0","sMsg":""}],'
                    '"code":"0","msg":"","inTime":"1695190491421339","outTime":'
                    '"1695190491423240"}', 1)
    assert ok.request_id == "r7" and ok.reply is not None and ok.reply.kind == ReplyKind.OK
    update = d.order_update(ok.reply.body, 5)
    assert update.client_order_id == "E7-1a-3" and update.venue_order_id == "12345689"
    assert update.status == OrderStatus.NEW
    failed = d.parse_ws('{"id":"r8","op":"order","data":[{"clOrdId":"E7XA1aXA4","ordId":"",'
                        '"sCode":"51008","sMsg":"Insufficient balance"}],"code":"1",'
                        '"msg":""}', 1)
    assert failed.reply is not None and failed.reply.kind == ReplyKind.REJECTED
    assert d.parse_ws("pong", 1).reply is None and not d.parse_ws("pong", 1).error
    assert d.parse_ws("{bad", 1).error


ORDER_PUSH = {"arg": {"channel": "orders", "instType": "SPOT", "uid": "77"}, "data": [{
    "instType": "SPOT", "instId": "BTC-USDT", "ordId": "312269865356374016",
    "clOrdId": "E7XA1aXA3", "px": "30000.1", "sz": "0.01", "ordType": "post_only",
    "side": "buy", "posSide": "", "tdMode": "cash", "fillPx": "30000.1",
    "tradeId": "987", "fillSz": "0.004", "fillTime": "1597026383085", "fillFee": "-0.0000032",
    "fillFeeCcy": "BTC", "execType": "M", "accFillSz": "0.004", "avgPx": "30000.1",
    "state": "partially_filled", "fee": "-0.0000032", "feeCcy": "BTC",
    "uTime": "1597026383085", "cTime": "1597026383000", "category": "normal"}]}


def test_orders_push_update_and_fill() -> None:
    event = spot().parse_user(orjson.dumps(ORDER_PUSH), 9)
    assert not event.error
    [update] = event.updates
    assert update.client_order_id == "E7-1a-3" and update.status == OrderStatus.PARTIALLY_FILLED
    assert update.filled == "0.004" and update.pair == "BTC/USDT"
    [fill] = event.fills
    assert (fill.client_order_id, fill.trade_id, fill.price, fill.quantity) == \
        ("E7-1a-3", "987", "30000.1", "0.004")
    assert fill.fee == "0.0000032" and fill.fee_asset == "BTC" and fill.is_maker
    assert fill.exch_ns == 1597026383085 * 1_000_000 and fill.side == Side.BUY


def test_post_only_auto_cancel_ends_the_order() -> None:
    row = {**ORDER_PUSH["data"][0], "state": "canceled", "cancelSource": "31", "tradeId": "",
           "fillSz": "0", "accFillSz": "0"}
    event = spot().parse_user(orjson.dumps({"arg": ORDER_PUSH["arg"], "data": [row]}), 9)
    assert event.updates[0].status == OrderStatus.EXPIRED and not event.fills
    assert event.would_take == ["E7-1a-3"]
    plain = {**row, "cancelSource": "1"}
    event = spot().parse_user(orjson.dumps({"arg": ORDER_PUSH["arg"], "data": [plain]}), 9)
    assert event.updates[0].status == OrderStatus.CANCELED


def test_bad_push_row_is_an_error_not_a_raise() -> None:
    event = spot().parse_user(orjson.dumps({"arg": {"channel": "orders"}, "data": [{"x": 1}]}), 1)
    assert event.error and not event.updates


# ---------------------------------------------------------------- REST bodies


def test_fills_page_and_cursor() -> None:
    d = spot()
    page = {"code": "0", "msg": "", "data": [
        {"instType": "SPOT", "instId": "BTC-USDT", "tradeId": str(100 + i), "ordId": "5",
         "clOrdId": "E7XA1aXA3", "billId": str(9000 + i), "fillPx": "30000", "fillSz": "0.001",
         "side": "sell", "execType": "T", "fee": "-0.03", "feeCcy": "USDT",
         "ts": "1597026383085"} for i in range(100)]}
    fills = d.fills(page)
    assert len(fills) == 100 and fills[0].client_order_id == "E7-1a-3"
    assert fills[0].fee == "0.03" and not fills[0].is_maker and fills[0].side == Side.SELL
    assert d.fills_cursor(page) == "9000"
    page["data"] = page["data"][:3]
    assert d.fills_cursor(page) is None
    request = d.my_trades("BTC/USDT", TS, cursor="9000", start_ms=1000)
    assert "after=9000" in request.url and "begin=1000" in request.url


def test_balances_instruments_and_time() -> None:
    d = spot()
    body = {"code": "0", "data": [{"details": [
        {"ccy": "USDT", "availBal": "900.5", "frozenBal": "99.5", "cashBal": "1000"}]}]}
    assert d.balances(body) == {"USDT": ("900.5", "99.5")}
    rules = d.instrument_rules(SPOT_INSTRUMENTS)
    assert list(rules) == ["BTC/USDT"]
    assert (rules["BTC/USDT"].tick_size, rules["BTC/USDT"].step_size,
            rules["BTC/USDT"].min_qty) == ("0.1", "0.00000001", "0.00001")
    assert d.server_time_ms({"code": "0", "data": [{"ts": "1597026383085"}]}) == 1597026383085


# ---------------------------------------------------------------------- SWAP


def test_swap_sizes_in_contracts_rules_in_base() -> None:
    d = swap()
    rules = d.instrument_rules(SWAP_INSTRUMENTS)
    assert list(rules) == ["BTC/USDT"]  # the inverse contract is not ours
    r = rules["BTC/USDT"]
    assert (r.symbol, r.step_size, r.min_qty, r.contract_size) == \
        ("BTC-USDT-SWAP", "0.0001", "0.0001", "0.01")
    body = orjson.loads(d.new_order(spec(quantity="0.05"), TS).body)
    assert body["sz"] == "5" and body["instId"] == "BTC-USDT-SWAP" and body["tdMode"] == "cross"
    assert "posSide" not in body


def test_swap_hedge_mode_and_reduce_only() -> None:
    d = swap()
    one_way = orjson.loads(d.new_order(spec(reduce_only=True, side=Side.SELL), TS).body)
    assert one_way["reduceOnly"] is True
    mode = orjson.loads(d.set_position_mode(PositionMode.HEDGE, TS).body)
    assert mode == {"posMode": "long_short_mode"}
    closing = orjson.loads(d.new_order(spec(reduce_only=True, side=Side.SELL), TS).body)
    assert closing["posSide"] == "long" and "reduceOnly" not in closing
    short = orjson.loads(d.new_order(spec(side=Side.SELL), TS).body)
    assert short["posSide"] == "short"
    leg = orjson.loads(d.new_order(spec(position_side=PositionSide.SHORT), TS).body)
    assert leg["posSide"] == "short"


def test_swap_leverage_and_margin_mode() -> None:
    d = swap()
    d.set_margin_type("BTC/USDT", MarginType.ISOLATED, TS)
    lever = orjson.loads(d.set_leverage("BTC/USDT", 5, TS).body)
    assert lever == {"instId": "BTC-USDT-SWAP", "lever": "5", "mgnMode": "isolated"}
    assert orjson.loads(d.new_order(spec(), TS).body)["tdMode"] == "isolated"
    with pytest.raises(ValueError):
        d.set_leverage("BTC/USDT", 0, TS)


def test_swap_fill_and_positions_push_in_base_units() -> None:
    d = swap()
    row = {**ORDER_PUSH["data"][0], "instType": "SWAP", "instId": "BTC-USDT-SWAP",
           "sz": "5", "fillSz": "2", "accFillSz": "2", "posSide": "net", "fillPnl": "1.5",
           "fillFee": "-0.012", "fillFeeCcy": "USDT"}
    event = d.parse_user(orjson.dumps({"arg": {"channel": "orders", "instType": "SWAP"},
                                       "data": [row]}), 1)
    assert event.updates[0].quantity == "0.05" and event.updates[0].filled == "0.02"
    fill = event.fills[0]
    assert fill.quantity == "0.02" and fill.fee == "0.012" and fill.realized_pnl == "1.5"
    assert fill.market == Market.FUTURES and fill.venue == "okx_futures"
    liquidation = {**row, "clOrdId": "", "category": "full_liquidation"}
    event = d.parse_user(orjson.dumps({"arg": {"channel": "orders", "instType": "SWAP"},
                                       "data": [liquidation]}), 1)
    assert not event.updates and event.fills[0].liquidation
    positions = {"arg": {"channel": "positions", "instType": "SWAP"}, "data": [
        {"instId": "BTC-USDT-SWAP", "posSide": "net", "pos": "-3", "avgPx": "30000",
         "upl": "1.2", "liqPx": "45000", "markPx": "29990", "lever": "5", "mgnMode": "cross",
         "uTime": "1597026383085"},
        {"instId": "ETH-USDT-SWAP", "posSide": "net", "pos": "1", "avgPx": "2000"}]}
    [report] = d.parse_user(orjson.dumps(positions), 1).positions
    assert report.quantity == "-0.03" and report.liquidation_price == "45000"
    assert report.position_side == PositionSide.BOTH and report.margin_type == MarginType.CROSS


def test_swap_funding_bills() -> None:
    d = swap()
    request = d.funding_fees(TS, 1000)
    assert "/api/v5/account/bills?" in request.url and "type=8" in request.url
    [fee] = d.funding_list({"code": "0", "data": [
        {"billId": "123", "instId": "BTC-USDT-SWAP", "ccy": "USDT", "balChg": "-0.37",
         "type": "8", "subType": "173", "ts": "1570608000000"},
        {"billId": "124", "instId": "BTC-USDT-SWAP", "ccy": "USDT", "balChg": "-1",
         "type": "2", "ts": "1570608000000"}]})
    assert (fee.amount, fee.asset, fee.funding_id, fee.pair) == ("-0.37", "USDT", "123",
                                                                 "BTC/USDT")
    assert Decimal(fee.amount) < 0 and fee.exch_ns == 1570608000000 * 1_000_000

"""The Binance USD-M trading driver, Sans-I/O: requests exactly as the USD-M
docs spell them (signed query, GTX, reduceOnly, positionSide by mode, the
/private user-stream URL, ws-fapi frames), replies classified (-5022 would
take, -4046/-4059 already so, 503 "Service Unavailable." not executed, -1007
unknown), and the documented user-data events parsed (ORDER_TRADE_UPDATE with
a fill, a liquidation's autoclose fill, ACCOUNT_UPDATE, MARGIN_CALL)."""

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
    RateLimitKind,
    ReplyKind,
    TimeInForce,
    TradingEndpoints,
)
from engine.venues import TRADING_DRIVERS, make_trading_driver
from engine.venues.binance_usdm_trade import BinanceUsdmTrade

SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


def driver(**endpoints: str) -> BinanceUsdmTrade:
    d = make_trading_driver("binance", Market.FUTURES, TradingEndpoints(**endpoints), "key",
                            SECRET)
    assert isinstance(d, BinanceUsdmTrade)
    return d


def params(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_registered_for_binance_futures_with_its_documented_limits():
    assert TRADING_DRIVERS[("binance", Market.FUTURES)] is BinanceUsdmTrade
    d = driver()
    assert d.venue == "binance_futures" and d.has_positions and d.user_stream == "listen_key"
    orders = sorted((r.interval_s, r.limit) for r in d.default_rate_limits
                    if r.kind == RateLimitKind.ORDERS)
    assert orders == [(10, 300), (60, 1200)]


def test_new_order_is_signed_gtx_one_way_and_reduce_only():
    d = driver()
    spec = OrderSpec("BTC/USDT", Side.SELL, "30000.1", "0.002", "E7-1a-3", post_only=True,
                     reduce_only=True)
    request = d.new_order(spec, 1_700_000_000_000)
    assert request.method == "POST" and request.url.startswith("https://fapi.binance.com/fapi/v1/order?")
    assert request.counts_order and request.weight == 0 and request.timestamp_ms == 1_700_000_000_000
    p = params(request.url)
    assert p["type"] == "LIMIT" and p["timeInForce"] == "GTX" and p["positionSide"] == "BOTH"
    assert p["reduceOnly"] == "true" and p["price"] == "30000.1" and p["quantity"] == "0.002"
    query = urlsplit(request.url).query
    unsigned, signature = query.rsplit("&signature=", 1)
    assert signature == hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
    plain = d.new_order(OrderSpec("BTC/USDT", Side.BUY, "1", "1", "x", post_only=False,
                                  time_in_force=TimeInForce.IOC), 1)
    assert params(plain.url)["timeInForce"] == "IOC" and "reduceOnly" not in params(plain.url)


@pytest.mark.parametrize(("side", "reduce_only", "given", "expected"), [
    (Side.BUY, False, PositionSide.BOTH, "LONG"),   # opens a long
    (Side.SELL, True, PositionSide.BOTH, "LONG"),   # closes it
    (Side.SELL, False, PositionSide.BOTH, "SHORT"),  # opens a short
    (Side.BUY, True, PositionSide.BOTH, "SHORT"),   # closes it
    (Side.BUY, True, PositionSide.LONG, "LONG"),    # an explicit leg wins
])
def test_hedge_mode_sends_the_leg_and_never_reduce_only(side, reduce_only, given, expected):
    d = driver()
    d.set_position_mode(PositionMode.HEDGE, 1)
    p = params(d.new_order(OrderSpec("BTC/USDT", side, "1", "1", "x", reduce_only=reduce_only,
                                     position_side=given), 1).url)
    assert p["positionSide"] == expected and "reduceOnly" not in p


def test_settings_requests():
    d = driver(rest="http://127.0.0.1:9")
    assert params(d.set_leverage("BTC/USDT", 20, 1).url)["leverage"] == "20"
    with pytest.raises(ValueError, match="1..125"):
        d.set_leverage("BTC/USDT", 126, 1)
    assert params(d.set_margin_type("BTC/USDT", MarginType.CROSS, 1).url)["marginType"] == "CROSSED"
    mode = d.set_position_mode(PositionMode.ONE_WAY, 1)
    assert "/fapi/v1/positionSide/dual?" in mode.url and params(mode.url)["dualSidePosition"] == "false"
    assert "/fapi/v3/positionRisk" in d.positions(1).url
    income = params(d.funding_fees(10_000_000, 5).url)
    assert income["incomeType"] == "FUNDING_FEE" and income["startTime"] == "5"
    # userTrades: never fromId with a time, and no start older than 7 days.
    trades = params(d.my_trades("BTC/USDT", 8 * 86_400_000, start_ms=0).url)
    assert int(trades["startTime"]) > 86_400_000 and "fromId" not in trades


def test_private_stream_and_ws_api_urls():
    assert driver().user_stream_url("abc") == "wss://fstream.binance.com/private/ws?listenKey=abc"
    assert driver().ws_api_url() == "wss://ws-fapi.binance.com/ws-fapi/v1"
    local = driver(rest="http://127.0.0.1:5", ws="ws://127.0.0.1:5")
    assert local.ws_api_url() == "ws://127.0.0.1:5/ws-fapi/v1"
    frame = orjson.loads(local.ws_new_order(OrderSpec("BTC/USDT", Side.BUY, "1", "1", "c"),
                                            7, "r1").body)
    assert frame["method"] == "order.place" and frame["id"] == "r1"
    assert frame["params"]["timeInForce"] == "GTX" and frame["params"]["signature"]


def test_replies_are_classified():
    d = driver()
    gtx = d.classify(400, b'{"code":-5022,"msg":"Due to the order could not be executed as '
                          b'maker, the Post Only order will be rejected."}', {})
    assert gtx.kind == ReplyKind.REJECTED and gtx.would_take
    assert d.classify(400, b'{"code":-4046,"msg":"No need to change margin type."}', {}).kind \
        == ReplyKind.OK
    assert d.classify(400, b'{"code":-2022,"msg":"ReduceOnly Order is rejected."}', {}).kind \
        == ReplyKind.REJECTED
    assert d.classify(503, b'{"code":-1001,"msg":"Service Unavailable."}', {}).kind \
        == ReplyKind.RETRY
    assert d.classify(503, b'{"code":-1000,"msg":"Unknown error, please check your request or '
                           b'try again later."}', {}).kind == ReplyKind.UNKNOWN
    assert d.classify(400, b'{"code":-2013,"msg":"Order does not exist."}', {}).not_found
    limited = d.classify(429, b'{"code":-1015,"msg":"Too many new orders."}',
                         {"Retry-After": "3", "X-MBX-ORDER-COUNT-10S": "300"})
    assert limited.kind == ReplyKind.RETRY and limited.retry_after_s == 3.0
    assert limited.order_rate_limited and limited.usage["ORDERS:10s"] == 300


def test_order_answer_and_trade_rows():
    d = driver()
    update = d.order_update({"orderId": 22542179, "symbol": "BTCUSDT", "status":
                             "PARTIALLY_FILLED", "clientOrderId": "E7-1a-3", "price": "30000",
                             "avgPrice": "30000.5", "origQty": "0.010", "executedQty": "0.004",
                             "cumQuote": "120.002", "side": "SELL", "positionSide": "BOTH",
                             "updateTime": 1700000000123}, 5)
    assert (update.venue, update.market, update.pair, update.status, update.filled,
            update.average_price) == ("binance_futures", Market.FUTURES, "BTC/USDT",
                                      OrderStatus.PARTIALLY_FILLED, "0.004", "30000.5")
    [fill] = d.fills([{"buyer": False, "commission": "-0.07819010", "commissionAsset": "USDT",
                       "id": 698759, "maker": False, "orderId": 25851813, "price": "7819.01",
                       "qty": "0.002", "quoteQty": "15.63802", "realizedPnl": "-0.91539999",
                       "side": "SELL", "positionSide": "SHORT", "symbol": "BTCUSDT",
                       "time": 1569514978020}])
    assert fill.side == Side.SELL and fill.fee == "0.07819010" and fill.realized_pnl == "-0.91539999"
    assert fill.position_side == "short" and fill.exch_ns == 1569514978020 * 1_000_000
    rules = d.instrument_rules({"symbols": [
        {"symbol": "BTCUSDT", "contractType": "PERPETUAL", "baseAsset": "BTC", "quoteAsset":
         "USDT", "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.10"},
                             {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001",
                              "maxQty": "1000"},
                             {"filterType": "MIN_NOTIONAL", "notional": "100"}]},
        {"symbol": "BTCUSDT_260626", "contractType": "CURRENT_QUARTER", "baseAsset": "BTC",
         "quoteAsset": "USDT", "filters": []}]})
    assert list(rules) == ["BTC/USDT"] and rules["BTC/USDT"].min_notional == "100"
    [report] = d.position_reports([{"symbol": "BTCUSDT", "positionSide": "BOTH",
                                    "positionAmt": "-0.020", "entryPrice": "29990.0",
                                    "markPrice": "30010.1", "unRealizedProfit": "-0.402",
                                    "liquidationPrice": "520000.5", "isolatedMargin": "0",
                                    "updateTime": 1700000000000}])
    assert report.quantity == "-0.020" and report.liquidation_price == "520000.5"
    assert report.margin_type == MarginType.CROSS and report.position_side == PositionSide.BOTH
    [fee] = d.funding_list([{"symbol": "BTCUSDT", "incomeType": "FUNDING_FEE",
                             "income": "-0.37", "asset": "USDT", "time": 1570608000000,
                             "tranId": 9689322392, "tradeId": ""},
                            {"symbol": "BTCUSDT", "incomeType": "COMMISSION", "income": "-1",
                             "asset": "USDT", "time": 1, "tranId": 1}])
    assert (fee.amount, fee.funding_id, fee.pair) == ("-0.37", "9689322392", "BTC/USDT")


def test_user_stream_events():
    d = driver()
    trade = d.parse_user(orjson.dumps({"e": "ORDER_TRADE_UPDATE", "E": 1568879465651,
                                       "T": 1568879465650, "o": {
        "s": "BTCUSDT", "c": "E7-1a-3", "S": "SELL", "o": "LIMIT", "f": "GTX", "q": "0.01",
        "p": "30000", "ap": "30000", "x": "TRADE", "X": "FILLED", "i": 8886774, "l": "0.01",
        "z": "0.01", "L": "30000", "N": "USDT", "n": "0.06", "T": 1568879465650, "t": 7,
        "m": True, "R": False, "ps": "BOTH", "rp": "1.5"}}), 9)
    assert [u.status for u in trade.updates] == [OrderStatus.FILLED]
    [fill] = trade.fills
    assert fill.trade_id == "7" and fill.is_maker and not fill.liquidation and fill.realized_pnl == "1.5"
    liquidated = d.parse_user(orjson.dumps({"e": "ORDER_TRADE_UPDATE", "E": 2, "T": 2, "o": {
        "s": "BTCUSDT", "c": "autoclose-1700000000000-0", "S": "SELL", "o": "LIQUIDATION",
        "f": "IOC", "q": "0.1", "p": "27999", "ap": "27999", "x": "TRADE", "X": "FILLED",
        "i": 206, "l": "0.1", "z": "0.1", "L": "27999", "N": "USDT", "n": "1.4", "T": 2,
        "t": 99, "m": False, "R": True, "ps": "BOTH", "rp": "-201"}}), 9)
    assert liquidated.updates == [] and [f.liquidation for f in liquidated.fills] == [True]
    account = d.parse_user(orjson.dumps({"e": "ACCOUNT_UPDATE", "E": 3, "T": 3, "a": {
        "m": "FUNDING_FEE", "B": [{"a": "USDT", "wb": "122624.12", "cw": "100.12",
                                   "bc": "-0.5"}],
        "P": [{"s": "BTCUSDT", "pa": "0.1", "ep": "30000", "bep": "30001", "cr": "200",
               "up": "-1.2", "mt": "isolated", "iw": "150", "ps": "BOTH"}]}}), 9)
    assert account.funding_due and account.balances["USDT"][0] == "100.12"
    [position] = account.positions
    assert position.quantity == "0.1" and position.margin_type == MarginType.ISOLATED
    call = d.parse_user(b'{"e":"MARGIN_CALL","E":4,"cw":"3.16","p":[{"s":"BTCUSDT",'
                        b'"ps":"BOTH","pa":"0.1","mt":"CROSSED","iw":"0","mp":"28000",'
                        b'"up":"-200","mm":"11.2"}]}', 9)
    assert call.warnings and "margin call" in call.warnings[0]
    assert d.parse_user(b'{"e":"listenKeyExpired","E":5}', 9).expired
    assert d.parse_user(b"not json", 9).error

"""Public REST endpoints against rest-api.md's parameters and response shapes."""

from __future__ import annotations

import json
import time

import pytest

from engine.sim.server import LocalVenue
from tests.sim.binance_client import BinanceClient


def trade_once(alice: BinanceClient, bob: BinanceClient, price: str = "30000",
               qty: str = "0.01") -> None:
    assert alice.limit("SELL", qty, price).status_code == 200
    assert bob.limit("BUY", qty, price).status_code == 200


def test_ping_and_time(public: BinanceClient) -> None:
    assert public.public("GET", "/api/v3/ping").json() == {}
    server_time = public.public("GET", "/api/v3/time").json()["serverTime"]
    assert abs(server_time - time.time() * 1000) < 5_000


def test_exchange_info_publishes_filters_and_limits(public: BinanceClient) -> None:
    info = public.public("GET", "/api/v3/exchangeInfo", symbol="BTCUSDT").json()
    assert {x["rateLimitType"] for x in info["rateLimits"]} == {"REQUEST_WEIGHT", "ORDERS"}
    symbol = info["symbols"][0]
    assert (symbol["symbol"], symbol["baseAsset"], symbol["quoteAsset"]) == (
        "BTCUSDT", "BTC", "USDT")
    filters = {f["filterType"]: f for f in symbol["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.01000000"
    assert filters["LOT_SIZE"]["stepSize"] == "0.00001000"
    assert filters["NOTIONAL"]["minNotional"] == "5.00000000"
    assert "LIMIT_MAKER" in symbol["orderTypes"] and symbol["cancelReplaceAllowed"]
    assert symbol["defaultSelfTradePreventionMode"] == "EXPIRE_MAKER"


def test_exchange_info_symbols_list_and_invalid_symbol(public: BinanceClient) -> None:
    many = public.public("GET", "/api/v3/exchangeInfo", symbols=json.dumps(["BTCUSDT"]))
    assert [s["symbol"] for s in many.json()["symbols"]] == ["BTCUSDT"]
    bad = public.public("GET", "/api/v3/exchangeInfo", symbol="DOGEUSDT")
    assert bad.status_code == 400 and bad.json() == {"code": -1121, "msg": "Invalid symbol."}


def test_depth_snapshot_orders_levels_best_first(public: BinanceClient, alice: BinanceClient,
                                                 bob: BinanceClient) -> None:
    for price in ("29990", "29980"):
        assert bob.limit("BUY", "0.01", price).status_code == 200
    for price in ("30020", "30010"):
        assert alice.limit("SELL", "0.02", price).status_code == 200
    depth = public.public("GET", "/api/v3/depth", symbol="BTCUSDT", limit=5).json()
    assert depth["bids"] == [["29990.00000000", "0.01000000"], ["29980.00000000", "0.01000000"]]
    assert depth["asks"] == [["30010.00000000", "0.02000000"], ["30020.00000000", "0.02000000"]]
    assert depth["lastUpdateId"] == 4


def test_depth_without_symbol_is_1102(public: BinanceClient) -> None:
    reply = public.public("GET", "/api/v3/depth")
    assert reply.json()["code"] == -1102


def test_trades_historical_and_aggregate(public: BinanceClient, alice: BinanceClient,
                                         bob: BinanceClient) -> None:
    alice.limit("SELL", "0.01", "30000")
    alice.limit("SELL", "0.01", "30000")
    bob.limit("BUY", "0.02", "30000")  # two trades, one aggregate
    trades = public.public("GET", "/api/v3/trades", symbol="BTCUSDT").json()
    assert [(t["id"], t["price"], t["qty"], t["isBuyerMaker"]) for t in trades] == [
        (1, "30000.00000000", "0.01000000", False), (2, "30000.00000000", "0.01000000", False)]
    assert trades[0]["quoteQty"] == "300.00000000"
    older = public.public("GET", "/api/v3/historicalTrades", symbol="BTCUSDT", fromId=2).json()
    assert [t["id"] for t in older] == [2]
    huge = public.public("GET", "/api/v3/historicalTrades", symbol="BTCUSDT",
                         fromId=9999999999999999999)  # beyond a signed 64-bit LONG
    assert huge.status_code == 400
    assert huge.json() == {"code": -1108, "msg": "Parameter 'fromId' overflowed."}
    assert public.public("GET", "/api/v3/historicalTrades", symbol="BTCUSDT",
                         fromId=2**63 - 1).json() == []
    agg = public.public("GET", "/api/v3/aggTrades", symbol="BTCUSDT").json()
    assert len(agg) == 1 and (agg[0]["f"], agg[0]["l"], agg[0]["q"]) == (1, 2, "0.02000000")


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "4h", "1d", "1s", "1w"])
def test_klines_for_each_interval(public: BinanceClient, alice: BinanceClient,
                                  bob: BinanceClient, interval: str) -> None:
    trade_once(alice, bob, "30000")
    trade_once(alice, bob, "30100")
    rows = public.public("GET", "/api/v3/klines", symbol="BTCUSDT", interval=interval).json()
    last = rows[-1]
    assert len(last) == 12
    opened, close_time = last[0], last[6]
    assert close_time > opened and (close_time + 1 - opened) % 1000 == 0
    if interval != "1s":  # both trades in one candle
        assert last[1:6] == ["30000.00000000", "30100.00000000", "30000.00000000",
                             "30100.00000000", "0.02000000"]
        assert last[8] == 2


def test_klines_bad_interval_is_1120(public: BinanceClient) -> None:
    reply = public.public("GET", "/api/v3/klines", symbol="BTCUSDT", interval="7m")
    assert reply.json() == {"code": -1120, "msg": "Invalid interval."}


def test_tickers(public: BinanceClient, alice: BinanceClient, bob: BinanceClient) -> None:
    trade_once(alice, bob, "30000")
    trade_once(alice, bob, "30300")
    bob.limit("BUY", "0.01", "29000")
    ticker = public.public("GET", "/api/v3/ticker/24hr", symbol="BTCUSDT").json()
    assert (ticker["openPrice"], ticker["lastPrice"], ticker["highPrice"]) == (
        "30000.00000000", "30300.00000000", "30300.00000000")
    assert (ticker["priceChange"], ticker["priceChangePercent"]) == ("300.00000000", "1.000")
    assert ticker["count"] == 2 and ticker["volume"] == "0.02000000"
    assert ticker["bidPrice"] == "29000.00000000"
    prices = public.public("GET", "/api/v3/ticker/price").json()
    assert prices == [{"symbol": "BTCUSDT", "price": "30300.00000000"}]
    book = public.public("GET", "/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()
    assert book["bidPrice"] == "29000.00000000" and book["askQty"] == "0.00000000"
    mini = public.public("GET", "/api/v3/ticker/24hr", symbol="BTCUSDT", type="MINI").json()
    assert "bidPrice" not in mini and mini["lastPrice"] == "30300.00000000"


def test_average_price(public: BinanceClient, alice: BinanceClient, bob: BinanceClient) -> None:
    trade_once(alice, bob, "30000")
    trade_once(alice, bob, "30200")
    average = public.public("GET", "/api/v3/avgPrice", symbol="BTCUSDT").json()
    assert average["mins"] == 5 and average["price"] == "30100.00000000"


def test_unknown_method_on_known_path_is_405(venue: LocalVenue, public: BinanceClient) -> None:
    assert public.public("PUT", "/api/v3/depth").status_code == 405

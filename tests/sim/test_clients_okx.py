"""Third-party OKX clients, current releases, against the venue's OKX
dialect unchanged: only their URL options point at it. ccxt okx (REST and
ccxt.pro WebSocket) and OKX's own python-okx (its REST API classes; its
WebSocket classes cannot reach a ws:// URL at all: WebSocketFactory always
passes an SSL context, which websockets refuses for ws://, see docs/venue.md)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest
from okx import Account, MarketData, PublicData, Trade

from engine.config import OkxVenueConfig, UsdmVenueConfig
from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config
from tests.sim.okx_client import okx_key


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVenue]:
    config = dataclasses.replace(venue_config(market="synthetic", tick_ms=50),
                                 usdm=UsdmVenueConfig(enabled=True),
                                 okx=OkxVenueConfig(enabled=True))
    venue = LocalVenue(config, Path(tmp_path_factory.mktemp("okx")))
    venue.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the bots quote spot and the perpetual both ways
        books = [venue.exchange.depth(s, 5) for s in ("BTCUSDT", "BTCUSDT-PERP")]  # type: ignore[union-attr]
        if all(bids and asks for _, bids, asks in books):
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the synthetic market never got two-sided books")
    yield venue
    venue.stop()


def _options(venue: LocalVenue, exchange_class: Any) -> Any:
    assert venue.okx is not None
    key = okx_key(venue, "alice")
    exchange = exchange_class({"apiKey": key.api_key, "secret": key.secret_key,
                               "password": key.passphrase, "enableRateLimit": False})
    exchange.urls["api"] = {"rest": venue.okx.url, "ws": f"{venue.okx.ws_url}/ws/v5"}
    exchange.options["fetchMarkets"] = {"types": ["spot", "swap"]}
    return exchange


def _best(venue: LocalVenue, symbol: str) -> tuple[float, float]:
    _, bids, asks = venue.exchange.depth(symbol, 1)  # type: ignore[union-attr]
    return bids[0][0] / 100, asks[0][0] / 100


def test_ccxt_okx_rest_spot_and_swap(venue: LocalVenue) -> None:
    exchange = _options(venue, ccxt.okx)
    markets = exchange.load_markets()
    assert {"BTC/USDT", "BTC/USDT:USDT"} <= set(markets)
    assert markets["BTC/USDT:USDT"]["contractSize"] == 1.0
    book = exchange.fetch_order_book("BTC/USDT", 20)
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    balance = exchange.fetch_balance()
    assert balance["USDT"]["total"] > 0
    bid, ask = _best(venue, "BTCUSDT")
    order = exchange.create_order("BTC/USDT", "limit", "buy", 0.001, round(bid - 300, 2),
                                  {"postOnly": True, "clientOrderId": "ccxtpo1"})
    fetched = exchange.fetch_order(order["id"], "BTC/USDT")
    assert (fetched["status"], fetched["clientOrderId"], fetched["postOnly"]) == (
        "open", "ccxtpo1", True)
    assert [o["id"] for o in exchange.fetch_open_orders("BTC/USDT")] == [order["id"]]
    exchange.cancel_order(order["id"], "BTC/USDT")
    assert exchange.fetch_order(order["id"], "BTC/USDT")["status"] == "canceled"
    crossing = exchange.create_order("BTC/USDT", "limit", "buy", 0.001, round(ask + 300, 2),
                                     {"postOnly": True})
    assert exchange.fetch_order(crossing["id"], "BTC/USDT")["status"] == "canceled"
    exchange.set_leverage(3, "BTC/USDT:USDT", {"marginMode": "cross"})
    swap = exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.002,
                                 params={"tdMode": "cross"})
    assert exchange.fetch_order(swap["id"], "BTC/USDT:USDT")["status"] == "closed"
    positions = exchange.fetch_positions(["BTC/USDT:USDT"])
    assert positions[0]["contracts"] >= 0.002 and positions[0]["leverage"] == 3
    trades = exchange.fetch_my_trades("BTC/USDT:USDT")
    assert any(t["order"] == swap["id"] for t in trades)


def test_ccxt_pro_okx_streams_and_orders(venue: LocalVenue) -> None:
    async def run() -> None:
        exchange = _options(venue, ccxt.pro.okx)
        try:
            await exchange.load_markets()
            book = await exchange.watch_order_book("BTC/USDT")
            for _ in range(3):  # ccxt checks the seqId/prevSeqId chain on every update
                book = await exchange.watch_order_book("BTC/USDT")
            assert book["bids"][0][0] < book["asks"][0][0]
            trades = await exchange.watch_trades("BTC/USDT")
            assert trades and trades[0]["symbol"] == "BTC/USDT"
            watcher = asyncio.ensure_future(exchange.watch_orders("BTC/USDT"))
            await asyncio.sleep(1.0)  # login + subscribe before the order
            bid, _ = _best(venue, "BTCUSDT")
            placed = await exchange.create_order("BTC/USDT", "limit", "buy", 0.001,
                                                 round(bid - 300, 2))
            orders = await asyncio.wait_for(watcher, 15)
            assert orders[-1]["id"] == placed["id"] and orders[-1]["status"] == "open"
            await exchange.cancel_order(placed["id"], "BTC/USDT")
            orders = await asyncio.wait_for(exchange.watch_orders("BTC/USDT"), 15)
            assert orders[-1]["status"] == "canceled"
            via_ws = await exchange.create_order_ws("BTC/USDT", "limit", "buy", 0.001,
                                                    round(bid - 310, 2))
            assert via_ws["id"]
            canceled = await exchange.cancel_order_ws(via_ws["id"], "BTC/USDT")
            assert canceled["id"] == via_ws["id"]
        finally:
            await exchange.close()
    asyncio.run(run())


def test_python_okx_rest(venue: LocalVenue) -> None:
    assert venue.okx is not None
    key = okx_key(venue, "bob")
    common = {"api_key": key.api_key, "api_secret_key": key.secret_key,
              "passphrase": key.passphrase, "flag": "0", "domain": venue.okx.url}
    public = PublicData.PublicAPI(flag="0", domain=venue.okx.url)
    instruments = public.get_instruments(instType="SWAP")
    assert [i["instId"] for i in instruments["data"]] == ["BTC-USDT-SWAP"]
    market = MarketData.MarketAPI(flag="0", domain=venue.okx.url)
    book = market.get_orderbook(instId="BTC-USDT", sz="5")["data"][0]
    assert len(book["bids"]) == 5
    trade = Trade.TradeAPI(**common)
    bid, _ = _best(venue, "BTCUSDT")
    placed = trade.place_order(instId="BTC-USDT", tdMode="cash", side="buy", ordType="limit",
                               sz="0.001", px=f"{bid - 300:.2f}", clOrdId="pyokx1")
    assert placed["code"] == "0", placed
    ord_id = placed["data"][0]["ordId"]
    assert trade.get_order(instId="BTC-USDT", clOrdId="pyokx1")["data"][0]["ordId"] == ord_id
    assert trade.cancel_order(instId="BTC-USDT", ordId=ord_id)["data"][0]["sCode"] == "0"
    assert trade.get_order(instId="BTC-USDT", ordId=ord_id)["data"][0]["state"] == "canceled"
    account = Account.AccountAPI(**common)
    usdt = account.get_account_balance(ccy="USDT")["data"][0]["details"][0]
    assert float(usdt["availBal"]) > 0
    assert account.set_leverage(lever="7", mgnMode="cross",
                                instId="BTC-USDT-SWAP")["data"][0]["lever"] == "7"
    assert account.get_positions(instType="SWAP")["code"] == "0"

"""Third-party Bybit clients, current releases, against the venue's Bybit v5
dialect unchanged, pointed at it by URL settings only: ccxt bybit (REST) and
ccxt.pro (watch_order_book, watch_trades, watch_orders), and Bybit's
official SDK pybit (HTTP session and its public, private and trade
WebSockets). pybit has no URL argument: its HTTP session's ``endpoint`` is
set after construction and its WebSocket URL templates (module constants
PUBLIC_WSS / PRIVATE_WSS / TRADE_WSS) are set before (docs/venue.md)."""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pybit._websocket_trading
import pybit.unified_trading
import pytest
from pybit.unified_trading import HTTP, WebSocket, WebSocketTrading

from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config
from tests.support.eventually import eventually


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVenue]:
    venue = LocalVenue(venue_config(market="synthetic", tick_ms=50, bybit=True),
                       Path(tmp_path_factory.mktemp("bybit")))
    venue.start()
    assert venue.bybit is not None and venue.exchange is not None
    exchange = venue.exchange

    def two_sided() -> bool:
        return all(bids and asks for _, bids, asks in (
            exchange.depth(s, 5) for s in ("BTCUSDT", "BTCUSDT-PERP")))
    eventually(two_sided, timeout=30, message="the synthetic books never got two sides")
    yield venue
    venue.stop()


def _keys(venue: LocalVenue, account: str = "alice") -> tuple[str, str]:
    assert venue.bybit is not None
    return venue.bybit.keys[account]


def _point_ccxt(exchange: Any, venue: LocalVenue) -> None:
    assert venue.bybit is not None
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str):
            api[name] = venue.bybit.url
    ws = api.get("ws")
    if ws is not None:
        base = venue.bybit.ws_url
        for category in ("spot", "linear", "inverse", "option"):
            ws["public"][category] = f"{base}/v5/public/{category}"
        ws["private"]["spot"]["unified"] = ws["private"]["contract"] = f"{base}/v5/private"
        ws["private"]["trade"] = f"{base}/v5/trade"


def _best_bid(venue: LocalVenue, symbol: str) -> float:
    assert venue.exchange is not None
    _, bids, _ = venue.exchange.depth(symbol, 1)
    return bids[0][0] / 100  # tick 0.01


# ------------------------------------------------------------------- ccxt


def test_ccxt_bybit_rest_trades_spot_and_linear(venue: LocalVenue) -> None:
    key, secret = _keys(venue)
    exchange = ccxt.bybit({"apiKey": key, "secret": secret, "enableRateLimit": False})
    _point_ccxt(exchange, venue)
    markets = exchange.load_markets()
    assert {"BTC/USDT", "BTC/USDT:USDT"} <= set(markets)
    book = exchange.fetch_order_book("BTC/USDT", 5)
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    balance = exchange.fetch_balance()
    assert balance["USDT"]["total"] >= 90_000
    price = round(_best_bid(venue, "BTCUSDT") * 0.9, 2)
    order = exchange.create_order("BTC/USDT", "limit", "buy", 0.01, price,
                                  {"clientOrderId": "ccxt-spot-1"})
    open_orders = exchange.fetch_open_orders("BTC/USDT")
    assert [(o["id"], o["clientOrderId"], o["price"]) for o in open_orders] == [
        (order["id"], "ccxt-spot-1", price)]
    exchange.cancel_order(order["id"], "BTC/USDT")
    assert exchange.fetch_open_orders("BTC/USDT") == []
    exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01)
    positions = [p for p in exchange.fetch_positions(["BTC/USDT:USDT"]) if p["contracts"]]
    assert [(p["symbol"], p["side"], p["contracts"]) for p in positions] == [
        ("BTC/USDT:USDT", "long", 0.01)]
    trades = exchange.fetch_my_trades("BTC/USDT:USDT")
    assert round(sum(t["amount"] for t in trades), 8) == 0.01  # maybe several fills


def test_ccxt_pro_bybit_streams_books_trades_and_orders(venue: LocalVenue) -> None:
    key, secret = _keys(venue, "bob")

    async def run() -> None:
        exchange = ccxt.pro.bybit({"apiKey": key, "secret": secret, "enableRateLimit": False})
        _point_ccxt(exchange, venue)
        try:
            await exchange.load_markets()
            book = await exchange.watch_order_book("BTC/USDT", 50)
            for _ in range(3):  # snapshot, then deltas applied on it
                book = await exchange.watch_order_book("BTC/USDT", 50)
            assert book["bids"][0][0] < book["asks"][0][0]
            trades = await asyncio.wait_for(exchange.watch_trades("BTC/USDT:USDT"), 30)
            assert trades and trades[0]["symbol"] == "BTC/USDT:USDT"
            watcher = asyncio.ensure_future(exchange.watch_orders())
            await asyncio.sleep(0.5)  # subscribed before the order exists
            price = round(_best_bid(venue, "BTCUSDT") * 0.9, 2)
            placed = await exchange.create_order("BTC/USDT", "limit", "buy", 0.01, price)
            orders = await asyncio.wait_for(watcher, 30)
            assert any(o["id"] == placed["id"] and o["status"] == "open" for o in orders)
            await exchange.cancel_order(placed["id"], "BTC/USDT")
            while True:
                orders = await asyncio.wait_for(exchange.watch_orders(), 30)
                if any(o["id"] == placed["id"] and o["status"] == "canceled" for o in orders):
                    break
        finally:
            await exchange.close()
    asyncio.run(run())


# ------------------------------------------------------------------- pybit


@pytest.fixture
def pybit_urls(venue: LocalVenue, monkeypatch: pytest.MonkeyPatch) -> None:
    assert venue.bybit is not None
    base = venue.bybit.ws_url
    monkeypatch.setattr(pybit.unified_trading, "PUBLIC_WSS",
                        base + "/v5/public/{CHANNEL_TYPE}")
    monkeypatch.setattr(pybit.unified_trading, "PRIVATE_WSS", base + "/v5/private")
    monkeypatch.setattr(pybit._websocket_trading, "TRADE_WSS", base + "/v5/trade")


def _pybit_http(venue: LocalVenue, account: str = "alice") -> HTTP:
    assert venue.bybit is not None
    key, secret = _keys(venue, account)
    session = HTTP(api_key=key, api_secret=secret)
    session.endpoint = venue.bybit.url
    return session


def test_pybit_http_session_trades_and_reads(venue: LocalVenue) -> None:
    session = _pybit_http(venue)
    info = session.get_instruments_info(category="linear", symbol="BTCUSDT")
    assert info["result"]["list"][0]["lotSizeFilter"]["qtyStep"] == "0.00001"
    book = session.get_orderbook(category="spot", symbol="BTCUSDT", limit=5)["result"]
    assert book["b"] and book["a"]
    price = f"{_best_bid(venue, 'BTCUSDT') * 0.9:.2f}"
    placed = session.place_order(category="spot", symbol="BTCUSDT", side="Buy",
                                 orderType="Limit", qty="0.01", price=price,
                                 orderLinkId="pybit-1")["result"]
    rows = session.get_open_orders(category="spot", symbol="BTCUSDT")["result"]["list"]
    assert [(r["orderId"], r["orderLinkId"], r["price"]) for r in rows] == [
        (placed["orderId"], "pybit-1", price)]
    session.cancel_order(category="spot", symbol="BTCUSDT", orderLinkId="pybit-1")
    assert session.get_open_orders(category="spot", symbol="BTCUSDT")["result"]["list"] == []
    with pytest.raises(Exception, match="170141"):  # pybit raises on a non-zero retCode
        session.place_order(category="spot", symbol="BTCUSDT", side="Buy", orderType="Limit",
                            qty="0.01", price=price, orderLinkId="pybit-1")
    wallet = session.get_wallet_balance(accountType="UNIFIED")["result"]["list"][0]
    assert {c["coin"] for c in wallet["coin"]} >= {"USDT", "BTC"}
    leverage = session.get_positions(category="linear", symbol="BTCUSDT")
    assert leverage["result"]["list"][0]["symbol"] == "BTCUSDT"


def test_pybit_websockets_public_private_and_trade(venue: LocalVenue,
                                                   pybit_urls: None) -> None:
    key, secret = _keys(venue, "bob")
    got: queue.Queue[tuple[str, dict]] = queue.Queue()
    public = WebSocket(testnet=False, channel_type="linear")
    private = WebSocket(testnet=False, channel_type="private", api_key=key,
                        api_secret=secret)
    trading = WebSocketTrading(testnet=False, api_key=key, api_secret=secret)
    try:
        public.orderbook_stream(50, "BTCUSDT", lambda m: got.put(("book", m)))
        public.trade_stream("BTCUSDT", lambda m: got.put(("trade", m)))
        private.order_stream(lambda m: got.put(("order", m)))
        assert venue.bybit is not None
        hub = venue.bybit.hub  # pybit authenticates and subscribes asynchronously

        def subscribed() -> bool:
            topics = [t for s in list(hub.sessions.values()) for t in s.topics]
            return {"order", "orderbook.50.BTCUSDT", "publicTrade.BTCUSDT"} <= set(topics)
        eventually(subscribed, timeout=30, message="pybit never subscribed")
        price = f"{_best_bid(venue, 'BTCUSDT-PERP') * 0.9:.2f}"
        trading.place_order(lambda m: got.put(("placed", m)), category="linear",
                            symbol="BTCUSDT", side="Buy", orderType="Limit", qty="0.01",
                            price=price, orderLinkId="pybit-ws-1")
        seen: dict[str, dict] = {}
        deadline = time.monotonic() + 30
        while not {"book", "trade", "order", "placed"} <= set(seen):
            assert time.monotonic() < deadline, f"only saw {sorted(seen)}"
            kind, message = got.get(timeout=30)
            if kind == "order" and not any(o["orderLinkId"] == "pybit-ws-1"
                                           for o in message["data"]):
                continue
            seen.setdefault(kind, message)
        assert seen["book"]["type"] == "snapshot" and seen["book"]["data"]["s"] == "BTCUSDT"
        assert seen["placed"]["retCode"] == 0
        assert seen["placed"]["data"]["orderLinkId"] == "pybit-ws-1"
        order = next(o for o in seen["order"]["data"] if o["orderLinkId"] == "pybit-ws-1")
        assert (order["orderStatus"], order["price"]) == ("New", price)
    finally:
        for ws in (public, private, trading):
            ws.exit()

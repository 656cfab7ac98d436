"""Third-party Binance USD-M clients, current releases, against the venue's
USD-M dialect unchanged: only their URL options point at it. Binance's
official SDK (REST, WebSocket API, streams), ccxt binanceusdm (REST and
ccxt.pro) and python-binance's futures client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import pytest
from binance import AsyncClient, BinanceSocketManager, Client
from binance_common.configuration import (
    ConfigurationRestAPI,
    ConfigurationWebSocketAPI,
    ConfigurationWebSocketStreams,
)
from binance_sdk_derivatives_trading_usds_futures.derivatives_trading_usds_futures import (
    DerivativesTradingUsdsFutures,
)

from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture(scope="module")
def venue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalVenue]:
    venue = LocalVenue(venue_config(market="synthetic", tick_ms=50, usdm=True),
                       Path(tmp_path_factory.mktemp("usdm")))
    venue.start()
    assert venue.usdm is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # the bots have quoted the perpetual both ways
        _, bids, asks = venue.exchange.depth("BTCUSDT-PERP", 5)  # type: ignore[union-attr]
        if bids and asks:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the synthetic perpetual never got a two-sided book")
    yield venue
    venue.stop()


def _point_ccxt(exchange: Any, venue: LocalVenue) -> None:
    assert venue.usdm is not None
    api = exchange.urls["api"]
    for name, url in list(api.items()):
        if isinstance(url, str) and name.startswith("fapi"):
            api[name] = url.replace("https://fapi.binance.com", venue.usdm.url)
    ws = api.get("ws")
    if ws is not None:
        for name in ("linear", "option", "optionMarket", "optionPrivate"):
            ws[name] = ws[name].replace("wss://fstream.binance.com", venue.usdm.ws_url)
        ws["ws-api"]["linear"] = venue.usdm.ws_url + "/ws-fapi/v1"


ACCOUNT = "alice"  # the venue account whose key ccxt uses


def _ccxt_options() -> dict:
    # fetchCurrencies would ask the spot/sapi host for wallet data the venue does not serve
    return {"apiKey": "alice-key", "secret": "alice-secret",
            "options": {"fetchCurrencies": False}}


def test_ccxt_binanceusdm_rest_trades_and_reports_positions(venue: LocalVenue) -> None:
    exchange = ccxt.binanceusdm(_ccxt_options())
    _point_ccxt(exchange, venue)
    markets = exchange.load_markets()
    assert markets[SYMBOL]["linear"] and markets[SYMBOL]["precision"]["price"] == 0.01
    book = exchange.fetch_order_book(SYMBOL)
    assert book["bids"] and book["asks"] and book["bids"][0][0] < book["asks"][0][0]
    resting = exchange.create_order(SYMBOL, "limit", "buy", 0.01, 20000)
    assert resting["status"] == "open"
    assert [o["id"] for o in exchange.fetch_open_orders(SYMBOL)] == [resting["id"]]
    assert exchange.cancel_order(resting["id"], SYMBOL)["status"] == "canceled"
    before = float(exchange.fetch_balance()["info"]["totalWalletBalance"])
    filled = exchange.create_order(SYMBOL, "market", "buy", 0.01)
    assert filled["status"] == "closed" and filled["filled"] == 0.01
    position = exchange.fetch_positions([SYMBOL])[0]
    assert position["side"] == "long" and position["contracts"] == 0.01
    trades = exchange.fetch_my_trades(SYMBOL)
    assert trades and trades[-1]["order"] == filled["id"]
    fee = sum(t["fee"]["cost"] for t in trades if t["order"] == filled["id"])
    assert fee > 0
    wallet = float(exchange.fetch_balance()["info"]["totalWalletBalance"])
    assert wallet == pytest.approx(before - fee, abs=1e-6)  # opening costs only the fee
    assert exchange.set_leverage(10, SYMBOL)["leverage"] == 10
    assert "fundingRate" in exchange.fetch_funding_rate(SYMBOL)
    exchange.create_order(SYMBOL, "market", "sell", 0.01, params={"reduceOnly": True})
    assert exchange.fetch_positions([SYMBOL]) == []


async def within(awaitable: Any, what: str, seconds: float = 30.0) -> Any:
    """A client call that never answers fails the test naming the call."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except TimeoutError:
        raise AssertionError(f"ccxt.pro {what}: no answer within {seconds:.0f} s") from None


def test_ccxt_pro_watches_book_trades_orders_and_positions(venue: LocalVenue) -> None:
    async def run() -> None:
        exchange = ccxt.pro.binanceusdm(_ccxt_options())
        _point_ccxt(exchange, venue)
        try:
            book = await within(exchange.watch_order_book(SYMBOL), "watch_order_book")
            first = book["nonce"]
            for _ in range(3):
                book = await within(exchange.watch_order_book(SYMBOL), "watch_order_book")
            assert book["nonce"] > first and book["bids"][0][0] < book["asks"][0][0]
            assert await within(exchange.watch_trades(SYMBOL), "watch_trades")
            assert venue.usdm is not None
            hub = venue.usdm.hub
            streams_before = len(hub.user_conns.get(ACCOUNT, ()))
            orders = asyncio.ensure_future(exchange.watch_orders(SYMBOL))
            positions = asyncio.ensure_future(exchange.watch_positions([SYMBOL]))
            # Order only once ccxt's user stream is attached (listenKey fetched and
            # socket open: seconds on a busy host), or its update would go to nobody.
            deadline = time.monotonic() + 60
            while len(hub.user_conns.get(ACCOUNT, ())) <= streams_before:
                assert time.monotonic() < deadline, "ccxt.pro's user stream never attached"
                await asyncio.sleep(0.05)
            placed = await within(exchange.create_order(SYMBOL, "market", "sell", 0.02),
                                  "create_order")
            seen = await within(orders, "watch_orders")
            assert any(o["id"] == placed["id"] for o in seen)
            watched = await within(positions, "watch_positions")
            assert watched and watched[0]["side"] == "short"
            await exchange.create_order(SYMBOL, "market", "buy", 0.02,
                                        params={"reduceOnly": True})
        finally:
            await exchange.close()
    asyncio.run(run())


def test_official_usdm_sdk_rest_ws_api_and_streams(venue: LocalVenue) -> None:
    assert venue.usdm is not None
    client = DerivativesTradingUsdsFutures(
        config_rest_api=ConfigurationRestAPI(api_key="bob-key", api_secret="bob-secret",
                                             base_path=venue.usdm.url),
        config_ws_api=ConfigurationWebSocketAPI(api_key="bob-key", api_secret="bob-secret",
                                                stream_url=venue.usdm.ws_url + "/ws-fapi/v1"),
        config_ws_streams=ConfigurationWebSocketStreams(stream_url=venue.usdm.ws_url))
    rest = client.rest_api
    assert rest.exchange_information().data().symbols[0].symbol == "BTCUSDT"
    order = rest.new_order(symbol="BTCUSDT", side="BUY", type="LIMIT", quantity=0.01,
                           price=20000, time_in_force="GTC").data()
    assert rest.query_order(symbol="BTCUSDT", order_id=order.order_id).data().status == "NEW"
    assert rest.cancel_order(symbol="BTCUSDT", order_id=order.order_id).data().status == \
        "CANCELED"
    assert rest.change_initial_leverage(symbol="BTCUSDT", leverage=5).data().leverage == 5
    listen_key = rest.start_user_data_stream().data().listen_key

    async def run() -> None:
        api = await client.websocket_api.create_connection()
        try:
            placed = (await api.new_order(symbol="BTCUSDT", side="BUY", type="MARKET",
                                          quantity=0.01)).data()
            assert placed.result.status == "FILLED"
            held = (await api.position_information_v2(symbol="BTCUSDT")).data().result
            assert [p.position_amt for p in held] == ["0.01000"]
        finally:
            await api.close_connection(close_session=True)
        streams = await client.websocket_streams.create_connection()
        try:
            diffs: list = []
            marks: list = []
            events: list = []
            (await streams.diff_book_depth_streams(symbol="btcusdt", update_speed="100ms")
             ).on("message", diffs.append)
            (await streams.mark_price_stream(symbol="btcusdt", update_speed="1s")
             ).on("message", marks.append)
            (await streams.user_data(listen_key)).on("message", events.append)
            await asyncio.sleep(1.5)
            rest.new_order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity=0.01,
                           reduce_only="true")
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and not (
                    len(diffs) > 3 and marks and any(
                        getattr(e.actual_instance, "a", None) is not None for e in events)):
                await asyncio.sleep(0.1)
            assert all(b.pu == a.u for a, b in zip(diffs, diffs[1:], strict=False))
            assert marks[-1].s == "BTCUSDT" and float(marks[-1].p) > 0
            kinds = {type(e.actual_instance).__name__ for e in events}
            assert {"OrderTradeUpdate", "AccountUpdate"} <= kinds
        finally:
            await streams.close_connection(close_session=True)
    asyncio.run(run())


@pytest.fixture
def python_binance_ws_api(venue: LocalVenue) -> Iterator[None]:
    """python-binance reads its WebSocket API address from a class URL option."""
    assert venue.usdm is not None
    saved = AsyncClient.WS_FUTURES_URL
    AsyncClient.WS_FUTURES_URL = venue.usdm.ws_url + "/ws-fapi/v1"
    yield
    AsyncClient.WS_FUTURES_URL = saved


def test_python_binance_futures_rest_streams_and_ws_api(venue: LocalVenue,
                                                        python_binance_ws_api: None) -> None:
    assert venue.usdm is not None
    client = Client("carol-key", "carol-secret", ping=False)
    client.FUTURES_URL = venue.usdm.url + "/fapi"
    assert client.futures_exchange_info()["symbols"][0]["symbol"] == "BTCUSDT"
    assert client.futures_order_book(symbol="BTCUSDT", limit=5)["bids"]
    with pytest.raises(Exception, match="-2015"):  # carol has no key here
        client.futures_account_balance()
    client = Client("alice-key", "alice-secret", ping=False)
    client.FUTURES_URL = venue.usdm.url + "/fapi"
    # The venue is shared by this module's tests (in whatever order a worker runs
    # them): the position moves by this order's quantity from where it was.
    before = sum(Decimal(p["positionAmt"]) for p in
                 client.futures_position_information(symbol="BTCUSDT"))
    placed = client.futures_create_order(symbol="BTCUSDT", side="SELL", type="MARKET",
                                         quantity="0.01")
    assert placed["status"] == "FILLED"
    position = client.futures_position_information(symbol="BTCUSDT")
    assert len(position) == 1 and Decimal(position[0]["positionAmt"]) == before - Decimal("0.01")
    assert len(position[0]["positionAmt"].split(".")[1]) == 5, position  # the symbol's precision
    assert client.futures_get_position_mode() == {"dualSidePosition": False}
    assert any(r["incomeType"] == "COMMISSION" for r in client.futures_income_history())

    async def run() -> None:
        async_client = AsyncClient("alice-key", "alice-secret")
        async_client.FUTURES_URL = venue.usdm.url + "/fapi"  # type: ignore[union-attr]
        sockets = BinanceSocketManager(async_client)
        sockets.FSTREAM_URL = venue.usdm.ws_url + "/"  # type: ignore[union-attr]
        try:
            async with sockets.futures_user_socket() as user:
                await asyncio.sleep(0.5)
                reply = await async_client.ws_futures_create_order(
                    symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01",
                    reduceOnly="true")
                assert reply["status"] == "FILLED"
                event = await asyncio.wait_for(user.recv(), 15)
                assert event["e"] == "ORDER_TRADE_UPDATE" and event["o"]["R"] is True
            async with sockets.futures_depth_socket("BTCUSDT") as depth:
                update = await asyncio.wait_for(depth.recv(), 15)
                assert update["data"]["b"] and update["data"]["a"]
        finally:
            await async_client.close_connection()
    asyncio.run(run())

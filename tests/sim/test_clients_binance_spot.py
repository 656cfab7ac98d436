"""Third-party Binance clients, in their current releases and unchanged,
against the local venue's spot dialect: python-binance, ccxt (REST and
ccxt.pro WebSocket) and Binance's own binance-sdk-spot (REST, WebSocket API
and WebSocket streams). Only their base URLs are pointed at the venue, through
each client's own options or class constants; nothing of theirs is patched.

Each drives orders (place, query, cancel), balances, the book, trades and
user data events that arrive over the WebSocket API subscription."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from engine.sim.server import LocalVenue
from tests.sim.binance_client import BinanceClient

TIMEOUT_S = 20.0  # generous: the machine is shared


async def _wait_for(queue_get: Callable[[], Any], match: Callable[[Any], bool]) -> Any:
    """The next item from an async getter that satisfies ``match``."""
    async def loop() -> Any:
        while True:
            item = await queue_get()
            if match(item):
                return item
    return await asyncio.wait_for(loop(), TIMEOUT_S)


# ------------------------------------------------------------ python-binance

def test_python_binance(venue: LocalVenue, bob: BinanceClient) -> None:
    from binance import AsyncClient, BinanceSocketManager

    class VenueClient(AsyncClient):  # the library's URL constants, pointed at the venue
        API_URL = venue.rest_url + "/api"
        WS_API_URL = venue.ws_url + "/ws-api/v3"

    class VenueSockets(BinanceSocketManager):
        STREAM_URL = venue.ws_url + "/"

    async def run() -> None:
        client = await VenueClient.create("alice-key", "alice-secret")
        try:
            assert (await client.get_server_time())["serverTime"] > 0
            info = await client.get_symbol_info("BTCUSDT")
            assert info is not None and info["baseAsset"] == "BTC"
            balance = await client.get_asset_balance(asset="USDT")
            assert balance["free"] == "100000.00000000"
            sockets = VenueSockets(client)
            async with sockets.user_socket() as user, sockets.trade_socket("BTCUSDT") as tape:
                order = await client.order_limit_sell(symbol="BTCUSDT", quantity="0.01",
                                                      price="30000")
                assert order["status"] == "NEW"
                report = await _wait_for(user.recv, lambda m: m.get("e") == "executionReport")
                assert report["i"] == order["orderId"] and report["x"] == "NEW"
                bob.limit("BUY", "0.01", "30000")
                fill = await _wait_for(user.recv, lambda m: m.get("x") == "TRADE")
                assert fill["X"] == "FILLED" and fill["l"] == "0.01000000"
                trade = await _wait_for(tape.recv, lambda m: m.get("e") == "trade")
                assert trade["p"] == "30000.00000000"
            queried = await client.get_order(symbol="BTCUSDT", orderId=order["orderId"])
            assert queried["status"] == "FILLED"
            book = await client.get_order_book(symbol="BTCUSDT", limit=5)
            assert "lastUpdateId" in book
            trades = await client.get_recent_trades(symbol="BTCUSDT")
            assert trades[-1]["price"] == "30000.00000000"
            # the WebSocket API path
            placed = await client.ws_create_order(symbol="BTCUSDT", side="BUY", type="LIMIT",
                                                  timeInForce="GTC", quantity="0.01",
                                                  price="20000")
            assert placed["status"] == "NEW"
            status = await client.ws_get_order(symbol="BTCUSDT", orderId=placed["orderId"])
            assert status["price"] == "20000.00000000"
            opened = await client.ws_get_open_orders(symbol="BTCUSDT")
            assert [o["orderId"] for o in opened] == [placed["orderId"]]
            canceled = await client.ws_cancel_order(symbol="BTCUSDT", orderId=placed["orderId"])
            assert canceled["status"] == "CANCELED"
            ws_book = await client.ws_get_order_book(symbol="BTCUSDT", limit=5)
            assert "bids" in ws_book
            account = await client.ws_get_account()
            assert any(b["asset"] == "BTC" for b in account["balances"])
        finally:
            await client.close_connection()

    asyncio.run(run())


# ---------------------------------------------------------------------- ccxt

def _ccxt_options(venue: LocalVenue, key: str, secret: str) -> dict[str, Any]:
    """ccxt's own settings: the spot URLs at the venue, spot markets only (the
    venue has no wallet /sapi or futures), no currency listing (a /sapi call)."""
    return {
        "apiKey": key, "secret": secret, "enableRateLimit": False,
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "fetchMargins": False,
                    "defaultType": "spot"},
        "urls": {"api": {
            "public": venue.rest_url + "/api/v3", "private": venue.rest_url + "/api/v3",
            "v1": venue.rest_url + "/api/v1",
            "ws": {"spot": venue.ws_url + "/ws",
                   "ws-api": {"spot": venue.ws_url + "/ws-api/v3"}}}},
    }


def test_ccxt_rest(venue: LocalVenue, bob: BinanceClient) -> None:
    import ccxt

    exchange = ccxt.binance(_ccxt_options(venue, "alice-key", "alice-secret"))
    markets = exchange.load_markets()
    assert markets["BTC/USDT"]["precision"]["price"] is not None
    balance = exchange.fetch_balance()
    assert balance["USDT"]["free"] == 100000.0
    order = exchange.create_order("BTC/USDT", "limit", "sell", 0.01, 30000)
    assert order["status"] == "open"
    assert exchange.fetch_order(order["id"], "BTC/USDT")["price"] == 30000.0
    assert [o["id"] for o in exchange.fetch_open_orders("BTC/USDT")] == [order["id"]]
    bob.limit("BUY", "0.004", "30000")
    assert exchange.fetch_order(order["id"], "BTC/USDT")["filled"] == 0.004
    trades = exchange.fetch_my_trades("BTC/USDT")
    assert [(t["side"], t["amount"]) for t in trades] == [("sell", 0.004)]
    canceled = exchange.cancel_order(order["id"], "BTC/USDT")
    assert canceled["status"] == "canceled"
    book = exchange.fetch_order_book("BTC/USDT", 5)
    assert book["nonce"] is not None
    assert exchange.fetch_trades("BTC/USDT")[-1]["price"] == 30000.0
    assert exchange.fetch_ticker("BTC/USDT")["last"] == 30000.0


def test_ccxt_pro_websocket(venue: LocalVenue, alice: BinanceClient,
                            bob: BinanceClient) -> None:
    import ccxt.pro

    async def run() -> None:
        exchange = ccxt.pro.binance(_ccxt_options(venue, "alice-key", "alice-secret"))
        try:
            await exchange.load_markets()
            bob.limit("SELL", "0.02", "31000")
            book = await exchange.watch_order_book("BTC/USDT")
            assert book["asks"][0] == [31000.0, 0.02]
            orders_task = asyncio.ensure_future(exchange.watch_orders("BTC/USDT"))
            trades_task = asyncio.ensure_future(exchange.watch_my_trades("BTC/USDT"))
            tape_task = asyncio.ensure_future(exchange.watch_trades("BTC/USDT"))
            await asyncio.sleep(0)  # the subscriptions go out before the order
            placed = await exchange.create_order_ws("BTC/USDT", "limit", "buy", 0.01, 31000)
            assert placed["id"]
            orders = await asyncio.wait_for(orders_task, TIMEOUT_S)
            assert orders[-1]["id"] == placed["id"]
            mine = await asyncio.wait_for(trades_task, TIMEOUT_S)
            assert (mine[-1]["order"], mine[-1]["amount"]) == (placed["id"], 0.01)
            deadline = asyncio.get_running_loop().time() + TIMEOUT_S
            while not tape_task.done():  # the trade stream's SUBSCRIBE may follow the trade
                assert asyncio.get_running_loop().time() < deadline, "no trade on the tape"
                bob.limit("SELL", "0.001", "31000")
                alice.limit("BUY", "0.001", "31000")
                await asyncio.wait([tape_task], timeout=0.5)
            assert tape_task.result()[-1]["price"] == 31000.0
            resting = await exchange.create_order_ws("BTC/USDT", "limit", "buy", 0.01, 20000)
            fetched = await exchange.fetch_order_ws(resting["id"], "BTC/USDT")
            assert fetched["status"] == "open"
            opened = await exchange.fetch_open_orders_ws("BTC/USDT")
            assert [o["id"] for o in opened] == [resting["id"]]
            balance_task = asyncio.ensure_future(exchange.watch_balance())
            await asyncio.sleep(0.2)  # its REST snapshot first, then the events
            canceled = await exchange.cancel_order_ws(resting["id"], "BTC/USDT")
            assert canceled["status"] == "canceled"
            balance = await asyncio.wait_for(balance_task, TIMEOUT_S)  # outboundAccountPosition
            assert balance["USDT"]["used"] == 0.0  # the canceled order's 200 USDT unlocked
            trades = await exchange.fetch_my_trades_ws("BTC/USDT")
            bought = sum(t["amount"] - t["fee"]["cost"] for t in trades if t["side"] == "buy")
            assert balance["BTC"]["free"] == pytest.approx(10 + bought, abs=1e-9)
            ticker = await asyncio.wait_for(exchange.watch_ticker("BTC/USDT"), TIMEOUT_S)
            assert ticker["last"] == 31000.0  # <symbol>@ticker, every second
            candles = await asyncio.wait_for(exchange.watch_ohlcv("BTC/USDT", "1m"), TIMEOUT_S)
            assert candles[-1][4] == 31000.0  # <symbol>@kline_1m close
            # (fetch_balance_ws is not used: ccxt 4.5 parses its account.status answer
            # without a market type and returns no balances, against Binance too)
        finally:
            await exchange.close()

    asyncio.run(run())


# ---------------------------------------------------------- binance-sdk-spot

def _value(model: Any, name: str) -> Any:
    """A field of an SDK response model (pydantic; some answers are dicts)."""
    return model[name] if isinstance(model, dict) else getattr(model, name)


def test_binance_sdk_spot_rest(venue: LocalVenue, bob: BinanceClient) -> None:
    from binance_common.configuration import ConfigurationRestAPI
    from binance_sdk_spot.rest_api.models import (
        NewOrderSideEnum,
        NewOrderTimeInForceEnum,
        NewOrderTypeEnum,
    )
    from binance_sdk_spot.spot import Spot

    rest = Spot(config_rest_api=ConfigurationRestAPI(
        api_key="alice-key", api_secret="alice-secret", base_path=venue.rest_url)).rest_api
    assert rest.time().data().server_time > 0
    info = rest.exchange_info(symbol="BTCUSDT").data()
    assert info.symbols[0].base_asset == "BTC"
    order = rest.new_order(symbol="BTCUSDT", side=NewOrderSideEnum.SELL,
                           type=NewOrderTypeEnum.LIMIT,
                           time_in_force=NewOrderTimeInForceEnum.GTC,
                           quantity=0.01, price=30000.0).data()
    assert order.status == "NEW"
    bob.limit("BUY", "0.004", "30000")
    queried = rest.get_order(symbol="BTCUSDT", order_id=order.order_id).data()
    assert (queried.status, queried.executed_qty) == ("PARTIALLY_FILLED", "0.00400000")
    assert [o.order_id for o in rest.get_open_orders(symbol="BTCUSDT").data()] == [
        order.order_id]
    assert rest.delete_order(symbol="BTCUSDT", order_id=order.order_id).data().status == \
        "CANCELED"
    balances = {b.asset: b for b in rest.get_account().data().balances}
    assert balances["BTC"].free == "9.99600000"  # 0.004 sold, 0.006 unlocked
    assert rest.depth(symbol="BTCUSDT", limit=5).data().last_update_id > 0
    assert rest.get_trades(symbol="BTCUSDT").data()[-1].price == "30000.00000000"
    assert [t.qty for t in rest.my_trades(symbol="BTCUSDT").data()] == ["0.00400000"]


def test_binance_sdk_spot_websocket_api_and_streams(venue: LocalVenue,
                                                    bob: BinanceClient) -> None:
    from binance_common.configuration import (
        ConfigurationWebSocketAPI,
        ConfigurationWebSocketStreams,
    )
    from binance_sdk_spot.spot import Spot
    from binance_sdk_spot.websocket_api.models import (
        ExecutionReport,
        OrderPlaceSideEnum,
        OrderPlaceTimeInForceEnum,
        OrderPlaceTypeEnum,
    )

    async def run() -> None:
        spot = Spot(config_ws_api=ConfigurationWebSocketAPI(
                        api_key="alice-key", api_secret="alice-secret",
                        stream_url=venue.ws_url + "/ws-api/v3"),
                    config_ws_streams=ConfigurationWebSocketStreams(stream_url=venue.ws_url))
        api = await spot.websocket_api.create_connection()
        streams = await spot.websocket_streams.create_connection()
        events: asyncio.Queue[Any] = asyncio.Queue()
        tape: asyncio.Queue[Any] = asyncio.Queue()
        try:
            assert (await api.time()).data().result.server_time > 0
            subscribed = await api.user_data_stream_subscribe_signature()
            subscribed.stream.on("message", events.put_nowait)
            trades = await streams.trade(symbol="btcusdt")
            trades.on("message", tape.put_nowait)
            placed = (await api.order_place(
                symbol="BTCUSDT", side=OrderPlaceSideEnum.SELL, type=OrderPlaceTypeEnum.LIMIT,
                time_in_force=OrderPlaceTimeInForceEnum.GTC, quantity=0.01,
                price=30000.0)).data().result
            assert placed.status == "NEW"
            def report(event: Any) -> Any:  # the SDK routes each event to its model
                instance = event.actual_instance
                return instance if isinstance(instance, ExecutionReport) else None

            new = report(await _wait_for(events.get, report))
            assert (new.x, new.i) == ("NEW", placed.order_id)
            bob.limit("BUY", "0.01", "30000")
            fill = report(await _wait_for(events.get, lambda e: report(e) and
                                          report(e).x == "TRADE"))
            assert (fill.i, fill.X, fill.l) == (placed.order_id, "FILLED", "0.01000000")
            trade = await _wait_for(tape.get, lambda t: True)
            assert _value(trade, "p") == "30000.00000000"
            status = (await api.order_status(symbol="BTCUSDT",
                                             order_id=placed.order_id)).data().result
            assert status.status == "FILLED"
            resting = (await api.order_place(
                symbol="BTCUSDT", side=OrderPlaceSideEnum.BUY, type=OrderPlaceTypeEnum.LIMIT,
                time_in_force=OrderPlaceTimeInForceEnum.GTC, quantity=0.01,
                price=20000.0)).data().result
            opened = (await api.open_orders_status(symbol="BTCUSDT")).data().result
            assert [o.order_id for o in opened] == [resting.order_id]
            canceled = (await api.order_cancel(symbol="BTCUSDT",
                                               order_id=resting.order_id)).data().result
            assert canceled.status == "CANCELED"
            account = (await api.account_status()).data().result
            assert any(b.asset == "USDT" for b in account.balances)
            book = (await api.depth(symbol="BTCUSDT", limit=5)).data().result
            assert book.last_update_id > 0
        finally:
            await api.close_connection()
            await streams.close_connection()

    asyncio.run(run())


def test_binance_sdk_spot_ed25519_session_logon(start_venue: Callable[..., LocalVenue],
                                                bob_client: Callable[[LocalVenue],
                                                                     BinanceClient]) -> None:
    """An Ed25519 key: signed REST (python-binance), then session.logon,
    userDataStream.subscribe and orders on the logged-on session (binance-sdk-spot;
    web-socket-api.md)."""
    from binance_common.configuration import ConfigurationWebSocketAPI
    from binance_sdk_spot.spot import Spot
    from binance_sdk_spot.websocket_api.models import (
        ExecutionReport,
        OrderPlaceSideEnum,
        OrderPlaceTimeInForceEnum,
        OrderPlaceTypeEnum,
    )
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from engine.config import VenueAccountConfig
    from engine.sim.testkit import account_config

    private = Ed25519PrivateKey.generate()
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    private_pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
    carol = VenueAccountConfig(name="carol", api_key="carol-key", api_secret="",
                               balances={"USDT": "1000"}, public_key=public_pem)
    venue = start_venue(accounts=[carol, account_config("bob")])
    bob = bob_client(venue)

    from binance import Client  # python-binance signs REST with the Ed25519 key too

    class VenueClient(Client):
        API_URL = venue.rest_url + "/api"

    rest = VenueClient("carol-key", private_key=private_pem)  # its ping goes to the venue
    assert rest.get_asset_balance(asset="USDT")["free"] == "1000.00000000"
    resting = rest.order_limit_buy(symbol="BTCUSDT", quantity="0.001", price="10000")
    assert rest.cancel_order(symbol="BTCUSDT", orderId=resting["orderId"])["status"] == \
        "CANCELED"

    async def run() -> None:
        spot = Spot(config_ws_api=ConfigurationWebSocketAPI(
            api_key="carol-key", private_key=private_pem,
            stream_url=venue.ws_url + "/ws-api/v3"))
        api = await spot.websocket_api.create_connection()
        events: asyncio.Queue[Any] = asyncio.Queue()
        try:
            logon = (await api.session_logon()).data().result
            assert logon.api_key == "carol-key"
            subscribed = await api.user_data_stream_subscribe()
            subscribed.stream.on("message", events.put_nowait)
            assert (await api.session_status()).data().result.user_data_stream is True
            placed = (await api.order_place(
                symbol="BTCUSDT", side=OrderPlaceSideEnum.BUY, type=OrderPlaceTypeEnum.LIMIT,
                time_in_force=OrderPlaceTimeInForceEnum.GTC, quantity=0.01,
                price=30000.0)).data().result
            bob.limit("SELL", "0.01", "30000")

            def fill(event: Any) -> bool:
                instance = event.actual_instance
                return isinstance(instance, ExecutionReport) and instance.x == "TRADE"

            report = (await _wait_for(events.get, fill)).actual_instance
            assert (report.i, report.X) == (placed.order_id, "FILLED")
        finally:
            await api.close_connection()

    asyncio.run(run())


@pytest.fixture
def bob_client() -> Callable[[LocalVenue], BinanceClient]:
    return lambda venue: BinanceClient(venue.rest_url, "bob-key", "bob-secret")

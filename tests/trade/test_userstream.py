"""The user data stream against the local venue (a WebSocket API
subscription): fills arrive over the socket; a stream that drops for a while
during fills loses none of them (resubscribe, then REST catch-up), and new
orders stop while it is down."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from engine.model import Side
from engine.trade.actions import ActionResult, Outcome
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.fault_proxy import FaultProxy
from tests.trade.rig import Orders


def place_all(trader: TraderService, orders: list) -> None:
    results: list[ActionResult] = []
    trader.executor.on_result(results.append)
    trader.executor.submit_many(orders)
    eventually(lambda: len(results) == len(orders))
    assert all(r.outcome == Outcome.ACKNOWLEDGED for r in results), results


def test_fills_arrive_over_the_stream(start_trader: Callable[..., TraderService],
                                      bob: BinanceClient, proxy: FaultProxy) -> None:
    trader = start_trader()
    order = Orders().place(Side.BUY, "29000", "0.01")
    place_all(trader, [order])
    trades_before = proxy.count("GET", "/api/v3/myTrades")
    bob.limit("SELL", "0.01", "29000")
    record = eventually(lambda: (r := trader.store.get("binance", order.client_order_id))
                        and r.state == "filled" and r)
    assert record.filled == "0.01000000"
    position = eventually(lambda: (p := trader.positions.position("binance", "BTC/USDT"))
                          and p.quantity and p)
    assert position.quantity == Decimal("0.00999")  # 0.1 % fee taken in BTC
    assert proxy.count("GET", "/api/v3/myTrades") == trades_before  # no REST needed


def test_stream_dropped_during_fills_loses_none(start_trader: Callable[..., TraderService],
                                                bob: BinanceClient, proxy: FaultProxy) -> None:
    trader = start_trader()
    orders = Orders()
    grid = [orders.place(Side.BUY, str(29000 - i), "0.01") for i in range(5)]
    place_all(trader, grid)
    stream = trader.streams[0]
    proxy.drop_streams(refuse_for_s=1.5)
    eventually(lambda: not stream.connected.is_set())
    blocked = trader.risk.check_place(orders.place(Side.BUY, "1000"))
    assert blocked is not None and "disconnected" in blocked
    trades_before = proxy.count("GET", "/api/v3/myTrades")
    bob.order(symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.05")  # fills all five
    eventually(lambda: stream.caught_up.is_set() and stream.connects >= 2, timeout=20)
    assert proxy.count("WS", "userDataStream.subscribe.signature") == 2  # resubscribed
    assert proxy.count("GET", "/api/v3/myTrades") > trades_before  # caught up by REST
    for order in grid:
        assert trader.store.get("binance", order.client_order_id).state == "filled"
    assert trader.db.query("SELECT COUNT(*) FROM TRADER_FILLS") == [(5,)]
    assert trader.positions.position("binance", "BTC/USDT").quantity == Decimal("0.04995")
    assert trader.risk.check_place(orders.place(Side.BUY, "1000")) is None


def test_spot_stream_is_a_ws_api_subscription_never_a_listen_key(
        start_trader: Callable[..., TraderService], proxy: FaultProxy) -> None:
    """Binance discontinued spot listenKeys (2026-02-20): the stream is a
    signed userDataStream subscription on the WebSocket API."""
    trader = start_trader()
    stream = trader.streams[0]
    assert stream.status()["kind"] == "ws_api" and stream.caught_up.is_set()
    assert proxy.count("WS", "userDataStream.subscribe.signature") == 1
    assert proxy.count("POST", "/api/v3/userDataStream") == 0
    assert trader.sessions["binance"].ws_ready()  # the same socket carries the orders

"""Faults only the WebSocket API path has, against the real local venue
through the fault proxy: the socket dies with an order's answer outstanding
(after or before the venue saw it), and orders fall back to REST while the
socket is down. The same rule holds as over REST: an order whose fate is
unknown is looked up by client id, and re-sent only once proven absent."""

from __future__ import annotations

from collections.abc import Callable

from engine.model import Side
from engine.trade.actions import ActionResult, Outcome
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.fault_proxy import (
    DROP,
    FORWARD_THEN_DROP,
    FORWARD_THEN_HANG,
    LOOKUP_CALLS,
    Fault,
    FaultProxy,
    on,
)
from tests.trade.rig import Orders, open_orders, venue_orders

WS_PLACE = on("WS", "order.place")


def collect(service: TraderService) -> dict[str, ActionResult]:
    results: dict[str, ActionResult] = {}
    assert service.executor is not None
    service.executor.on_result(lambda r: results.__setitem__(r.action.client_order_id, r))
    return results


def settled(results: dict[str, ActionResult], client_order_id: str,
            timeout: float = 20.0) -> ActionResult:
    return eventually(lambda: results.get(client_order_id), timeout=timeout)


def test_wsapi_socket_lost_after_the_venue_took_the_order_is_looked_up_not_resent(
        start_trader: Callable[..., TraderService], proxy: FaultProxy,
        alice: BinanceClient) -> None:
    trader = start_trader()
    stream = trader.streams[0]
    results = collect(trader)
    proxy.add(Fault(WS_PLACE, FORWARD_THEN_DROP))
    order = Orders().place(Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 1
    assert proxy.count("WS", "order.place") == 1 and proxy.count("POST", "/api/v3/order") == 0
    assert proxy.count_any(LOOKUP_CALLS) >= 1 or stream.catch_ups >= 2  # looked up, or caught up
    assert [o["clientOrderId"] for o in venue_orders(alice)] == [order.client_order_id]
    eventually(lambda: stream.connects >= 2 and stream.caught_up.is_set())  # resubscribed
    assert trader.store.get("binance", order.client_order_id).state == "open"


def test_wsapi_socket_lost_before_the_venue_saw_the_order_resends_after_proof(
        start_trader: Callable[..., TraderService], proxy: FaultProxy,
        alice: BinanceClient) -> None:
    trader = start_trader()
    results = collect(trader)
    proxy.add(Fault(WS_PLACE, DROP))
    order = Orders().place(Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id, timeout=30.0)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert proxy.count_any(LOOKUP_CALLS) >= 1  # looked up before the re-send
    assert [o["clientOrderId"] for o in venue_orders(alice)] == [order.client_order_id]


def test_wsapi_stalled_socket_times_out_then_the_lookup_settles_it(
        start_trader: Callable[..., TraderService], proxy: FaultProxy,
        alice: BinanceClient) -> None:
    trader = start_trader()
    results = collect(trader)
    proxy.add(Fault(WS_PLACE, FORWARD_THEN_HANG, delay_s=2.0))  # past the 1 s timeout
    order = Orders().place(Side.BUY, "29000")
    trader.executor.submit(order)
    assert settled(results, order.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert proxy.count("WS", "order.place") == 1
    assert len(venue_orders(alice)) == 1
    socket = trader.streams[0].socket
    eventually(lambda: socket is not None and socket.late_answers >= 1,
               message=f"{socket.status() if socket else None} {trader.streams[0].status()}")


def test_wsapi_down_cancels_go_over_rest_and_orders_return_to_the_socket(
        start_trader: Callable[..., TraderService], proxy: FaultProxy,
        alice: BinanceClient) -> None:
    trader = start_trader()
    stream = trader.streams[0]
    session = trader.sessions["binance"]
    results = collect(trader)
    orders = Orders()
    first = orders.place(Side.BUY, "29000")
    trader.executor.submit(first)
    assert settled(results, first.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert proxy.count("WS", "order.place") == 1
    proxy.drop_streams(refuse_for_s=3.0)
    eventually(lambda: not session.ws_ready())
    results.clear()
    trader.executor.submit(Orders.cancel(first))  # cancels are never blocked: over REST
    assert settled(results, first.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert proxy.count("DELETE", "/api/v3/order") == 1 and proxy.count("WS", "order.cancel") == 0
    assert open_orders(alice) == []
    eventually(lambda: stream.caught_up.is_set() and session.ws_ready(), timeout=20)
    second = orders.place(Side.BUY, "28900")
    trader.executor.submit(second)
    assert settled(results, second.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert proxy.count("WS", "order.place") == 2 and proxy.count("POST", "/api/v3/order") == 0

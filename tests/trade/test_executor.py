"""The executor against the real local venue (over real sockets, through the
fault proxy), with orders over REST and over the WebSocket API (``transport``):
every send ends acknowledged, rejected or looked up; no retry ever duplicates
an order; post-only rejections fall back and are counted."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from engine.model import Side
from engine.trade.actions import ActionResult, AmendOrder, Outcome
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.fault_proxy import (
    FORWARD_THEN_HANG,
    FORWARD_THEN_RESPOND,
    LOOKUP_CALLS,
    NEW_ORDER_CALLS,
    RESPOND,
    Fault,
    FaultProxy,
    on_any,
)
from tests.trade.rig import Orders, open_orders, venue_orders

NEW_ORDER = on_any(NEW_ORDER_CALLS)  # over REST or the WebSocket API


def new_orders(proxy: FaultProxy, transport: str) -> int:
    """New-order requests the proxy saw, all of them over ``transport``."""
    rest, ws = proxy.count("POST", "/api/v3/order"), proxy.count("WS", "order.place")
    assert (ws if transport == "rest" else rest) == 0, (transport, rest, ws)
    return rest if transport == "rest" else ws


def collect(service: TraderService) -> dict[str, ActionResult]:
    results: dict[str, ActionResult] = {}
    assert service.executor is not None
    service.executor.on_result(lambda r: results.__setitem__(r.action.client_order_id, r))
    return results


def settled(results: dict[str, ActionResult], client_order_id: str,
            timeout: float = 15.0) -> ActionResult:
    return eventually(lambda: results.get(client_order_id), timeout=timeout)


def test_place_is_acknowledged_recorded_and_rests_on_the_venue(
        transport: str, start_trader: Callable[..., TraderService], alice: BinanceClient,
        proxy: FaultProxy) -> None:
    trader = start_trader(order_transport=transport)
    results = collect(trader)
    order = Orders().place(Side.BUY, "29000.00", "0.01")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.venue_order_id
    # The result names the path the order went over (the trader metrics' label).
    assert result.path == ("ws" if transport == "ws_api" else "rest"), result
    record = trader.store.get("binance", order.client_order_id)
    assert record.state == "open" and record.price == "29000.00"
    assert [o["clientOrderId"] for o in open_orders(alice)] == [order.client_order_id]
    assert venue_orders(alice)[0]["price"] == "29000.00000000"
    assert new_orders(proxy, transport) == 1


def test_cancel_and_amend_end_acknowledged(
        transport: str, start_trader: Callable[..., TraderService], alice: BinanceClient,
        proxy: FaultProxy) -> None:
    trader = start_trader(order_transport=transport)
    results = collect(trader)
    orders = Orders()
    first, second = orders.place(Side.BUY, "29000"), orders.place(Side.SELL, "31000")
    trader.executor.submit_many([first, second])
    settled(results, second.client_order_id)
    results.clear()
    trader.executor.submit(orders.cancel(first))
    assert settled(results, first.client_order_id).outcome == Outcome.ACKNOWLEDGED
    eventually(lambda: trader.store.get("binance", first.client_order_id).state == "canceled")
    replacement = orders.place(Side.SELL, "31500", slot=second.slot_id, generation=1)
    results.clear()
    trader.executor.submit(AmendOrder(second.client_order_id, replacement))
    assert settled(results, second.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert [o["clientOrderId"] for o in open_orders(alice)] == [replacement.client_order_id]
    assert trader.store.get("binance", second.client_order_id).state == "canceled"
    assert trader.store.get("binance", replacement.client_order_id).replaces == \
        second.client_order_id
    over_ws = transport == "ws_api"
    assert (proxy.count("WS", "order.cancel"), proxy.count("DELETE", "/api/v3/order")) == \
        ((1, 0) if over_ws else (0, 1))
    assert (proxy.count("WS", "order.cancelReplace"),
            proxy.count("POST", "/api/v3/order/cancelReplace")) == ((1, 0) if over_ws else (0, 1))


def test_timeout_after_acceptance_is_looked_up_not_resent(
        transport: str, start_trader: Callable[..., TraderService], proxy: FaultProxy,
        alice: BinanceClient) -> None:
    trader = start_trader(order_transport=transport)
    results = collect(trader)
    proxy.add(Fault(NEW_ORDER, FORWARD_THEN_HANG, delay_s=2.0))  # stalls past the client's 1 s timeout
    order = Orders().place(Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED
    # sent once; settled by the lookup or by the user stream, whichever came first
    assert new_orders(proxy, transport) == 1
    assert len(venue_orders(alice)) == 1
    assert trader.store.get("binance", order.client_order_id).state == "open"


def test_5xx_after_acceptance_is_looked_up_not_resent(
        transport: str, start_trader: Callable[..., TraderService], proxy: FaultProxy,
        alice: BinanceClient) -> None:
    trader = start_trader(order_transport=transport)
    results = collect(trader)
    proxy.add(Fault(NEW_ORDER, FORWARD_THEN_RESPOND, status=502, body=b"<html>bad gateway"))
    proxy.add(Fault(NEW_ORDER, FORWARD_THEN_RESPOND, status=200,
                    body=b'{"code":-1007,"msg":"Timeout waiting for response from backend '
                         b'server. Send status unknown; execution status unknown."}'))
    orders = Orders()
    first, second = orders.place(Side.BUY, "29000"), orders.place(Side.BUY, "28900")
    trader.executor.submit_many([first, second])
    assert settled(results, first.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert settled(results, second.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert sorted(o["clientOrderId"] for o in venue_orders(alice)) == \
        sorted([first.client_order_id, second.client_order_id])


def test_5xx_before_the_venue_saw_it_is_resent_once_after_proof(
        transport: str, start_trader: Callable[..., TraderService], proxy: FaultProxy,
        alice: BinanceClient) -> None:
    """503 without forwarding: the lookup finds nothing, and only once the
    signed request is past recvWindow is the order sent again."""
    trader = start_trader(order_transport=transport)
    results = collect(trader)
    proxy.add(Fault(NEW_ORDER, RESPOND, status=503))
    order = Orders().place(Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id, timeout=20.0)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert new_orders(proxy, transport) == 2
    assert len(venue_orders(alice)) == 1


def test_429_waits_retry_after_and_resends_without_lookup(
        transport: str, start_trader: Callable[..., TraderService], proxy: FaultProxy,
        alice: BinanceClient) -> None:
    trader = start_trader(order_transport=transport)
    results = collect(trader)
    proxy.add(Fault(NEW_ORDER, RESPOND, status=429, headers={"Retry-After": "1"},
                    body=b'{"code":-1003,"msg":"Too much request weight used."}'))
    order = Orders().place(Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert proxy.count_any(LOOKUP_CALLS) == 0
    assert len(venue_orders(alice)) == 1


def test_definitive_rejection_is_not_retried(
        transport: str, start_trader: Callable[..., TraderService],
                                             proxy: FaultProxy) -> None:
    trader = start_trader(order_transport=transport)
    results = collect(trader)
    order = Orders().place(Side.BUY, "29000", quantity="100")  # 2.9M USDT > balance? no: 10M
    big = Orders("t2").place(Side.SELL, "31000", quantity="5000")  # more BTC than alice has
    trader.executor.submit_many([order, big])
    result = settled(results, big.client_order_id)
    assert result.outcome == Outcome.REJECTED and result.code == -2010
    assert "insufficient balance" in result.reason
    assert new_orders(proxy, transport) == 2
    assert trader.store.get("binance", big.client_order_id).state == "rejected"


def test_post_only_that_would_take_reprices_a_tick_away(
        transport: str, start_trader: Callable[..., TraderService], bob: BinanceClient,
        alice: BinanceClient) -> None:
    bob.limit("SELL", "0.01", "30000.00")
    bob.limit("SELL", "0.01", "29999.99")
    trader = start_trader(order_transport=transport, post_only_fallback="reprice", reprice_max=3)
    results = collect(trader)
    order = Orders().place(Side.BUY, "30000.00", post_only=True)
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.fallback == "reprice"
    mine = open_orders(alice)
    assert [(o["clientOrderId"], o["price"], o["type"]) for o in mine] == [
        (order.client_order_id, "29999.98000000", "LIMIT_MAKER")]
    assert trader.executor.status()["post_only_fallbacks"] == {"reprice": 2}
    assert trader.store.get("binance", order.client_order_id).fallback == "reprice"


def test_post_only_that_would_take_falls_back_to_limit(
        transport: str, start_trader: Callable[..., TraderService], bob: BinanceClient,
        alice: BinanceClient) -> None:
    bob.limit("SELL", "0.01", "30000.00")
    trader = start_trader(order_transport=transport, post_only_fallback="limit")
    results = collect(trader)
    order = Orders().place(Side.BUY, "30000.00", quantity="0.02", post_only=True)
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert (result.outcome, result.fallback) == (Outcome.ACKNOWLEDGED, "limit")
    record = eventually(lambda: (r := trader.store.get("binance", order.client_order_id))
                        and r.filled == "0.01000000" and r)
    assert record.state == "partially_filled" and not record.post_only
    assert trader.executor.status()["post_only_fallbacks"] == {"limit": 1}
    assert len(venue_orders(alice)) == 1


def test_rate_limit_keeps_every_window_under_the_limit(
        transport: str, start_trader: Callable[..., TraderService], alice: BinanceClient) -> None:
    trader = start_trader(order_transport=transport, orders_per_s=20.0, order_burst=5)
    results = collect(trader)
    sends: list[float] = []
    trader.executor.on_wire = lambda action, mono: sends.append(mono)
    orders = Orders()
    batch = [orders.place(Side.BUY, str(20000 + i)) for i in range(50)]
    trader.executor.submit_many(batch)
    eventually(lambda: len(results) == 50, timeout=20)
    assert all(r.outcome == Outcome.ACKNOWLEDGED for r in results.values())
    worst = max(sum(1 for t in sends if s <= t < s + 1.0) for s in sends)
    assert worst <= 20
    assert (sends[-1] - sends[0]) >= (50 - 20) / 20 * 0.95
    assert Decimal(len(open_orders(alice))) == 50


def test_cancel_of_an_order_filled_meanwhile_learns_it_filled(
        transport: str, start_trader: Callable[..., TraderService], bob: BinanceClient) -> None:
    trader = start_trader(order_transport=transport)
    results = collect(trader)
    order = Orders().place(Side.BUY, "29000")
    trader.executor.submit(order)
    settled(results, order.client_order_id)
    bob.limit("SELL", "0.01", "29000")
    results.clear()
    trader.executor.submit(Orders.cancel(order))
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.REJECTED
    eventually(lambda: trader.store.get("binance", order.client_order_id).state == "filled")


def test_refused_orders_never_reach_the_venue(
        transport: str, start_trader: Callable[..., TraderService],
                                              proxy: FaultProxy) -> None:
    from engine.trade.settings import RiskConfig

    trader = start_trader(order_transport=transport,
                          risk=RiskConfig(max_order_notional="100", error_burst=1000))
    results = collect(trader)
    orders = Orders()
    too_big, off_tick = orders.place(Side.BUY, "29000"), orders.place(Side.BUY, "1.001", "10")
    trader.executor.submit_many([too_big, off_tick])
    assert "max_order_notional" in settled(results, too_big.client_order_id).reason
    assert "tick" in settled(results, off_tick.client_order_id).reason
    assert new_orders(proxy, transport) == 0
    assert trader.store.get("binance", too_big.client_order_id) is None  # never an intent


def test_error_burst_trips_the_breaker_and_says_why(
        transport: str, start_trader: Callable[..., TraderService],
                                                    proxy: FaultProxy) -> None:
    from engine.trade.settings import RiskConfig

    trader = start_trader(order_transport=transport,
                          risk=RiskConfig(error_burst=3, error_window_s=30, cooldown_s=60,
                                          max_order_notional=""))
    results = collect(trader)
    for _ in range(3):
        proxy.add(Fault(NEW_ORDER, RESPOND, status=400,
                        body=b'{"code":-2010,"msg":"Account has insufficient balance for '
                             b'requested action."}'))
    orders = Orders()
    batch = [orders.place(Side.BUY, str(29000 - i)) for i in range(4)]
    trader.executor.submit_many(batch)
    last = settled(results, batch[3].client_order_id)
    assert last.outcome == Outcome.REJECTED and "failed sends" in last.reason
    assert new_orders(proxy, transport) == 3
    risk = {h.component: h for h in trader.health()}["risk"]
    assert not risk.ok and "error_burst" in risk.reason

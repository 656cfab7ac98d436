"""The venue-clock offset the trader signs with is kept fresh by the executor
itself: re-read every TIME_SYNC_S and at once after the venue refuses a
timestamp (-1021), over REST and the WebSocket API, against the local venue."""

from __future__ import annotations

import time
from collections.abc import Callable

from engine.clock import Clock
from engine.model import Side
from engine.trade.actions import Outcome
from engine.trade.service import TraderService
from engine.trade.session import TIME_SYNC_S
from tests.trade.fault_proxy import FaultProxy
from tests.trade.rig import Orders
from tests.trade.test_executor import collect, new_orders, settled


class SkewedClock(Clock):
    """The host clock off by ``skew_ms``; monotonic time can be moved on."""

    def __init__(self, skew_ms: int) -> None:
        self.skew_ms = skew_ms
        self.ahead_ns = 0

    def now_ns(self) -> int:
        return time.time_ns() + self.skew_ms * 1_000_000

    def monotonic_ns(self) -> int:
        return time.monotonic_ns() + self.ahead_ns


def test_order_refused_for_a_drifted_clock_resyncs_and_goes_through(
        transport: str, start_trader: Callable[..., TraderService], proxy: FaultProxy) -> None:
    trader = start_trader(order_transport=transport)
    session = trader.sessions["binance"]
    assert abs(session.offset_ms) < 1000 and session.time_syncs == 1
    session.clock = SkewedClock(+30_000)  # the host clock jumped 30 s ahead
    results = collect(trader)
    order = Orders().place(Side.BUY, "29000.00", "0.01")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED, result
    assert result.attempts == 2  # -1021 once (not processed), then re-read and sent again
    assert session.time_syncs == 2 and -31_000 < session.offset_ms < -29_000
    assert new_orders(proxy, transport) == 2
    assert trader.store.get("binance", order.client_order_id).state == "open"


def test_venue_clock_is_reread_every_sync_interval_not_per_order(
        start_trader: Callable[..., TraderService]) -> None:
    trader = start_trader(order_transport="rest")
    session = trader.sessions["binance"]
    clock = session.clock = SkewedClock(+400)  # drift within what the venue accepts
    results = collect(trader)
    orders = Orders()
    first = orders.place(Side.BUY, "29000.00", "0.01")
    trader.executor.submit(first)
    assert settled(results, first.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert session.time_syncs == 1 and abs(session.offset_ms) < 300  # not due yet
    clock.ahead_ns = int(TIME_SYNC_S * 1e9)  # ten minutes on
    second = orders.place(Side.BUY, "29000.00", "0.01")
    trader.executor.submit(second)
    assert settled(results, second.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert session.time_syncs == 2 and -700 < session.offset_ms < -100
    assert session.status()["clock_syncs"] == 2

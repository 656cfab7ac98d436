"""Pre-trade limits and the circuit breaker, with a driven clock: each limit
refuses with its reason, each trip says why on health, cooldowns expire."""

from __future__ import annotations

from decimal import Decimal

from engine.clock import TestClock
from engine.model import Side
from engine.trade.positions import PositionBook
from engine.trade.risk import BookState, RiskGuard
from engine.trade.settings import RiskConfig
from tests.trade.rig import Orders


class Now:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def guard(live: list | None = None, **limits: object) -> tuple[RiskGuard, Now, TestClock,
                                                               PositionBook]:
    now, clock, positions = Now(), TestClock(), PositionBook()
    records = live or []
    risk = RiskGuard(RiskConfig(**limits), positions, lambda venue: records,  # type: ignore[arg-type]
                     lambda venue: len(records), clock, now)
    return risk, now, clock, positions


def test_limits_refuse_with_their_reason() -> None:
    risk, *_ = guard(max_order_notional="1000", max_position_default="0.05")
    orders = Orders()
    assert risk.check_place(orders.place(Side.BUY, "29000", "0.01")) is None
    assert "max_order_notional" in risk.check_place(orders.place(Side.BUY, "29000", "0.1"))
    risk2, *_ = guard(max_position_default="0.05", max_order_notional="")
    assert "position could reach" in risk2.check_place(orders.place(Side.BUY, "100", "0.06"))
    risk3, *_ = guard(live=[object()] * 3, max_open_orders=3)
    assert "max_open_orders" in risk3.check_place(orders.place(Side.BUY, "100", "0.01"))


def test_error_burst_trips_for_the_cooldown_and_shows_on_health() -> None:
    risk, now, *_ = guard(error_burst=3, error_window_s=10, cooldown_s=60)
    for _ in range(3):
        risk.record_send("binance", False, "503")
    reason = risk.check_place(Orders().place(Side.BUY, "100"))
    assert reason is not None and "failed sends" in reason
    assert not risk.health()[0].ok and "error_burst" in risk.health()[0].reason
    now.t += 61
    assert risk.check_place(Orders().place(Side.BUY, "100")) is None
    assert risk.health()[0].ok


def test_stale_resyncing_and_jumping_books_stop_new_orders_on_that_pair() -> None:
    risk, now, clock, _ = guard(book_stale_s=5, price_jump_pct=5, price_jump_window_s=10,
                                cooldown_s=30)
    order = Orders().place(Side.BUY, "100")
    risk.on_book("binance", "BTC/USDT", BookState(False, clock.now_ns(), 100.0))
    assert "resyncing" in risk.check_place(order)
    risk.on_book("binance", "BTC/USDT", BookState(True, clock.now_ns() - 6 * 10**9, 100.0))
    assert "stale" in risk.check_place(order)
    risk.on_book("binance", "BTC/USDT", BookState(True, clock.now_ns(), 100.0))
    assert risk.check_place(order) is None
    now.t += 1
    risk.on_book("binance", "BTC/USDT", BookState(True, clock.now_ns(), 106.0))
    assert "moved 6.00%" in risk.check_place(order)
    assert risk.check_place(Orders().place(Side.BUY, "100")) is not None


def test_halt_blocks_everything_until_resumed_and_daily_loss_trips() -> None:
    risk, _, clock, positions = guard(max_daily_loss="5")
    order = Orders().place(Side.BUY, "100")
    risk.halt("halted: operator")
    assert risk.halted and "operator" in risk.check_place(order)
    risk.resume()
    assert risk.check_place(order) is None
    from tests.trade.test_positions import fill

    positions.on_fill(fill(Side.BUY, "100", "1", at_ns=clock.now_ns()))
    positions.on_fill(fill(Side.SELL, "90", "1", trade_id="2", at_ns=clock.now_ns()))
    assert "daily loss" in risk.check_place(order)
    assert Decimal(risk.status()["refused"]["max_daily_loss"]) == 1

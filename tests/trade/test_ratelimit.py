"""The order rate limiter with a driven clock: burst, spacing, the 1 s
window cap, and a venue-ordered pause."""

from __future__ import annotations

from engine.trade.ratelimit import OrderRateLimiter


def drain(limiter: OrderRateLimiter, until: float, step: float = 0.001) -> list[float]:
    sent, now = [], 0.0
    while now < until:
        while limiter.take(now):
            sent.append(now)
        now = round(now + step, 6)
    return sent


def test_burst_then_steady_rate_and_never_more_than_rate_in_any_window() -> None:
    limiter = OrderRateLimiter(25.0, 10)
    sent = drain(limiter, 10.0)
    assert sent[:10] == [0.0] * 10
    assert abs(len(sent) - 250) <= 10
    assert max(sum(1 for t in sent if s <= t < s + 1.0) for s in sent) <= 25


def test_burst_above_rate_is_capped_by_the_window() -> None:
    limiter = OrderRateLimiter(5.0, 50)
    sent = drain(limiter, 3.0)
    assert max(sum(1 for t in sent if s <= t < s + 1.0) for s in sent) <= 5


def test_wait_needed_does_not_spend() -> None:
    limiter = OrderRateLimiter(2.0, 1)
    assert limiter.wait_needed(0.0) == 0.0 and limiter.wait_needed(0.0) == 0.0
    assert limiter.take(0.0) and not limiter.take(0.0)
    assert abs(limiter.wait_needed(0.0) - 0.5) < 1e-9


def test_pause_stops_orders_for_the_time_given() -> None:
    limiter = OrderRateLimiter(100.0, 10)
    limiter.pause(1.0, 5.0)
    assert not limiter.take(3.0) and limiter.wait_needed(3.0) >= 3.0
    assert limiter.take(6.01)

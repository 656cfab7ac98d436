"""Request weight windows, 429/418 escalation and order counts, with an
injected clock."""

from __future__ import annotations

from engine.sim.ratelimit import MINUTE_MS, Limits, RateLimiter


def test_weight_window_resets_each_minute() -> None:
    limiter = RateLimiter(Limits(weight_per_minute=10))
    assert limiter.charge("ip", 10, 0).status == 0
    over = limiter.charge("ip", 1, 30_000)
    assert (over.status, over.retry_after_s, over.used_weight) == (429, 30, 11)
    assert limiter.charge("ip", 1, MINUTE_MS).used_weight == 1


def test_ignoring_429s_gets_a_ban_that_doubles() -> None:
    limiter = RateLimiter(Limits(weight_per_minute=1, strikes_before_ban=1))
    limiter.charge("ip", 1, 0)
    assert limiter.charge("ip", 1, 1).status == 429
    ban = limiter.charge("ip", 1, 2)
    assert (ban.status, ban.retry_after_s) == (418, 120)
    assert limiter.charge("ip", 1, 60_000).status == 418  # still banned next minute
    limiter.charge("ip", 1, 200_000)
    limiter.charge("ip", 1, 200_001)
    assert limiter.charge("ip", 1, 200_002).retry_after_s == 240


def test_other_ips_are_unaffected() -> None:
    limiter = RateLimiter(Limits(weight_per_minute=1))
    limiter.charge("a", 5, 0)
    assert limiter.charge("b", 1, 0).status == 0


def test_order_counts_per_ten_seconds_and_day() -> None:
    limiter = RateLimiter(Limits(orders_per_10s=2, orders_per_day=3))
    assert limiter.count_order("acct", 0)[:2] == (1, 1)
    assert limiter.count_order("acct", 1)[2] == ""
    assert "10 SECOND" in limiter.count_order("acct", 2)[2]
    assert limiter.count_order("acct", 10_000)[2] == ""
    assert "DAY" in limiter.count_order("acct", 20_000)[2]

"""The order rate limiter with a driven clock: burst, spacing, the 1 s
window cap, and a venue-ordered pause; and the REST weight budget taken from
the venue's exchangeInfo once connected."""

from __future__ import annotations

from pathlib import Path

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


def test_trader_takes_the_rest_weight_limit_from_exchange_info_once_connected(tmp_path: Path) -> None:
    """The venue publishes a REQUEST_WEIGHT limit below the documented 6000/min
    (as Binance may for an account or an IP): after start-up the trader's REST
    budget is that figure, not the driver's default, and it is logged."""
    from engine.trade.session import VenueSession
    from tests.trade.rig import make_service, start_venue, trader_config

    venue = start_venue(tmp_path / "venue", weight_per_minute=900)
    try:
        config = trader_config(tmp_path / "trader", venue.rest_url, venue.ws_url)
        service = make_service(config)
        service.start()
        try:
            session: VenueSession = service.sessions["binance"]
            assert session.limiter.capacity == 900  # fraction 1.0 in the rig; default was 6000
            assert any(r.limit == 900 for r in service.rate_limits["binance"])
        finally:
            service.stop(3.0)
    finally:
        venue.stop()

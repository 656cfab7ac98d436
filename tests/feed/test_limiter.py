"""The shared REST/connect budgets: sliding-window accounting with a driven
clock, 429/418 pauses, Retry-After parsing, real threads sharing one limiter,
and a whole-pool resync storm against a venue that enforces its weight budget."""

from __future__ import annotations

import threading
import time
from email.utils import formatdate

import pytest

from engine.feed.limiter import RECOVERY_WINDOWS, RestLimiter, WindowLimiter, parse_retry_after
from engine.venues import make_driver
from engine.venues.base import Subscription
from tests.support.eventually import eventually
from tests.support.fault_server import Fault, FeedRig, Stream


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_limiter_over_capacity_waits_until_oldest_weight_expires() -> None:
    clock = Clock()
    lim = WindowLimiter(capacity=10, window_s=60.0, clock=clock)
    assert lim.try_acquire(4) == 0.0
    clock.now += 10
    assert lim.try_acquire(6) == 0.0
    clock.now += 5
    # Full: 1 more weight fits once the first 4 (spent at t=1000) leave the window.
    assert lim.try_acquire(1) == pytest.approx(45.0)
    clock.now += 45
    assert lim.try_acquire(1) == 0.0
    assert lim.used() == 7


def test_window_limiter_request_heavier_than_budget_waits_for_an_empty_window() -> None:
    clock = Clock()
    lim = WindowLimiter(capacity=10, window_s=1.0, clock=clock)
    assert lim.try_acquire(3) == 0.0
    assert lim.try_acquire(50) == pytest.approx(1.0)
    clock.now += 1.0
    assert lim.try_acquire(50) == 0.0


def test_rest_limiter_uses_a_fraction_of_the_venue_weight() -> None:
    lim = RestLimiter(6000, 60.0, fraction=0.5, clock=Clock())
    assert lim.capacity == 3000


@pytest.mark.parametrize("status", [429, 418])
def test_rest_limiter_penalty_pauses_everyone_then_halves_budget_then_recovers(status: int) -> None:
    clock = Clock()
    lim = RestLimiter(100, 10.0, fraction=1.0, clock=clock)
    assert lim.penalize(status, 2.5) == 2.5
    assert lim.try_acquire(1) == pytest.approx(2.5)
    assert lim.banned_for() == pytest.approx(2.5)
    clock.now += 2.5
    assert lim.budget(clock.now) == 50  # halved after the penalty
    assert lim.try_acquire(50) == 0.0
    assert lim.try_acquire(1) > 0
    penalized_at = 1000.0
    clock.now = penalized_at + 10.0 * RECOVERY_WINDOWS - 0.1
    assert lim.budget(clock.now) == 50  # still cautious
    clock.now += 0.1  # enough clean windows: budget doubles back
    assert lim.budget(clock.now) == 100
    assert lim.penalties == {status: 1}


def test_rest_limiter_penalty_without_retry_after_uses_conservative_default() -> None:
    clock = Clock()
    lim = RestLimiter(100, 10.0, clock=clock)
    assert lim.penalize(418, None) >= 60.0
    assert lim.penalize(429, None) >= 1.0


def test_parse_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    in_ten = parse_retry_after(formatdate(time.time() + 10, usegmt=True))
    assert in_ten is not None and 8.0 <= in_ten <= 10.5


def test_window_limiter_threads_never_exceed_capacity_in_any_window() -> None:
    lim = WindowLimiter(capacity=20, window_s=0.2)
    stamps: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + 0.6

    def worker() -> None:
        while time.monotonic() < stop:
            if lim.acquire(1, timeout_s=0.5):
                with lock:
                    stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) >= 40  # it did let work through
    for i, start in enumerate(stamps):  # at most 20 in any 0.2 s (tolerance for clock reads)
        assert sum(1 for u in stamps[i:i + 25] if u - start < 0.2 - 0.002) <= 20


def test_limiter_close_wakes_blocked_callers_with_false() -> None:
    lim = WindowLimiter(capacity=1, window_s=60.0)
    assert lim.acquire(1)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(lim.acquire(1)))
    t.start()
    lim.close()
    t.join(2.0)
    assert result == [False]


# ----------------------------------------------------- storms through the pool

PAIRS = 12
# What the driver charges per snapshot request at the rig's book depth.
WEIGHT = make_driver("binance", "futures").snapshot_request("BTC/USDT", Subscription("BTC/USDT").depth).weight
WINDOW_S = 0.25


def _disconnect_all(streams: dict[str, Stream]) -> list[Fault]:
    first = next(iter(streams))
    return [Fault("disconnect", first, len(streams[first].frames) // 3)]


def _storm_rig(venue_budget: int, pairs: int = PAIRS) -> FeedRig:
    """Books on one socket that drops: a snapshot for each wanted at once, twice."""
    return FeedRig("binance-futures", pairs=pairs, faults=_disconnect_all, interval_s=0.002,
                   rest_limit=(venue_budget, WINDOW_S), rest_weight=WEIGHT,
                   driver_limits={"rest_weight_per_minute": 10 * WEIGHT},
                   pool_kw={"rest_window_s": WINDOW_S})


def test_resync_storm_stays_inside_the_venue_budget_without_a_single_429() -> None:
    # The client spends half of 10 W per 0.25 s; the venue allows 10 W. Unthrottled,
    # 12 requests x W at once would be refused.
    with _storm_rig(venue_budget=10 * WEIGHT) as rig:
        eventually(rig.settled, 20.0, 0.02)
        assert rig.settled(), rig.mismatches()
        statuses = [st for _, _, st in rig.server.rest_log]
        assert statuses.count(200) == 2 * PAIRS and set(statuses) == {200}
        assert all(rig.server.injected[s] == 1 for s in rig.streams)


def test_budget_shared_with_others_gets_429_but_never_a_ban() -> None:
    # Someone else on this IP spends most of the weight: the venue lets us have
    # 3 W per 0.25 s while we think 5 W is ours. We must get 429s and obey them.
    with _storm_rig(venue_budget=3 * WEIGHT, pairs=8) as rig:
        eventually(rig.settled, 30.0, 0.02)
        assert rig.settled(), rig.mismatches()
        log = rig.server.rest_log
        statuses = [st for _, _, st in log]
        assert 429 in statuses
        assert statuses.count(200) == 2 * 8
        # What the limiter decided, by its own clock (the server's too: one host's
        # monotonic clock): it granted nothing inside a pause it had imposed.
        limiter = rig.pool.rest_limiter(rig.script.venue, rig.script.market)
        assert limiter is not None and limiter.pauses
        inside = [g for g in limiter.grants if any(a <= g < b for a, b in limiter.pauses)]
        assert inside == [], (list(limiter.pauses), inside)
        # The server bans a request that reaches it over 50 ms into its pause; on a
        # loaded host that can be one granted before the client learnt of the 429,
        # still on its way. Every ban must be such a request: at most as many as
        # were granted and had not reached the server when the client paused.
        arrivals = sorted(t for t, _, _ in log)
        for t in (t for t, _, st in log if st == 418):
            learnt = [a for a, _ in limiter.pauses if a <= t]
            if learnt:
                a = max(learnt)
                in_flight = sum(g < a for g in limiter.grants) - sum(x < a for x in arrivals)
                bans = sum(1 for x, _, st in log if st == 418 and a <= x <= t)
                assert bans <= in_flight, (t, a, in_flight, bans)

"""Venue rate budgets shared by every thread of one venue: a sliding-window
weight limiter (REST weight, connection attempts) and, for REST, the ban
handling for 429/418 + Retry-After. Owns the accounting only: it never performs
a request, and it never guesses a venue's limits (engine.venues.base.Limits)."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from email.utils import parsedate_to_datetime

# Share of the venue's published weight we let snapshots use. Lower leaves
# room for order entry and for other processes on the same IP; higher
# resyncs a storm of books sooner. Half is the point where a resync storm
# (500 books) still clears in minutes while orders never starve.
REST_BUDGET_FRACTION = 0.5
# After a 429/418 the budget is halved (down to this fraction of itself) and
# doubles back only after RECOVERY_WINDOWS clean windows: a 429 means someone
# else spends weight on this IP too, and repeated 429s are what turn into a 418
# ban. Slower recovery costs resync speed for minutes after a 429; faster
# recovery oscillates into the venue's limit again.
MIN_BUDGET_SCALE = 1 / 16
RECOVERY_WINDOWS = 4
# Without a Retry-After header: a 429 pauses this long, a 418 (IP ban) longer.
# Longer is safer against an escalating ban, shorter resyncs sooner.
DEFAULT_429_PAUSE_S = 10.0
DEFAULT_418_PAUSE_S = 120.0
# Recent grants and pauses kept for /status and tests (what the limiter
# decided, by its own clock): enough to cover a burst, bounded memory.
DECISIONS_KEPT = 256


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class WindowLimiter:
    """At most ``capacity`` weight in any ``window_s`` seconds, shared by threads.

    ``try_acquire`` is non-blocking (returns the wait still needed) so the
    accounting can be tested with a driven clock; ``acquire`` blocks.
    """

    def __init__(self, capacity: int, window_s: float, name: str = "",
                 clock: Callable[[], float] = time.monotonic) -> None:
        if capacity < 1 or window_s <= 0:
            raise ValueError(f"limiter {name!r}: capacity and window must be positive")
        self.name = name
        self.capacity = capacity
        self.window_s = window_s
        self._clock = clock
        self._spent: deque[tuple[float, int]] = deque()  # (time, weight), oldest first
        self._used = 0
        self._cond = threading.Condition()
        self._closed = False
        self.fraction = 1.0  # of the venue's limit this limiter may spend
        self.acquired_weight = 0  # lifetime total, for metrics
        self.waits = 0  # acquisitions that had to wait
        self.grants: deque[float] = deque(maxlen=DECISIONS_KEPT)  # clock times weight was granted

    # ------------------------------------------------------------ accounting

    def budget(self, now: float) -> int:
        """Weight allowed per window right now (subclasses shrink it)."""
        return self.capacity

    def _expire(self, now: float) -> None:
        horizon = now - self.window_s
        spent = self._spent
        while spent and spent[0][0] <= horizon:
            self._used -= spent.popleft()[1]

    def _wait_needed(self, weight: int, now: float) -> float:
        """Seconds until ``weight`` fits; 0 if it fits now. Caller holds the lock."""
        self._expire(now)
        budget = self.budget(now)
        # A single request heavier than the whole budget waits for an empty window.
        need = min(weight, budget)
        excess = self._used + need - budget
        if excess <= 0:
            return 0.0
        freed = 0
        for t, w in self._spent:
            freed += w
            if freed >= excess:
                return t + self.window_s - now
        return self.window_s  # unreachable unless the budget shrank below one entry

    def try_acquire(self, weight: int = 1) -> float:
        """Spend ``weight`` if it fits now and return 0, else return the wait needed."""
        with self._cond:
            now = self._clock()
            wait = self._wait_needed(weight, now)
            if wait <= 0.0:
                self._spent.append((now, weight))
                self._used += weight
                self.acquired_weight += weight
                self.grants.append(now)
            return wait

    def acquire(self, weight: int = 1, timeout_s: float | None = None) -> bool:
        """Block until ``weight`` fits (True), the timeout passes or close() (False)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        waited = False
        with self._cond:
            while not self._closed:
                now = self._clock()
                wait = self._wait_needed(weight, now)
                if wait <= 0.0:
                    self._spent.append((now, weight))
                    self._used += weight
                    self.acquired_weight += weight
                    self.waits += waited
                    self.grants.append(now)
                    return True
                if deadline is not None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    wait = min(wait, remaining)
                waited = True
                self._cond.wait(wait)
        return False

    def limit_to(self, weight: int, interval_s: float) -> bool:
        """The venue says (exchangeInfo) it allows ``weight`` per ``interval_s``:
        never spend more than our fraction of that. Only shrinks; True if it did."""
        if weight < 1 or interval_s <= 0:
            raise ValueError(f"limiter {self.name!r}: venue limit {weight}/{interval_s}s is not positive")
        allowed = max(1, int(weight * self.window_s / interval_s * self.fraction))
        with self._cond:
            if allowed >= self.capacity:
                return False
            self.capacity = allowed
            self._cond.notify_all()
        return True

    def used(self) -> int:
        with self._cond:
            self._expire(self._clock())
            return self._used

    def close(self) -> None:
        """Wake every waiter with False; used at shutdown."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class RestLimiter(WindowLimiter):
    """A venue's REST weight budget plus its ban state.

    Every REST snapshot of a venue goes through one instance. A 429 or 418
    pauses *all* callers until Retry-After has passed and halves the budget
    for a while, so a resync storm slows down instead of escalating to a ban.
    """

    def __init__(self, weight_per_window: int, window_s: float = 60.0, name: str = "",
                 fraction: float = REST_BUDGET_FRACTION,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(max(1, int(weight_per_window * fraction)), window_s, name, clock)
        self.fraction = fraction
        self._banned_until = 0.0
        self._scale = 1.0
        self._scale_since = 0.0
        self.penalties: dict[int, int] = {}  # HTTP status -> count
        # (from, until) of each pause a 429/418 imposed, by this limiter's clock
        self.pauses: deque[tuple[float, float]] = deque(maxlen=DECISIONS_KEPT)

    def budget(self, now: float) -> int:
        calm = RECOVERY_WINDOWS * self.window_s
        while self._scale < 1.0 and now - self._scale_since >= calm:
            self._scale = min(1.0, self._scale * 2)
            self._scale_since += calm
        return max(1, int(self.capacity * self._scale))

    def _wait_needed(self, weight: int, now: float) -> float:
        if now < self._banned_until:
            return self._banned_until - now
        return super()._wait_needed(weight, now)

    def penalize(self, status: int, retry_after_s: float | None) -> float:
        """The venue answered 429/418: pause everyone. Returns the pause length."""
        default = DEFAULT_418_PAUSE_S if status == 418 else DEFAULT_429_PAUSE_S
        pause = retry_after_s if retry_after_s is not None else default
        with self._cond:
            now = self._clock()
            self._banned_until = max(self._banned_until, now + pause)
            self.pauses.append((now, self._banned_until))
            self._scale = max(MIN_BUDGET_SCALE, self._scale / 2)
            self._scale_since = now
            self.penalties[status] = self.penalties.get(status, 0) + 1
            self._cond.notify_all()  # waiters recompute their wait against the ban
        return pause

    def banned_for(self) -> float:
        """Seconds left of the current pause (0 when none)."""
        with self._cond:
            return max(0.0, self._banned_until - self._clock())

"""The per-venue order rate: a token bucket (``rate`` per second, ``burst``
capacity) that also never lets more than ``rate`` orders into any 1 s window.
Owns the accounting only; it never sleeps (the executor waits on its answer)
and reads time from the caller, so tests drive it with a fake clock.

Why both: a bare token bucket allows burst + rate orders in one second after a
quiet spell; venues count fixed windows, so a burst on a window edge is what
earns -1015. With the window cap, ``rate`` per second holds for every window,
and the bucket only shapes how fast a backlog drains (spacing 1/rate once the
burst is spent).
"""

from __future__ import annotations

import threading
from collections import deque

WINDOW_S = 1.0


class OrderRateLimiter:
    def __init__(self, rate_per_s: float, burst: int, name: str = "") -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"order rate {name!r}: rate and burst must be positive")
        self.name = name
        self.rate = rate_per_s
        self.burst = min(burst, max(1, int(rate_per_s)))  # a burst above rate breaks the window
        self.window_cap = max(1, int(rate_per_s * WINDOW_S))
        self._tokens = float(self.burst)
        self._stamp: float | None = None
        self._sent: deque[float] = deque()  # send times within the last window
        self._paused_until = 0.0
        self._lock = threading.Lock()
        self.acquired = 0

    def _refill(self, now: float) -> None:
        if self._stamp is not None and now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now if self._stamp is None else max(self._stamp, now)
        while self._sent and self._sent[0] <= now - WINDOW_S:
            self._sent.popleft()

    def wait_needed(self, now: float) -> float:
        """Seconds until one order may go (0: now). Does not take it."""
        with self._lock:
            return self._wait(now)

    def _wait(self, now: float) -> float:
        self._refill(now)
        wait = max(0.0, self._paused_until - now)
        if self._tokens < 1.0:
            wait = max(wait, (1.0 - self._tokens) / self.rate)
        if len(self._sent) >= self.window_cap:
            wait = max(wait, self._sent[0] + WINDOW_S - now)
        return wait

    def take(self, now: float) -> bool:
        """Spend one order now if allowed; False (nothing spent) otherwise."""
        with self._lock:
            if self._wait(now) > 0.0:
                return False
            self._tokens -= 1.0
            self._sent.append(now)
            self.acquired += 1
            return True

    def window_used(self, now: float) -> int:
        """Orders sent in the window ending ``now`` (the metric of the budget used)."""
        with self._lock:
            return sum(1 for stamp in self._sent if stamp > now - WINDOW_S)

    def pause(self, now: float, seconds: float) -> None:
        """The venue said "too many orders" (-1015): send none for a while."""
        with self._lock:
            self._paused_until = max(self._paused_until, now + seconds)
            self._tokens = 0.0

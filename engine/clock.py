"""Time sources. Deterministic code takes a Clock instead of reading the wall,
so tests can drive time. Integer nanoseconds."""

from __future__ import annotations

import threading
import time

# Unit factors for venue timestamps (ms or s) into our integer nanoseconds.
NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class Clock:
    """The real clocks: wall time for timestamps, monotonic for intervals."""

    def now_ns(self) -> int:
        return time.time_ns()

    def monotonic_ns(self) -> int:
        return time.monotonic_ns()


class TestClock(Clock):
    """A clock that moves only when told to; thread-safe."""

    __test__ = False  # not a pytest test class

    def __init__(self, start_ns: int = 1_700_000_000_000_000_000) -> None:
        self._now = start_ns
        self._lock = threading.Lock()

    def now_ns(self) -> int:
        return self._now

    def monotonic_ns(self) -> int:
        return self._now

    def advance(self, ns: int) -> None:
        assert ns >= 0, "time never goes back"
        with self._lock:
            self._now += ns


SYSTEM = Clock()

"""Reconnect delays: capped exponential backoff with full jitter. Owns only the
arithmetic of "how long to wait before the next attempt"; never sleeps itself
(the caller waits on its stop event so shutdown is never delayed)."""

from __future__ import annotations

import random


class Backoff:
    """Delay before attempt n is uniform in [floor, min(cap, floor * 2**n)].

    Full jitter spreads the reconnects of many connections that dropped at the
    same instant (a venue restart) over the whole interval instead of letting
    them arrive in synchronized waves; the floor keeps a flapping server from
    being hammered in a tight loop.
    """

    __slots__ = ("floor_s", "cap_s", "attempt", "_rng")

    def __init__(self, floor_s: float, cap_s: float, rng: random.Random | None = None) -> None:
        if not 0.0 <= floor_s <= cap_s:
            raise ValueError(f"backoff needs 0 <= floor <= cap, got floor={floor_s} cap={cap_s}")
        self.floor_s = floor_s
        self.cap_s = cap_s
        self.attempt = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        """The wait before the next attempt; each call widens the interval."""
        # 2**attempt overflows float only past ~1000 attempts; clamp the exponent.
        ceiling = min(self.cap_s, self.floor_s * (2.0 ** min(self.attempt, 60)))
        self.attempt += 1
        if ceiling <= self.floor_s:
            return self.floor_s
        return self.floor_s + self._rng.random() * (ceiling - self.floor_s)

    def reset(self) -> None:
        """The last attempt led to a healthy session: start again from the floor."""
        self.attempt = 0

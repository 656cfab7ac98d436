"""Binance's REST limits: request weight per IP per minute (429, then a 418
ban for an IP that keeps going) and new-order counts per account.

rest-api.md, LIMITS: every response carries X-MBX-USED-WEIGHT-1M; a 429 or
418 carries Retry-After in seconds (until the window resets, or the ban
ends); bans scale for repeat offenders "from 2 minutes to 3 days". Order
counts answer 429 with -1015 and (today) Retry-After; they count unfilled
orders: an order's first fill takes one off every interval, never below 0
(faqs/order_count_decrement.md; its larger maker credit is not modelled). Windows here are fixed
(aligned to the epoch), which is how the header values reset on Binance.
Time is injected; not thread-safe (the network thread owns it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

MINUTE_MS = 60_000
TEN_SECONDS_MS = 10_000
DAY_MS = 86_400_000
FIRST_BAN_MS = 2 * MINUTE_MS
MAX_BAN_MS = 3 * DAY_MS


@dataclass(frozen=True)
class Limits:
    """What exchangeInfo publishes and the venue enforces. Binance's defaults."""

    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    # Requests an IP may send after its first 429 in one window before the ban:
    # low bans an abusive client fast, high forgives a sloppy backoff.
    strikes_before_ban: int = 10


class Verdict(NamedTuple):
    used_weight: int
    status: int  # 0: go ahead, 429 or 418
    retry_after_s: int
    message: str


@dataclass
class _IpState:
    window: int = -1
    used: int = 0
    strikes: int = 0
    banned_until_ms: int = 0
    bans: int = 0


@dataclass
class RateLimiter:
    limits: Limits = field(default_factory=Limits)
    _ips: dict[str, _IpState] = field(default_factory=dict)
    _orders: dict[str, list[int]] = field(default_factory=dict)  # account -> [win10, n10, day, nday]

    def charge(self, ip: str, weight: int, now_ms: int) -> Verdict:
        state = self._ips.setdefault(ip, _IpState())
        window = now_ms // MINUTE_MS
        if window != state.window:
            state.window, state.used, state.strikes = window, 0, 0
        state.used += weight
        if now_ms < state.banned_until_ms:
            return Verdict(state.used, 418, _ceil_s(state.banned_until_ms - now_ms),
                           f"Way too much request weight used; IP banned until "
                           f"{state.banned_until_ms}. Please use WebSocket Streams for live "
                           f"updates to avoid bans.")
        limit = self.limits.weight_per_minute
        if state.used <= limit:
            return Verdict(state.used, 0, 0, "")
        state.strikes += 1
        if state.strikes > self.limits.strikes_before_ban:
            ban = min(FIRST_BAN_MS * 2**state.bans, MAX_BAN_MS)
            state.bans += 1
            state.banned_until_ms = now_ms + ban
            return Verdict(state.used, 418, _ceil_s(ban),
                           f"Way too much request weight used; IP banned until "
                           f"{state.banned_until_ms}. Please use WebSocket Streams for live "
                           f"updates to avoid bans.")
        reset_ms = (window + 1) * MINUTE_MS - now_ms
        return Verdict(state.used, 429, _ceil_s(reset_ms),
                       f"Too much request weight used; current limit is {limit} request "
                       f"weight per 1 MINUTE. Please use WebSocket Streams for live updates "
                       f"to avoid polling the API.")

    def count_order(self, account: str, now_ms: int) -> tuple[int, int, str]:
        """Count one new order; returns (count 10s, count 1d, error message or "")."""
        window10, day = now_ms // TEN_SECONDS_MS, now_ms // DAY_MS
        state = self._orders.setdefault(account, [window10, 0, day, 0])
        if state[0] != window10:
            state[0], state[1] = window10, 0
        if state[2] != day:
            state[2], state[3] = day, 0
        if state[1] >= self.limits.orders_per_10s:
            return state[1], state[3], (f"Too many new orders; current limit is "
                                        f"{self.limits.orders_per_10s} orders per 10 SECOND.")
        if state[3] >= self.limits.orders_per_day:
            return state[1], state[3], (f"Too many new orders; current limit is "
                                        f"{self.limits.orders_per_day} orders per DAY.")
        state[1] += 1
        state[3] += 1
        return state[1], state[3], ""

    def order_filled(self, account: str, now_ms: int) -> None:
        """An order of ``account`` filled for the first time: one fewer unfilled."""
        state = self._orders.get(account)
        if state is None:
            return
        if state[0] != now_ms // TEN_SECONDS_MS:
            state[0], state[1] = now_ms // TEN_SECONDS_MS, 0
        if state[2] != now_ms // DAY_MS:
            state[2], state[3] = now_ms // DAY_MS, 0
        state[1] = max(0, state[1] - 1)
        state[3] = max(0, state[3] - 1)

    def order_counts(self, account: str, now_ms: int) -> tuple[int, int]:
        """(count in this 10 s window, count today) without counting anything."""
        state = self._orders.get(account)
        if state is None:
            return 0, 0
        return (state[1] if state[0] == now_ms // TEN_SECONDS_MS else 0,
                state[3] if state[2] == now_ms // DAY_MS else 0)

    def order_retry_at(self, account: str, now_ms: int) -> int:
        """Epoch ms when the exhausted order window resets (Retry-After / retryAfter)."""
        state = self._orders.get(account)
        if state is not None and state[1] >= self.limits.orders_per_10s:
            return (now_ms // TEN_SECONDS_MS + 1) * TEN_SECONDS_MS
        return (now_ms // DAY_MS + 1) * DAY_MS

    def weight_json(self, used: int) -> dict:
        """A WebSocket API "rateLimits" entry for the IP's weight."""
        return {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                "limit": self.limits.weight_per_minute, "count": used}

    def order_limits_json(self, ten_s: int, day: int) -> list[dict]:
        return [{"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                 "limit": self.limits.orders_per_10s, "count": ten_s},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
                 "limit": self.limits.orders_per_day, "count": day}]

    def rate_limits_json(self) -> list[dict]:
        """exchangeInfo "rateLimits"."""
        return [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": self.limits.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": self.limits.orders_per_10s},
            {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1,
             "limit": self.limits.orders_per_day},
        ]


def _ceil_s(ms: int) -> int:
    return max(1, -(-ms // 1000))

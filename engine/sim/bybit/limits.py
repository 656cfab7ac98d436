"""Bybit's REST limits: requests per IP per 5 s (HTTP 403 past it) and
per-UID limits per endpoint per second (retCode 10006, "Too many visits!"),
with the X-Bapi-Limit* headers every limited answer carries.

docs/v5/rate-limit: 600 requests / 5 s per IP (403, "access too frequent");
/v5/order/create and /cancel 10/s linear and 20/s spot per UID; other
private endpoints 10-50/s. Headers: X-Bapi-Limit (the limit),
X-Bapi-Limit-Status (what is left), X-Bapi-Limit-Reset-Timestamp (ms when
the window resets). Windows are fixed (aligned to the epoch second).
Time is injected; the network thread owns it (not thread-safe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

IP_WINDOW_MS = 5000
UID_WINDOW_MS = 1000
# Limits of the other private endpoints (query, position, account): Bybit
# gives 10-50/s by endpoint; one figure keeps the table small.
DEFAULT_PER_S = 50


class UidVerdict(NamedTuple):
    limit: int
    remaining: int
    reset_ms: int
    allowed: bool


@dataclass
class BybitLimiter:
    spot_orders_per_s: int = 20
    linear_orders_per_s: int = 10
    ip_requests_per_5s: int = 600
    _ips: dict[str, list[int]] = field(default_factory=dict)  # ip -> [window, count]
    _uids: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    def ip_allowed(self, ip: str, now_ms: int) -> bool:
        window = now_ms // IP_WINDOW_MS
        state = self._ips.setdefault(ip, [window, 0])
        if state[0] != window:
            state[0], state[1] = window, 0
        state[1] += 1
        return state[1] <= self.ip_requests_per_5s

    def limit_of(self, endpoint: str, category: str) -> int:
        if endpoint in ("order.create", "order.cancel", "order.amend"):
            return self.spot_orders_per_s if category == "spot" else self.linear_orders_per_s
        return DEFAULT_PER_S

    def charge(self, account: str, endpoint: str, category: str, now_ms: int) -> UidVerdict:
        """One request of ``account`` on ``endpoint`` (per category for orders)."""
        limit = self.limit_of(endpoint, category)
        window = now_ms // UID_WINDOW_MS
        state = self._uids.setdefault((account, f"{endpoint}:{category}"), [window, 0])
        if state[0] != window:
            state[0], state[1] = window, 0
        state[1] += 1
        reset = (window + 1) * UID_WINDOW_MS
        return UidVerdict(limit, max(0, limit - state[1]), reset, state[1] <= limit)

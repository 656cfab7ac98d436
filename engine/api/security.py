"""Who may call what: API keys with scopes (read from environment variables,
compared in constant time, never logged), per-key and per-address token
buckets (429 with Retry-After), and the WebSocket Origin check. Pure logic:
no sockets; the server asks, this module answers."""

from __future__ import annotations

import hmac
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def env_keys(env_name: str) -> tuple[bytes, ...]:
    """The comma-separated keys in ``$env_name`` (none when unset or empty)."""
    if not env_name:
        return ()
    return tuple(k.strip().encode() for k in os.environ.get(env_name, "").split(",") if k.strip())


@dataclass(frozen=True)
class Keys:
    """Scopes: ``admin`` keys may do everything, ``read`` keys everything but
    halt/resume. ``reads_open``: no read key is configured and the server
    listens on loopback only, so reads need no key (the operator's own host)."""

    read: tuple[bytes, ...]
    admin: tuple[bytes, ...]
    reads_open: bool

    @classmethod
    def from_env(cls, read_env: str, admin_env: str, host: str) -> Keys:
        read, admin = env_keys(read_env), env_keys(admin_env)
        return cls(read, admin, reads_open=not read and host in LOOPBACK)

    def scope_of(self, presented: str) -> str:
        """"admin", "read", "open" (no key presented) or "bad" (a wrong key).
        Every configured key is compared, each in constant time, so the time
        taken does not say which key came close."""
        if not presented:
            return "open"
        given = presented.encode()
        admin = any([hmac.compare_digest(given, k) for k in self.admin])
        read = any([hmac.compare_digest(given, k) for k in self.read])
        return "admin" if admin else "read" if read else "bad"

    def allows(self, scope: str, needed: str) -> bool:
        if needed == "open" or scope == "admin":
            return True
        if needed == "read":
            return scope == "read" or (scope == "open" and self.reads_open)
        return False


def presented_key(headers: dict[str, str], query: dict[str, str], websocket: bool) -> str:
    """``Authorization: Bearer <key>``, ``X-API-Key`` or the older
    ``X-Admin-Key``; a browser's WebSocket cannot set headers, so /ws also
    takes ``?key=`` (query strings are never logged)."""
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    key = headers.get("x-api-key") or headers.get("x-admin-key") or ""
    if not key and websocket:
        key = query.get("key", "")
    return key


class TokenBuckets:
    """One bucket per name ("addr:127.0.0.1", "key:<digest>"): ``rate`` tokens
    a second up to ``burst``. A rate of 0 turns limiting off. Full buckets are
    forgotten on a sweep, so the table holds only recent callers."""

    SWEEP_S = 30.0  # how often idle buckets are dropped: memory vs. a little CPU

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate, max(1, burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)
        self._lock = threading.Lock()
        self._swept = clock()
        self.refused = 0

    def take(self, name: str) -> float:
        """0.0 if a token was taken, else the seconds until one is there."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, at = self._buckets.get(name, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            if tokens >= 1.0:
                self._buckets[name] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._buckets[name] = (tokens, now)
                self.refused += 1
                wait = (1.0 - tokens) / self.rate
            if now - self._swept > self.SWEEP_S:
                self._sweep(now)
        return wait

    def _sweep(self, now: float) -> None:
        self._swept = now
        full = [n for n, (t, at) in self._buckets.items()
                if t + (now - at) * self.rate >= self.burst]
        for name in full:
            del self._buckets[name]

    @staticmethod
    def retry_after(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))


def origin_allowed(origin: str, host_header: str, allowed: tuple[str, ...]) -> bool:
    """A WebSocket handshake's Origin: absent (not a browser; the key still
    decides), the page's own origin (the console served by this daemon), or
    one listed in config (``http.ws_origins``; "*" allows any)."""
    if not origin:
        return True
    if "*" in allowed or origin.rstrip("/") in {a.rstrip("/") for a in allowed}:
        return True
    parts = urlsplit(origin)
    return bool(parts.netloc) and parts.netloc.lower() == host_header.lower()

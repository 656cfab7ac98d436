"""Opening sockets for a connection: the connect target (with a venue's REST
bootstrap, e.g. KuCoin's token), open/close, and the replacement socket of a
planned rotation dialed off the owner thread. No session logic: connection.py
drives these."""

from __future__ import annotations

import math
import socket
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple

import requests
import websocket

from engine.feed.limiter import RestLimiter
from engine.venues.base import Driver, Heartbeat, Subscription


class RotationPlan(NamedTuple):
    """When a session replaces its socket before the venue cuts it (venue_feed.rotation_plan)."""

    after_s: float = math.inf  # session age at which to start; inf: never
    overlap_s: float = 0.0  # both sockets carry the stream this long
    retry_s: float = 0.0  # after a failed attempt


class RotationFailed(Exception):
    """The replacement socket failed; the one it was to replace carries on."""


@dataclass
class Rotation:
    """A replacement socket for a planned rotation (owner thread only)."""

    dialing: Future[websocket.WebSocket]
    ws: websocket.WebSocket | None = None
    connected_at: float = 0.0
    subs: dict[str, Subscription] = field(default_factory=dict)  # what it subscribed
    outbox: deque[str] = field(default_factory=deque)
    held: list[tuple[str | bytes, int]] = field(default_factory=list)  # (frame, recv_ns)
    # What the old socket routed meanwhile, so a held copy (same bytes) of an
    # event, a trade say, is not routed twice. Only for REST-resync venues: where
    # the subscribe brings a snapshot, every held delta after it is needed.
    routed: set[str | bytes] | None = None
    handover_at: float = math.inf

    def buffered(self) -> bool:
        """TLS: decrypted bytes select() cannot see."""
        pending = getattr(self.ws and self.ws.sock, "pending", None)
        return pending is not None and pending() > 0

    def abandon(self) -> None:
        self.dialing.add_done_callback(close_dialed)  # now, or when the dial ends
        if self.ws is not None:
            close_socket(self.ws, 0)


def dial(url: str, timeout_s: float, wake: Callable[[], None], driver: Driver,
          rest_limiter: RestLimiter | None) -> Future[websocket.WebSocket]:
    """_open off the owner thread, which keeps reading the socket being replaced."""
    future: Future[websocket.WebSocket] = Future()

    def run() -> None:
        try:
            target, _ = connect_target(driver, url, rest_limiter, timeout_s)
            future.set_result(open_socket(target, timeout_s))
        except Exception as e:  # noqa: BLE001 - handed to the owner thread
            future.set_exception(e)
        wake()

    threading.Thread(target=run, name="ws-dial", daemon=True).start()
    return future


def close_dialed(future: Future[websocket.WebSocket]) -> None:
    if future.exception() is None:
        close_socket(future.result(), 0)


def connect_target(driver: Driver, url: str, limiter: RestLimiter | None,
                    timeout_s: float) -> tuple[str, Heartbeat]:
    """The socket URL to open for lane ``url`` and its heartbeat rule. Venues
    that hand out a socket per connection (KuCoin's token) get a fresh grant
    for every connect, paid from the venue's REST budget. The granted URL may
    carry a token: it is never logged."""
    req = driver.connect_request(url)
    if req is None:
        return url, driver.heartbeat
    if limiter is not None and not limiter.acquire(req.weight, timeout_s=timeout_s):
        raise ConnectionError(f"no REST budget for the connect request to {req.url}")
    resp = requests.request(req.method, req.url, params=req.params or None, timeout=timeout_s)
    if resp.status_code in (418, 429) and limiter is not None:
        retry_after = resp.headers.get("Retry-After")
        limiter.penalize(resp.status_code, float(retry_after) if retry_after else None)
    if resp.status_code != 200:
        raise ConnectionError(f"connect request {req.method} {req.url}: HTTP {resp.status_code}")
    grant = driver.connect_grant(url, resp.content)
    return grant.url, grant.heartbeat or driver.heartbeat


def open_socket(url: str, timeout_s: float) -> websocket.WebSocket:
    return websocket.create_connection(
        url, timeout=timeout_s, enable_multithread=False, skip_utf8_validation=True,
        sockopt=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),))


def close_socket(ws: websocket.WebSocket, timeout_s: float) -> None:
    try:
        ws.close(timeout=timeout_s)
    except Exception:  # noqa: BLE001, S110 - already broken: closing is best effort
        pass
    ws.shutdown()  # close() skips the socket when the venue closed first


def close_reason(data: bytes) -> str:
    """A WebSocket close frame's payload as 'code reason'."""
    if len(data) >= 2:
        code = int.from_bytes(data[:2], "big")
        return f"{code} {data[2:].decode('utf-8', 'replace')}".strip()
    return "no status"

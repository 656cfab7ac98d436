"""I/O for one trading account on one venue: sends the driver's signed
requests over the venue's WebSocket API when that socket is up (the default
where the venue has one) and over REST otherwise, spends their weight on the
venue's shared limiter, keeps the clock offset to the venue, and turns every
transport failure into an UNKNOWN reply (a request that may have arrived).
Owns the REST sockets; decides nothing about orders (the executor does).
"""

from __future__ import annotations

import itertools
import threading
from typing import Any, Protocol

import requests
from loguru import logger

from engine.clock import SYSTEM, Clock
from engine.model_trade import OrderSpec, Reply, ReplyKind, SignedRequest, TradingDriver

log = logger.bind(component="trader")

# How long a caller waits for REST weight before giving up with a "retry"
# reply. Longer queues more work behind a throttled venue; shorter turns a
# busy minute into visible retries sooner.
WEIGHT_WAIT_S = 5.0
# Re-read the venue clock this often (and after any -1021): signed requests
# carry our time plus this offset, so a drifting host clock never trips
# recvWindow. Shorter costs weight; longer risks drift.
TIME_SYNC_S = 600.0
# After a failed re-sync, wait this long before asking again: the executor
# calls maybe_sync_time before its sends, and a venue that does not answer
# must not cost every send a timeout. Shorter fixes a bad offset sooner.
TIME_SYNC_RETRY_S = 30.0


class WeightBudget(Protocol):
    """A venue's REST weight budget shared by every caller of that venue (the
    feed's snapshots, the executor, the user stream, reconcile):
    ``engine.feed.limiter.RestLimiter`` is the implementation app.py hands in."""

    def acquire(self, weight: int = 1, timeout_s: float | None = None) -> bool: ...

    def penalize(self, status: int, retry_after_s: float | None) -> float: ...

    def banned_for(self) -> float: ...


class OrderSocket(Protocol):
    """An authenticated WebSocket API connection (engine/trade/wsapi.py)."""

    def ready(self) -> bool: ...

    def request(self, request: SignedRequest, timeout_s: float) -> Reply: ...


class VenueSession:
    """Thread-safe: one requests.Session per calling thread (the executor, the
    user stream and reconcile call concurrently); the limiter is shared."""

    def __init__(self, driver: TradingDriver, limiter: WeightBudget, timeout_s: float = 5.0,
                 clock: Clock = SYSTEM, name: str = "", use_ws_api: bool = True) -> None:
        self.driver = driver
        # The venue's WebSocket API socket while it is up (set by the user
        # stream that owns it); None: everything goes over REST.
        self.ws: OrderSocket | None = None
        self.use_ws_api = use_ws_api and driver.ws_api
        self.calls_by_transport: dict[str, int] = {"rest": 0, "ws": 0}
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.clock = clock
        self.name = name or driver.venue
        self._local = threading.local()
        self.offset_ms = 0  # venue clock - our clock
        self._next_sync_ns = 0  # monotonic ns: maybe_sync_time re-reads the venue clock then
        self.time_syncs = 0  # successful reads of the venue clock
        self.used_weight = 0  # the venue's own count, from its last reply
        self.usage: dict[str, int] = {}  # every usage counter the venue reported, latest
        self._ids = itertools.count(1)  # WS API request ids; next() is atomic, any thread
        self.calls = 0
        self.failures: dict[str, int] = {}  # reply kind -> count (not ok)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def now_ms(self) -> int:
        """The venue's clock as we best know it (signing timestamps)."""
        return self.clock.now_ns() // 1_000_000 + self.offset_ms

    def sync_time(self) -> bool:
        """Read the venue clock now (REST); True if the offset was updated."""
        self._next_sync_ns = self.clock.monotonic_ns() + int(TIME_SYNC_RETRY_S * 1e9)
        reply = self.call(self.driver.server_time())
        server_ms = self.driver.server_time_ms(reply.body) if reply.kind == "ok" else None
        if server_ms is None:
            log.warning("venue clock not read venue={} reply={} {} {}", self.name, reply.status,
                        reply.code, reply.message)
            return False
        offset = server_ms - self.clock.now_ns() // 1_000_000
        if abs(offset - self.offset_ms) >= 500:
            log.info("venue clock offset venue={} offset_ms={} was={}", self.name, offset,
                     self.offset_ms)
        self.offset_ms = offset
        self.time_syncs += 1
        self._next_sync_ns = self.clock.monotonic_ns() + int(TIME_SYNC_S * 1e9)
        return True

    def maybe_sync_time(self) -> bool:
        """Re-read the venue clock if it is due: every TIME_SYNC_S, at once after
        a -1021, TIME_SYNC_RETRY_S after a failed read. The executor calls it
        before it signs (never between an order's token and its write)."""
        if self.clock.monotonic_ns() < self._next_sync_ns:
            return False
        return self.sync_time()

    # ------------------------------------------- transport choice (WS API | REST)

    def ws_ready(self) -> bool:
        ws = self.ws
        return self.use_ws_api and ws is not None and ws.ready()

    def request_id(self) -> str:
        """A fresh WS API request id (Binance: ``^[a-zA-Z0-9-_]{1,36}$``)."""
        return f"r{next(self._ids)}"

    def new_order(self, spec: OrderSpec, timestamp_ms: int) -> SignedRequest:
        """Over the WebSocket API when it is up, else REST (signed with ``timestamp_ms``)."""
        if self.ws_ready():
            return self.driver.ws_new_order(spec, timestamp_ms, self.request_id())
        return self.driver.new_order(spec, timestamp_ms)

    def cancel_order(self, pair: str, client_order_id: str) -> SignedRequest:
        now = self.now_ms()
        if self.ws_ready():
            return self.driver.ws_cancel_order(pair, client_order_id, now, self.request_id())
        return self.driver.cancel_order(pair, client_order_id, now)

    def cancel_replace(self, cancel_client_order_id: str, spec: OrderSpec,
                       timestamp_ms: int) -> SignedRequest:
        if self.ws_ready():
            return self.driver.ws_cancel_replace(cancel_client_order_id, spec, timestamp_ms,
                                                 self.request_id())
        return self.driver.cancel_replace(cancel_client_order_id, spec, timestamp_ms)

    def query_order(self, pair: str, client_order_id: str) -> Reply:
        now = self.now_ms()
        if self.ws_ready():
            return self.call(self.driver.ws_query_order(pair, client_order_id, now,
                                                        self.request_id()))
        return self.call(self.driver.query_order(pair, client_order_id, now))

    def open_orders(self, pair: str) -> Reply:
        now = self.now_ms()
        if self.ws_ready():
            return self.call(self.driver.ws_open_orders(pair, now, self.request_id()))
        return self.call(self.driver.open_orders(pair, now))

    def call(self, request: SignedRequest, timeout_s: float | None = None) -> Reply:
        """Send ``request`` once; never raises for network trouble."""
        if not self.limiter.acquire(request.weight, timeout_s=WEIGHT_WAIT_S):
            return Reply(ReplyKind.RETRY, 0, message="local REST weight budget exhausted",
                         retry_after_s=self.limiter.banned_for() or 1.0)
        self.calls += 1
        self.calls_by_transport[request.transport] += 1
        if request.transport == "ws":
            ws = self.ws
            if ws is None or not ws.ready():  # dropped since it was built: never written
                reply = Reply(ReplyKind.RETRY, 0, message="WebSocket API down; not sent")
            else:
                reply = ws.request(request, timeout_s or self.timeout_s)
            return self._account(reply)
        try:
            response = self._session().request(request.method, request.url,
                                               headers=request.headers,
                                               timeout=timeout_s or self.timeout_s)
        except requests.ConnectionError as exc:
            if _never_connected(exc):
                reply = Reply(ReplyKind.RETRY, 0, message=f"connect failed: {exc}")
            else:
                reply = Reply(ReplyKind.UNKNOWN, 0, message=f"connection lost: {exc}")
        except requests.Timeout as exc:
            reply = Reply(ReplyKind.UNKNOWN, 0, message=f"timeout after "
                          f"{timeout_s or self.timeout_s}s: {type(exc).__name__}")
        except requests.RequestException as exc:
            reply = Reply(ReplyKind.UNKNOWN, 0, message=f"{type(exc).__name__}: {exc}")
        else:
            reply = self.driver.classify(response.status_code, response.content,
                                         dict(response.headers))
        return self._account(reply)

    def _account(self, reply: Reply) -> Reply:
        """Record what the venue said about our usage, penalize a throttle."""
        if reply.usage:
            self.usage = {**self.usage, **reply.usage}
        if reply.used_weight is not None:
            self.used_weight = reply.used_weight
        if reply.status in (429, 418):
            pause = self.limiter.penalize(reply.status, reply.retry_after_s)
            log.warning("venue throttled us venue={} status={} code={} pause_s={:.1f}",
                        self.name, reply.status, reply.code, pause)
        if reply.code == -1021:
            self._next_sync_ns = 0  # our clock drifted: re-read before the next signing
        if reply.kind != "ok":
            kind = ReplyKind(reply.kind).value  # a plain str key: /status is JSON
            self.failures[kind] = self.failures.get(kind, 0) + 1
        return reply

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()

    def status(self) -> dict[str, Any]:
        return {"calls": self.calls, "calls_by_transport": dict(self.calls_by_transport),
                "ws_api_up": self.ws_ready(), "venue_usage": dict(self.usage),
                "failures": dict(self.failures),
                "venue_used_weight_1m": self.used_weight, "clock_offset_ms": self.offset_ms,
                "clock_syncs": self.time_syncs,
                "weight_paused_s": round(self.limiter.banned_for(), 3)}


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True only when the TCP connect itself failed: nothing reached the venue.
    A reset or close after connecting may have delivered the request."""
    text = repr(exc)
    return isinstance(exc, requests.exceptions.ConnectTimeout) or \
        "NewConnectionError" in text or "Failed to establish a new connection" in text

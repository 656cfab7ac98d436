"""One WebSocket connection on its own thread: connect, subscribe, heartbeats,
stall detection, reconnect with capped backoff + full jitter, resubscribe, and
hand every frame to the router. Owns the socket; it never parses a frame
(the driver does, via the router) and knows nothing venue-specific.

  pool ── add/remove/resubscribe ──► outbox ──(paced)──► socket
                                       ▲ wake pipe          │ frame
  router.on_frame(conn_id, frame, recv_ns) ◄────────────────┘ replies ─► outbox

Only this connection's thread touches the socket; other threads queue frames
and wake it through a socket pair, so select() covers both.
"""

from __future__ import annotations

import enum
import fcntl
import select
import socket
import termios
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import websocket
from loguru import logger

from engine.feed.backoff import Backoff
from engine.feed.health import ConnectionStats
from engine.feed.limiter import WindowLimiter
from engine.venues.base import Driver, Subscription

log = logger.bind(component="feed")

# Frames larger than this are dropped and counted, never parsed: no venue
# sends book frames near it, and parsing a hostile 100 MB frame would stall
# every book on the connection. A dropped delta shows up as a sequence gap.
MAX_FRAME_BYTES = 8 * 1024 * 1024
# TCP connect + TLS + HTTP upgrade budget. Longer tolerates a slow venue;
# shorter frees the thread (and shutdown) sooner when a host is black-holed.
CONNECT_TIMEOUT_S = 10.0
# A session that lived this long resets the backoff to its floor: long enough
# that a server accepting then dropping us does not earn a fast retry loop.
STABLE_SESSION_S = 30.0
# Share of the venue's client-frame rate we use: pongs answered by the socket
# layer also count against the venue's limit and are not paced here.
SEND_RATE_FRACTION = 0.8
# Wait for the venue's close frame on shutdown; longer is politer, shorter
# stops the daemon sooner.
CLOSE_TIMEOUT_S = 1.0


class ConnState(enum.IntEnum):
    CONNECTING = 0
    LIVE = 1
    BACKOFF = 2  # disconnected, waiting before the next attempt
    STOPPED = 3


@dataclass(frozen=True)
class ConnectionSettings:
    stall_timeout_s: float = 30.0  # no data frame for this long: reconnect
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    max_frame_bytes: int = MAX_FRAME_BYTES


class FrameSink(Protocol):
    """What a connection feeds: engine.feed.sync.FeedRouter implements it."""

    def on_frame(self, conn_id: str, frame: str | bytes, recv_ns: int) -> list[str]: ...

    def on_reconnect(self, pairs: list[str]) -> None: ...


class _SessionEnd(Exception):
    """The current WebSocket session is over; the message says why."""


class Connection:
    """A WebSocket carrying some pairs of one driver (venue + market)."""

    def __init__(self, conn_id: str, url: str, driver: Driver, sink: FrameSink,
                 settings: ConnectionSettings, connect_limiter: WindowLimiter | None = None,
                 capture: Any = None) -> None:
        self.conn_id = conn_id
        self.url = url  # one of driver.endpoints(...)
        self.driver = driver
        self.sink = sink
        self.settings = settings
        self.stats = ConnectionStats()
        self._connect_limiter = connect_limiter
        self._capture = capture
        self._lock = threading.Lock()  # guards _subs, _live, _outbox/_resub contents
        self._subs: dict[str, Subscription] = {}
        self._live = False
        self._outbox: deque[str] = deque()
        self._resub: set[str] = set()
        self._stop = threading.Event()
        self._reconnect = False  # set by reconnect_now(); read by the owner thread
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name=f"ws-{conn_id}", daemon=True)
        rate = driver.limits.max_client_msgs_per_s * SEND_RATE_FRACTION
        self._send_rate = rate if rate > 0 else 0.0
        self._tokens = max(1.0, self._send_rate)
        self._tokens_at = time.monotonic()

    # ------------------------------------------------------- control (any thread)

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        self._stop.set()
        self._wake()

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Close cleanly (close frame) and wait for the thread; True if it ended."""
        self.request_stop()
        return self.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def reconnect_now(self) -> None:
        """End the session and reconnect (the venue announced it will close this socket)."""
        self._reconnect = True
        self._wake()

    def add(self, subs: Iterable[Subscription]) -> None:
        """Carry these pairs too; subscribed at once if the session is live."""
        with self._lock:
            new = [s for s in subs if s.pair not in self._subs]
            for s in new:
                self._subs[s.pair] = s
            if self._live and new:
                self._outbox.extend(self.driver.subscribe(new))
        self._wake()

    def remove(self, pairs: Iterable[str]) -> list[str]:
        """Stop carrying these pairs; returns the ones it carried."""
        with self._lock:
            gone = [self._subs.pop(p) for p in pairs if p in self._subs]
            self._resub.difference_update(s.pair for s in gone)
            if self._live and gone:
                self._outbox.extend(self.driver.unsubscribe(gone))
        if gone:
            self._wake()
        return [s.pair for s in gone]

    def resubscribe(self, pairs: Iterable[str]) -> None:
        """Ask the venue for fresh book snapshots (driver.resubscribe frames).
        Batched at the next flush; a reconnect in between does it anyway."""
        with self._lock:
            if self._live:
                self._resub.update(p for p in pairs if p in self._subs)
        self._wake()

    def pairs(self) -> list[str]:
        with self._lock:
            return list(self._subs)

    def count(self) -> int:
        return len(self._subs)

    def subscription(self, pair: str) -> Subscription | None:
        return self._subs.get(pair)

    def backlog_bytes(self) -> int:
        """Bytes received by the kernel but not yet read: how far behind we are."""
        sock = self._sock
        if sock is None:
            return 0
        try:
            buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
            return int.from_bytes(buf, "little")
        except (OSError, ValueError):
            return 0

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # pipe full (a wake is pending anyway) or closed at shutdown

    # --------------------------------------------------------- thread (owner)

    def _run(self) -> None:
        backoff = Backoff(self.settings.reconnect_min_s, self.settings.reconnect_max_s)
        try:
            while not self._stop.is_set():
                if not self._await_connect_slot():
                    break
                started = time.monotonic()
                reason = self._connect_and_serve()
                if self._stop.is_set():
                    break
                with self._lock:  # books this socket kept current
                    pairs = [p for p, s in self._subs.items() if s.book]
                self.stats.reconnects += 1
                self.stats.last_disconnect = reason
                # Books go RESYNCING now, while we are away, not after reconnecting.
                self.sink.on_reconnect(pairs)
                if time.monotonic() - started >= STABLE_SESSION_S:
                    backoff.reset()
                delay = backoff.next_delay()
                self.stats.state = ConnState.BACKOFF
                log.warning("ws disconnected conn={} venue={} reason={} pairs={} retry_in_s={:.2f}",
                            self.conn_id, self.driver.venue, reason, len(pairs), delay)
                self._stop.wait(delay)
        except Exception:  # noqa: BLE001 - logged; the pool's health shows STOPPED
            log.exception("ws thread crashed conn={}", self.conn_id)
        finally:
            self.stats.state = ConnState.STOPPED
            self._wake_r.close()
            self._wake_w.close()

    def _await_connect_slot(self) -> bool:
        """Respect the venue's connection-attempt budget; False when stopping."""
        self.stats.state = ConnState.CONNECTING
        limiter = self._connect_limiter
        while limiter is not None and not self._stop.is_set():
            wait = limiter.try_acquire(1)
            if wait <= 0:
                return True
            self._stop.wait(min(wait, 1.0))
        return not self._stop.is_set()

    def _connect_and_serve(self) -> str:
        try:
            ws = websocket.create_connection(
                self.url, timeout=self.settings.connect_timeout_s, enable_multithread=False,
                skip_utf8_validation=True,
                sockopt=((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),))
        except Exception as e:  # noqa: BLE001 - any connect failure means back off
            return f"connect failed: {type(e).__name__}: {e}"
        try:
            return self._serve(ws)
        except _SessionEnd as e:
            return str(e)
        except (websocket.WebSocketException, OSError) as e:  # the socket broke
            return f"{type(e).__name__}: {e}"
        except Exception as e:  # noqa: BLE001 - a bug downstream: log it, resync, go on
            log.exception("frame handling failed conn={}", self.conn_id)
            return f"internal error: {type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._live = False
                self._outbox.clear()
                self._resub.clear()
            self._sock = None
            try:
                ws.close(timeout=CLOSE_TIMEOUT_S if self._stop.is_set() else 0)
            except Exception:  # noqa: BLE001 - already broken
                pass
            ws.shutdown()  # close() skips the socket when the venue closed first

    def _serve(self, ws: websocket.WebSocket) -> str:
        assert threading.current_thread() is self._thread, "only the owner thread reads"
        sock = ws.sock
        assert sock is not None, "create_connection returns a connected socket"
        self._sock = sock
        settings = self.settings
        # Data stall: no text/binary frame for the configured time (pings and
        # pongs do not count: an upstream stall often keeps the socket alive).
        # Dead socket: not even a control frame for the venue's heartbeat timeout.
        stall_s = settings.stall_timeout_s
        dead_s = self.driver.heartbeat.timeout_s or stall_s
        ws.settimeout(min(stall_s, dead_s))  # bounds the wait for a frame's remaining bytes
        self._reconnect = False
        with self._lock:
            self._live = True
            subs = list(self._subs.values())
            self._outbox.clear()
            self._resub.clear()
            if subs:
                self._outbox.extend(self.driver.subscribe(subs))
        stats = self.stats
        stats.state = ConnState.LIVE
        stats.connected_since = time.monotonic()
        last_data = last_frame = stats.connected_since  # this session's stall clocks
        log.info("ws connected conn={} venue={} market={} pairs={} url={}", self.conn_id,
                 self.driver.venue, self.driver.market.value, len(subs), self.url)
        hb = self.driver.heartbeat
        next_app_ping = _first_due(hb.client_ping_interval_s if hb.client_ping else None)
        next_ws_ping = _first_due(hb.ws_ping_interval_s)
        pending = getattr(sock, "pending", None)  # TLS: decrypted bytes select() cannot see
        wake_r = self._wake_r
        watch = [sock, wake_r]
        capture = self._capture
        latency = stats.latency
        on_frame = self.sink.on_frame
        max_bytes = settings.max_frame_bytes
        while True:
            if self._stop.is_set():
                return "shutdown"
            if self._reconnect:
                raise _SessionEnd("venue announced a close: reconnecting early")
            now = time.monotonic()
            if now >= next_app_ping:
                self._outbox.append(hb.client_ping)  # type: ignore[arg-type]
                next_app_ping = now + hb.client_ping_interval_s  # type: ignore[operator]
            if now >= next_ws_ping:
                ws.ping()
                next_ws_ping = now + hb.ws_ping_interval_s  # type: ignore[operator]
            next_send = self._flush(ws, now)
            stall_at = min(last_data + stall_s, last_frame + dead_s)
            if now >= stall_at:
                if now >= last_frame + dead_s:
                    raise _SessionEnd(f"dead socket: no frame at all for {dead_s:.1f}s")
                raise _SessionEnd(f"stall: no data for {stall_s:.1f}s")
            if pending is not None and pending():
                ready = True
            else:
                timeout = min(stall_at, next_app_ping, next_ws_ping, next_send) - now
                readable, _, _ = select.select(watch, (), (), max(0.0, timeout))
                if wake_r in readable:
                    _drain(wake_r)
                ready = sock in readable
            if not ready:
                continue
            opcode, data = ws.recv_data(control_frame=True)  # answers WS pings itself
            recv_ns = time.time_ns()
            last_frame = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_TEXT or opcode == websocket.ABNF.OPCODE_BINARY:
                stats.last_message = last_data = last_frame
                size = len(data)
                stats.bytes += size
                if size > max_bytes:
                    stats.oversized += 1
                    log.warning("dropped oversized frame conn={} bytes={} limit={}",
                                self.conn_id, size, max_bytes)
                    continue
                frame: str | bytes = data
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    frame = data.decode("utf-8", "replace")
                stats.messages += 1
                if capture is not None:
                    capture.write(recv_ns, "ws", self.conn_id, self.url, frame)
                replies = on_frame(self.conn_id, frame, recv_ns)
                latency.observe_ns(time.time_ns() - recv_ns)
                if replies:
                    self._outbox.extend(replies)
            elif opcode == websocket.ABNF.OPCODE_CLOSE:
                raise _SessionEnd(f"closed by venue: {_close_reason(data)}")

    def _flush(self, ws: websocket.WebSocket, now: float) -> float:
        """Send queued frames the venue's rate allows; returns when to try again."""
        assert threading.current_thread() is self._thread, "only the owner thread sends"
        if self._resub:
            with self._lock:
                batch = [self._subs[p] for p in self._resub if p in self._subs]
                self._resub.clear()
                if batch:
                    self._outbox.extend(self.driver.resubscribe(batch))
        outbox = self._outbox
        if not outbox:
            return float("inf")
        rate = self._send_rate
        if rate <= 0:
            while outbox:
                ws.send(outbox.popleft())
            return float("inf")
        burst = max(1.0, rate)
        self._tokens = min(burst, self._tokens + (now - self._tokens_at) * rate)
        self._tokens_at = now
        while outbox and self._tokens >= 1.0:
            ws.send(outbox.popleft())
            self._tokens -= 1.0
            self.stats.sent += 1
        return float("inf") if not outbox else now + (1.0 - self._tokens) / rate


def _first_due(interval_s: float | None) -> float:
    return float("inf") if not interval_s else time.monotonic() + interval_s


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except (BlockingIOError, OSError):
        pass


def _close_reason(data: bytes) -> str:
    if len(data) >= 2:
        code = int.from_bytes(data[:2], "big")
        return f"{code} {data[2:].decode('utf-8', 'replace')}".strip()
    return "no status"

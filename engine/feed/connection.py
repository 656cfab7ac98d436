"""One WebSocket connection on its own thread: connect, subscribe, heartbeats,
stall detection, reconnect with capped backoff + full jitter, resubscribe, a
planned make-before-break rotation before the venue's lifetime cut (its steps in
rotating.py), and hand every frame to the router. Owns the socket; it never
parses a frame (the driver does, via the router) and knows nothing venue-specific.

  pool ── add/remove/resubscribe ──► outbox ──(paced)──► socket
                                       ▲ wake pipe          │ frame
  router.on_frame(conn_id, frame, recv_ns) ◄────────────────┘ replies ─► outbox
        └─ also says whether the frame carried data: only those reset the stall clock

Only this connection's thread touches the socket; other threads queue frames
and wake it through a socket pair, so select() covers both.
"""

from __future__ import annotations

import math
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import websocket
from loguru import logger

from engine.feed.backoff import Backoff
from engine.feed.dialing import (
    Rotation,
    RotationFailed,
    RotationPlan,
    close_reason,
    close_socket,
    connect_target,
    open_socket,
)
from engine.feed.health import ConnectionStats, ConnState, socket_backlog_bytes
from engine.feed.limiter import RestLimiter, WindowLimiter
from engine.feed.rotating import RotatingSession
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


@dataclass(frozen=True)
class ConnectionSettings:
    # No frame carrying market data or a venue event for this long: reconnect.
    # Pongs, acks and control frames do not count, so it must exceed the longest
    # natural silence of the quietest connection (shorter catches stalls sooner).
    stall_timeout_s: float = 30.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    max_frame_bytes: int = MAX_FRAME_BYTES
    rotation: RotationPlan = RotationPlan()  # the driver's lifetime limit, if any


class FrameSink(Protocol):
    """What a connection feeds: engine.feed.sync.FeedRouter implements it."""

    def on_frame(self, conn_id: str, frame: str | bytes, recv_ns: int) -> tuple[list[str], bool]:
        """(replies to send, whether the frame carried market data or a venue event)."""
        ...

    def on_reconnect(self, pairs: list[str]) -> None: ...


class _SessionEnd(Exception):
    """The current WebSocket session is over; the message says why."""


class Connection(RotatingSession):
    """A WebSocket carrying some pairs of one driver (venue + market)."""

    def __init__(self, conn_id: str, url: str, driver: Driver, sink: FrameSink,
                 settings: ConnectionSettings, connect_limiter: WindowLimiter | None = None,
                 capture: Any = None, rest_limiter: RestLimiter | None = None) -> None:
        self.conn_id = conn_id
        self.url = url  # one of driver.endpoints(...)
        self.driver = driver
        self.sink = sink
        self.settings = settings
        self.stats = ConnectionStats()
        self._connect_limiter = connect_limiter
        self._rest_limiter = rest_limiter  # pays for the driver's connect_request, if any
        self._heartbeat = driver.heartbeat  # this session's rule (a connect grant may set it)
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
        # Owner thread only: pacing (one budget for both sockets of a rotation),
        # the session's socket and a rotation under way.
        self._tokens = max(1.0, self._send_rate)
        self._tokens_at = time.monotonic()
        self._ws: websocket.WebSocket | None = None
        self._rotation: Rotation | None = None
        self._frame_timeout_s = settings.stall_timeout_s

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
        return socket_backlog_bytes(self._sock)

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
        except Exception:  # logged; the pool's health shows STOPPED
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
            # Cleared before dialing, not once live: a reconnect_now() that
            # arrives while we connect must end the session it raced with.
            self._reconnect = False
            target, self._heartbeat = connect_target(self.driver, self.url, self._rest_limiter,
                                                      self.settings.connect_timeout_s)
            self._ws = open_socket(target, self.settings.connect_timeout_s)
        except Exception as e:  # noqa: BLE001 - any connect failure means back off
            return f"connect failed: {type(e).__name__}: {e}"
        try:
            return self._serve(self._ws)
        except _SessionEnd as e:
            return str(e)
        except (websocket.WebSocketException, OSError) as e:  # the socket broke
            return f"{type(e).__name__}: {e}"
        except Exception as e:  # a bug downstream: log it, resync, go on
            log.exception("frame handling failed conn={}", self.conn_id)
            return f"internal error: {type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._live = False
                self._outbox.clear()
                self._resub.clear()
            if self._rotation is not None:
                self._rotation.abandon()
            ws, self._ws, self._sock, self._rotation = self._ws, None, None, None
            if ws is not None:  # after a rotation, not the socket _serve began with
                close_socket(ws, CLOSE_TIMEOUT_S if self._stop.is_set() else 0)

    def _serve(self, ws: websocket.WebSocket) -> str:
        assert threading.current_thread() is self._thread, "only the owner thread reads"
        settings = self.settings
        # Data stall: no frame carrying market data or a venue event for the
        # configured time. Pongs, acks and pings do not count: an upstream stall
        # often keeps the socket alive and the venue answering our pings.
        # Dead socket: not even a control frame for the venue's heartbeat timeout.
        stall_s = settings.stall_timeout_s
        dead_s = self._heartbeat.timeout_s or stall_s
        self._frame_timeout_s = min(stall_s, dead_s)  # bounds the wait for a frame's rest
        ws.settimeout(self._frame_timeout_s)
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
        log.info("ws connected conn={} venue={} market={} pairs={} url={}", self.conn_id,
                 self.driver.venue, self.driver.market.value, len(subs), self.url)
        plan = settings.rotation
        rotate_at = stats.connected_since + plan.after_s  # then: when rotation needs us
        hb = self._heartbeat
        wake_r = self._wake_r
        capture = self._capture
        latency = stats.latency
        on_frame = self.sink.on_frame
        max_bytes = settings.max_frame_bytes
        while True:  # per socket: a rotation swaps in the new one and goes round again
            sock = ws.sock
            assert sock is not None, "a connected WebSocket has a socket"
            self._sock = sock
            pending = getattr(sock, "pending", None)  # TLS: decrypted bytes select() cannot see
            watch = [sock, wake_r]
            last_data = last_frame = time.monotonic()  # this socket's stall clocks
            next_app_ping = _first_due(hb.client_ping_interval_s if hb.client_ping else None)
            next_ws_ping = _first_due(hb.ws_ping_interval_s)
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
                rotation = self._rotation
                if now >= rotate_at or (rotation is not None and rotation.ws is None
                                        and rotation.dialing.done()):
                    replaced, rotate_at = self._rotate(ws, now, plan)
                    if replaced is not None:
                        ws = replaced
                        break
                    rotation = self._rotation
                stall_at = min(last_data + stall_s, last_frame + dead_s)
                ready = pending is not None and pending() > 0
                if now >= stall_at:
                    # Unread bytes mean this thread was late (a loaded host), not
                    # that the venue went silent: read them before judging.
                    ready = ready or sock in select.select([sock], (), (), 0)[0]
                    if not ready and now >= last_frame + dead_s:
                        raise _SessionEnd(f"dead socket: no frame at all for {dead_s:.1f}s")
                    if not ready:
                        stats.stalls.append(now)
                        raise _SessionEnd(f"stall: no data for {stall_s:.1f}s")
                held = rotation is not None and rotation.buffered()
                if not (ready or held):
                    timeout = min(stall_at, next_app_ping, next_ws_ping, next_send, rotate_at) - now
                    spare = rotation.ws.sock if rotation is not None and rotation.ws else None
                    readable, _, _ = select.select(watch if spare is None else [*watch, spare],
                                                   (), (), max(0.0, timeout))
                    if wake_r in readable:
                        _drain(wake_r)
                    ready = sock in readable
                    held = spare is not None and spare in readable
                if held:
                    try:
                        self._hold_frame(rotation)  # type: ignore[arg-type]
                    except RotationFailed as e:
                        rotate_at = self._abort_rotation(str(e), now, plan)
                if not ready:
                    continue
                opcode, data = ws.recv_data(control_frame=True)  # answers WS pings itself
                recv_ns = time.time_ns()
                last_frame = time.monotonic()
                if opcode == websocket.ABNF.OPCODE_TEXT or opcode == websocket.ABNF.OPCODE_BINARY:
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
                    replies, had_data = on_frame(self.conn_id, frame, recv_ns)
                    latency.observe_ns(time.time_ns() - recv_ns)
                    if rotation is not None and rotation.routed is not None:
                        rotation.routed.add(frame)
                    if had_data:  # market data or a venue event, not a pong or an ack
                        stats.last_message = last_data = last_frame
                    if replies:
                        self._outbox.extend(replies)
                elif opcode == websocket.ABNF.OPCODE_CLOSE:
                    raise _SessionEnd(f"closed by venue: {close_reason(data)}")

    def _flush(self, ws: websocket.WebSocket, now: float) -> float:
        """Send queued frames the venue's rate allows; returns when to try again."""
        assert threading.current_thread() is self._thread, "only the owner thread sends"
        if self._resub:
            with self._lock:
                batch = [self._subs[p] for p in self._resub if p in self._subs]
                self._resub.clear()
                if batch:
                    self._outbox.extend(self.driver.resubscribe(batch))
        if not self._outbox:
            return math.inf
        return self._send(ws, self._outbox, now)

    def _send(self, ws: websocket.WebSocket, outbox: deque[str], now: float) -> float:
        rate = self._send_rate  # token bucket; 0: unpaced
        if rate > 0:
            self._tokens = min(max(1.0, rate), self._tokens + (now - self._tokens_at) * rate)
            self._tokens_at = now
        while outbox and (rate <= 0 or self._tokens >= 1.0):
            ws.send(outbox.popleft())
            self._tokens -= 1.0
            self.stats.sent += 1
        return math.inf if not outbox else now + (1.0 - self._tokens) / rate


def _first_due(interval_s: float | None) -> float:
    return math.inf if not interval_s else time.monotonic() + interval_s


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(4096):
            pass
    except (BlockingIOError, OSError):
        pass

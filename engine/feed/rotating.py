"""A connection's planned make-before-break rotation before the venue's lifetime
cut: dial a replacement, subscribe it, hold its frames for the overlap, hand
over. Runs on the connection's owner thread only; connection.py owns the
session loop and calls in here."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import websocket
from loguru import logger

from engine.feed.dialing import Rotation, RotationFailed, RotationPlan, close_reason, close_socket, dial
from engine.feed.health import ConnectionStats
from engine.feed.limiter import RestLimiter, WindowLimiter
from engine.venues.base import Driver, ResyncMethod, Subscription

if TYPE_CHECKING:  # connection.py subclasses RotatingSession
    from engine.feed.connection import ConnectionSettings, FrameSink

log = logger.bind(component="feed")


class RotatingSession:
    """The rotation steps of engine.feed.connection.Connection (its base class)."""

    # Connection's state these steps use (set in Connection.__init__).
    conn_id: str
    url: str
    driver: Driver
    sink: FrameSink
    settings: ConnectionSettings
    stats: ConnectionStats
    _connect_limiter: WindowLimiter | None
    _rest_limiter: RestLimiter | None
    _capture: Any
    _lock: threading.Lock
    _subs: dict[str, Subscription]
    _outbox: deque[str]
    _resub: set[str]
    _ws: websocket.WebSocket | None
    _rotation: Rotation | None
    _frame_timeout_s: float

    def _wake(self) -> None:
        raise NotImplementedError

    def _send(self, ws: websocket.WebSocket, outbox: deque[str], now: float) -> float:
        raise NotImplementedError

    def _rotate(self, ws: websocket.WebSocket, now: float,
                plan: RotationPlan) -> tuple[websocket.WebSocket | None, float]:
        """Make-before-break: dial a second socket, subscribe it, hold its frames for
        the overlap, close the old one, route the held frames (books continue by
        sequence, or reseed from the new subscribe's snapshot: no resync). On
        failure the old socket carries on and it is retried; a venue cut first is
        a reconnect. Returns (the new socket after a handover, else None; when to
        call again)."""
        rotation = self._rotation
        if rotation is None:
            wait = self._connect_limiter.try_acquire(1) if self._connect_limiter else 0.0
            if wait > 0:
                return None, now + min(wait, 1.0)
            log.info("ws rotating before the venue's lifetime cut conn={} venue={} age_s={:.1f}",
                     self.conn_id, self.driver.venue, now - self.stats.connected_since)
            self._rotation = Rotation(dial(self.url, self.settings.connect_timeout_s, self._wake,
                                             self.driver, self._rest_limiter))
            return None, math.inf  # the dialer wakes this thread
        try:
            if rotation.ws is None:
                if not rotation.dialing.done():
                    return None, math.inf
                if (error := rotation.dialing.exception()) is not None:
                    raise RotationFailed(f"connect failed: {type(error).__name__}: {error}")
                rotation.ws = rotation.dialing.result()
                rotation.ws.settimeout(self._frame_timeout_s)
                rotation.connected_at = now
                if self.driver.resync is ResyncMethod.REST:
                    rotation.routed = set()
                with self._lock:
                    rotation.subs = dict(self._subs)
                    if rotation.subs:
                        rotation.outbox.extend(self.driver.subscribe(list(rotation.subs.values())))
            if rotation.outbox:
                next_send = self._send(rotation.ws, rotation.outbox, now)
                if rotation.outbox:
                    return None, next_send
            if rotation.handover_at == math.inf:  # subscribed: the overlap starts now
                rotation.handover_at = now + plan.overlap_s
            if now < rotation.handover_at:
                return None, rotation.handover_at
        except (RotationFailed, websocket.WebSocketException, OSError) as e:
            return None, self._abort_rotation(str(e), now, plan)
        return self._handover(ws, rotation), rotation.connected_at + plan.after_s

    def _hold_frame(self, rotation: Rotation) -> None:
        """Read one frame of the replacement socket into its held list."""
        assert rotation.ws is not None, "only a dialed replacement is watched"
        try:
            opcode, data = rotation.ws.recv_data(control_frame=True)  # answers WS pings
        except (websocket.WebSocketException, OSError) as e:
            raise RotationFailed(f"{type(e).__name__}: {e}") from e
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise RotationFailed(f"closed by venue: {close_reason(data)}")
        if opcode == websocket.ABNF.OPCODE_TEXT or opcode == websocket.ABNF.OPCODE_BINARY:
            self.stats.bytes += len(data)
            if len(data) > self.settings.max_frame_bytes:
                self.stats.oversized += 1
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                rotation.held.append((data.decode("utf-8", "replace"), time.time_ns()))
            else:
                rotation.held.append((data, time.time_ns()))

    def _abort_rotation(self, reason: str, now: float, plan: RotationPlan) -> float:
        rotation, self._rotation = self._rotation, None
        if rotation is not None:
            rotation.abandon()
        log.warning("ws rotation failed conn={} venue={} reason={} retry_in_s={:.1f}",
                    self.conn_id, self.driver.venue, reason, plan.retry_s)
        return now + plan.retry_s

    def _handover(self, old: websocket.WebSocket, rotation: Rotation) -> websocket.WebSocket:
        """Close the old socket, then route the held frames: the books see the old
        socket's frames, then the new one's, never interleaved."""
        new = rotation.ws
        assert new is not None, "handover only after the replacement subscribed"
        self._rotation, self._ws = None, new
        close_socket(old, 0)  # no wait for the venue's close frame: it would delay the held frames
        with self._lock:  # pairs added or removed since the replacement subscribed
            added = [s for p, s in self._subs.items() if p not in rotation.subs]
            removed = [s for p, s in rotation.subs.items() if p not in self._subs]
            # Queued for the old socket: pings, replies, resubscribes (the new
            # subscribe brought snapshots) and subscription changes (diffed here).
            self._outbox.clear()
            self._resub.clear()
            self._outbox.extend(self.driver.unsubscribe(removed) if removed else ())
            self._outbox.extend(self.driver.subscribe(added) if added else ())
        for frame, recv_ns in rotation.held:  # held on purpose: no latency sample
            if rotation.routed is not None and frame in rotation.routed:
                continue
            self.stats.messages += 1
            if self._capture is not None:
                self._capture.write(recv_ns, "ws", self.conn_id, self.url, frame)
            self._outbox.extend(self.sink.on_frame(self.conn_id, frame, recv_ns)[0])
        # Whether they carried data does not matter: the new socket's stall clock starts afresh.
        self.stats.rotations += 1
        self.stats.connected_since = rotation.connected_at
        log.info("ws rotated conn={} venue={} held_frames={} added={} removed={}", self.conn_id,
                 self.driver.venue, len(rotation.held), len(added), len(removed))
        return new

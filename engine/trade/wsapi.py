"""One authenticated WebSocket API connection of a trading account: requests
written from any thread and answered by id, pushes (order updates, fills,
balances) handed on. It owns no thread: the user stream that opened it reads
the socket and feeds every frame to ``on_frame``; senders wait for their answer.

  executor ─ request(r) ─► send text frame ─► wait (≤ timeout) ◄─ answer by id ─┐
  user stream thread: recv ─► on_frame ─► driver.parse_ws ─► answer | push ─────┘
  socket lost: every waiting request answers UNKNOWN (it may have arrived)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from loguru import logger

from engine.model_trade import Reply, ReplyKind, SignedRequest, TradingDriver, UserEvent

log = logger.bind(component="wsapi")


class _Waiter:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Reply | None = None


class WsApiSocket:
    """Thread-safe ``request``; ``on_frame`` and ``close`` from the reading thread."""

    def __init__(self, ws: Any, driver: TradingDriver,
                 on_event: Callable[[UserEvent], object]) -> None:
        self._ws = ws  # a connected websocket.WebSocket (enable_multithread=True)
        self.driver = driver
        self.on_event = on_event
        self._waiting: dict[str, _Waiter] = {}
        self._lock = threading.Lock()
        self._open = True
        self._ready = False  # subscribed and caught up: trusted for orders
        self.sent = 0
        self.answered = 0
        self.late_answers = 0  # answers after their sender gave up (counted, logged)
        self.bad_frames = 0

    def ready(self) -> bool:
        return self._ready and self._open

    def mark_ready(self) -> None:
        self._ready = True

    def request(self, request: SignedRequest, timeout_s: float) -> Reply:
        """Write ``request`` and wait for its answer. Never raises: a request
        that may have left and got no answer is UNKNOWN, one that provably did
        not leave (the socket was already closed) is RETRY."""
        assert request.transport == "ws" and request.request_id, "a WebSocket API request"
        waiter = _Waiter()
        with self._lock:
            if not self._open:
                return Reply(ReplyKind.RETRY, 0, message="WebSocket API closed; not sent")
            self._waiting[request.request_id] = waiter
        try:
            self._ws.send(request.body)
        except Exception as exc:  # noqa: BLE001 - a partial write may have reached the venue
            self._forget(request.request_id)
            return Reply(ReplyKind.UNKNOWN, 0, message=f"WebSocket API send failed: "
                                                        f"{type(exc).__name__}: {exc}")
        self.sent += 1
        if not waiter.done.wait(timeout_s):
            self._forget(request.request_id)
            return waiter.reply or Reply(ReplyKind.UNKNOWN, 0, message=f"no WebSocket API "
                                         f"answer within {timeout_s}s")
        assert waiter.reply is not None
        return waiter.reply

    def subscribe(self, request: SignedRequest, timeout_s: float,
                  recv: Callable[[], str | bytes | None]) -> Reply:
        """Send the user-data subscription and read frames (on this, the
        reading thread) until its answer; pushes that arrive first are applied."""
        with self._lock:
            self._waiting[request.request_id] = waiter = _Waiter()
        self._ws.send(request.body)
        deadline = time.monotonic() + timeout_s
        while not waiter.done.is_set():
            if time.monotonic() > deadline:
                self._forget(request.request_id)
                return Reply(ReplyKind.UNKNOWN, 0, message="subscription not answered")
            frame = recv()
            if frame is not None:
                self.on_frame(frame, time.time_ns())
        assert waiter.reply is not None
        return waiter.reply

    def on_frame(self, frame: str | bytes, recv_ns: int) -> bool:
        """Route one frame; False if it ended the subscription (reconnect)."""
        message = self.driver.parse_ws(frame, recv_ns)
        if message.error:
            self.bad_frames += 1
            log.warning("bad WebSocket API frame venue={} reason={}", self.driver.venue,
                        message.error)
        if message.reply is not None:
            self.answered += 1
            with self._lock:
                waiter = self._waiting.pop(message.request_id, None)
            if waiter is None:
                self.late_answers += 1
                log.warning("WebSocket API answer nobody waits for venue={} id={} status={}",
                            self.driver.venue, message.request_id, message.reply.status)
            else:
                waiter.reply = message.reply
                waiter.done.set()
        if message.event is not None:
            self.on_event(message.event)
            return not message.event.expired
        return True

    def close(self, reason: str) -> None:
        """The socket is gone: every waiting sender learns its request's fate is unknown."""
        with self._lock:
            self._open = False
            waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            waiter.reply = Reply(ReplyKind.UNKNOWN, 0, message=f"WebSocket API lost: {reason}")
            waiter.done.set()
        try:
            self._ws.close(timeout=0.5)
        except Exception:  # noqa: BLE001, S110 - closing a dead socket
            pass

    def _forget(self, request_id: str) -> None:
        with self._lock:
            self._waiting.pop(request_id, None)

    def status(self) -> dict:
        return {"ready": self.ready(), "sent": self.sent, "answered": self.answered,
                "late_answers": self.late_answers, "bad_frames": self.bad_frames}

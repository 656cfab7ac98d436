"""The order socket of a venue whose private stream is not on its WebSocket
API (Binance USD-M: user data by listenKey, orders over ``ws-fapi``; Bybit:
a private socket, orders over ``/v5/trade`` after ``auth``): one
authenticated WebSocket API connection kept open, its frames read
here, handed to the session as the fast path for orders, cancels and lookups.
While it is down the session sends over REST. Owns that socket and thread only.

  connect ─► WsApiSocket ─► session.ws (orders go over it) ─► read answers
     drop / error ─► session.ws = None (REST) ─► reconnect (backoff + jitter)
"""

from __future__ import annotations

import random
import threading
import time

import websocket
from loguru import logger

from engine.lifecycle import Health
from engine.trade.session import VenueSession
from engine.trade.wsapi import WsApiSocket

log = logger.bind(component="wsorders")

RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 15.0
CONNECT_TIMEOUT_S = 10.0


class OrderSocketKeeper:
    def __init__(self, session: VenueSession) -> None:
        self.session = session
        self.venue = session.driver.venue
        self.name = f"wsorders:{self.venue}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None
        self.connects = 0
        self.errors = 0
        self.up = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.close(timeout=0.5)
            except Exception:  # noqa: BLE001, S110 - closing a dead socket
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            socket: WsApiSocket | None = None
            try:
                ws = self._ws = websocket.create_connection(
                    self.session.driver.ws_api_url(), timeout=CONNECT_TIMEOUT_S,
                    enable_multithread=True)
                ws.settimeout(1.0)
                socket = WsApiSocket(ws, self.session.driver, lambda event: None)
                self._logon(ws, socket)
                socket.mark_ready()
                self.session.ws = socket
                self.connects += 1
                self.up.set()
                log.info("order socket up venue={} connects={}", self.venue, self.connects)
                driver, last_ping = self.session.driver, time.monotonic()
                while not self._stop.is_set():
                    if driver.ws_ping_s and time.monotonic() - last_ping >= driver.ws_ping_s:
                        ws.send(driver.ws_ping_frame())  # the venue cuts a silent socket
                        last_ping = time.monotonic()
                    try:
                        opcode, frame = ws.recv_data_frame(True)
                    except websocket.WebSocketTimeoutException:
                        continue
                    if opcode == websocket.ABNF.OPCODE_CLOSE:
                        raise ConnectionError("venue closed the order socket")
                    if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                        socket.on_frame(frame.data, time.time_ns())
            except Exception as exc:  # noqa: BLE001 - any failure means: REST, then reconnect
                if not self._stop.is_set():
                    self.errors += 1
                    log.warning("order socket down venue={} error={!r}", self.venue, exc)
            self.up.clear()
            if socket is not None:
                if self.session.ws is socket:
                    self.session.ws = None  # orders fall back to REST from here
                socket.close("order socket down")
            self._ws = None
            failures = 0 if time.monotonic() - started > 30.0 else failures + 1
            cap = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2 ** min(failures, 10))
            self._stop.wait(random.uniform(RECONNECT_MIN_S / 2, cap))  # jitter

    def _logon(self, ws: websocket.WebSocket, socket: WsApiSocket) -> None:
        """Authenticate the socket where the driver logs on (Bybit ``auth``);
        Binance signs each request and has nothing to do here."""
        session = self.session
        logon = session.driver.ws_logon(session.now_ms(), session.request_id())
        if logon is None:
            return

        def recv() -> bytes | str | None:
            try:
                opcode, frame = ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                return None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionError("venue closed the order socket")
            return frame.data if opcode in (websocket.ABNF.OPCODE_TEXT,
                                            websocket.ABNF.OPCODE_BINARY) else None

        reply = socket.subscribe(logon, CONNECT_TIMEOUT_S, recv)
        if reply.kind != "ok":
            raise ConnectionError(f"order socket logon refused: {reply.status} {reply.code} "
                                  f"{reply.message}")

    def health(self) -> list[Health]:
        # REST carries the orders while it is down: degraded speed, not a fault.
        return [Health(self.name, True, "" if self.up.is_set() else "down; orders over REST")]

    def status(self) -> dict:
        ws = self.session.ws
        return {"up": self.up.is_set(), "connects": self.connects, "errors": self.errors,
                "ws_api": ws.status() if isinstance(ws, WsApiSocket) else None}

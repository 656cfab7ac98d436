"""The WebSocket half of the server: the Upgrade handshake (Origin checked
against config), frames in through wsproto, pushes out as pre-built frames
queued on the connection. A mixin of HttpServer; runs on its I/O thread
except ``_push``, which any thread may call."""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Callable

from loguru import logger
from wsproto.connection import Connection as WsProtocol
from wsproto.connection import ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from engine.api.connection import Conn, ServerSettings, WsHandler
from engine.api.security import origin_allowed

log = logger.bind(component="http")

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketSide:
    settings: ServerSettings
    ws_handler: WsHandler | None
    counts: dict[str, int]
    _dirty: set[Conn]
    _dirty_lock: threading.Lock
    _respond: Callable[..., None]
    _queue: Callable[[Conn, bytes], None]
    _close: Callable[[Conn], None]
    _post: Callable[[Callable[[], None]], None]
    _wake: Callable[[], None]
    _safe: Callable[..., None]

    def _upgrade(self, conn: Conn, headers: dict[str, str], query: dict[str, str],
                 scope: str) -> None:
        from engine.api.http import Response  # import cycle

        s = self.settings
        origin = headers.get("origin", "")
        if not origin_allowed(origin, headers.get("host", ""), s.ws_origins):
            self.counts["ws_origin_refused"] += 1
            self._respond(conn, Response.error(403, f"Origin {origin!r} is not allowed "
                                                    f"(http.ws_origins)"))
            return
        ws_key = headers.get("sec-websocket-key", "")
        if self.ws_handler is None or not ws_key or headers.get("sec-websocket-version") != "13":
            self._respond(conn, Response.error(400, "WebSocket handshake needs Sec-WebSocket-Key "
                                                    "and Sec-WebSocket-Version: 13"))
            return
        accept = base64.b64encode(hashlib.sha1(ws_key.encode() + WS_GUID).digest())
        trailing = conn.http.trailing_data[0]
        conn.ws = WsProtocol(ConnectionType.SERVER, trailing_data=bytes(trailing))
        conn.phase, conn.scope, conn.query = "ws", scope, query
        self.counts["ws_opened"] += 1
        self._queue(conn, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self._safe(self.ws_handler.opened, conn)
        self._ws_events(conn)

    def _ws_data(self, conn: Conn, data: bytes) -> None:
        assert conn.ws is not None
        with conn.lock:
            conn.ws.receive_data(data)
        self._ws_events(conn)

    def _ws_events(self, conn: Conn) -> None:
        assert conn.ws is not None
        with conn.lock:
            events = list(conn.ws.events())
        for event in events:
            if isinstance(event, TextMessage):
                conn.ws_text.append(event.data)
                if sum(len(t) for t in conn.ws_text) > self.settings.ws_message_bytes:
                    self._ws_close(conn, 1009, "message too big")
                    return
                if event.message_finished:
                    text, conn.ws_text = "".join(conn.ws_text), []
                    if self.ws_handler is not None:
                        self._safe(self.ws_handler.message, conn, text)
            elif isinstance(event, BytesMessage):
                self._ws_close(conn, 1003, "text frames only")
                return
            elif isinstance(event, Ping):
                with conn.lock:
                    data = conn.ws.send(event.response())
                self._queue(conn, data)
            elif isinstance(event, CloseConnection):
                with conn.lock:
                    data = conn.ws.send(event.response()) if conn.ws.state.name == "REMOTE_CLOSING" \
                        else b""
                conn.phase = "closing"
                self._queue(conn, data)
                return

    def _ws_close(self, conn: Conn, code: int, reason: str) -> None:
        assert conn.ws is not None
        with conn.lock:
            data = conn.ws.send(CloseConnection(code=code, reason=reason))
        conn.phase = "closing"
        self._queue(conn, data)

    def _push(self, conn: Conn, frame: bytes) -> bool:
        """Any thread: queue a frame; a client this far behind is dropped."""
        if conn.phase != "ws":
            return False
        with conn.lock:
            if len(conn.out) + len(frame) > self.settings.ws_buffer_bytes:
                behind = True
            else:
                behind = False
                conn.out += frame
        if behind:
            self.counts["ws_dropped_slow"] += 1
            log.warning("WebSocket client {} too slow ({} bytes queued); dropped", conn.client,
                        len(conn.out))
            self._post(lambda: self._close(conn))
            return False
        with self._dirty_lock:
            first = not self._dirty
            self._dirty.add(conn)
        if first:
            self._wake()
        return True

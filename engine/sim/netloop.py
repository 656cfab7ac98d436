"""The venue's sockets: one thread, one selector, REST and WebSocket on the
same port.

Every accepted connection starts as HTTP (http_wire.RequestParser). A GET
with "Upgrade: websocket" becomes a WebSocket connection driven by the
websockets library's Sans-I/O ServerProtocol; anything else is answered by
the REST handler. Sockets are non-blocking; each connection keeps an output
buffer, so one slow client never stalls the others, and a client whose
buffer passes MAX_OUTPUT_BYTES is dropped (as Binance drops slow
consumers). Other threads talk to this one only through ``wake()``.

Why not websockets.sync.server: it runs two threads per connection and
serves only GET, so REST POST/DELETE could not share the port, and fanning
one depth stream out to 1,000 clients would mean 1,000 blocking sends.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from loguru import logger
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

from engine.sim.http_wire import HttpError, HttpRequest, HttpResponse, RequestParser

log = logger.bind(component="venue")

RECV_BYTES = 65536
# Pending output per connection before it is dropped: ~1 s of a busy depth
# stream at 100 ms per frame. Lower drops stragglers sooner; higher lets a
# stalled client hold more memory.
MAX_OUTPUT_BYTES = 4 * 1024 * 1024
MAX_MESSAGE_BYTES = 64 * 1024  # control messages are tiny; anything bigger is abuse
CLOSE_GRACE_S = 2.0  # after our close frame, how long the client gets to answer
# Server pings: Binance spot sends one every 20 s and drops a client that has
# not answered within a minute (its WebSocket docs, current edition).
PING_INTERVAL_S = 20.0
PONG_TIMEOUT_S = 60.0
WS_PATHS = ("/ws", "/stream")


class WsApp(Protocol):
    """What the loop needs from the stream hub (streams.py)."""

    def check(self, target: str) -> str | None:
        """None to accept a handshake for this path, else the HTTP 400 text."""

    def on_open(self, conn: Connection, target: str) -> None: ...
    def on_message(self, conn: Connection, data: bytes) -> None: ...
    def on_closed(self, conn: Connection) -> None: ...

    def poll(self) -> float:
        """Do queued and due work; return seconds until it wants to run again."""


HttpHandler = Callable[[HttpRequest, str], HttpResponse]


class Connection:
    """One client socket, HTTP until it upgrades."""

    def __init__(self, loop: NetLoop, sock: socket.socket, address: tuple) -> None:
        self.loop = loop
        self.sock = sock
        self.ip = str(address[0])
        self.parser = RequestParser()
        self.out = bytearray()
        self.protocol: ServerProtocol | None = None
        self.eof_after_flush = False
        self.closed = False
        self.writing = False
        self.close_deadline = 0.0
        self.last_pong = time.monotonic()
        self.fragments: list[bytes] = []
        self.combined = False  # stream hub's per-connection property
        self.streams: set[str] = set()

    # ---------------------------------------------------------------- input

    def on_readable(self) -> None:
        try:
            data = self.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close()
            return
        if self.protocol is not None:
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self._ws_events()
        elif not data:
            self.close()
        else:
            self.parser.feed(data)
            self._http_requests()

    def _http_requests(self) -> None:
        while not self.closed and self.protocol is None:
            try:
                request = self.parser.next_request()
            except HttpError as exc:
                self.write(HttpResponse(exc.status, exc.reason.encode(),
                                        content_type="text/plain").serialize(False), eof=True)
                return
            if request is None:
                return
            if request.is_websocket and request.path.startswith(self.loop.ws_paths):
                self._upgrade(request)
                return
            response = self.loop.http(request, self.ip)
            keep = request.keep_alive
            self.write(response.serialize(keep), eof=not keep)

    def _upgrade(self, request: HttpRequest) -> None:
        protocol = ServerProtocol(max_size=MAX_MESSAGE_BYTES)
        protocol.receive_data(request.raw_head)
        handshake = protocol.events_received()[0]
        assert isinstance(handshake, Request), "the head we parsed is a request"
        error, status = self.loop.ws.check(request.target), 400
        origin = handshake.headers.get("Origin")
        if not error and not origin_allowed(origin, handshake.headers.get("Host") or "",
                                            self.loop.ws_origins):
            error, status = f"Origin {origin!r} is not allowed", 403
            self.loop.origins_refused += 1
        response = protocol.reject(status, error) if error else protocol.accept(handshake)
        protocol.send_response(response)
        self.protocol = protocol
        self._flush_protocol()
        if response.status_code != 101:
            return
        self.last_pong = time.monotonic()
        self.loop.ws_connections.add(self)
        self.loop.ws.on_open(self, request.target)
        rest = self.parser.take_rest()
        if rest:
            protocol.receive_data(rest)
            self._ws_events()

    def _ws_events(self) -> None:
        protocol = self.protocol
        assert protocol is not None
        for frame in protocol.events_received():
            if not isinstance(frame, Frame):
                continue
            if frame.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT):
                self.fragments.append(bytes(frame.data))
                if frame.fin:
                    message = b"".join(self.fragments)
                    self.fragments.clear()
                    self.loop.ws.on_message(self, message)
            elif frame.opcode is Opcode.PONG:
                self.last_pong = time.monotonic()
        self._flush_protocol()

    # --------------------------------------------------------------- output

    def send_text(self, data: bytes) -> None:
        assert self.loop.on_loop_thread(), "connections belong to the network thread"
        protocol = self.protocol
        if protocol is None or protocol.state is not State.OPEN or self.closed:
            return
        protocol.send_text(data)
        self._flush_protocol()

    def send_frame(self, frame: bytes) -> None:
        """A text frame serialized once for many clients (broadcast).

        Server frames are unmasked and the venue negotiates no extension, so
        every client gets identical bytes; writing them directly skips the
        per-client serialization. Only while OPEN, as send_text would.
        """
        assert self.loop.on_loop_thread(), "connections belong to the network thread"
        protocol = self.protocol
        if protocol is None or protocol.state is not State.OPEN or self.closed:
            return
        if self.out:
            self.out += frame
            self._send()
            return
        try:
            sent = self.sock.send(frame)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close()
            return
        if sent < len(frame):
            self.out += frame[sent:]
            self._send()

    def ping(self) -> None:
        if self.protocol is not None and self.protocol.state is State.OPEN:
            self.protocol.send_ping(b"")
            self._flush_protocol()

    def close_ws(self, code: int = 1000, reason: str = "") -> None:
        """Start a WebSocket close; the socket goes when the client answers."""
        if self.protocol is None or self.protocol.state is not State.OPEN:
            return
        self.protocol.send_close(code, reason)
        self.close_deadline = time.monotonic() + CLOSE_GRACE_S
        self._flush_protocol()

    def _flush_protocol(self) -> None:
        assert self.protocol is not None
        for chunk in self.protocol.data_to_send():
            if chunk:
                self.out += chunk
            else:
                self.eof_after_flush = True
        self._send()

    def write(self, data: bytes, eof: bool = False) -> None:
        self.out += data
        self.eof_after_flush = self.eof_after_flush or eof
        self._send()

    def _send(self) -> None:
        if self.closed:
            return
        out = self.out
        while out:
            try:
                sent = self.sock.send(out)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.close()
                return
            del out[:sent]
        if out:
            if len(out) > MAX_OUTPUT_BYTES:
                log.warning("venue dropping slow client ip={} pending_bytes={}", self.ip,
                            len(out))
                self.close()
                return
            self._want_write(True)
        else:
            self._want_write(False)
            if self.eof_after_flush:
                self.close()

    def _want_write(self, want: bool) -> None:
        if want != self.writing and not self.closed:
            self.writing = want
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want else 0)
            self.loop.selector.modify(self.sock, events, self)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.loop.selector.unregister(self.sock)
        except (KeyError, ValueError):
            pass
        self.sock.close()
        if self in self.loop.ws_connections:
            self.loop.ws_connections.discard(self)
            self.loop.ws.on_closed(self)


def origin_allowed(origin: str | None, host: str, allowed: tuple[str, ...]) -> bool:
    """A browser's WebSocket Origin (the market-maker plan's check, as the
    daemon's /ws does it): absent (not a browser), the page's own host, or
    listed; "*" allows any."""
    if not origin or "*" in allowed or origin.rstrip("/") in allowed:
        return True
    netloc = urlsplit(origin).netloc.lower()
    return bool(netloc) and netloc == host.lower()


class NetLoop:
    def __init__(self, host: str, port: int, http: HttpHandler, ws: WsApp,
                 ws_origins: tuple[str, ...] = (),
                 ws_paths: tuple[str, ...] = WS_PATHS) -> None:
        self.host, self.requested_port = host, port
        self.ws_origins = ws_origins  # browser Origins allowed besides the venue's own
        self.origins_refused = 0
        self.ws_paths = ws_paths  # path prefixes a WebSocket upgrade may use
        self.http, self.ws = http, ws
        self.port = 0
        self.selector = selectors.DefaultSelector()
        self.ws_connections: set[Connection] = set()
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_pending = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None

    def on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def start(self) -> None:
        listener = socket.create_server((self.host, self.requested_port), backlog=2048,
                                        reuse_port=False)
        listener.setblocking(False)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self.selector.register(listener, selectors.EVENT_READ, "accept")
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, name="venue-net", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Make the loop run its poll soon; safe from any thread."""
        if self._wake_pending:
            return
        self._wake_pending = True
        try:
            self._wake_w.send(b"\0")
        except (BlockingIOError, OSError):
            pass

    def stop(self, timeout_s: float) -> None:
        self._stopping = True
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                log.warning("venue network thread did not stop in {} s", timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        next_ping = time.monotonic() + PING_INTERVAL_S
        wait = 0.0
        try:
            while not self._stopping:
                for key, mask in self.selector.select(wait):
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        self._drain_wake()
                    else:
                        self._serve(key.data, mask)
                try:
                    wait = self.ws.poll()
                except Exception:  # a stream bug must not stop REST; logged, retried
                    log.exception("venue stream hub failed")
                    wait = 0.1
                now = time.monotonic()
                if now >= next_ping:
                    next_ping = now + PING_INTERVAL_S
                    self._ping_all(now)
                self._reap(now)
        except BaseException as exc:  # recorded for health()
            self.failed = exc
            log.exception("venue network loop failed")
        finally:
            self._shutdown()

    def _serve(self, conn: Connection, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ:
                conn.on_readable()
            if mask & selectors.EVENT_WRITE and not conn.closed:
                conn._send()
        except Exception:  # one client's trouble closes that client only
            log.exception("venue connection failed ip={}", conn.ip)
            conn.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.selector.register(sock, selectors.EVENT_READ, Connection(self, sock, address))

    def _drain_wake(self) -> None:
        self._wake_pending = False
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _ping_all(self, now: float) -> None:
        for conn in list(self.ws_connections):
            if now - conn.last_pong > PONG_TIMEOUT_S:
                conn.close()
            else:
                conn.ping()

    def _reap(self, now: float) -> None:
        for conn in [c for c in self.ws_connections if c.close_deadline]:
            if now > conn.close_deadline:
                conn.close()

    def _shutdown(self) -> None:
        for key in list(self.selector.get_map().values()):
            if isinstance(key.data, Connection):
                key.data.close_ws(1001, "venue shutting down")
                key.data.close()
        if self._listener is not None:
            self._listener.close()
        self.selector.close()
        self._wake_r.close()
        self._wake_w.close()

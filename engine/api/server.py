"""The daemon's HTTP/1.1 and WebSocket server. One I/O thread owns every
socket (a selector: accept, TLS handshake, reads parsed by h11, buffered
writes, timeouts); a bounded pool of worker threads runs the route handlers.
A slow or idle client costs a file descriptor and a buffer, never a thread.

  accept ─► [TLS handshake] ─► recv ─► h11 ─► whole request? ─► size, key, scope, rate
     ─► worker pool: handler(Request) ─► Response ─► I/O thread: h11 ─► out buffer ─► send
  GET /ws with Upgrade ─► Origin check ─► 101 ─► wsproto frames ─► WsHandler
  pushes from other threads: frame bytes queued on the connection, sent by the I/O thread

The HTTP half (h11 events, request checks, workers) is http_side.py, the
WebSocket half ws_side.py; this module owns the sockets and the loop.
h11 replaces the stdlib's http.server parsing: it rejects malformed
Content-Length and chunking (answered 400), bounds the header block, and
never needs a thread per connection.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import h11
from loguru import logger

from engine.api.connection import (  # noqa: F401 - text_frame, tls_context re-exported
    Conn,
    ServerSettings,
    WsHandler,
    reason,
    text_frame,
    tls_context,
)
from engine.api.http_side import HttpSide
from engine.api.ws_side import WebSocketSide

if TYPE_CHECKING:
    from engine.api.http import Response, Router

log = logger.bind(component="http")

RECV_BYTES = 65536
SWEEP_S = 0.2  # timeout sweep cadence: a closed deadline is acted on within this
ACCEPT_PAUSE_S = 0.5  # out of descriptors: accepts wait this long (the backlog holds clients)


class HttpServer(HttpSide, WebSocketSide):
    """Bind on construction (``port`` 0 picks one); ``start`` runs the I/O
    thread; ``stop`` closes every connection."""

    def __init__(self, host: str, port: int, router: Router,
                 settings: ServerSettings | None = None,
                 ws_handler: WsHandler | None = None) -> None:
        self.router, self.settings, self.ws_handler = router, settings or ServerSettings(), ws_handler
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(self.settings.backlog)
        self._listener.setblocking(False)
        self.host: str = str(self._listener.getsockname()[0])
        self.port: int = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._inbox: deque[Callable[[], None]] = deque()
        self._dirty: set[Conn] = set()  # connections with pushed frames to send
        self._dirty_lock = threading.Lock()
        self._conns: set[Conn] = set()
        self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="http-worker")
        self._running = False
        self._thread: threading.Thread | None = None
        self._next_id = 0
        self._accept_paused_until = 0.0  # set while out of descriptors
        self.counts = {"accepted": 0, "refused_full": 0, "timeouts": 0, "protocol_errors": 0,
                       "rate_limited": 0, "unauthorized": 0, "handler_errors": 0,
                       "ws_opened": 0, "ws_dropped_slow": 0, "ws_origin_refused": 0}

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.settings.tls else 'http'}://{host}:{self.port}"

    def start(self) -> None:
        self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="http-io", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        if self._thread is not None:
            self._running = False
            self._wake()
            self._thread.join(timeout_s)
            self._thread = None
        for conn in list(self._conns):
            self._close(conn)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._selector.close()
        self._listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def status(self) -> dict[str, Any]:
        return {"url": self.url, "tls": self.settings.tls is not None,
                "connections": len(self._conns), "workers": self.settings.workers,
                **self.counts}

    # ------------------------------------------------------------ I/O loop

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except (BlockingIOError, OSError):
            pass  # already awake (the pipe is full) or stopping

    def _post(self, fn: Callable[[], None]) -> None:
        self._inbox.append(fn)
        self._wake()

    def _loop(self) -> None:
        swept = time.monotonic()
        while self._running:
            for key, mask in self._selector.select(SWEEP_S):
                if key.data == "accept":
                    self._accept()
                elif key.data == "wake":
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, OSError):
                        pass
                else:
                    conn = key.data
                    if mask & selectors.EVENT_WRITE:
                        self._writable(conn)
                    if mask & selectors.EVENT_READ and conn in self._conns:
                        self._readable(conn)
            if self._dirty:
                with self._dirty_lock:
                    dirty, self._dirty = self._dirty, set()
                for conn in dirty:
                    if conn in self._conns:
                        self._writable(conn)
            while self._inbox:
                try:
                    self._inbox.popleft()()
                except Exception as e:  # noqa: BLE001 - one connection's fault, not the server's
                    self.counts["handler_errors"] += 1
                    log.error("http I/O step failed error={}\n{}", type(e).__name__,
                              "".join(traceback.format_exception(e)))
            now = time.monotonic()
            if now - swept >= SWEEP_S:
                swept = now
                self._sweep(now)

    def _accept(self) -> None:
        s = self.settings
        while True:
            try:
                sock, addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # EMFILE and kin: pause accepting, or the loop would spin
                self.counts["refused_full"] += 1
                log.warning("accept failed error={}; pausing accepts for {}s", e, ACCEPT_PAUSE_S)
                self._selector.unregister(self._listener)
                self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_S
                return
            if len(self._conns) >= s.max_connections:
                self.counts["refused_full"] += 1
                try:
                    sock.send(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\nRetry-After: 1\r\n\r\n")
                except OSError:
                    pass
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if s.tls is not None:
                sock = s.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            self._next_id += 1
            conn = Conn(sock, str(addr[0]), time.monotonic() + s.request_timeout_s,
                         h11.Connection(h11.SERVER, max_incomplete_event_size=s.max_header_bytes),
                         handshaking=s.tls is not None, id=self._next_id, server=self)
            self._conns.add(conn)
            self.counts["accepted"] += 1
            self._arm(conn)

    def _arm(self, conn: Conn) -> None:
        """Selector interest from the connection's state."""
        if conn not in self._conns:
            return
        want = 0
        if conn.phase in ("idle", "reading", "ws") or conn.handshaking:
            want |= selectors.EVENT_READ
        if conn.out or conn.want_write:
            want |= selectors.EVENT_WRITE
        if want == conn.mask:
            return
        if conn.mask == 0:
            self._selector.register(conn.sock, want, conn)
        elif want == 0:
            self._selector.unregister(conn.sock)
        else:
            self._selector.modify(conn.sock, want, conn)
        conn.mask = want

    def _close(self, conn: Conn) -> None:
        if conn not in self._conns:
            return
        self._conns.discard(conn)
        if conn.mask:
            try:
                self._selector.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass
            conn.mask = 0
        if conn.ws is not None and self.ws_handler is not None:
            self._safe(self.ws_handler.closed, conn)
        try:
            conn.sock.close()
        except OSError:
            pass

    def _sweep(self, now: float) -> None:
        s = self.settings
        if self._accept_paused_until and now >= self._accept_paused_until:
            self._accept_paused_until = 0.0
            self._selector.register(self._listener, selectors.EVENT_READ, "accept")
        for conn in list(self._conns):
            if conn.out and conn.last_write and now - conn.last_write > s.write_timeout_s:
                self.counts["timeouts"] += 1
                self._close(conn)
            elif conn.phase in ("idle", "reading") and now > conn.deadline:
                self.counts["timeouts"] += 1
                if conn.phase == "reading":
                    self._fail(conn, 408, f"request not complete within {s.request_timeout_s}s")
                else:
                    self._close(conn)

    # ------------------------------------------------------------- reading

    def _readable(self, conn: Conn) -> None:
        if conn.handshaking and not self._handshake(conn):
            return
        while conn in self._conns and conn.phase in ("idle", "reading", "ws"):
            try:
                data = conn.sock.recv(RECV_BYTES)
            except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
                return
            except ssl.SSLWantWriteError:
                conn.want_write = True
                self._arm(conn)
                return
            except OSError:
                self._close(conn)
                return
            if not data:
                self._close(conn)
                return
            if conn.ws is not None:
                self._ws_data(conn, data)
                continue
            if conn.phase == "idle":
                conn.phase, conn.deadline = "reading", time.monotonic() + self.settings.request_timeout_s
            conn.http.receive_data(data)
            self._http_events(conn)

    def _handshake(self, conn: Conn) -> bool:
        try:
            conn.sock.do_handshake()  # type: ignore[attr-defined]
        except ssl.SSLWantReadError:
            conn.want_write = False
            self._arm(conn)
            return False
        except ssl.SSLWantWriteError:
            conn.want_write = True
            self._arm(conn)
            return False
        except (ssl.SSLError, OSError) as e:
            self.counts["protocol_errors"] += 1
            log.debug("TLS handshake failed client={} error={}", conn.client, e)
            self._close(conn)
            return False
        conn.handshaking = conn.want_write = False
        conn.deadline = time.monotonic() + self.settings.idle_timeout_s
        self._arm(conn)
        return True

    # ------------------------------------------------------------- writing

    def _respond(self, conn: Conn, resp: Response) -> None:
        if conn not in self._conns:
            return
        headers = [(b"content-type", resp.content_type.encode()),
                   (b"content-length", str(len(resp.body)).encode())]
        headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()]
        try:
            data = conn.http.send(h11.Response(status_code=resp.status, headers=headers,
                                               reason=reason(resp.status)))
            if resp.body and conn.request is not None and conn.request.method != b"HEAD":
                data += conn.http.send(h11.Data(data=resp.body))
            data += conn.http.send(h11.EndOfMessage())
        except h11.LocalProtocolError as e:
            log.warning("cannot answer client={} error={}", conn.client, e)
            self._close(conn)
            return
        self._queue(conn, data)
        if conn.http.our_state is h11.MUST_CLOSE or conn.http.their_state is not h11.DONE:
            conn.phase = "closing"  # closed once the answer is out
            self._arm(conn)
            return
        conn.http.start_next_cycle()
        conn.request, conn.body = None, bytearray()
        conn.phase, conn.deadline = "idle", time.monotonic() + self.settings.idle_timeout_s
        self._arm(conn)
        self._inbox.append(lambda: self._resume(conn))  # iterative, never recursive

    def _resume(self, conn: Conn) -> None:
        """After an answer: a pipelined request already buffered, and TLS may
        hold decrypted bytes the selector cannot see."""
        if conn in self._conns and conn.phase in ("idle", "reading"):
            self._http_events(conn)
            if conn.phase in ("idle", "reading"):
                self._readable(conn)

    def _fail(self, conn: Conn, status: int, message: str) -> None:
        """A protocol-level error: answered raw (h11 may be broken) and closed."""
        import orjson

        body = orjson.dumps({"error": message})
        head = (f"HTTP/1.1 {status} {reason(status).decode()}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        conn.phase = "closing"
        self._queue(conn, head + body)

    def _queue(self, conn: Conn, data: bytes) -> None:
        """On the I/O thread."""
        with conn.lock:
            conn.out += data
        self._writable(conn)

    def _writable(self, conn: Conn) -> None:
        if conn.handshaking:
            self._handshake(conn)
            return
        if conn.want_write and conn.phase in ("idle", "reading", "ws"):
            conn.want_write = False  # a TLS read waited for this
            self._readable(conn)
        while conn.out and conn in self._conns:
            with conn.lock:
                chunk = bytes(conn.out[:RECV_BYTES])
            try:
                sent = conn.sock.send(chunk)
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
                break
            except OSError:
                self._close(conn)
                return
            with conn.lock:
                del conn.out[:sent]
            conn.last_write = time.monotonic()
        if conn not in self._conns:
            return
        if not conn.out:
            conn.last_write = 0.0
            if conn.phase == "closing":
                self._close(conn)
                return
        elif not conn.last_write:
            conn.last_write = time.monotonic()
        self._arm(conn)

    def _safe(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - counted and logged; the connection lives on
            self.counts["handler_errors"] += 1
            log.error("WebSocket handler failed error={}\n{}", type(e).__name__,
                      "".join(traceback.format_exception(e)))

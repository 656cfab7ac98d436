"""The server's per-connection state and its settings: the bounds every
socket is held to, the WebSocket session and handler interfaces, the frame
encoder shared by all pushes, and the TLS context from config paths."""

from __future__ import annotations

import socket
import ssl
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol

import h11
from wsproto.connection import Connection as WsProtocol

from engine.api.security import Keys, TokenBuckets


@dataclass(frozen=True)
class ServerSettings:
    """Every bound the server enforces; config ``http:`` fills it (app.py)."""

    backlog: int = 1024  # listen queue; the kernel caps it at net.core.somaxconn
    workers: int = 8  # handler threads: more serve slow handlers in parallel, cost memory
    max_connections: int = 2048  # open sockets; past it a new one gets 503 and is closed
    idle_timeout_s: float = 30.0  # a keep-alive connection silent this long is closed
    request_timeout_s: float = 10.0  # from a request's first byte to its last (slowloris)
    write_timeout_s: float = 30.0  # a client reading nothing of its answer this long is dropped
    max_body_bytes: int = 1 << 20  # no API needs more; larger gets 413
    max_header_bytes: int = 16384  # request line + headers; larger gets 431
    ws_buffer_bytes: int = 4 << 20  # a WebSocket client this far behind is dropped
    ws_message_bytes: int = 65536  # largest client message (subscribe lists are small)
    ws_path: str = "/ws"
    ws_origins: tuple[str, ...] = ()  # allowed Origin values besides the page's own
    tls: ssl.SSLContext | None = None
    keys: Keys | None = None  # None: no key checks (a bare server in a test)
    buckets: TokenBuckets | None = None  # None: no rate limit


class WsSession(Protocol):
    id: int
    scope: str
    query: dict[str, str]

    def send_frame(self, frame: bytes) -> bool: ...


class WsHandler(Protocol):
    """What serves /ws: called on the I/O thread, so each call must be quick."""

    def opened(self, session: WsSession) -> None: ...

    def message(self, session: WsSession, text: str) -> None: ...

    def closed(self, session: WsSession) -> None: ...


def text_frame(text: str | bytes) -> bytes:
    """One unmasked FIN text frame (server to client; RFC 6455 5.2). Built once
    per push and shared by every subscriber."""
    data = text.encode() if isinstance(text, str) else text
    n = len(data)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = bytes((0x81, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x81, 127)) + n.to_bytes(8, "big")
    return head + data


@dataclass(eq=False)
class Conn:
    """One client socket. Owned by the I/O thread; other threads touch only
    ``out`` (under ``lock``) through ``send_frame``."""

    sock: socket.socket
    client: str
    deadline: float
    http: h11.Connection
    handshaking: bool = False
    want_write: bool = False  # TLS needs the socket writable to go on
    phase: str = "idle"  # idle | reading | busy | ws | closing
    out: bytearray = field(default_factory=bytearray)
    lock: threading.Lock = field(default_factory=threading.Lock)
    body: bytearray = field(default_factory=bytearray)
    request: h11.Request | None = None
    ws: WsProtocol | None = None
    ws_text: list[str] = field(default_factory=list)
    mask: int = 0
    last_write: float = 0.0
    id: int = 0
    scope: str = "open"
    query: dict[str, str] = field(default_factory=dict)
    server: Any = None

    def send_frame(self, frame: bytes) -> bool:  # WsSession, from any thread
        return self.server._push(self, frame)


def header(headers: Any, name: bytes) -> bytes | None:
    for k, v in headers:
        if k == name:
            return bytes(v)
    return None


def reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""


def tls_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    """A server context from PEM files (config ``http.tls_cert`` /
    ``http.tls_key``): TLS 1.2 or later, the library's default ciphers."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_path, key_path)
    return ctx

"""HTTP/1.1 for the venue's REST side, Sans-I/O: bytes in, requests out;
responses to bytes.

Owns exactly what Binance clients send: request line, headers, a body sized
by Content-Length, keep-alive. Chunked request bodies are refused (411), as
no Binance client sends them. Never touches a socket (netloop.py does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

# Bounds on what one client may make the venue buffer: far above any Binance
# request (URLs of a few hundred bytes, bodies of a few hundred), far below
# anything that could hurt the process.
MAX_HEAD_BYTES = 16 * 1024
MAX_BODY_BYTES = 1024 * 1024


class HttpError(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str]  # lower-case names; a repeated header keeps the last
    body: bytes
    raw_head: bytes  # exactly as received, for a hand-over to the WebSocket protocol

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        parts = self.target.split("?", 1)
        return parts[1] if len(parts) == 2 else ""

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"

    @property
    def is_websocket(self) -> bool:
        return (self.method == "GET"
                and self.headers.get("upgrade", "").lower() == "websocket")


@dataclass
class HttpResponse:
    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json;charset=UTF-8"

    def serialize(self, keep_alive: bool) -> bytes:
        try:
            reason = HTTPStatus(self.status).phrase
        except ValueError:  # 418 is in http.HTTPStatus since 3.9; others may not be
            reason = "Unknown"
        lines = [f"HTTP/1.1 {self.status} {reason}",
                 f"Content-Type: {self.content_type}",
                 f"Content-Length: {len(self.body)}",
                 "Connection: keep-alive" if keep_alive else "Connection: close"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + self.body


class RequestParser:
    """Incremental parser for one connection's requests."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def take_rest(self) -> bytes:
        """Whatever was received after the last request (WebSocket hand-over)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest

    def next_request(self) -> HttpRequest | None:
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD_BYTES:
                raise HttpError(431, "request head too large")
            return None
        head = bytes(buffer[:end + 4])
        lines = head[:-4].decode("latin-1").split("\r\n")
        try:
            method, target, version = lines[0].split(" ")
        except ValueError:
            raise HttpError(400, "malformed request line") from None
        if not version.startswith("HTTP/1."):
            raise HttpError(505, "HTTP/1.x only")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise HttpError(400, "malformed header line")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            raise HttpError(411, "chunked request bodies are not supported")
        try:
            length = int(headers.get("content-length", "0"))
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise HttpError(413, "request body too large")
        if len(buffer) < end + 4 + length:
            return None
        body = bytes(buffer[end + 4:end + 4 + length])
        del buffer[:end + 4 + length]
        return HttpRequest(method, target, version, headers, body, head)

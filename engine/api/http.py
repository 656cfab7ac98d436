"""The daemon's one HTTP server thread (stdlib ThreadingHTTPServer): a small
route table of GET/POST handlers. Handlers are registered by app.py; this
module knows no component."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import orjson
from loguru import logger

log = logger.bind(component="http")


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # from {name} segments


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data, status: int = 200) -> Response:
        return cls(status, orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY))

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"error": message}, status)


Handler = Callable[[Request], Response]


class Router:
    """Exact paths and ``/prefix/{name}`` patterns (one trailing parameter
    that may contain slashes, e.g. a book key with BASE/QUOTE)."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Handler] = {}
        self._prefix: list[tuple[str, str, str, Handler]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        if "{" in path:
            prefix, _, rest = path.partition("{")
            self._prefix.append((method, prefix, rest.rstrip("}"), handler))
        else:
            self._exact[(method, path)] = handler

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, params, path_exists_for_other_method)."""
        h = self._exact.get((method, path))
        if h is not None:
            return h, {}, True
        other = any(p == path for (_, p) in self._exact)
        for m, prefix, name, handler in self._prefix:
            if path.startswith(prefix) and len(path) > len(prefix):
                if m == method:
                    return handler, {name: path[len(prefix):]}, True
                other = True
        return None, {}, other


MAX_BODY = 1 << 20  # requests larger than this are refused: no API needs more


class HttpServer:
    def __init__(self, host: str, port: int, router: Router) -> None:
        self.router = router
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self.host: str = str(self._server.server_address[0])
        self.port: int = int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, name="http", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout_s)
            self._thread = None
        self._server.server_close()

    def _handler_class(self):
        router = self.router

        class _Handler(BaseHTTPRequestHandler):
            server_version = "engine"
            protocol_version = "HTTP/1.1"

            def _dispatch(self, method: str) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._send(Response.error(413, f"body over {MAX_BODY} bytes"))
                    return
                body = self.rfile.read(length) if length else b""
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                handler, params, exists = router.match(method, parts.path)
                if handler is None:
                    status = 405 if exists else 404
                    self._send(Response.error(status, f"{method} {parts.path}: "
                                              f"{'method not allowed' if exists else 'not found'}"))
                    return
                req = Request(method, parts.path, query, dict(self.headers.items()), body, params)
                try:
                    resp = handler(req)
                except Exception as e:  # noqa: BLE001 - a handler bug must not kill the server
                    log.exception("handler failed path={} error={}", parts.path, e)
                    resp = Response.error(500, f"internal error: {type(e).__name__}")
                self._send(resp)

            def _send(self, resp: Response) -> None:
                self.send_response(resp.status)
                self.send_header("Content-Type", resp.content_type)
                self.send_header("Content-Length", str(len(resp.body)))
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(resp.body)

            def do_GET(self) -> None:  # noqa: N802 - stdlib naming
                self._dispatch("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._dispatch("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._dispatch("DELETE")

            def log_message(self, format: str, *args) -> None:  # noqa: A002
                log.debug("{} {}", self.address_string(), format % args)

        return _Handler

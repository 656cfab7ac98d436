"""The HTTP half of the server: h11 events into whole requests (head and body
bounds), then the cheap checks on the I/O thread (route, key, scope, rate) and
the handler on a worker. A mixin of HttpServer; runs on its I/O thread except
``_run``, which runs on a worker."""

from __future__ import annotations

import hashlib
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

import h11
from loguru import logger

from engine.api.connection import Conn, ServerSettings, header
from engine.api.security import TokenBuckets, presented_key

if TYPE_CHECKING:
    from engine.api.http import Request, Response, Route, Router

log = logger.bind(component="http")


class HttpSide:
    router: Router
    settings: ServerSettings
    counts: dict[str, int]
    _conns: set[Conn]
    _pool: ThreadPoolExecutor
    _respond: Callable[[Conn, Response], None]
    _fail: Callable[[Conn, int, str], None]
    _close: Callable[[Conn], None]
    _post: Callable[[Callable[[], None]], None]
    _upgrade: Callable[[Conn, dict[str, str], dict[str, str], str], None]

    def _http_events(self, conn: Conn) -> None:
        s = self.settings
        while conn in self._conns and conn.phase in ("idle", "reading"):
            try:
                event = conn.http.next_event()
            except h11.RemoteProtocolError as e:
                self.counts["protocol_errors"] += 1
                self._fail(conn, e.error_status_hint, f"bad request: {e}")
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                if conn.phase == "reading" and not conn.http.trailing_data[0] \
                        and conn.http.their_state is h11.IDLE:
                    conn.phase, conn.deadline = "idle", time.monotonic() + s.idle_timeout_s
                return
            if isinstance(event, h11.Request):
                conn.phase = "reading"
                conn.request, conn.body = event, bytearray()
                # h11 bounds a head that arrives in pieces; one that arrives whole is
                # measured here.
                size = len(event.target) + sum(len(k) + len(v) + 4 for k, v in event.headers)
                if size > s.max_header_bytes:
                    self._fail(conn, 431, f"request head over {s.max_header_bytes} bytes")
                    return
                length = header(event.headers, b"content-length")
                if length and int(length) > s.max_body_bytes:  # h11 checked it is digits
                    self._fail(conn, 413, f"body of {int(length)} bytes is over the "
                                          f"{s.max_body_bytes} allowed")
                    return
            elif isinstance(event, h11.Data):
                conn.body += event.data
                if len(conn.body) > s.max_body_bytes:
                    self._fail(conn, 413, f"body over the {s.max_body_bytes} bytes allowed")
                    return
            elif isinstance(event, h11.EndOfMessage):
                self._complete(conn)
            elif isinstance(event, h11.ConnectionClosed):
                self._close(conn)
                return

    def _complete(self, conn: Conn) -> None:
        """A whole request: route, key, scope and rate checks here (cheap);
        the handler on a worker."""
        from engine.api.http import Request, Response

        s, ev = self.settings, conn.request
        assert ev is not None
        conn.phase = "busy"
        parts = urlsplit(ev.target.decode("latin-1"))
        try:
            query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True,
                                                      max_num_fields=100).items()}
        except ValueError as e:
            self._respond(conn, Response.error(400, f"query: {e}"))
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in ev.headers}
        method = ev.method.decode("ascii", "replace")
        route, params, exists = self.router.match(method, parts.path)
        if route is None:
            what = "method not allowed" if exists else "not found"
            self._respond(conn, Response.error(405 if exists else 404,
                                               f"{method} {parts.path}: {what}"))
            return
        upgrade = route.path == s.ws_path and headers.get("upgrade", "").lower() == "websocket"
        key = presented_key(headers, query, websocket=route.path == s.ws_path)
        scope = s.keys.scope_of(key) if s.keys is not None else "admin"
        if s.buckets is not None:
            wait = s.buckets.take(f"addr:{conn.client}")
            if key and not wait:
                wait = s.buckets.take("key:" + hashlib.sha256(key.encode()).hexdigest()[:16])
            if wait:
                self.counts["rate_limited"] += 1
                resp = Response.error(429, f"rate limit: retry after {wait:.2f}s")
                resp.headers["Retry-After"] = TokenBuckets.retry_after(wait)
                self._respond(conn, resp)
                return
        if s.keys is not None and not s.keys.allows(scope, route.scope):
            self.counts["unauthorized"] += 1
            if scope == "bad":
                self._respond(conn, Response.error(401, "wrong API key"))
            elif scope == "open":
                self._respond(conn, Response.error(
                    401, f"{route.path} needs a {route.scope} key (Authorization: Bearer <key> "
                         f"or X-API-Key; see http.read_keys_env / http.admin_key_env)"))
            else:
                self._respond(conn, Response.error(403, f"{route.path} needs an {route.scope} "
                                                        f"key; this key is {scope}"))
            return
        if upgrade:
            self._upgrade(conn, headers, query, scope)
            return
        request = Request(method, parts.path, query, headers, bytes(conn.body), params,
                          conn.client, scope)
        self._pool.submit(self._run, conn, route, request)

    def _run(self, conn: Conn, route: Route, request: Request) -> None:
        """On a worker thread: the handler, then the answer back to I/O."""
        from engine.api.http import Response

        try:
            resp = route.handler(request)
        except Exception as e:  # noqa: BLE001 - a handler bug must not kill the server
            # The traceback once, without local values: a signed request or a
            # key in a local variable never reaches the log.
            self.counts["handler_errors"] += 1
            log.error("handler failed path={} error={}\n{}", request.path, type(e).__name__,
                      "".join(traceback.format_exception(e)))
            resp = Response.error(500, f"internal error: {type(e).__name__} (logged)")
        self._post(lambda: self._respond(conn, resp))

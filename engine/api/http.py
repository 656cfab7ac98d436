"""The HTTP vocabulary shared by the server and the route modules: Request,
Response, and the Router (routes with their scope and one-line summary, which
/openapi.json is built from). The socket side lives in engine/api/server.py;
this module knows no component."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

Scope = Literal["open", "read", "admin"]  # open: no key; read: a read or admin key; admin: admin


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-case
    body: bytes = b""
    params: dict[str, str] = field(default_factory=dict)  # from {name} segments
    client: str = ""  # peer address
    scope: str = "open"  # the scope the caller's key grants ("open" = no key)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(status, orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY))

    @classmethod
    def error(cls, status: int, message: str) -> Response:
        return cls.json({"error": message}, status)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # "/books/{key}": one trailing parameter that may contain slashes
    handler: Handler
    scope: Scope
    summary: str
    query: tuple[str, ...] = ()  # documented query parameters ("name: what")


class Router:
    """Exact paths and ``/prefix/{name}`` patterns (one trailing parameter
    that may contain slashes, e.g. a book key with BASE/QUOTE). Every route
    carries the scope it needs; the server checks it before the handler runs."""

    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], Route] = {}
        self._prefix: list[tuple[str, str, str, Route]] = []
        self.routes: list[Route] = []

    def add(self, method: str, path: str, handler: Handler, scope: Scope = "read",
            summary: str = "", query: tuple[str, ...] = ()) -> None:
        route = Route(method, path, handler, scope, summary or f"{method} {path}", query)
        self.routes.append(route)
        if "{" in path:
            prefix, _, rest = path.partition("{")
            self._prefix.append((method, prefix, rest.rstrip("}"), route))
        else:
            self._exact[(method, path)] = route

    def rebuild(self) -> None:
        """After ``routes`` was edited (scopes changed)."""
        routes, self.routes = self.routes, []
        self._exact, self._prefix = {}, []
        for r in routes:
            self.add(r.method, r.path, r.handler, r.scope, r.summary, r.query)

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], bool]:
        """(route, params, path_exists_for_other_method)."""
        if method == "HEAD":
            method = "GET"
        r = self._exact.get((method, path))
        if r is not None:
            return r, {}, True
        other = any(p == path for (_, p) in self._exact)
        for m, prefix, name, route in self._prefix:
            if path.startswith(prefix) and len(path) > len(prefix):
                if m == method:
                    return route, {name: path[len(prefix):]}, True
                other = True
        return None, {}, other


# Last: server.py imports the names above (callers keep `from engine.api.http import HttpServer`).
from engine.api.server import HttpServer, ServerSettings  # noqa: E402, F401

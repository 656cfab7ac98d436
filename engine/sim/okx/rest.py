"""OKX v5 REST: route table, per-endpoint rate limits, OK-ACCESS-* auth and
the {"code", "msg", "data"} envelope. Sans-I/O: HttpRequest in, HttpResponse
out (netloop.py does the sockets).

  request ─► route (404) ─► params (GET query | POST JSON: 50002) ─► limiter (429, 50011)
          ─► OK-ACCESS-KEY/-SIGN/-TIMESTAMP/-PASSPHRASE (401, 501xx) ─► handler ─► envelope
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson
from loguru import logger

from engine.sim.http_wire import HttpRequest, HttpResponse
from engine.sim.okx import errors as e
from engine.sim.okx.auth import WINDOW_MS, iso_ms, signature_ok
from engine.sim.okx.errors import OkxError, OrderError

if TYPE_CHECKING:
    from engine.sim.okx.service import OkxDialect

log = logger.bind(component="venue")


@dataclass
class Call:
    params: Any  # dict of the query (GET) or the JSON body (POST; a list for batches)
    account: str  # "" on public endpoints
    now_ms: int


Handler = Callable[["OkxDialect", Call], Any]


@dataclass(frozen=True)
class Route:
    handler: Handler
    private: bool
    limit: str  # key into LIMITS


# OKX's documented limits, (requests, window ms), per IP on public and per
# account (UID) on private endpoints; order placement counts per instrument
# (60 / 2 s per instId; batches: 300 orders / 2 s). Source: docs-v5 per endpoint.
LIMITS: dict[str, tuple[int, int]] = {
    "public": (20, 2000), "books": (40, 2000), "time": (10, 2000),
    "order": (60, 2000), "batch": (300, 2000), "cancel": (60, 2000),
    "query": (60, 2000), "pending": (60, 2000), "history": (40, 2000), "fills": (60, 2000),
    "account": (10, 2000), "leverage": (20, 2000),
}
TRADE_PATHS_WITH_TIMES = ("/api/v5/trade/",)


class Window:
    """Sliding-window counts per key (ip or account, limit name)."""

    def __init__(self, limits: dict[str, tuple[int, int]]) -> None:
        self.limits = limits
        self.hits: dict[tuple[str, str], deque[int]] = {}

    def charge(self, who: str, name: str, now_ms: int, count: int = 1) -> bool:
        allowed, window = self.limits[name]
        hits = self.hits.setdefault((who, name), deque())
        while hits and hits[0] <= now_ms - window:
            hits.popleft()
        if len(hits) + count > allowed:
            return False
        hits.extend([now_ms] * count)
        return True


class OkxRest:
    def __init__(self, dialect: OkxDialect, limits: dict[str, tuple[int, int]] | None) -> None:
        from engine.sim.okx import rest_account, rest_market, rest_trade
        self.dialect = dialect
        self.routes: dict[tuple[str, str], Route] = {
            **rest_market.ROUTES, **rest_trade.ROUTES, **rest_account.ROUTES}
        self.window = Window({**LIMITS, **(limits or {})})
        self.swallowed = 0  # handler failures answered 50026 (counted, logged)

    def handle(self, request: HttpRequest, client_ip: str) -> HttpResponse:
        route = self.routes.get((request.method, request.path))
        if route is None:
            return _json(404, {"msg": "Not Found", "code": "404"})
        now = self.dialect.exchange.now_ms()
        in_us = now * 1000
        try:
            params = self._params(request)
            account = self._authenticate(request, now) if route.private else ""
            count = len(params) if route.limit == "batch" and isinstance(params, list) else 1
            if not self.window.charge(account or client_ip, route.limit, now, count):
                raise OkxError(*e.RATE_LIMIT, status=429)
            data = route.handler(self.dialect, Call(params, account, now))
        except OkxError as exc:
            return _json(exc.status, {"code": exc.code, "msg": exc.msg, "data": []})
        except OrderError as exc:
            return _json(200, {"code": exc.code, "msg": exc.msg, "data": []})
        except Exception:  # a venue bug must not kill the network thread
            self.swallowed += 1
            log.exception("venue OKX REST handler failed path={}", request.path)
            return _json(500, {"code": "50026", "msg": "System error", "data": []})
        body: dict[str, Any] = _envelope(data, route.limit in ("order", "batch", "cancel"),
                                         request.path)
        if request.path.startswith(TRADE_PATHS_WITH_TIMES) and request.method == "POST":
            body["inTime"] = str(in_us)
            body["outTime"] = str(self.dialect.exchange.now_ms() * 1000)
        return _json(200, body)

    @staticmethod
    def _params(request: HttpRequest) -> Any:
        if request.method == "GET":
            return dict(parse_qsl(request.query, keep_blank_values=True))
        if not request.body:
            raise OkxError(*e.BODY_EMPTY, status=400)
        try:
            params = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            raise OkxError(*e.JSON_SYNTAX, status=400) from None
        if not isinstance(params, (dict, list)):
            raise OkxError(*e.JSON_SYNTAX, status=400)
        return params

    def _authenticate(self, request: HttpRequest, now: int) -> str:
        headers = request.headers
        key = headers.get("ok-access-key", "")
        signature = headers.get("ok-access-sign", "")
        stamp = headers.get("ok-access-timestamp", "")
        passphrase = headers.get("ok-access-passphrase", "")
        if not key:
            raise OkxError(*e.KEY_EMPTY, status=401)
        if not signature:
            raise OkxError(*e.SIGN_EMPTY, status=401)
        if not stamp:
            raise OkxError(*e.TIMESTAMP_EMPTY, status=401)
        if not passphrase:
            raise OkxError(*e.PASSPHRASE_EMPTY, status=401)
        owner = self.dialect.keys.get(key)
        if owner is None:
            raise OkxError(*e.KEY_INVALID, status=401)
        when = iso_ms(stamp)
        if when is None:
            raise OkxError(*e.TIMESTAMP_INVALID, status=401)
        if abs(when - now) > WINDOW_MS:
            raise OkxError(*e.TIMESTAMP_EXPIRED, status=401)
        if passphrase != owner.passphrase:
            raise OkxError(*e.PASSPHRASE_WRONG, status=401)
        prehash = stamp + request.method + request.target + request.body.decode("utf-8",
                                                                                "replace")
        if not signature_ok(owner.secret_key, prehash, signature):
            raise OkxError(*e.SIGN_INVALID, status=401)
        return owner.account


def _envelope(data: Any, per_order: bool, path: str) -> dict[str, Any]:
    """Order operations: code "1" when every item failed ("Operation failed."
    for one, "All operations failed" for a batch), "2" when some did."""
    if not per_order or not isinstance(data, list) or not data:
        return {"code": "0", "msg": "", "data": data}
    failed = sum(1 for item in data if item.get("sCode") != "0")
    if not failed:
        return {"code": "0", "msg": "", "data": data}
    if failed == len(data):
        batch = "batch" in path
        return {"code": "1", "msg": "All operations failed" if batch else
                e.OPERATION_FAILED[1], "data": data}
    return {"code": e.BATCH_PARTIAL[0], "msg": e.BATCH_PARTIAL[1], "data": data}


def _json(status: int, payload: Any) -> HttpResponse:
    return HttpResponse(status, orjson.dumps(payload), content_type="application/json")

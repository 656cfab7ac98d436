"""The REST API: route table, request weights, rate limits, security, and
the mapping of every failure to Binance's {"code", "msg"} answer.

Sans-I/O: HttpRequest in, HttpResponse out (netloop.py does the sockets).
Handlers live in rest_market.py (public) and rest_trade.py (account); each
route states its security type and weight as rest-api.md does.

  request ─► route ─► params (-1101) ─► weight ─► limiter (429/418)
          ─► API key (-2014/-2015) ─► signature (-1022) ─► timestamp (-1021)
          ─► handler ─► JSON + X-MBX-USED-WEIGHT-1M
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from loguru import logger

from engine.sim.exchange import Exchange
from engine.sim.filters import SymbolSpec
from engine.sim.http_wire import HttpRequest, HttpResponse
from engine.sim.listen_keys import ListenKeys
from engine.sim.orders import Rejected
from engine.sim.ratelimit import RateLimiter
from engine.sim.rest_params import (
    NONE,
    SIGNED,
    USER_STREAM,
    ApiError,
    Params,
    check_timestamp,
    parse_params,
    total_params,
)
from engine.sim.signing import verify

log = logger.bind(component="venue")


@dataclass(frozen=True)
class ApiAccount:
    name: str
    api_key: str
    api_secret: str
    public_key: Any = None  # Ed25519/RSA key object (signing.py); None: HMAC with api_secret


@dataclass
class VenueContext:
    """What every handler may use."""

    exchange: Exchange
    specs: dict[str, SymbolSpec]
    limiter: RateLimiter
    accounts: dict[str, ApiAccount]  # by API key
    listen_keys: ListenKeys


@dataclass
class Call:
    """One authenticated request as a handler sees it."""

    params: Params
    account: str  # "" for public endpoints
    now_ms: int
    headers: list[tuple[str, str]]  # extra response headers a handler may add


Handler = Callable[[VenueContext, Call], Any]
Weight = Callable[[Params], int] | int


@dataclass(frozen=True)
class Route:
    handler: Handler
    security: str
    weight: Weight
    counts_order: bool = False  # a new order: X-MBX-ORDER-COUNT and -1015


class RestApi:
    def __init__(self, ctx: VenueContext, routes: dict[tuple[str, str], Route]) -> None:
        self.ctx = ctx
        self.routes = routes
        self._paths = {path for _, path in routes}

    def handle(self, request: HttpRequest, client_ip: str) -> HttpResponse:
        route = self.routes.get((request.method, request.path))
        if route is None:
            status = 405 if request.path in self._paths else 404
            return HttpResponse(status, b"", content_type="text/html")
        now = self.ctx.exchange.now_ms()
        headers: list[tuple[str, str]] = []
        try:
            params = Params(parse_params(request.query, request.body))
            self._charge(route, params, client_ip, now, headers)
            account = self._authenticate(route, request, params, now)
            if route.counts_order:
                self._count_order(account, now, headers)
            payload = route.handler(self.ctx, Call(params, account, now, headers))
            return _json(200, payload, headers)
        except ApiError as exc:
            body: dict[str, Any] = {"code": exc.code, "msg": exc.msg}
            if exc.data is not None:
                body["data"] = exc.data
            return _json(exc.status, body, headers)
        except Rejected as exc:
            return _json(400, {"code": exc.code, "msg": exc.msg}, headers)
        except Exception:  # a venue bug must not kill the network thread
            log.exception("venue REST handler failed path={}", request.path)
            return _json(500, {"code": -1000, "msg": "An unknown error occurred while "
                                                     "processing the request."},
                         headers)

    def _charge(self, route: Route, params: Params, ip: str, now: int,
                headers: list[tuple[str, str]]) -> None:
        try:
            weight = route.weight(params) if callable(route.weight) else route.weight
        except ApiError:
            weight = 1  # the handler will report the bad parameter
        verdict = self.ctx.limiter.charge(ip, weight, now)
        headers.append(("X-MBX-USED-WEIGHT-1M", str(verdict.used_weight)))
        headers.append(("X-MBX-USED-WEIGHT", str(verdict.used_weight)))
        if verdict.status:
            headers.append(("Retry-After", str(verdict.retry_after_s)))
            raise ApiError(-1003, verdict.message, status=verdict.status)

    def _authenticate(self, route: Route, request: HttpRequest, params: Params,
                      now: int) -> str:
        if route.security == NONE:
            return ""
        key = request.headers.get("x-mbx-apikey", "")
        if not key:
            raise ApiError(-2014, "API-key format invalid.", status=401)
        account = self.ctx.accounts.get(key)
        if account is None:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.", status=401)
        if route.security == USER_STREAM:
            return account.name
        assert route.security == SIGNED
        signature = params.text("signature", required=True)
        assert signature is not None
        verify(account.api_secret, account.public_key, total_params(request.query, request.body),
               signature)
        check_timestamp(params.values, now)
        return account.name

    def _count_order(self, account: str, now: int, headers: list[tuple[str, str]]) -> None:
        ten_s, day, error = self.ctx.limiter.count_order(account, now)
        headers.append(("X-MBX-ORDER-COUNT-10S", str(ten_s)))
        headers.append(("X-MBX-ORDER-COUNT-1D", str(day)))
        if error:  # rest-api.md today: a 429 for the order count carries Retry-After
            retry_ms = self.ctx.limiter.order_retry_at(account, now) - now
            headers.append(("Retry-After", str(max(1, -(-retry_ms // 1000)))))
            raise ApiError(-1015, error, status=429)


def _json(status: int, payload: Any, headers: list[tuple[str, str]]) -> HttpResponse:
    return HttpResponse(status, orjson.dumps(payload), headers)


def spec_for(ctx: VenueContext, params: Params) -> SymbolSpec:
    symbol = params.text("symbol", required=True)
    spec = ctx.specs.get(symbol or "")
    if spec is None:
        raise ApiError(-1121, "Invalid symbol.")
    return spec

"""The v5 REST router: route table, the signed-request check, the IP and
per-UID limits, and the {"retCode","retMsg","result","retExtInfo","time"}
envelope every answer uses. Sans-I/O: HttpRequest in, HttpResponse out.

  request ─► route (404) ─► IP limit (403) ─► params (query | JSON body)
          ─► X-BAPI-API-KEY / -TIMESTAMP / -RECV-WINDOW / -SIGN (10003, 10002, 10004)
          ─► per-UID limit (10006 + X-Bapi-Limit*) ─► handler ─► envelope
Errors are HTTP 200 with a non-zero retCode, as Bybit answers them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from loguru import logger

from engine.sim.bybit.context import BybitContext
from engine.sim.bybit.errors import TOO_MANY_VISITS, BybitError, params_error, translate
from engine.sim.http_wire import HttpRequest, HttpResponse
from engine.sim.orders import Rejected

log = logger.bind(component="venue")


@dataclass
class Call:
    params: dict[str, Any]
    account: str  # "" on public endpoints
    now_ms: int


Handler = Callable[[BybitContext, Call], Any]


@dataclass(frozen=True)
class Route:
    handler: Handler
    signed: bool
    limit_name: str = ""  # per-UID bucket (BybitLimiter.limit_of); "" = the path


def envelope(code: int, msg: str, result: Any, now_ms: int) -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms}


class BybitRest:
    def __init__(self, ctx: BybitContext, routes: dict[tuple[str, str], Route]) -> None:
        self.ctx = ctx
        self.routes = routes
        self.failures = 0  # handler bugs answered 500 (each logged)

    def handle(self, request: HttpRequest, client_ip: str) -> HttpResponse:
        route = self.routes.get((request.method, request.path))
        if route is None:
            return HttpResponse(404, b"Not Found", content_type="text/plain")
        ctx = self.ctx
        now = ctx.exchange.now_ms()
        if not ctx.limiter.ip_allowed(client_ip, now):
            return HttpResponse(403, b"access too frequent", content_type="text/plain")
        headers: list[tuple[str, str]] = [("Timenow", str(now))]
        category = ""
        try:
            params, payload = _params(request)
            category = str(params.get("category") or "")
            account = ""
            if route.signed:
                h = request.headers
                account = ctx.check_request_auth(
                    h.get("x-bapi-api-key", ""), h.get("x-bapi-timestamp", ""),
                    h.get("x-bapi-recv-window", ""), h.get("x-bapi-sign", ""), payload,
                    now).name
                verdict = ctx.limiter.charge(account, route.limit_name or request.path,
                                             category, now)
                headers += [("X-Bapi-Limit", str(verdict.limit)),
                            ("X-Bapi-Limit-Status", str(verdict.remaining)),
                            ("X-Bapi-Limit-Reset-Timestamp", str(verdict.reset_ms))]
                if not verdict.allowed:
                    raise BybitError(*TOO_MANY_VISITS)
            result = route.handler(ctx, Call(params, account, now))
            body = envelope(0, "OK", result, now)
        except BybitError as exc:
            body = envelope(exc.code, exc.msg, exc.data if exc.data is not None else {}, now)
        except Rejected as exc:
            error = translate(exc, "linear" if category == "linear" else "spot")
            body = envelope(error.code, error.msg, {}, now)
        except Exception:  # a venue bug must not kill the network thread; counted, logged
            self.failures += 1
            log.exception("venue bybit REST handler failed path={}", request.path)
            return HttpResponse(500, orjson.dumps(envelope(10016, "Internal server error.",
                                                           {}, now)), headers)
        return HttpResponse(200, orjson.dumps(body), headers)


def _params(request: HttpRequest) -> tuple[dict[str, Any], str]:
    """(parameters, the signed payload): GET signs the query string as sent,
    POST the JSON body as sent."""
    if request.method == "GET":
        return dict(parse_qsl(request.query, keep_blank_values=True)), request.query
    text = request.body.decode("utf-8", "replace")
    if not text.strip():
        return {}, text
    try:
        params = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise params_error("request body is not valid JSON") from None
    if not isinstance(params, dict):
        raise params_error("request body must be a JSON object")
    return params, text

"""Binance's spot WebSocket API (``/ws-api/v3``) on the venue's one port:
request/response envelopes, weights and rate limits, authentication, and
user data events pushed to subscribed sessions.

web-socket-api.md: requests ``{"id", "method", "params"}`` in text frames
(``id`` an integer, a string matching ^[a-zA-Z0-9-_]{1,36}$, or null; a
method may carry a "v3/" prefix); responses ``{"id", "status", "result" |
"error": {"code", "msg"[, "data"]}, "rateLimits"}``, ``status`` as in HTTP
(400, 401, 409, 418, 429); 429/418 carry ``error.data.retryAfter`` (epoch
ms); ``returnRateLimits`` per request or in the URL; connecting costs 2
weight; the SIGNED payload is the sorted params. User data events arrive as
``{"subscriptionId": n, "event": {...}}``. Network thread only, except
``enqueue`` (the exchange's listener).
"""

from __future__ import annotations

import re
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
from loguru import logger

from engine.sim import ws_api_session as sessions
from engine.sim.exchange import Published
from engine.sim.netloop import Connection
from engine.sim.orders import EXEC_TRADE, Rejected
from engine.sim.ratelimit import MINUTE_MS
from engine.sim.rest import Call, Route, VenueContext
from engine.sim.rest_params import NONE, ApiError, Params
from engine.sim.streams import StreamHub
from engine.sim.wire_orders import account_position, execution_report
from engine.sim.ws_api_methods import METHODS
from engine.sim.ws_api_session import SESSION_WEIGHT, Session

log = logger.bind(component="venue")

API_PATH = "/ws-api/v3"
CONNECT_WEIGHT = 2
_ID_RE = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_NOT_HANDLER_PARAMS = frozenset({"apiKey", "returnRateLimits"})
_SESSION_METHODS = frozenset({"session.logon", "session.status", "session.logout",
                              "session.subscriptions", "userDataStream.subscribe",
                              "userDataStream.subscribe.signature",
                              "userDataStream.unsubscribe"})


def _text(value: Any) -> str:
    """A JSON param as the string REST would have received (and was signed)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return orjson.dumps(value).decode()
    return str(value)


class WsApi:
    def __init__(self, ctx: VenueContext, hub: StreamHub) -> None:
        self.ctx = ctx
        self.hub = hub
        self.sessions: dict[Connection, Session] = {}
        self.by_account: dict[str, dict[Connection, int]] = {}  # account -> subscriptionId
        self._inbox: deque[Published] = deque()
        self._first_fills: deque[str] = deque()  # accounts whose order first filled
        self._after: list[tuple[Connection, bytes]] = []  # events due after a reply
        self.wake = lambda: None  # set by the server to NetLoop.wake
        self.failures = 0  # requests answered 500 (a venue bug; each is logged)

    # ----------------------------------------------------------- any thread

    def enqueue(self, published: Published) -> None:
        first_fills = [x.order.account for x in published.result.executions
                       if x.exec_type == EXEC_TRADE and x.executed_qty == x.last_qty]
        if first_fills:  # the unfilled order count (ratelimit.py) is the network thread's
            self._first_fills.extend(first_fills)
        if self.by_account:  # racy read is fine: a new subscriber sees later events
            self._inbox.append(published)
        if first_fills or self.by_account:
            self.wake()

    # ---------------------------------------------------- network thread only

    def on_open(self, conn: Connection, target: str) -> None:
        now = self.ctx.exchange.now_ms()
        query = parse_qs(urlsplit(target).query)
        quiet = query.get("returnRateLimits", [""])[0].lower() == "false"
        self.sessions[conn] = Session(now, return_rate_limits=not quiet)
        self.ctx.limiter.charge(conn.ip, CONNECT_WEIGHT, now)

    def on_closed(self, conn: Connection) -> None:
        session = self.sessions.pop(conn, None)
        if session is not None:
            self._forget(conn, list(session.subscriptions.items()))

    def on_message(self, conn: Connection, data: bytes) -> None:
        session = self.sessions.get(conn)
        if session is None:
            return
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._send(conn, None, 400, error={"code": -1135, "msg": "Invalid JSON Request"})
            return
        request_id = message.get("id") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not (
                request_id is None or isinstance(request_id, int)
                and not isinstance(request_id, bool)
                or isinstance(request_id, str) and _ID_RE.match(request_id)):
            self._send(conn, None, 400, error={
                "code": -1135, "msg": "Invalid 'id' in JSON request; expected an integer, a "
                                      "string matching '^[a-zA-Z0-9-_]{1,36}$', or null."})
            return
        method, raw_params = message.get("method"), message.get("params")
        if raw_params is None:
            raw_params = {}
        if not isinstance(method, str):
            self._send(conn, request_id, 400, error={
                "code": -1102, "msg": "Mandatory parameter 'method' was not sent, was "
                                      "empty/null, or malformed."})
            return
        if not isinstance(raw_params, dict):
            self._send(conn, request_id, 400, error={
                "code": -1135, "msg": "JSON sent for parameter 'params' is not valid"})
            return
        if method.startswith("v3/"):
            method = method[3:]
        params = {name: _text(value) for name, value in raw_params.items() if value is not None}
        self._handle(conn, session, request_id, method, params)

    def _handle(self, conn: Connection, session: Session, request_id: Any, method: str,
                params: dict[str, str]) -> None:
        now = self.ctx.exchange.now_ms()
        show = session.return_rate_limits
        if "returnRateLimits" in params:
            show = params["returnRateLimits"].lower() != "false"
        limits: list[dict] = []
        try:
            route = METHODS.get(method)
            if route is None and method not in _SESSION_METHODS:
                raise ApiError(-1020, f"Unknown method '{method}': this operation is not "
                                      f"supported.")
            weight = SESSION_WEIGHT if route is None else self._weight(route, params)
            self._charge(conn.ip, weight, now, limits)
            if route is None:
                result = self._session_method(conn, session, method, params, now)
            else:
                result = self._route(route, session, params, now, limits)
        except ApiError as exc:
            error: dict[str, Any] = {"code": exc.code, "msg": exc.msg}
            if exc.data is not None:
                error["data"] = exc.data
            self._send(conn, request_id, exc.status, error=error, limits=limits if show else None)
            if exc.status == 418:  # CHANGELOG 2023-03-13: a banned IP is disconnected
                conn.close_ws(1008, "IP banned")
            return
        except Rejected as exc:
            self._send(conn, request_id, 400, error={"code": exc.code, "msg": exc.msg},
                       limits=limits if show else None)
            return
        except Exception:  # a venue bug must not kill the network thread
            self.failures += 1
            log.exception("venue WebSocket API handler failed method={} failures={}", method,
                          self.failures)
            self._send(conn, request_id, 500, error={
                "code": -1000, "msg": "An unknown error occurred while processing the "
                                      "request."}, limits=limits if show else None)
            return
        self._send(conn, request_id, 200, result=result, limits=limits if show else None)
        for target, event in self._after:
            target.send_text(event)
        self._after.clear()

    @staticmethod
    def _weight(route: Route, params: dict[str, str]) -> int:
        if not callable(route.weight):
            return route.weight
        try:
            return route.weight(Params(params))
        except ApiError:
            return 1  # the handler reports the bad parameter

    def _charge(self, ip: str, weight: int, now: int, limits: list[dict]) -> None:
        verdict = self.ctx.limiter.charge(ip, weight, now)
        limits.append(self.ctx.limiter.weight_json(verdict.used_weight))
        if verdict.status:  # 429: when the minute resets; 418: when the ban ends
            retry_at = ((now // MINUTE_MS + 1) * MINUTE_MS if verdict.status == 429
                        else now + verdict.retry_after_s * 1000)
            raise ApiError(-1003, verdict.message, status=verdict.status, data={
                "serverTime": now, "retryAfter": retry_at})

    def _route(self, route: Route, session: Session, params: dict[str, str], now: int,
               limits: list[dict]) -> Any:
        account = ""
        if route.security != NONE:
            account = sessions.signed_account(self.ctx, session, params, now).name
        if route.counts_order:
            ten_s, day, error = self.ctx.limiter.count_order(account, now)
            limits[:0] = self.ctx.limiter.order_limits_json(ten_s, day)
            if error:
                raise ApiError(-1015, error, status=429, data={
                    "serverTime": now,
                    "retryAfter": self.ctx.limiter.order_retry_at(account, now)})
        values = {k: v for k, v in params.items() if k not in _NOT_HANDLER_PARAMS}
        return route.handler(self.ctx, Call(Params(values), account, now, []))

    def _session_method(self, conn: Connection, session: Session, method: str,
                        params: dict[str, str], now: int) -> Any:
        if method == "session.logon":
            return sessions.logon(self.ctx, session, params, now)
        if method == "session.status":
            return session.status(now)
        if method == "session.logout":
            self._forget(conn, sessions.logout(session, now), terminated=True)
            return session.status(now)
        if method == "session.subscriptions":
            return [{"subscriptionId": n} for n in sorted(session.subscriptions)]
        if method == "userDataStream.unsubscribe":
            self._forget(conn, sessions.unsubscribe(session, params), terminated=True)
            return {}
        if method == "userDataStream.subscribe":
            if session.account is None:
                raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.",
                               status=401)
            account, logon = session.account.name, True
        else:  # userDataStream.subscribe.signature
            account = sessions.signed_account(self.ctx, session, params, now,
                                              explicit=True).name
            logon = False
        subscription_id = sessions.subscribe(session, account, logon=logon)
        self.by_account.setdefault(account, {})[conn] = subscription_id
        self._sync_listening()
        return {"subscriptionId": subscription_id}

    def _forget(self, conn: Connection, ended: list[tuple[int, str]],
                terminated: bool = False) -> None:
        now = self.ctx.exchange.now_ms()
        for subscription_id, account in ended:
            subscribed = self.by_account.get(account, {})
            subscribed.pop(conn, None)
            if not subscribed:
                self.by_account.pop(account, None)
            if terminated:  # user-data-stream.md, eventStreamTerminated; after the reply
                self._after.append((conn, orjson.dumps({
                    "subscriptionId": subscription_id,
                    "event": {"e": "eventStreamTerminated", "E": now}})))
        if ended:
            self._sync_listening()

    def _sync_listening(self) -> None:
        self.hub.api_accounts.clear()
        self.hub.api_accounts.update(self.by_account)
        self.hub.sync_listening()

    @staticmethod
    def _send(conn: Connection, request_id: Any, status: int, *, result: Any = None,
              error: dict | None = None, limits: list[dict] | None = None) -> None:
        body: dict[str, Any] = {"id": request_id, "status": status}
        if error is not None:
            body["error"] = error
        else:
            body["result"] = result
        if limits:
            body["rateLimits"] = limits
        conn.send_text(orjson.dumps(body))

    def poll(self) -> None:
        """Push queued operations' user data events to subscribed sessions and
        credit first fills to the unfilled order count."""
        if self._first_fills:
            now = self.ctx.exchange.now_ms()
            while self._first_fills:
                self.ctx.limiter.order_filled(self._first_fills.popleft(), now)
        while self._inbox:
            item = self._inbox.popleft()
            if not self.by_account:
                continue
            spec = self.ctx.specs[item.symbol]
            for execution in item.result.executions:
                self._push(execution.order.account,
                           orjson.dumps(execution_report(execution, spec, item.time_ms)))
            for account, positions in item.positions.items():
                self._push(account, orjson.dumps(
                    account_position(positions, spec.amount_decimals, item.time_ms)))

    def _push(self, account: str, event: bytes) -> None:
        for conn, subscription_id in list(self.by_account.get(account, {}).items()):
            conn.send_text(b'{"subscriptionId":%d,"event":%s}' % (subscription_id, event))


class WsRouter:
    """The loop's one WebSocket app: /ws-api/v3 to the WebSocket API, the rest
    (/ws..., /stream...) to the market and user data streams."""

    def __init__(self, streams: StreamHub, api: WsApi) -> None:
        self.streams = streams
        self.api = api
        self._api_conns: set[Connection] = set()

    @staticmethod
    def _is_api(target: str) -> bool:
        return urlsplit(target).path.rstrip("/") == API_PATH

    def check(self, target: str) -> str | None:
        if self._is_api(target):
            return None
        if urlsplit(target).path.startswith("/ws-api"):
            return f"Invalid request: unknown WebSocket API path {urlsplit(target).path!r}\n"
        return self.streams.check(target)

    def on_open(self, conn: Connection, target: str) -> None:
        if self._is_api(target):
            self._api_conns.add(conn)
            self.api.on_open(conn, target)
        else:
            self.streams.on_open(conn, target)

    def on_message(self, conn: Connection, data: bytes) -> None:
        if conn in self._api_conns:
            self.api.on_message(conn, data)
        else:
            self.streams.on_message(conn, data)

    def on_closed(self, conn: Connection) -> None:
        if conn in self._api_conns:
            self._api_conns.discard(conn)
            self.api.on_closed(conn)
        else:
            self.streams.on_closed(conn)

    def poll(self) -> float:
        self.api.poll()
        return self.streams.poll()

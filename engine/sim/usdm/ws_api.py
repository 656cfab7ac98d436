"""USD-M WebSocket API (/ws-fapi/v1): session.logon/status/logout,
order.place/cancel/status, account.status/balance/position (v1 and v2
names) and userDataStream.start/ping/stop, answering in the documented
{"id", "status", "result" | "error", "rateLimits"} envelope.

A request is signed like REST: HMAC-SHA256 over its params (less
``signature``) sorted by name and joined as ``k=v&...``; after session.logon
``apiKey``/``signature`` may be left out. Each method runs the same handler
as its REST endpoint, so answers and errors are identical. Network thread.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import orjson

from engine.sim.netloop import Connection
from engine.sim.rest import Call
from engine.sim.rest_params import ApiError, Params, check_timestamp
from engine.sim.usdm import rest_account, rest_trade

if TYPE_CHECKING:
    from engine.sim.usdm.service import UsdmDialect
    from engine.sim.usdm.streams import UsdmHub

METHODS: dict[str, tuple[Any, int]] = {  # method -> (REST handler, weight)
    "order.place": (rest_trade.new_order, 0),
    "order.cancel": (rest_trade.cancel_order, 1),
    "order.status": (rest_trade.query_order, 1),
    "account.status": (rest_account.account_v2, 5),
    "v2/account.status": (rest_account.account_v3, 5),
    "account.balance": (rest_account.balance, 5),
    "v2/account.balance": (rest_account.balance, 5),
    "account.position": (rest_account.position_risk_v2, 5),
    "v2/account.position": (rest_account.position_risk_v3, 5),
    "userDataStream.start": (rest_account.start_user_stream, 1),
    "userDataStream.ping": (rest_account.keepalive_user_stream, 1),
    "userDataStream.stop": (rest_account.close_user_stream, 1),
}
KEY_ONLY = frozenset({"userDataStream.start", "userDataStream.ping", "userDataStream.stop"})


class WsApi:
    def __init__(self, dialect: UsdmDialect, hub: UsdmHub) -> None:
        self.dialect = dialect
        self.hub = hub
        self.sessions: dict[Connection, str] = {}  # connection -> logged-on API key

    def forget(self, conn: Connection) -> None:
        self.sessions.pop(conn, None)

    def expire(self, now_ms: int) -> None:
        """Nothing times out yet (Binance: 24 h connection lifetime)."""

    def on_message(self, conn: Connection, data: bytes) -> None:
        try:
            message = orjson.loads(data)
            assert isinstance(message, dict)
        except (orjson.JSONDecodeError, AssertionError):
            self._send(conn, None, 400, error=(-1000, "Malformed request."))
            return
        request_id = message.get("id")
        method = message.get("method")
        params = message.get("params") or {}
        if not isinstance(params, dict):
            self._send(conn, request_id, 400, error=(-1000, "Malformed request."))
            return
        try:
            result = self._handle(conn, str(method), {k: _text(v) for k, v in params.items()})
        except ApiError as exc:
            status = exc.status if exc.status != 400 or exc.code != -1003 else 429
            self._send(conn, request_id, status, error=(exc.code, exc.msg))
            return
        self._send(conn, request_id, 200, result=result)

    def _handle(self, conn: Connection, method: str, params: dict[str, str]) -> Any:
        ctx = self.dialect.ctx
        now = ctx.exchange.now_ms()
        if method == "session.logon":
            key = self._authenticate(params, now, signed=True)
            self.sessions[conn] = key
            return self._session(conn, now)
        if method == "session.status":
            return self._session(conn, now)
        if method == "session.logout":
            self.sessions.pop(conn, None)
            return self._session(conn, now)
        entry = METHODS.get(method)
        if entry is None:
            raise ApiError(-1000, f"Unknown method '{method}'.")
        handler, weight = entry
        verdict = ctx.limiter.charge(conn.ip, weight, now)
        if verdict.status:
            raise ApiError(-1003, verdict.message, status=verdict.status)
        key = self._authenticate(params, now, signed=method not in KEY_ONLY,
                                 session=self.sessions.get(conn))
        account = ctx.accounts[key].name
        if method == "order.place":
            _, _, error = ctx.limiter.count_order(account, now)
            if error:
                raise ApiError(-1015, error, status=429)
        call_params = {k: v for k, v in params.items() if k not in ("apiKey", "signature")}
        result = handler(ctx, Call(Params(call_params), account, now, []))
        if method == "userDataStream.start" and isinstance(result, dict):
            self.hub.attach_user(conn, account, result["listenKey"])  # events follow here
        return result

    def _authenticate(self, params: dict[str, str], now: int, signed: bool,
                      session: str | None = None) -> str:
        ctx = self.dialect.ctx
        key = params.get("apiKey") or session
        if not key:
            raise ApiError(-2014, "API-key format invalid.", status=401)
        account = ctx.accounts.get(key)
        if account is None:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.",
                           status=401)
        signature = params.get("signature")
        if signed and signature is None and session == key:
            check_timestamp(params, now)
            return key
        if signed:
            if signature is None:
                raise ApiError(-1102, "Mandatory parameter 'signature' was not sent, was "
                                      "empty/null, or malformed.")
            payload = "&".join(f"{k}={v}" for k, v in sorted(params.items())
                               if k != "signature")
            expected = hmac.new(account.api_secret.encode(), payload.encode(),
                                hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature.lower()):
                raise ApiError(-1022, "Signature for this request is not valid.")
            check_timestamp(params, now)
        return key

    def _session(self, conn: Connection, now: int) -> dict:
        key = self.sessions.get(conn)
        return {"apiKey": key, "authorizedSince": now if key else None,
                "connectedSince": now, "returnRateLimits": True, "serverTime": now}

    def _send(self, conn: Connection, request_id: Any, status: int, result: Any = None,
              error: tuple[int, str] | None = None) -> None:
        limits = self.dialect.ctx.limiter.limits
        body: dict[str, Any] = {"id": request_id, "status": status}
        if error is not None:
            body["error"] = {"code": error[0], "msg": error[1]}
        else:
            body["result"] = result
        body["rateLimits"] = [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
                               "intervalNum": 1, "limit": limits.weight_per_minute,
                               "count": 0}]
        conn.send_text(orjson.dumps(body))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

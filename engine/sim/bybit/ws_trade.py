"""The trade WebSocket (/v5/trade, docs/v5/websocket/trade/guideline):
auth as the private stream does, then {"reqId", "header": {"X-BAPI-TIMESTAMP",
"X-BAPI-RECV-WINDOW"}, "op": "order.create" | "order.cancel", "args": [order]}
answered {"reqId", "retCode", "retMsg", "op", "data", "retExtInfo", "header":
{X-Bapi-Limit*, Traceid, Timenow}, "connId"}. The orders go through the same
code as REST (rest_trade.create / cancel) and the same per-UID limits.
Network thread only.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import orjson

from engine.sim.bybit import rest_trade
from engine.sim.bybit.errors import BybitError
from engine.sim.netloop import Connection
from engine.sim.orders import Rejected

if TYPE_CHECKING:
    from engine.sim.bybit.streams import BybitHub, Session

REQ_IDS_KEPT = 1000  # reqIds remembered per connection (20006 on a repeat)


def _send(conn: Connection, payload: Any) -> None:
    conn.send_text(orjson.dumps(payload))


def handle(hub: BybitHub, conn: Connection, session: Session, message: dict) -> None:
    op = message.get("op")
    if op == "ping":
        hub.pong(conn, session, message)
        return
    if op == "auth":
        try:
            hub.authenticate(session, conn, message.get("args"))
        except BybitError as exc:
            _send(conn, {"retCode": exc.code, "retMsg": exc.msg, "op": "auth",
                         "connId": session.conn_id})
            return
        _send(conn, {"retCode": 0, "retMsg": "OK", "op": "auth", "connId": session.conn_id})
        return
    req_id = str(message.get("reqId", ""))
    now = hub.exchange.now_ms()
    reply: dict[str, Any] = {"reqId": req_id, "op": op, "connId": session.conn_id}
    headers = {"Traceid": uuid.uuid4().hex, "Timenow": str(now)}
    try:
        data = _call(hub, session, message, op, req_id, now, headers)
    except BybitError as exc:
        _send(conn, reply | {"retCode": exc.code, "retMsg": exc.msg, "data": {},
                             "retExtInfo": {}, "header": headers})
        return
    _send(conn, reply | {"retCode": 0, "retMsg": "OK", "data": data, "retExtInfo": {},
                         "header": headers})


def _call(hub: BybitHub, session: Session, message: dict, op: Any, req_id: str, now: int,
          headers: dict[str, str]) -> dict:
    if op not in ("order.create", "order.cancel"):
        raise BybitError(10404, f"op type is not found: {op}")
    if not session.account:
        raise BybitError(10003, "Request not authorized")
    if req_id and req_id in session.req_ids:
        raise BybitError(20006, "reqId is duplicated")
    session.req_ids.append(req_id)
    header = message.get("header") or {}
    stamp = str(header.get("X-BAPI-TIMESTAMP", ""))
    window = str(header.get("X-BAPI-RECV-WINDOW", "5000"))
    if not stamp.isdigit() or not window.isdigit():
        raise BybitError(10001, "X-BAPI-TIMESTAMP is required")
    if not now - int(window) <= int(stamp) < now + 1000:
        raise BybitError(10002, f"invalid request, please check your server timestamp or "
                                f"recv_window param. req_timestamp[{stamp}],"
                                f"server_timestamp[{now}],recv_window[{window}]")
    args = message.get("args")
    if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
        raise BybitError(10001, "params error: args must hold one order")
    params = args[0]
    verdict = hub.ctx.limiter.charge(session.account, str(op),
                                      str(params.get("category", "")), now)
    headers.update({"X-Bapi-Limit": str(verdict.limit),
                    "X-Bapi-Limit-Status": str(verdict.remaining),
                    "X-Bapi-Limit-Reset-Timestamp": str(verdict.reset_ms)})
    if not verdict.allowed:
        raise BybitError(10006, "Too many visits!")
    try:
        if op == "order.create":
            return rest_trade.create(hub.ctx, session.account, params)
        return rest_trade.cancel(hub.ctx, session.account, params)
    except Rejected as exc:  # defensive: handlers translate their own
        raise BybitError(10001, f"params error: {exc.msg}") from None

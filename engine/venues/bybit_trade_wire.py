"""Bybit v5 signing, answer classification and the private-stream / trade-socket
frames, shared by the spot and linear trading drivers (Sans-I/O: no sockets, no
clock). Facts and sources: docs/venues/bybit.md "Trading".

  REST answer {"retCode","retMsg","result","time"} ─► classify_answer ─► Reply
  trade WS {"reqId","retCode","op":"order.create","data","header"} ─┐
  private WS {"req_id","op":"auth"|"subscribe","success"} ──────────┼─► parse_frame ─► WsMessage
  private WS {"topic":"order"|"execution"|"position"|"wallet"} ─────┘   (answer | push)
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

import orjson

from engine.model import OrderStatus, Side
from engine.model_trade import Reply, ReplyKind

# X-BAPI-RECV-WINDOW sent with every signed request. Bybit refuses a request
# unless server_time - recv_window <= timestamp < server_time + 1000, so an
# uncertain order is provably dead once this has passed. Shorter resolves
# lookups sooner but fails more sends on a slow link.
RECV_WINDOW_MS = 5000
# The auth frame's ``expires``: how long the signed login stays valid in flight.
AUTH_EXPIRES_MS = 10_000
PING_S = 20.0  # the docs ask for {"op":"ping"} every 20 s on private and trade sockets

# orderLinkId: at most 36 of [A-Za-z0-9_-] (order/create "orderLinkId").
CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")

# v5/error: may or may not have been executed (server timeout, server error /
# restarting): looked up by orderLinkId, never re-sent blind.
UNKNOWN_CODES = frozenset({10000, 10016, 10019})
# Not processed, send again later: rate limits (10006 per-UID, 10018 per-IP,
# 10429 / 20003 trade socket), our clock outside the window (10002).
RETRY_CODES = frozenset({10002, 10006, 10018, 10429, 20003})
RATE_CODES = frozenset({10006, 10018, 10429, 20003})
CLOCK_CODES = frozenset({10002})
NOT_FOUND_CODES = frozenset({110001, 170213})  # "Order does not exist" (derivatives, spot)
DUPLICATE_CODES = frozenset({110072, 170141})  # orderLinkId already used
# "not modified": the setting already holds (leverage, position mode, margin mode).
NO_CHANGE_CODES = frozenset({110043, 110025, 110026, 3400045})
# A PostOnly order that would take is accepted, then cancelled by the venue
# with this reason (order stream / order query): the venue's post-only refusal.
POST_ONLY_REJECT = "EC_PostOnlyWillTakeLiquidity"

STATUS = {"New": OrderStatus.NEW, "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
          "Untriggered": OrderStatus.NEW, "Triggered": OrderStatus.NEW,
          "Filled": OrderStatus.FILLED, "Cancelled": OrderStatus.CANCELED,
          "PartiallyFilledCanceled": OrderStatus.CANCELED, "Deactivated": OrderStatus.CANCELED,
          "Rejected": OrderStatus.REJECTED}
SIDES = {"Buy": Side.BUY, "Sell": Side.SELL}
WIRE_SIDE = {Side.BUY: "Buy", Side.SELL: "Sell"}


def hmac_hex(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def rest_signature(secret: bytes, timestamp_ms: int, api_key: str, payload: str) -> str:
    """X-BAPI-SIGN: hex HMAC-SHA256 of timestamp + key + recvWindow + (query | JSON body)."""
    return hmac_hex(secret, f"{timestamp_ms}{api_key}{RECV_WINDOW_MS}{payload}")


def auth_args(api_key: str, secret: bytes, timestamp_ms: int) -> list[Any]:
    """``{"op":"auth","args":[key, expires, hex HMAC("GET/realtime" + expires)]}``."""
    expires = timestamp_ms + AUTH_EXPIRES_MS
    return [api_key, expires, hmac_hex(secret, f"GET/realtime{expires}")]


def check_client_id(client_order_id: str) -> str:
    if not CLIENT_ID.match(client_order_id):
        raise ValueError(f"orderLinkId {client_order_id!r}: Bybit takes 1-36 of [A-Za-z0-9_-]")
    return client_order_id


def usage_of(headers: dict[str, str]) -> tuple[dict[str, int], int | None]:
    """``X-Bapi-Limit: 20``, ``X-Bapi-Limit-Status: 19`` (remaining), reset ms ->
    ({"ENDPOINT:1s": used}, reset_ms). The limit is per endpoint and UID, per second."""
    lower = {k.lower(): v for k, v in headers.items()}
    limit, left = lower.get("x-bapi-limit", ""), lower.get("x-bapi-limit-status", "")
    reset = lower.get("x-bapi-limit-reset-timestamp", "")
    usage = {"ENDPOINT:1s": int(limit) - int(left)} if limit.isdigit() and left.isdigit() else {}
    return usage, int(reset) if reset.isdigit() else None


def classify_answer(status: int, data: Any, headers: dict[str, str]) -> Reply:
    """One rule for REST and trade-socket answers. Bybit answers HTTP 200 with
    ``retCode`` != 0 for refusals; 403 is the IP limit (a ban of >= 10 min),
    429 system overload, 5xx unknown."""
    usage, reset_ms = usage_of(headers)
    code, message, body = 0, "", None
    if isinstance(data, dict) and "retCode" in data:
        code, message = int(data["retCode"]), str(data.get("retMsg", ""))
        body = data.get("result", data.get("data"))
        if code in NO_CHANGE_CODES:
            code, body = 0, {"msg": message}  # the setting already holds
    retry_after = None
    if code in RATE_CODES and reset_ms is not None and isinstance(data.get("time"), int):
        retry_after = max(0.0, (reset_ms - int(data["time"])) / 1000)
    if status == 403:
        kind, retry_after = ReplyKind.RETRY, 600.0  # rate-limit.md: wait at least 10 minutes
    elif status == 429 or code in RETRY_CODES:
        kind = ReplyKind.RETRY
        retry_after = retry_after if retry_after is not None else 1.0
    elif status >= 500 or code in UNKNOWN_CODES or (status == 200 and not isinstance(data, dict)):
        kind = ReplyKind.UNKNOWN
    elif status == 200 and code == 0:
        kind = ReplyKind.OK
        body = body if body is not None else {}
    else:
        kind = ReplyKind.REJECTED
    return Reply(kind, status, body if kind == ReplyKind.OK else data, code, message,
                 retry_after, None, usage, duplicate=code in DUPLICATE_CODES,
                 not_found=code in NOT_FOUND_CODES, order_rate_limited=code in RATE_CODES,
                 clock_skew=code in CLOCK_CODES)


def parse_json(frame: str | bytes) -> Any:
    return orjson.loads(frame)


def op_answer(msg: dict) -> tuple[str, Reply] | None:
    """An answer to one of our frames, or None for a push / heartbeat.

    Trade socket: ``{"reqId":"r7","retCode":0,"retMsg":"OK","op":"order.create",
    "data":{"orderId":"1321..","orderLinkId":"E7-1a-3"},"header":{"X-Bapi-Limit":"20",
    "X-Bapi-Limit-Status":"19","X-Bapi-Limit-Reset-Timestamp":"1711001595208",
    "Traceid":"..","Timenow":"1711001595210"},"connId":".."}``; auth on it
    ``{"retCode":0,"retMsg":"OK","op":"auth","connId":".."}``.
    Private stream: ``{"success":true,"ret_msg":"","op":"auth","conn_id":"..","req_id":"r1"}``."""
    op = msg.get("op")
    if op in ("ping", "pong") or msg.get("ret_msg") == "pong":
        return None
    request_id = str(msg.get("reqId") or msg.get("req_id") or "")
    if "retCode" in msg:
        raw = msg.get("header")
        header: dict[str, str] = {str(k): str(v) for k, v in raw.items()} \
            if isinstance(raw, dict) else {}
        data = {"retCode": msg["retCode"], "retMsg": msg.get("retMsg", ""),
                "result": msg.get("data"), "time": _int(header.get("Timenow"))}
        return request_id, classify_answer(200, data, header)
    if "success" in msg:
        ok = bool(msg["success"])
        return request_id, Reply(ReplyKind.OK if ok else ReplyKind.REJECTED, 200, msg,
                                 message=str(msg.get("ret_msg", "")))
    return None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

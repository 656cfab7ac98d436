"""OKX v5 signing, the client-order-id codec, the classification of every
answer and the private socket's login/subscribe answers, shared by the spot
and SWAP trading drivers (Sans-I/O: no sockets, no
clock reads). Facts and sources: docs/venues/okx.md "Trading".
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from typing import Any

from engine.model_trade import Reply, ReplyKind, UserEvent, WsMessage

# OKX's documented error codes (docs/venues/okx.md "Trading", error-code table):
# may or may not have happened: the order is looked up by clOrdId before any resend.
# 50001 service unavailable, 50004 endpoint request timeout ("does not indicate
# success or failure"), 50013 system busy, 50026 system error.
UNKNOWN_CODES = frozenset({50001, 50004, 50013, 50026})
# Provably not processed: 50011 rate limit reached (HTTP 429), 50061 sub-account
# order rate limit, 50102 timestamp request expired (our clock or a late request).
RETRY_CODES = frozenset({50011, 50061, 50102})
ORDER_RATE_CODES = frozenset({50061})  # the account's order count: pause new orders
NOT_FOUND_CODES = frozenset({51603, 51400, 51401, 51402})  # no such (live) order
DUPLICATE_CODES = frozenset({51016})  # "Duplicated clOrdId": the venue holds that id
# A post-only order refused at once because it would take. OKX itself accepts
# such an order and cancels it (cancelSource "31", see okx_trade.py): no
# documented synchronous code; the set is for a venue that refuses at once.
POST_ONLY_CODES: frozenset[int] = frozenset()
CLOCK_CODES = frozenset({50102, 50112})  # timestamp expired / invalid: resync the clock

# Client order ids: OKX's clOrdId is 1-32 case-sensitive letters and digits
# ("A combination of case-sensitive alphanumerics, all numbers, or all letters
# of up to 32 characters"). Ours (engine/trade/actions.py) also use "-" and "_",
# so the driver maps them reversibly: "X" escapes ("XX" = "X", "XA" = "-",
# "XB" = "_"). "E7-1a-3f" goes out as "E7XA1aXA3f". An id that is not a valid
# escape sequence is someone else's and comes back unchanged.
CLIENT_ID_MAX = 32
_ESCAPE = {"X": "XX", "-": "XA", "_": "XB"}
_UNESCAPE = {"X": "X", "A": "-", "B": "_"}


def wire_client_id(client_order_id: str) -> str:
    """Our id -> OKX's clOrdId; ValueError if it cannot fit OKX's rule."""
    out = "".join(_ESCAPE.get(c, c) for c in client_order_id)
    if not out or len(out) > CLIENT_ID_MAX or not out.isascii() or not out.isalnum():
        raise ValueError(f"client order id {client_order_id!r} does not fit OKX clOrdId "
                         f"(1-{CLIENT_ID_MAX} letters/digits; encoded {out!r}): use a shorter "
                         f"strategy id")
    return out


def our_client_id(cl_ord_id: str) -> str:
    """OKX's clOrdId -> our id (``wire_client_id`` reversed); unchanged if not ours."""
    if "X" not in cl_ord_id:
        return cl_ord_id
    out, i = [], 0
    while i < len(cl_ord_id):
        c = cl_ord_id[i]
        if c == "X":
            nxt = cl_ord_id[i + 1:i + 2]
            if nxt not in _UNESCAPE:
                return cl_ord_id  # not our encoding
            out.append(_UNESCAPE[nxt])
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


# ------------------------------------------------------------------ signing


def iso_ms(timestamp_ms: int) -> str:
    """``2020-12-08T09:08:57.715Z``: OK-ACCESS-TIMESTAMP's format."""
    when = dt.datetime.fromtimestamp(timestamp_ms // 1000, dt.UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{timestamp_ms % 1000:03d}Z"


def sign(secret: bytes, prehash: str) -> str:
    """Base64 of HMAC-SHA256 over ``prehash``."""
    return base64.b64encode(hmac.new(secret, prehash.encode(), hashlib.sha256).digest()).decode()


def rest_headers(api_key: str, secret: bytes, passphrase: str, timestamp_ms: int, method: str,
                 path: str, body: str, demo: bool) -> dict[str, str]:
    """OK-ACCESS-SIGN = base64(HMAC-SHA256(timestamp + METHOD + requestPath + body)),
    requestPath with its query (GET) and body the exact JSON text sent (POST)."""
    stamp = iso_ms(timestamp_ms)
    headers = {"OK-ACCESS-KEY": api_key, "OK-ACCESS-SIGN": sign(secret, f"{stamp}{method}{path}"
                                                               f"{body}"),
               "OK-ACCESS-TIMESTAMP": stamp, "OK-ACCESS-PASSPHRASE": passphrase,
               "Content-Type": "application/json"}
    if demo:
        headers["x-simulated-trading"] = "1"
    return headers


def login_args(api_key: str, secret: bytes, passphrase: str, timestamp_ms: int) -> dict[str, str]:
    """WS ``login``: sign = base64(HMAC-SHA256(timestamp + "GET" + "/users/self/verify")),
    timestamp in Unix seconds (OKX refuses one more than 30 s off)."""
    seconds = str(timestamp_ms // 1000)
    return {"apiKey": api_key, "passphrase": passphrase, "timestamp": seconds,
            "sign": sign(secret, f"{seconds}GET/users/self/verify")}


# ----------------------------------------------------------- classification


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def classify_envelope(status: int, data: Any, retry_after_s: float | None = None) -> Reply:
    """One rule for REST and WS answers: ``{"code":"1","msg":"...","data":[{"sCode":
    "51008","sMsg":"..."}]}``. HTTP 200 carries both success and failure; the
    per-order ``sCode`` is the order's fate when the envelope code is "1"/"2"."""
    code, message = 0, ""
    if isinstance(data, dict) and "code" in data:
        code, message = _int(data.get("code")), str(data.get("msg", ""))
        rows = data.get("data")
        failed = [r for r in rows if isinstance(r, dict) and str(r.get("sCode", "0")) != "0"] \
            if isinstance(rows, list) else []
        if failed:
            code, message = _int(failed[0].get("sCode")), str(failed[0].get("sMsg", message))
    if status == 429 or code in RETRY_CODES:
        kind = ReplyKind.RETRY
    elif status >= 500 or code in UNKNOWN_CODES or data is None or \
            (status == 200 and not isinstance(data, dict)) or code == -1:
        kind = ReplyKind.UNKNOWN
    elif status == 200 and code == 0:
        kind = ReplyKind.OK
    else:
        kind = ReplyKind.REJECTED  # a definitive code (51008 balance, 51000 parameter, 401 ...)
    if status == 429 and code == 0:
        code = 50011
    return Reply(kind, status, data, code, message, retry_after_s,
                 would_take=code in POST_ONLY_CODES, duplicate=code in DUPLICATE_CODES,
                 not_found=code in NOT_FOUND_CODES, order_rate_limited=code in ORDER_RATE_CODES,
                 clock_skew=code in CLOCK_CODES)


def first_row(body: Any) -> dict:
    """The first ``data`` row of an envelope (or the row itself)."""
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        rows = body["data"]
        return rows[0] if rows and isinstance(rows[0], dict) else {}
    return body if isinstance(body, dict) else {}


def rows(body: Any) -> list[dict]:
    """An envelope's ``data`` rows (a bare list passes through)."""
    data = body.get("data") if isinstance(body, dict) else body
    return [r for r in data if isinstance(r, dict)] if isinstance(data, list) else []


class SocketEvents:
    """The private socket's ``event`` frames as answers to our requests. The
    login answer ``{"event":"login","code":"0"}`` names no id, so it answers the
    pending login (as does an id-less error while one is pending); a subscribe
    gets one ack per channel and is answered by the last one or the first error."""

    def __init__(self) -> None:
        self._login_id = ""
        self._acks: dict[str, int] = {}  # subscribe request id -> acks still due

    def login_sent(self, request_id: str) -> None:
        self._login_id = request_id

    def subscribe_sent(self, request_id: str, channels: int) -> None:
        self._acks[request_id] = channels

    def answer(self, msg: dict) -> WsMessage:
        event = msg.get("event")
        if event == "login" or (event == "error" and not msg.get("id") and self._login_id):
            request_id, self._login_id = self._login_id, ""
            return WsMessage(request_id=request_id, reply=classify_envelope(
                200 if str(msg.get("code", "0")) == "0" else 401, msg))
        if event == "subscribe":
            request_id = str(msg.get("id", ""))
            due = self._acks.get(request_id, 1) - 1
            if due > 0:
                self._acks[request_id] = due
                return WsMessage()
            self._acks.pop(request_id, None)
            return WsMessage(request_id=request_id, reply=Reply(ReplyKind.OK, 200, msg))
        if event == "error":
            request_id = str(msg.get("id", ""))
            self._acks.pop(request_id, None)
            if not request_id:
                return WsMessage(error=f"venue error {msg.get('code')}: {msg.get('msg')}")
            return WsMessage(request_id=request_id, reply=classify_envelope(400, msg))
        if event == "notice":  # 64008: the socket closes for maintenance shortly
            return WsMessage(event=UserEvent(expired=True, warnings=[str(msg.get("msg", ""))]))
        return WsMessage()  # channel-conn-count, unsubscribe: nothing to apply

"""Binance signing, usage counters and answer classification, shared by the
spot and USD-M trading drivers (Sans-I/O: no sockets, no clock). Facts and
sources: docs/venues/binance.md "Spot trading"; errors.md for the codes.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from engine.model_trade import RateLimitKind, RateLimitRule, Reply, ReplyKind

# recvWindow sent with every signed request. Binance refuses a request that
# reaches it (or, since 2024, its matching engine) later than timestamp +
# recvWindow, so an uncertain order is provably dead once this has passed.
# Shorter resolves uncertain orders sooner but fails more sends on a slow link.
RECV_WINDOW_MS = 5000

# errors.md: "the execution status is UNKNOWN and could have been a success":
# looked up by client id, never re-sent blind. Any 5xx is treated the same way.
UNKNOWN_CODES = frozenset({-1000, -1001, -1006, -1007})
# "not processed, try again later": rate limits, overload, our clock.
RETRY_CODES = frozenset({-1003, -1008, -1015, -1021})
WOULD_TAKE = "Order would immediately match and take."
DUPLICATE = "Duplicate order sent."
_INTERVAL_S = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}


def hmac_hex(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def ws_signed_params(params: dict[str, Any], api_key: str, secret: bytes) -> dict[str, Any]:
    """WebSocket API signing: every param but ``signature``, sorted by name,
    as ``k=v&...``, HMAC-SHA256 hex (websocket-api "SIGNED request example")."""
    signed = {**params, "apiKey": api_key}
    payload = "&".join(f"{k}={signed[k]}" for k in sorted(signed))
    signed["signature"] = hmac_hex(secret, payload)
    return signed


def rate_limit_usage(headers: dict[str, str]) -> dict[str, int]:
    """``X-MBX-USED-WEIGHT-1M: 12``, ``X-MBX-ORDER-COUNT-10S: 3`` -> usage keys."""
    out = {}
    for name, value in headers.items():
        lower = name.lower()
        for prefix, kind in (("x-mbx-used-weight-", "REQUEST_WEIGHT"),
                             ("x-mbx-order-count-", "ORDERS")):
            if lower.startswith(prefix) and value.isdigit():
                out[f"{kind}:{lower[len(prefix):]}"] = int(value)
    return out


def ws_rate_limit_usage(limits: Any) -> dict[str, int]:
    """A WS API response's ``rateLimits`` -> usage keys (same as the headers')."""
    out = {}
    for item in limits if isinstance(limits, list) else []:
        unit = {"SECOND": "s", "MINUTE": "m", "HOUR": "h", "DAY": "d"}.get(item.get("interval"), "")
        out[f"{item.get('rateLimitType')}:{item.get('intervalNum')}{unit}"] = int(item.get("count", 0))
    return out


def parse_rate_limits(limits: Any) -> list[RateLimitRule]:
    """exchangeInfo ``rateLimits``: [{"rateLimitType":"ORDERS","interval":"SECOND",
    "intervalNum":10,"limit":100}, ...]."""
    out = []
    for item in limits if isinstance(limits, list) else []:
        try:
            out.append(RateLimitRule(RateLimitKind(item["rateLimitType"]),
                                     _INTERVAL_S[item["interval"]] * int(item["intervalNum"]),
                                     int(item["limit"])))
        except (KeyError, ValueError):
            continue  # a limit type we do not know: the venue still enforces it
    return out


def classify_answer(status: int, data: Any, usage: dict[str, int], retry_after_s: float | None,
                    unknown_codes: frozenset[int] = UNKNOWN_CODES,
                    retry_codes: frozenset[int] = RETRY_CODES,
                    would_take_codes: frozenset[int] = frozenset()) -> Reply:
    """One rule for REST and WS API answers (status + ``{"code","msg"}``)."""
    code, message = 0, ""
    if isinstance(data, dict) and "code" in data and "msg" in data:
        code, message = int(data["code"]), str(data["msg"])
    if status in (429, 418) or code in retry_codes:
        kind = ReplyKind.RETRY
    elif status >= 500 or code in unknown_codes or (status == 200 and data is None):
        kind = ReplyKind.UNKNOWN
    elif status == 200:
        kind = ReplyKind.OK
    else:
        kind = ReplyKind.REJECTED  # 4xx with a code: definitive (400, 401, 403 -2015, 409 ...)
    duplicate = code == -2010 and message == DUPLICATE
    return Reply(kind, status, data, code, message, retry_after_s,
                 usage.get("REQUEST_WEIGHT:1m"), usage,
                 would_take=(code == -2010 and message == WOULD_TAKE) or code in would_take_codes,
                 duplicate=duplicate,
                 not_found=code == -2013 or (code == -2011 and message == "Unknown order sent."),
                 order_rate_limited=code == -1015)

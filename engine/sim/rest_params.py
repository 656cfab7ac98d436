"""Request parameters and endpoint security the way Binance's REST API
applies them, with Binance's error codes and messages.

rest-api.md, "General Information on Endpoints" and "SIGNED Endpoint
security": parameters come from the query string and/or a form body (the
query wins when both carry one); API keys arrive in X-MBX-APIKEY; the
signature is HMAC-SHA256 over totalParams = query string + request body
(concatenated without "&"), keyed with the secret, hex, case-insensitive;
``timestamp`` is mandatory and the request is processed only if
timestamp < serverTime + 1000 and serverTime - timestamp <= recvWindow
(default 5000, at most 60000). Messages come from errors.md.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

from engine.sim.amounts import DECIMAL_PATTERN, is_decimal_text, to_units

NONE, USER_STREAM, SIGNED = "NONE", "USER_STREAM", "SIGNED"
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
_INT_RE = re.compile(r"^-?[0-9]{1,20}$")
_RECV_WINDOW_RE = re.compile(r"^[0-9]{1,20}(\.[0-9]{1,3})?$")
CLIENT_ID_PATTERN = r"^[a-zA-Z0-9-_]{1,36}$"
_CLIENT_ID_RE = re.compile(CLIENT_ID_PATTERN)


class ApiError(Exception):
    """An answer in Binance's {"code", "msg"} form."""

    def __init__(self, code: int, msg: str, status: int = 400, data: Any = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data


def mandatory(name: str) -> ApiError:
    return ApiError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, "
                           f"or malformed.")


def parse_params(query: str, body: bytes) -> dict[str, str]:
    """Query and form body merged; a name twice within one part is -1101."""
    merged: dict[str, str] = {}
    for part in (body.decode("utf-8", "replace") if body else "", query):
        seen: set[str] = set()
        for name, value in parse_qsl(part, keep_blank_values=True):
            if name in seen:
                raise ApiError(-1101, "Duplicate values for a parameter detected.")
            seen.add(name)
            merged[name] = value  # query parsed last: it wins
    return merged


def total_params(query: str, body: bytes) -> bytes:
    """totalParams without the signature pair, exactly as the client signed it."""
    def strip(part: str) -> str:
        return "&".join(p for p in part.split("&") if p and not p.startswith("signature="))
    return (strip(query) + strip(body.decode("latin-1") if body else "")).encode("latin-1")


def check_signature(secret: str, query: str, body: bytes, signature: str) -> None:
    expected = hmac.new(secret.encode(), total_params(query, body), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(-1022, "Signature for this request is not valid.")


def check_timestamp(params: dict[str, str], now_ms: int) -> None:
    timestamp = Params(params).integer("timestamp", required=True)
    raw_window = Params(params).text("recvWindow")
    window: Decimal | int = DEFAULT_RECV_WINDOW_MS
    if raw_window is not None:  # a DECIMAL with up to 3 places (microseconds) today
        if not _RECV_WINDOW_RE.match(raw_window):
            raise ApiError(-1100, "Illegal characters found in parameter 'recvWindow'; legal "
                                  "range is '^[0-9]{1,20}(\\.[0-9]{1,3})?$'.")
        window = Decimal(raw_window)
    if window > MAX_RECV_WINDOW_MS or window < 0:
        raise ApiError(-1131, "recvWindow must be less than 60000")
    assert timestamp is not None
    if timestamp >= now_ms + 1000:
        raise ApiError(-1021, "Timestamp for this request was 1000ms ahead of the server's "
                              "time.")
    if now_ms - timestamp > window:
        raise ApiError(-1021, "Timestamp for this request is outside of the recvWindow.")


@dataclass
class Params:
    """Typed access to one request's parameters, failing with Binance's codes."""

    values: dict[str, str]

    def text(self, name: str, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise mandatory(name)
            if value == "":
                raise ApiError(-1105, f"Parameter '{name}' was empty.")
            return None
        return value

    def integer(self, name: str, required: bool = False) -> int | None:
        value = self.text(name, required)
        if value is None:
            return None
        if not _INT_RE.match(value):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                  f"range is '^-?[0-9]{{1,20}}$'.")
        number = int(value)
        if not -2**63 <= number < 2**63:  # a LONG on Binance; SQLite's integer too
            raise ApiError(-1108, f"Parameter '{name}' overflowed.")
        return number

    def units(self, name: str, decimals: int, required: bool = False) -> int | None:
        """A DECIMAL parameter as units; more precision than the asset has is -1111."""
        value = self.text(name, required)
        if value is None:
            return None
        if not is_decimal_text(value):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                  f"range is '{DECIMAL_PATTERN}'.")
        units = to_units(value, decimals)
        if units is None:
            raise ApiError(-1111, f"Parameter '{name}' has too much precision.")
        return units

    def choice(self, name: str, allowed: tuple[str, ...], code: int, msg: str,
               required: bool = False) -> str | None:
        value = self.text(name, required)
        if value is not None and value not in allowed:
            raise ApiError(code, msg)
        return value

    def limit(self, default: int, maximum: int) -> int:
        value = self.integer("limit")
        if value is None:
            return default
        if value <= 0:
            raise ApiError(-1100, f"Illegal characters found in parameter 'limit'; legal "
                                  f"range is '1 - {maximum}'.")
        return min(value, maximum)

    def client_id(self, name: str) -> str | None:
        value = self.text(name)
        if value is not None and not _CLIENT_ID_RE.match(value):
            raise ApiError(-1100, f"Illegal characters found in parameter '{name}'; legal "
                                  f"range is '{CLIENT_ID_PATTERN}'.")
        return value

    def unread(self, allowed: frozenset[str]) -> None:
        """-1104 for parameters the endpoint does not take (POST order and kin)."""
        extra = [name for name in self.values if name not in allowed]
        if extra:
            read = len(self.values) - len(extra)
            raise ApiError(-1104, f"Not all sent parameters were read; read '{read}' "
                                  f"parameter(s) but was sent '{len(self.values)}'.")

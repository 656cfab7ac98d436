"""What every Bybit handler may use: the exchange, the spot and linear
symbol maps, the derivatives core, the accounts under their Bybit-shaped
keys, the order/execution records and the limiter; plus the key shape and
the v5 signatures (REST and WebSocket auth)."""

from __future__ import annotations

import hashlib
import hmac
import string
from collections.abc import Callable
from dataclasses import dataclass

from engine.sim.bybit.errors import LINEAR, SPOT, BybitError, bad_symbol, params_error
from engine.sim.bybit.limits import BybitLimiter
from engine.sim.bybit.records import OrderRecord, Records
from engine.sim.derivatives import Derivatives
from engine.sim.exchange import Exchange
from engine.sim.filters import SymbolSpec
from engine.sim.funding import Funding

CATEGORIES = (SPOT, LINEAR)
# Categories Bybit has: market data for inverse and option answers empty
# lists here (no such instruments), so unchanged clients that ask still load.
ALL_CATEGORIES = (SPOT, LINEAR, "inverse", "option")
_ALNUM = string.ascii_letters + string.digits
KEY_CHARS, SECRET_CHARS = 18, 36  # the length of a Bybit API key and secret
# The REST timestamp rule (docs/v5/guide "Authentication"):
# server_time - recv_window <= timestamp < server_time + 1000.
DEFAULT_RECV_WINDOW_MS = 5000
FUTURE_SLACK_MS = 1000


def _shaped(seed: str, length: int) -> str:
    number = int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big")
    out = []
    for _ in range(length):
        number, digit = divmod(number, len(_ALNUM))
        out.append(_ALNUM[digit])
    return "".join(out)


def bybit_credentials(api_key: str, api_secret: str) -> tuple[str, str]:
    """A configured account's key pair in Bybit's shape (18 and 36 letters
    and digits), derived so it is stable across restarts: local test
    credentials like the ones they come from."""
    return (_shaped(f"bybit-key:{api_key}", KEY_CHARS),
            _shaped(f"bybit-secret:{api_key}:{api_secret}", SECRET_CHARS))


def sign(secret: str, payload: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class BybitAccount:
    name: str
    api_key: str
    api_secret: str


@dataclass
class BybitContext:
    exchange: Exchange
    spot: dict[str, SymbolSpec]  # wire symbol -> spec (internal symbol: the same)
    linear: dict[str, SymbolSpec]  # wire symbol -> perpetual spec (internal: <symbol>-PERP)
    derivatives: Derivatives | None
    accounts: dict[str, BybitAccount]  # by Bybit API key
    records: Records
    limiter: BybitLimiter
    funding: Funding | None = None
    # told of an order the engine never saw (a PostOnly that would take):
    # the dialect pushes it on the private stream
    notify: Callable[[OrderRecord], None] = lambda record: None

    def __post_init__(self) -> None:
        self.by_internal: dict[str, tuple[str, SymbolSpec]] = {
            spec.symbol: (SPOT, spec) for spec in self.spot.values()}
        self.by_internal.update({spec.symbol: (LINEAR, spec) for spec in self.linear.values()})
        self.wire_of = {spec.symbol: wire for specs in (self.spot, self.linear)
                        for wire, spec in specs.items()}

    def category(self, params: dict, allowed: tuple[str, ...] = CATEGORIES) -> str:
        category = params.get("category")
        if not category:
            raise params_error("category is required")
        if category not in allowed:
            raise params_error(f"category {category!r} not supported")
        return str(category)

    def specs(self, category: str) -> dict[str, SymbolSpec]:
        return self.spot if category == SPOT else self.linear if category == LINEAR else {}

    def spec(self, category: str, params: dict, required: bool = True) -> SymbolSpec | None:
        symbol = params.get("symbol")
        if not symbol:
            if required:
                raise params_error("symbol is required")
            return None
        spec = self.specs(category).get(str(symbol))
        if spec is None:
            raise bad_symbol(category)
        return spec

    def check_request_auth(self, api_key: str, timestamp: str, recv_window: str,
                           signature: str, payload: str, now_ms: int) -> BybitAccount:
        """The v5 REST signature: HMAC-SHA256(secret, timestamp + api key +
        recv window + (query string | JSON body)), lower-case hex."""
        account = self.accounts.get(api_key)
        if not api_key or account is None:
            raise BybitError(10003, "API key is invalid.")
        if not timestamp.isdigit():
            raise BybitError(10002, "invalid request, please check your server timestamp "
                                    "or recv_window param")
        window = int(recv_window) if recv_window.isdigit() else DEFAULT_RECV_WINDOW_MS
        stamp = int(timestamp)
        if not now_ms - window <= stamp < now_ms + FUTURE_SLACK_MS:
            raise BybitError(10002, f"invalid request, please check your server timestamp or "
                                    f"recv_window param. req_timestamp[{stamp}],server_timestamp"
                                    f"[{now_ms}],recv_window[{window}]")
        expected = sign(account.api_secret, timestamp + api_key + recv_window + payload)
        if not hmac.compare_digest(expected, signature.lower()):
            raise BybitError(10004, "error sign! origin_string[" + timestamp + api_key
                             + recv_window + payload + "]")
        return account

    def check_ws_auth(self, args: list, now_ms: int) -> BybitAccount:
        """WebSocket auth: args [api key, expires ms, hex HMAC(secret, "GET/realtime" + expires)]."""
        if len(args) != 3:
            raise BybitError(10001, "Params Error")
        api_key, expires, signature = (str(a) for a in args)
        account = self.accounts.get(api_key)
        if account is None:
            raise BybitError(10003, "Invalid apikey")
        if not expires.isdigit() or int(expires) <= now_ms:
            raise BybitError(10002, "Params Error: request expired")
        if not hmac.compare_digest(sign(account.api_secret, "GET/realtime" + expires),
                                   signature.lower()):
            raise BybitError(10004, "Invalid sign")
        return account

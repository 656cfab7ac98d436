"""Binance spot trading, Sans-I/O: signed REST requests (orders, queries,
cancels, cancel-replace, open orders, fills, account, listenKeys), the
classification of every reply into ok / rejected / unknown / retry, and the
user data stream's frames as OrderUpdate + Fill. Never opens a socket, never
reads a clock (the caller passes ``timestamp_ms``), never formats a float.

API docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api
(trading endpoints, "Conditional fields", signed endpoint security),
.../errors (codes and the -2010/-2011 message table), .../user-data-stream.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson

from engine.model import Market, OrderStatus, OrderUpdate, Side
from engine.venues.symbols import split_concatenated, split_pair

VENUE = "binance"
MS = 1_000_000

# recvWindow sent with every signed request. Binance rejects a request that
# reaches it (or, since 2024, its matching engine) later than timestamp +
# recvWindow, so an order whose send is uncertain is provably dead once this
# much time has passed: the executor relies on it before re-sending. Shorter
# resolves uncertain orders sooner but fails more requests on a slow link.
RECV_WINDOW_MS = 5000

# Request weights as rest-api.md states them (2023-06 edition, the local
# venue's). Binance has raised some since; the used-weight header the venue
# returns with every reply keeps our count honest either way.
WEIGHTS = {"new_order": 1, "query_order": 2, "cancel_order": 1, "cancel_replace": 1,
           "open_orders": 3, "my_trades": 10, "account": 10, "exchange_info": 10,
           "user_stream": 1, "time": 1}

# Replies whose execution status is unknown (errors.md: "the execution status
# is UNKNOWN and could have been a success"): the order is looked up by client
# id, never re-sent blind. Any 5xx is treated the same way.
UNKNOWN_CODES = frozenset({-1000, -1001, -1006, -1007})
# Replies that say "not processed, try again later": rate limits, overload,
# our clock. Retried after a pause; nothing to look up.
RETRY_CODES = frozenset({-1003, -1008, -1015, -1021})
WOULD_TAKE = "Order would immediately match and take."
DUPLICATE = "Duplicate order sent."

_STATUS = {"NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
           "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
           "PENDING_CANCEL": OrderStatus.NEW, "REJECTED": OrderStatus.REJECTED,
           "EXPIRED": OrderStatus.EXPIRED, "EXPIRED_IN_MATCH": OrderStatus.EXPIRED}
_SIDE = {"BUY": Side.BUY, "SELL": Side.SELL}


@dataclass(frozen=True)
class SignedRequest:
    method: str
    url: str  # with the full, signed query string
    headers: dict[str, str]
    weight: int
    kind: str  # a WEIGHTS key, for logs and metrics
    counts_order: bool = False  # a new order: counts against the order rate limit


@dataclass(frozen=True)
class Reply:
    """A venue answer, classified. ``kind``: ok | rejected | unknown | retry."""

    kind: str
    status: int
    body: Any = None
    code: int = 0
    message: str = ""
    retry_after_s: float | None = None
    used_weight: int | None = None  # X-MBX-USED-WEIGHT-1M

    @property
    def would_take(self) -> bool:
        return self.code == -2010 and self.message == WOULD_TAKE

    @property
    def duplicate(self) -> bool:
        return self.code == -2010 and self.message == DUPLICATE

    @property
    def not_found(self) -> bool:
        """Query -2013 "Order does not exist." / cancel -2011 "Unknown order sent."."""
        return self.code == -2013 or (self.code == -2011 and self.message == "Unknown order sent.")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders. Money fields are the venue's exact
    decimal strings. (A cross-venue value: belongs in engine.model next to
    OrderUpdate once other venues trade.)"""

    venue: str
    market: Market
    pair: str
    client_order_id: str  # "" when the source (myTrades) does not carry it
    venue_order_id: str
    trade_id: str
    side: Side
    price: str
    quantity: str
    fee: str
    fee_asset: str
    is_maker: bool
    exch_ns: int = 0


@dataclass
class UserEvent:
    """What one user-data frame carried."""

    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    balances: dict[str, tuple[str, str]] = field(default_factory=dict)  # asset -> (free, locked)
    expired: bool = False  # listenKeyExpired: get a new key, reconnect, catch up
    error: str = ""


def _pair(symbol: str) -> str:
    base, quote = split_concatenated(symbol.upper())
    return f"{base}/{quote}"


def symbol_of(pair: str) -> str:
    base, quote, _ = split_pair(pair)
    return f"{base}{quote}"


class BinanceTrade:
    """Request builder and reply parser for one Binance spot account."""

    venue = VENUE
    market = Market.SPOT
    supports_batch_place = False  # spot has no batch order endpoint (futures does)
    supports_amend = True  # POST /api/v3/order/cancelReplace

    def __init__(self, rest_url: str, ws_url: str, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None) -> None:
        self.rest_base = (rest_url or "https://api.binance.com").rstrip("/")
        self.ws_base = (ws_url or "wss://stream.binance.com:9443").rstrip("/")
        self._key = api_key
        self._secret = api_secret.encode()
        self._symbols = dict(symbols or {})  # pair -> symbol overrides
        self._pairs = {s: p for p, s in self._symbols.items()}

    def symbol(self, pair: str) -> str:
        return self._symbols.get(pair) or symbol_of(pair)

    def pair(self, symbol: str) -> str:
        return self._pairs.get(symbol) or _pair(symbol)

    # ----------------------------------------------------------- requests

    def _signed(self, method: str, path: str, kind: str, params: dict[str, str],
                timestamp_ms: int, counts_order: bool = False) -> SignedRequest:
        query = urlencode({**params, "recvWindow": RECV_WINDOW_MS, "timestamp": timestamp_ms})
        signature = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
        return SignedRequest(method, f"{self.rest_base}{path}?{query}&signature={signature}",
                             {"X-MBX-APIKEY": self._key}, WEIGHTS[kind], kind, counts_order)

    def new_order(self, pair: str, side: Side, price: str, quantity: str, client_order_id: str,
                  post_only: bool, time_in_force: str, timestamp_ms: int) -> SignedRequest:
        """LIMIT_MAKER for post-only (refused -2010 WOULD_TAKE if it would cross), else LIMIT."""
        params = {"symbol": self.symbol(pair), "side": side.value.upper(),
                  "type": "LIMIT_MAKER" if post_only else "LIMIT", "quantity": quantity,
                  "price": price, "newClientOrderId": client_order_id,
                  "newOrderRespType": "RESULT"}
        if not post_only:
            params["timeInForce"] = time_in_force
        return self._signed("POST", "/api/v3/order", "new_order", params, timestamp_ms, True)

    def query_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/api/v3/order", "query_order",
                            {"symbol": self.symbol(pair), "origClientOrderId": client_order_id},
                            timestamp_ms)

    def cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("DELETE", "/api/v3/order", "cancel_order",
                            {"symbol": self.symbol(pair), "origClientOrderId": client_order_id},
                            timestamp_ms)

    def cancel_replace(self, pair: str, cancel_client_order_id: str, side: Side, price: str,
                       quantity: str, client_order_id: str, post_only: bool,
                       time_in_force: str, timestamp_ms: int) -> SignedRequest:
        """STOP_ON_FAILURE: if the cancel fails (filled meanwhile) nothing new is placed."""
        params = {"symbol": self.symbol(pair), "side": side.value.upper(),
                  "type": "LIMIT_MAKER" if post_only else "LIMIT",
                  "cancelReplaceMode": "STOP_ON_FAILURE",
                  "cancelOrigClientOrderId": cancel_client_order_id, "quantity": quantity,
                  "price": price, "newClientOrderId": client_order_id,
                  "newOrderRespType": "RESULT"}
        if not post_only:
            params["timeInForce"] = time_in_force
        return self._signed("POST", "/api/v3/order/cancelReplace", "cancel_replace", params,
                            timestamp_ms, True)

    def open_orders(self, pair: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/api/v3/openOrders", "open_orders",
                            {"symbol": self.symbol(pair)}, timestamp_ms)

    def my_trades(self, pair: str, timestamp_ms: int, from_id: int | None = None,
                  start_ms: int | None = None, limit: int = 1000) -> SignedRequest:
        params = {"symbol": self.symbol(pair), "limit": str(limit)}
        if from_id is not None:
            params["fromId"] = str(from_id)
        elif start_ms is not None:
            params["startTime"] = str(start_ms)
        return self._signed("GET", "/api/v3/myTrades", "my_trades", params, timestamp_ms)

    def account(self, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/api/v3/account", "account", {}, timestamp_ms)

    def exchange_info(self, pairs: list[str]) -> SignedRequest:
        symbols = orjson.dumps([self.symbol(p) for p in pairs]).decode()
        return SignedRequest("GET", f"{self.rest_base}/api/v3/exchangeInfo?"
                             f"{urlencode({'symbols': symbols})}", {}, WEIGHTS["exchange_info"],
                             "exchange_info")

    def server_time(self) -> SignedRequest:
        return SignedRequest("GET", f"{self.rest_base}/api/v3/time", {}, 1, "time")

    def listen_key(self, method: str, key: str = "") -> SignedRequest:
        """POST creates (or returns the live) key, PUT keeps it alive, DELETE closes it."""
        query = f"?{urlencode({'listenKey': key})}" if key else ""
        return SignedRequest(method, f"{self.rest_base}/api/v3/userDataStream{query}",
                             {"X-MBX-APIKEY": self._key}, WEIGHTS["user_stream"], "user_stream")

    def user_stream_url(self, listen_key: str) -> str:
        return f"{self.ws_base}/ws/{listen_key}"

    # ------------------------------------------------------------- replies

    @staticmethod
    def classify(status: int, body: bytes | str, headers: dict[str, str]) -> Reply:
        """``{"code":-2010,"msg":"Order would immediately match and take."}`` and kin."""
        lower = {k.lower(): v for k, v in headers.items()}
        used = lower.get("x-mbx-used-weight-1m")
        used_weight = int(used) if used and used.isdigit() else None
        retry_after = lower.get("retry-after")
        retry_s = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() \
            else None
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        code, message = 0, ""
        if isinstance(data, dict) and "code" in data and "msg" in data:
            code, message = int(data["code"]), str(data["msg"])
        if status in (429, 418) or code in RETRY_CODES:
            kind = "retry"
        elif status >= 500 or code in UNKNOWN_CODES or (status == 200 and data is None):
            kind = "unknown"
        elif status == 200:
            kind = "ok"
        else:
            kind = "rejected"  # 4xx with a code: definitive (400, 401, 403 -2015, 409 ...)
        return Reply(kind, status, data, code, message, retry_s, used_weight)

    def order_update(self, data: dict, recv_ns: int) -> OrderUpdate:
        """An order as REST returns it (new order RESULT, query, open orders, cancel)::

            {"symbol":"BTCUSDT","orderId":28,"clientOrderId":"E7-1a-3","price":"30000.00",
             "origQty":"0.010","executedQty":"0.004","cummulativeQuoteQty":"120.0",
             "status":"PARTIALLY_FILLED","timeInForce":"GTC","type":"LIMIT","side":"BUY",
             "updateTime":1700000000123}

        A cancel answer names our id ``origClientOrderId``."""
        filled = Decimal(data.get("executedQty", "0"))
        quote = Decimal(data.get("cummulativeQuoteQty", "0") or "0")
        average = str(quote / filled) if filled > 0 and quote >= 0 else "0"
        client_id = data.get("origClientOrderId") or data["clientOrderId"]
        exch_ms = data.get("updateTime") or data.get("transactTime") or 0
        return OrderUpdate(VENUE, Market.SPOT, self.pair(data["symbol"]), client_id,
                           str(data["orderId"]), _STATUS.get(data["status"], OrderStatus.NEW),
                           _SIDE[data["side"]], data.get("price", "0"), data.get("origQty", "0"),
                           str(filled), average, exch_ns=int(exch_ms) * MS, recv_ns=recv_ns)

    def fills(self, rows: list[dict]) -> list[Fill]:
        """GET myTrades rows (no client id: the caller maps ``orderId``)::

            {"symbol":"BTCUSDT","id":28457,"orderId":100234,"price":"4.00000100",
             "qty":"12.00000000","commission":"10.10000000","commissionAsset":"BNB",
             "time":1499865549590,"isBuyer":true,"isMaker":false}"""
        return [Fill(VENUE, Market.SPOT, self.pair(r["symbol"]), "", str(r["orderId"]),
                     str(r["id"]), Side.BUY if r["isBuyer"] else Side.SELL, r["price"], r["qty"],
                     r["commission"], r["commissionAsset"], bool(r["isMaker"]),
                     int(r["time"]) * MS) for r in rows]

    def parse_user(self, frame: str | bytes, recv_ns: int) -> UserEvent:
        """One user-data frame; never raises. executionReport (trimmed)::

            {"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"E7-1a-3","S":"BUY",
             "o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","x":"TRADE",
             "X":"PARTIALLY_FILLED","i":4293153,"l":"0.5","z":"0.5","L":"0.10264410",
             "n":"0.0005","N":"ETH","T":1499405658657,"t":7,"m":true,"Z":"0.05132205","C":""}

        On a cancel ``c`` is the cancel request's id and ``C`` our order's."""
        try:
            msg = orjson.loads(frame)
            data = msg.get("data", msg) if isinstance(msg, dict) else None
            if not isinstance(data, dict):
                return UserEvent(error=f"not an object: {str(frame)[:200]}")
            kind = data.get("e")
            if kind == "executionReport":
                return self._execution(data, recv_ns)
            if kind == "outboundAccountPosition":
                return UserEvent(balances={b["a"]: (b["f"], b["l"]) for b in data["B"]})
            if kind == "listenKeyExpired":
                return UserEvent(expired=True)
            return UserEvent()  # balanceUpdate, listStatus: nothing we track
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the stream
            return UserEvent(error=f"{type(exc).__name__}: {exc}")

    def _execution(self, data: dict, recv_ns: int) -> UserEvent:
        client_id = (data.get("C") or data["c"]) if data["x"] == "CANCELED" else data["c"]
        pair = self.pair(data["s"])
        side = _SIDE[data["S"]]
        filled = Decimal(data["z"])
        quote = Decimal(data.get("Z", "0"))
        average = str(quote / filled) if filled > 0 else "0"
        trade_id = int(data.get("t", -1))
        exch_ns = int(data.get("T") or data["E"]) * MS
        update = OrderUpdate(VENUE, Market.SPOT, pair, client_id, str(data["i"]),
                             _STATUS.get(data["X"], OrderStatus.NEW), side, data["p"], data["q"],
                             str(filled), average, data.get("n") or "0", data.get("N") or "",
                             max(trade_id, 0), exch_ns, recv_ns)
        event = UserEvent(updates=[update])
        if data["x"] == "TRADE" and trade_id >= 0:
            event.fills.append(Fill(VENUE, Market.SPOT, pair, client_id, str(data["i"]),
                                    str(trade_id), side, data["L"], data["l"],
                                    data.get("n") or "0", data.get("N") or "",
                                    bool(data.get("m")), exch_ns))
        return event

    def parse_exchange_info(self, body: Any) -> dict[str, dict[str, str]]:
        """pair -> rule strings (``Instrument.from_rules``) from exchangeInfo's filters::

            {"symbol":"BTCUSDT","baseAsset":"BTC","quoteAsset":"USDT","filters":[
             {"filterType":"PRICE_FILTER","tickSize":"0.01000000",...},
             {"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000","stepSize":"0.00001000"},
             {"filterType":"NOTIONAL","minNotional":"5.00000000",...}]}"""
        out = {}
        for info in body["symbols"]:
            rules = {"symbol": info["symbol"], "base": info["baseAsset"],
                     "quote": info["quoteAsset"]}
            for f in info.get("filters", []):
                kind = f.get("filterType")
                if kind == "PRICE_FILTER":
                    rules["tick_size"] = f["tickSize"]
                elif kind == "LOT_SIZE":
                    rules.update(step_size=f["stepSize"], min_qty=f["minQty"], max_qty=f["maxQty"])
                elif kind in ("NOTIONAL", "MIN_NOTIONAL"):
                    rules["min_notional"] = f["minNotional"]
            if "tick_size" in rules and "step_size" in rules:
                out[f"{info['baseAsset']}/{info['quoteAsset']}"] = rules
        return out

    @staticmethod
    def balances(body: Any) -> dict[str, tuple[str, str]]:
        """GET account: asset -> (free, locked)."""
        return {b["asset"]: (b["free"], b["locked"]) for b in body.get("balances", [])}

"""Binance spot trading driver (the TradingDriver contract, engine/model_trade.py),
Sans-I/O: signed REST requests and their WebSocket API twins (``order.place``,
``order.cancel``, ``order.status``, ``openOrders.status``, ``order.cancelReplace``,
``userDataStream.subscribe.signature``), the classification of every answer,
and the user-data events. Never opens a socket, never reads a clock, never
formats a float. Signing and classification shared with USD-M: binance_trade_wire.py.

API docs: https://developers.binance.com/docs/binance-spot-api-docs/rest-api
(trading endpoints, signed endpoint security, limits), .../websocket-api
(request/response format, HMAC signing of sorted params, rateLimits),
.../user-data-stream (events), .../errors; facts cited in docs/venues/binance.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson

from engine.model import Market, OrderStatus, OrderUpdate, Side
from engine.model_trade import (
    AmendResult,
    Fill,
    InstrumentRules,
    OrderSpec,
    RateLimitKind,
    RateLimitRule,
    Reply,
    ReplyKind,
    SignedRequest,
    TradingDriver,
    TradingEndpoints,
    UserEvent,
    WsMessage,
)
from engine.venues.binance_trade_wire import (
    RECV_WINDOW_MS,
    classify_answer,
    hmac_hex,
    parse_rate_limits,
    rate_limit_usage,
    ws_rate_limit_usage,
    ws_signed_params,
)
from engine.venues.symbols import split_concatenated, split_pair

__all__ = ["RECV_WINDOW_MS", "BinanceSpotTrade", "classify_answer", "hmac_hex",
           "parse_rate_limits", "rate_limit_usage", "ws_rate_limit_usage", "ws_signed_params"]

VENUE = "binance"
MS = 1_000_000

# Request weights, today's (rest-api.md / websocket-api: order 1, cancel 1,
# cancelReplace 1, query order 4, open orders of one symbol 6, myTrades 20,
# account 20, exchangeInfo 20, time 1, user-data subscription 2). The same on
# REST and the WebSocket API; the venue's own count (header / rateLimits) is
# recorded with every reply either way.
WEIGHTS = {"new_order": 1, "query_order": 4, "cancel_order": 1, "cancel_replace": 1,
           "open_orders": 6, "my_trades": 20, "account": 20, "exchange_info": 20,
           "user_stream": 2, "time": 1, "logon": 2}

# exchangeInfo.rateLimits of the live venue (limits.md, exchangeInfo): the
# defaults until the venue's own exchangeInfo is read.
SPOT_RATE_LIMITS = (RateLimitRule(RateLimitKind.REQUEST_WEIGHT, 60, 6000),
                    RateLimitRule(RateLimitKind.ORDERS, 10, 50),
                    RateLimitRule(RateLimitKind.ORDERS, 86400, 160000),
                    RateLimitRule(RateLimitKind.RAW_REQUESTS, 300, 61000))

_STATUS = {"NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
           "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
           "PENDING_CANCEL": OrderStatus.NEW, "REJECTED": OrderStatus.REJECTED,
           "EXPIRED": OrderStatus.EXPIRED, "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
           "PENDING_NEW": OrderStatus.NEW}
SIDES = {"BUY": Side.BUY, "SELL": Side.SELL}


def _pair(symbol: str) -> str:
    base, quote = split_concatenated(symbol.upper())
    return f"{base}/{quote}"


def symbol_of(pair: str) -> str:
    base, quote, _ = split_pair(pair)
    return f"{base}{quote}"


class BinanceSpotTrade(TradingDriver):
    """Request builder and reply parser for one Binance spot account."""

    venue = VENUE
    market = Market.SPOT
    supports_amend = True  # POST /api/v3/order/cancelReplace, order.cancelReplace
    ws_api = True
    user_stream = "ws_api"  # listenKey streams were discontinued on 2026-02-20
    recv_window_ms = RECV_WINDOW_MS
    default_rate_limits = SPOT_RATE_LIMITS

    def __init__(self, endpoints: TradingEndpoints, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(endpoints, api_key, api_secret, symbols)
        self.rest_base = (endpoints.rest or "https://api.binance.com").rstrip("/")
        ws = (endpoints.ws or "").rstrip("/")
        # A local venue serves the WS API beside its streams; live has its own host.
        local = ws and "binance.com" not in ws and "binance.vision" not in ws
        self._ws_api_url = endpoints.ws_api or (f"{ws}/ws-api/v3" if local else
                                                "wss://ws-api.binance.com:443/ws-api/v3")
        self._key = api_key
        self._secret = api_secret.encode()
        self._pairs = {s: p for p, s in self._symbols.items()}

    def symbol(self, pair: str) -> str:
        return self._symbols.get(pair) or symbol_of(pair)

    def pair(self, symbol: str) -> str:
        return self._pairs.get(symbol) or _pair(symbol)

    # ----------------------------------------------------------- REST

    def _signed(self, method: str, path: str, kind: str, params: dict[str, str],
                timestamp_ms: int, counts_order: bool = False) -> SignedRequest:
        query = urlencode({**params, "recvWindow": RECV_WINDOW_MS, "timestamp": timestamp_ms})
        return SignedRequest(method, f"{self.rest_base}{path}?{query}&signature="
                             f"{hmac_hex(self._secret, query)}", {"X-MBX-APIKEY": self._key},
                             WEIGHTS[kind], kind, counts_order, timestamp_ms=timestamp_ms)

    def _order_params(self, spec: OrderSpec) -> dict[str, str]:
        """LIMIT_MAKER for post-only (refused -2010 WOULD_TAKE if it would cross), else LIMIT."""
        params = {"symbol": self.symbol(spec.pair), "side": spec.side.value.upper(),
                  "type": "LIMIT_MAKER" if spec.post_only else "LIMIT",
                  "quantity": spec.quantity, "price": spec.price,
                  "newClientOrderId": spec.client_order_id, "newOrderRespType": "RESULT"}
        if not spec.post_only:
            params["timeInForce"] = spec.time_in_force.value
        return params

    def _replace_params(self, cancel_client_order_id: str, spec: OrderSpec) -> dict[str, str]:
        """STOP_ON_FAILURE: if the cancel fails (filled meanwhile) nothing new is placed."""
        return {**self._order_params(spec), "cancelReplaceMode": "STOP_ON_FAILURE",
                "cancelOrigClientOrderId": cancel_client_order_id}

    def new_order(self, spec: OrderSpec, timestamp_ms: int) -> SignedRequest:
        return self._signed("POST", "/api/v3/order", "new_order", self._order_params(spec),
                            timestamp_ms, True)

    def query_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/api/v3/order", "query_order",
                            {"symbol": self.symbol(pair), "origClientOrderId": client_order_id},
                            timestamp_ms)

    def cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("DELETE", "/api/v3/order", "cancel_order",
                            {"symbol": self.symbol(pair), "origClientOrderId": client_order_id},
                            timestamp_ms)

    def cancel_replace(self, cancel_client_order_id: str, spec: OrderSpec,
                       timestamp_ms: int) -> SignedRequest:
        return self._signed("POST", "/api/v3/order/cancelReplace", "cancel_replace",
                            self._replace_params(cancel_client_order_id, spec), timestamp_ms, True)

    def open_orders(self, pair: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/api/v3/openOrders", "open_orders",
                            {"symbol": self.symbol(pair)}, timestamp_ms)

    def my_trades(self, pair: str, timestamp_ms: int, cursor: str | None = None,
                  start_ms: int | None = None, limit: int = 1000) -> SignedRequest:
        params = {"symbol": self.symbol(pair), "limit": str(limit)}
        if cursor is not None:
            params["fromId"] = cursor
        elif start_ms is not None:
            params["startTime"] = str(start_ms)
        return self._signed("GET", "/api/v3/myTrades", "my_trades", params, timestamp_ms)

    def account(self, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/api/v3/account", "account", {}, timestamp_ms)

    def exchange_info(self, pairs: Sequence[str]) -> SignedRequest:
        symbols = orjson.dumps([self.symbol(p) for p in pairs]).decode()
        return SignedRequest("GET", f"{self.rest_base}/api/v3/exchangeInfo?"
                             f"{urlencode({'symbols': symbols})}", {}, WEIGHTS["exchange_info"],
                             "exchange_info")

    def server_time(self) -> SignedRequest:
        return SignedRequest("GET", f"{self.rest_base}/api/v3/time", {}, 1, "time")

    # -------------------------------------------------- WebSocket API

    def ws_api_url(self) -> str:
        return self._ws_api_url

    def _ws(self, method: str, kind: str, params: dict[str, Any], timestamp_ms: int,
            request_id: str, counts_order: bool = False) -> SignedRequest:
        """``{"id":"7","method":"order.place","params":{...,"apiKey","signature"}}``."""
        signed = ws_signed_params({**params, "recvWindow": RECV_WINDOW_MS,
                                   "timestamp": timestamp_ms}, self._key, self._secret)
        body = orjson.dumps({"id": request_id, "method": method, "params": signed}).decode()
        return SignedRequest("WS", self._ws_api_url, {}, WEIGHTS[kind], kind, counts_order,
                             body, "ws", request_id, timestamp_ms)

    def ws_subscribe_user(self, timestamp_ms: int, request_id: str) -> SignedRequest:
        """HMAC keys cannot ``session.logon`` (Ed25519 only), so the signed
        subscription is the one that works for every key type."""
        return self._ws("userDataStream.subscribe.signature", "user_stream", {}, timestamp_ms,
                        request_id)

    def ws_new_order(self, spec: OrderSpec, timestamp_ms: int, request_id: str) -> SignedRequest:
        return self._ws("order.place", "new_order", self._order_params(spec), timestamp_ms,
                        request_id, True)

    def ws_query_order(self, pair: str, client_order_id: str, timestamp_ms: int,
                       request_id: str) -> SignedRequest:
        return self._ws("order.status", "query_order", {"symbol": self.symbol(pair),
                        "origClientOrderId": client_order_id}, timestamp_ms, request_id)

    def ws_cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int,
                        request_id: str) -> SignedRequest:
        return self._ws("order.cancel", "cancel_order", {"symbol": self.symbol(pair),
                        "origClientOrderId": client_order_id}, timestamp_ms, request_id)

    def ws_open_orders(self, pair: str, timestamp_ms: int, request_id: str) -> SignedRequest:
        return self._ws("openOrders.status", "open_orders", {"symbol": self.symbol(pair)},
                        timestamp_ms, request_id)

    def ws_cancel_replace(self, cancel_client_order_id: str, spec: OrderSpec,
                          timestamp_ms: int, request_id: str) -> SignedRequest:
        return self._ws("order.cancelReplace", "cancel_replace",
                        self._replace_params(cancel_client_order_id, spec), timestamp_ms,
                        request_id, True)

    def parse_ws(self, frame: str | bytes, recv_ns: int) -> WsMessage:
        """A response ``{"id":"7","status":400,"error":{"code":-2010,"msg":"..."},
        "rateLimits":[...]}`` or a push ``{"subscriptionId":0,"event":{"e":...}}``."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            return WsMessage(error=f"not JSON: {exc}: {str(frame)[:200]}")
        if not isinstance(msg, dict):
            return WsMessage(error=f"not an object: {str(frame)[:200]}")
        if "event" in msg:
            return WsMessage(event=self._user_event(msg["event"], recv_ns))
        if "id" not in msg or "status" not in msg:
            return WsMessage(error=f"neither response nor event: {str(frame)[:200]}")
        status = int(msg["status"])
        error = msg.get("error")
        retry_after = None
        if isinstance(error, dict) and isinstance(error.get("data"), dict):
            until_ms, now_ms = error["data"].get("retryAfter"), error["data"].get("serverTime")
            if isinstance(until_ms, int) and isinstance(now_ms, int):
                retry_after = max(0.0, (until_ms - now_ms) / 1000)
        body = error if isinstance(error, dict) else msg.get("result")
        if status == 200 and body is None:
            body = {}
        reply = classify_answer(status, body, ws_rate_limit_usage(msg.get("rateLimits")),
                                retry_after)
        return WsMessage(request_id=str(msg["id"]), reply=reply)

    # --------------------------------------------------------- replies

    def classify(self, status: int, body: bytes | str, headers: dict[str, str]) -> Reply:
        """``{"code":-2010,"msg":"Order would immediately match and take."}`` and kin."""
        lower = {k.lower(): v for k, v in headers.items()}
        retry_after = lower.get("retry-after")
        retry_s = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() \
            else None
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        return classify_answer(status, data, rate_limit_usage(headers), retry_s)

    def order_update(self, body: Any, recv_ns: int) -> OrderUpdate:
        """An order as REST / WS API return it (new order RESULT, query, open orders, cancel)::

            {"symbol":"BTCUSDT","orderId":28,"clientOrderId":"E7-1a-3","price":"30000.00",
             "origQty":"0.010","executedQty":"0.004","cummulativeQuoteQty":"120.0",
             "status":"PARTIALLY_FILLED","timeInForce":"GTC","type":"LIMIT","side":"BUY",
             "updateTime":1700000000123}

        A cancel answer names our id ``origClientOrderId``."""
        data = body
        filled = Decimal(data.get("executedQty", "0"))
        quote = Decimal(data.get("cummulativeQuoteQty", "0") or "0")
        average = str(quote / filled) if filled > 0 and quote >= 0 else "0"
        client_id = data.get("origClientOrderId") or data["clientOrderId"]
        exch_ms = data.get("updateTime") or data.get("transactTime") or 0
        return OrderUpdate(VENUE, Market.SPOT, self.pair(data["symbol"]), client_id,
                           str(data["orderId"]), _STATUS.get(data["status"], OrderStatus.NEW),
                           SIDES[data["side"]], data.get("price", "0"), data.get("origQty", "0"),
                           str(filled), average, exch_ns=int(exch_ms) * MS, recv_ns=recv_ns)

    def fills(self, body: Any) -> list[Fill]:
        """myTrades rows (no client id: the caller maps ``orderId``)::

            {"symbol":"BTCUSDT","id":28457,"orderId":100234,"price":"4.00000100",
             "qty":"12.00000000","commission":"10.10000000","commissionAsset":"BNB",
             "time":1499865549590,"isBuyer":true,"isMaker":false}"""
        return [Fill(VENUE, Market.SPOT, self.pair(r["symbol"]), "", str(r["orderId"]),
                     str(r["id"]), Side.BUY if r["isBuyer"] else Side.SELL, r["price"], r["qty"],
                     r["commission"], r["commissionAsset"], bool(r["isMaker"]),
                     int(r["time"]) * MS) for r in body]

    def fills_cursor(self, body: Any) -> str | None:
        if not isinstance(body, list) or len(body) < self.fills_page:
            return None
        return str(max(int(row["id"]) for row in body) + 1)

    def amend_result(self, reply: Reply) -> AmendResult:
        """cancelReplace: 200, 409 -2021 (new order failed) or 400 -2022 (cancel
        failed) carry ``{cancelResult, newOrderResult, cancelResponse, newOrderResponse}``."""
        parts = reply.body.get("data", reply.body) if isinstance(reply.body, dict) else None
        if not isinstance(parts, dict) or not (reply.kind == ReplyKind.OK or
                                               reply.code in (-2021, -2022)):
            return AmendResult(known=False)
        result = parts.get("newOrderResult")
        failure = None
        if result == "FAILURE":
            raw = parts.get("newOrderResponse") or {}
            failure = classify_answer(400, {"code": raw.get("code", reply.code),
                                            "msg": raw.get("msg", reply.message)}, {}, None)
        return AmendResult(True, parts.get("cancelResult") == "SUCCESS",
                           parts.get("cancelResponse"),
                           parts.get("newOrderResponse") if result == "SUCCESS" else None,
                           result in ("SUCCESS", "FAILURE"), failure)

    def balances(self, body: Any) -> dict[str, tuple[str, str]]:
        """GET account: asset -> (free, locked)."""
        return {b["asset"]: (b["free"], b["locked"]) for b in body.get("balances", [])}

    def server_time_ms(self, body: Any) -> int | None:
        return int(body["serverTime"]) if isinstance(body, dict) and "serverTime" in body else None

    def instrument_rules(self, body: Any) -> dict[str, InstrumentRules]:
        """exchangeInfo's symbols and filters::

            {"symbol":"BTCUSDT","baseAsset":"BTC","quoteAsset":"USDT","filters":[
             {"filterType":"PRICE_FILTER","tickSize":"0.01000000",...},
             {"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000","stepSize":"0.00001000"},
             {"filterType":"NOTIONAL","minNotional":"5.00000000",...}]}"""
        out = {}
        for info in body["symbols"]:
            rules: dict[str, str] = {}
            for f in info.get("filters", []):
                kind = f.get("filterType")
                if kind == "PRICE_FILTER":
                    rules["tick_size"] = f["tickSize"]
                elif kind == "LOT_SIZE":
                    rules.update(step_size=f["stepSize"], min_qty=f["minQty"], max_qty=f["maxQty"])
                elif kind in ("NOTIONAL", "MIN_NOTIONAL"):
                    rules["min_notional"] = f["minNotional"]
            if "tick_size" in rules and "step_size" in rules:
                pair = f"{info['baseAsset']}/{info['quoteAsset']}"
                out[pair] = InstrumentRules(pair, info["symbol"], info["baseAsset"],
                                            info["quoteAsset"], **rules)
        return out

    def rate_limits(self, body: Any) -> list[RateLimitRule]:
        return parse_rate_limits(body.get("rateLimits") if isinstance(body, dict) else None)

    # ---------------------------------------------------- user data

    def parse_user(self, frame: str | bytes, recv_ns: int) -> UserEvent:
        """A user-data frame, bare or wrapped (``{"subscriptionId":0,"event":{...}}``)."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            return UserEvent(error=f"not JSON: {exc}")
        if isinstance(msg, dict):
            msg = msg.get("event", msg.get("data", msg))
        return self._user_event(msg, recv_ns)

    def _user_event(self, data: Any, recv_ns: int) -> UserEvent:
        """executionReport (trimmed)::

            {"e":"executionReport","E":1499405658658,"s":"ETHBTC","c":"E7-1a-3","S":"BUY",
             "o":"LIMIT","f":"GTC","q":"1.00000000","p":"0.10264410","x":"TRADE",
             "X":"PARTIALLY_FILLED","i":4293153,"l":"0.5","z":"0.5","L":"0.10264410",
             "n":"0.0005","N":"ETH","T":1499405658657,"t":7,"m":true,"Z":"0.05132205","C":""}

        On a cancel ``c`` is the cancel request's id and ``C`` our order's. Never raises."""
        try:
            if not isinstance(data, dict):
                return UserEvent(error=f"not an object: {str(data)[:200]}")
            kind = data.get("e")
            if kind == "executionReport":
                return self._execution(data, recv_ns)
            if kind == "outboundAccountPosition":
                return UserEvent(balances={b["a"]: (b["f"], b["l"]) for b in data["B"]})
            if kind in ("listenKeyExpired", "eventStreamTerminated"):
                return UserEvent(expired=True)
            return UserEvent()  # balanceUpdate, listStatus, externalLockUpdate: not tracked
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the stream
            return UserEvent(error=f"{type(exc).__name__}: {exc}")

    def _execution(self, data: dict, recv_ns: int) -> UserEvent:
        client_id = (data.get("C") or data["c"]) if data["x"] == "CANCELED" else data["c"]
        pair = self.pair(data["s"])
        side = SIDES[data["S"]]
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

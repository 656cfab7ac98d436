"""Bybit v5 spot trading driver (the TradingDriver contract, engine/model_trade.py)
and the base the linear driver (bybit_trade_linear.py) shares: signed REST
(/v5/order/*, /v5/execution/list, /v5/account/wallet-balance), the trade socket's
``order.create`` / ``order.cancel`` after ``auth``, the private stream's
``order`` / ``execution`` / ``wallet`` pushes, and every answer classified.
Never opens a socket, never reads a clock, never formats a float.

API docs: https://bybit-exchange.github.io/docs/v5/intro (guide: signing),
.../v5/order/create-order, .../v5/order/open-order, .../v5/order/execution,
.../v5/websocket/trade/guideline, .../v5/websocket/private/{order,execution,wallet},
.../v5/rate-limit, .../v5/error; facts cited in docs/venues/bybit.md "Trading".
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import urlencode

import orjson

from engine.model import Market, OrderStatus, OrderUpdate, Side
from engine.model_trade import (
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
from engine.venues.bybit_trade_wire import (
    PING_S,
    POST_ONLY_REJECT,
    RECV_WINDOW_MS,
    SIDES,
    STATUS,
    WIRE_SIDE,
    auth_args,
    check_client_id,
    classify_answer,
    op_answer,
    parse_json,
    rest_signature,
)
from engine.venues.symbols import split_concatenated, split_pair

MS = 1_000_000
# Every request counts 1 against the IP limit: 600 requests per 5 s per IP
# (rate-limit.md "HTTP IP limit"). New orders per UID per second: spot 20,
# linear 10 (the /v5/order/create row of the API rate-limit table).
IP_LIMIT = RateLimitRule(RateLimitKind.REQUEST_WEIGHT, 5, 600)
AUTH_ID = "auth"  # the request id of a socket's logon (see ws_logon)
OPEN_ORDERS_PAGE = 50  # /v5/order/realtime: limit [1, 50]
FILLS_PAGE = 100  # /v5/execution/list: limit [1, 100]
FILLS_MAX_SPAN_MS = 7 * 86_400_000  # /v5/execution/list: startTime..endTime at most 7 days


class BybitTrade(TradingDriver):
    """One Bybit unified (UTA) account on one category. Subclasses set the
    category and the venue id; everything on the wire is shared."""

    category: ClassVar[str] = "spot"
    venue = "bybit"
    market = Market.SPOT
    supports_amend = False  # order.amend changes price/qty in place: not a cancel-replace
    ws_api = True  # wss://stream.bybit.com/v5/trade: order.create / order.cancel
    ws_api_queries = False  # the trade socket has no query: lookups go over REST
    user_stream = "private_ws"  # wss://stream.bybit.com/v5/private, auth then subscribe
    ws_ping_s = PING_S
    recv_window_ms = RECV_WINDOW_MS
    fills_page = FILLS_PAGE
    default_rate_limits = (IP_LIMIT, RateLimitRule(RateLimitKind.ORDERS, 1, 20))
    topics: ClassVar[tuple[str, ...]] = ("order", "execution", "wallet")

    def __init__(self, endpoints: TradingEndpoints, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(endpoints, api_key, api_secret, symbols)
        self.rest_base = (endpoints.rest or "https://api.bybit.com").rstrip("/")
        # endpoints.ws: the stream host (live "wss://stream.bybit.com", or the
        # local venue); the private stream and the trade socket hang off it.
        ws = (endpoints.ws or "wss://stream.bybit.com").rstrip("/")
        for suffix in ("/v5/public/spot", "/v5/public/linear", "/v5/private", "/v5/trade"):
            ws = ws.removesuffix(suffix)
        self.ws_base = ws
        self._ws_api_url = endpoints.ws_api or f"{ws}/v5/trade"
        self._key = api_key
        self._secret = api_secret.encode()
        self._pairs = {s: p for p, s in self._symbols.items()}

    def symbol(self, pair: str) -> str:
        if pair in self._symbols:
            return self._symbols[pair]
        base, quote, _ = split_pair(pair)
        return f"{base}{quote}"

    def pair(self, symbol: str) -> str:
        if symbol in self._pairs:
            return self._pairs[symbol]
        base, quote = split_concatenated(symbol.upper())
        return f"{base}/{quote}"

    # ----------------------------------------------------------- REST

    def _get(self, path: str, kind: str, params: dict[str, str], timestamp_ms: int,
             signed: bool = True) -> SignedRequest:
        query = urlencode(params)
        url = f"{self.rest_base}{path}" + (f"?{query}" if query else "")
        headers = self._headers(timestamp_ms, query) if signed else {}
        return SignedRequest("GET", url, headers, 1, kind, timestamp_ms=timestamp_ms)

    def _post(self, path: str, kind: str, params: dict[str, Any], timestamp_ms: int,
              counts_order: bool = False) -> SignedRequest:
        body = orjson.dumps(params).decode()
        return SignedRequest("POST", f"{self.rest_base}{path}",
                             {**self._headers(timestamp_ms, body),
                              "Content-Type": "application/json"},
                             1, kind, counts_order, body, timestamp_ms=timestamp_ms)

    def _headers(self, timestamp_ms: int, payload: str) -> dict[str, str]:
        return {"X-BAPI-API-KEY": self._key, "X-BAPI-TIMESTAMP": str(timestamp_ms),
                "X-BAPI-RECV-WINDOW": str(RECV_WINDOW_MS), "X-BAPI-SIGN-TYPE": "2",
                "X-BAPI-SIGN": rest_signature(self._secret, timestamp_ms, self._key, payload)}

    def _order_params(self, spec: OrderSpec) -> dict[str, Any]:
        """A Limit order; post-only is ``timeInForce: PostOnly`` (accepted, then
        cancelled with EC_PostOnlyWillTakeLiquidity if it would take)."""
        return {"category": self.category, "symbol": self.symbol(spec.pair),
                "side": WIRE_SIDE[spec.side], "orderType": "Limit", "qty": spec.quantity,
                "price": spec.price,
                "timeInForce": "PostOnly" if spec.post_only else spec.time_in_force.value,
                "orderLinkId": check_client_id(spec.client_order_id)}

    def _ref(self, pair: str, client_order_id: str) -> dict[str, str]:
        return {"category": self.category, "symbol": self.symbol(pair),
                "orderLinkId": client_order_id}

    def new_order(self, spec: OrderSpec, timestamp_ms: int) -> SignedRequest:
        return self._post("/v5/order/create", "new_order", self._order_params(spec),
                          timestamp_ms, True)

    def query_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        """/v5/order/realtime with an orderLinkId finds open and recent closed orders."""
        return self._get("/v5/order/realtime", "query_order", self._ref(pair, client_order_id),
                         timestamp_ms)

    def cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._post("/v5/order/cancel", "cancel_order", self._ref(pair, client_order_id),
                          timestamp_ms)

    def open_orders(self, pair: str, timestamp_ms: int) -> SignedRequest:
        return self._get("/v5/order/realtime", "open_orders",
                         {"category": self.category, "symbol": self.symbol(pair),
                          "openOnly": "0", "limit": str(OPEN_ORDERS_PAGE)}, timestamp_ms)

    def my_trades(self, pair: str, timestamp_ms: int, cursor: str | None = None,
                  start_ms: int | None = None, limit: int = FILLS_PAGE) -> SignedRequest:
        """/v5/execution/list: a start at most 7 days back (the span it allows)."""
        params = {"category": self.category, "symbol": self.symbol(pair),
                  "limit": str(min(limit, FILLS_PAGE))}
        if start_ms is not None:
            params["startTime"] = str(max(start_ms, timestamp_ms - FILLS_MAX_SPAN_MS + 60_000))
        if cursor:
            params["cursor"] = cursor
        return self._get("/v5/execution/list", "my_trades", params, timestamp_ms)

    def account(self, timestamp_ms: int) -> SignedRequest:
        return self._get("/v5/account/wallet-balance", "account", {"accountType": "UNIFIED"},
                         timestamp_ms)

    def exchange_info(self, pairs: Sequence[str]) -> SignedRequest:
        params = {"category": self.category}
        if len(pairs) == 1:
            params["symbol"] = self.symbol(pairs[0])
        elif self.category != "spot":
            params["limit"] = "1000"
        return self._get("/v5/market/instruments-info", "exchange_info", params, 0, signed=False)

    def server_time(self) -> SignedRequest:
        return SignedRequest("GET", f"{self.rest_base}/v5/market/time", {}, 1, "time")

    # ------------------------------------------------ trade socket + private stream

    def ws_api_url(self) -> str:
        return self._ws_api_url

    def user_stream_url(self, listen_key: str) -> str:
        return f"{self.ws_base}/v5/private"

    def ws_logon(self, timestamp_ms: int, request_id: str) -> SignedRequest | None:
        """``{"req_id":"auth","reqId":"auth","op":"auth","args":[key, expires, sign]}``.
        The private stream echoes ``req_id``, the trade socket ``reqId`` only
        "if passed" and its doc sample answers without one: every ``auth``
        answer is matched to the one logon a socket has in flight, id "auth"."""
        body = orjson.dumps({"req_id": AUTH_ID, "reqId": AUTH_ID, "op": "auth",
                             "args": auth_args(self._key, self._secret, timestamp_ms)}).decode()
        return SignedRequest("WS", "", {}, 0, "logon", False, body, "ws", AUTH_ID, timestamp_ms)

    def ws_subscribe_user(self, timestamp_ms: int, request_id: str) -> SignedRequest:
        body = orjson.dumps({"req_id": request_id, "op": "subscribe",
                             "args": list(self.topics)}).decode()
        return SignedRequest("WS", self.user_stream_url(""), {}, 0, "user_stream", False, body,
                             "ws", request_id, timestamp_ms)

    def ws_ping_frame(self) -> str:
        return '{"op":"ping"}'

    def _trade(self, op: str, kind: str, params: dict[str, Any], timestamp_ms: int,
               request_id: str, counts_order: bool = False) -> SignedRequest:
        """``{"reqId":"r7","header":{"X-BAPI-TIMESTAMP":"..","X-BAPI-RECV-WINDOW":"5000"},
        "op":"order.create","args":[{...}]}`` (one order per frame)."""
        body = orjson.dumps({"reqId": request_id, "header": {
            "X-BAPI-TIMESTAMP": str(timestamp_ms), "X-BAPI-RECV-WINDOW": str(RECV_WINDOW_MS)},
            "op": op, "args": [params]}).decode()
        return SignedRequest("WS", self._ws_api_url, {}, 1, kind, counts_order, body, "ws",
                             request_id, timestamp_ms)

    def ws_new_order(self, spec: OrderSpec, timestamp_ms: int, request_id: str) -> SignedRequest:
        return self._trade("order.create", "new_order", self._order_params(spec), timestamp_ms,
                           request_id, True)

    def ws_cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int,
                        request_id: str) -> SignedRequest:
        return self._trade("order.cancel", "cancel_order", self._ref(pair, client_order_id),
                           timestamp_ms, request_id)

    def parse_ws(self, frame: str | bytes, recv_ns: int) -> WsMessage:
        """An answer on the trade socket or the private stream, or a push; never raises."""
        try:
            msg = parse_json(frame)
        except orjson.JSONDecodeError as exc:
            return WsMessage(error=f"not JSON: {exc}: {str(frame)[:200]}")
        if not isinstance(msg, dict):
            return WsMessage(error=f"not an object: {str(frame)[:200]}")
        if "topic" in msg:
            return WsMessage(event=self._push(msg, recv_ns))
        try:
            answer = op_answer(msg)
        except (TypeError, ValueError) as exc:
            return WsMessage(error=f"unreadable answer: {exc}: {str(frame)[:200]}")
        if answer is None:
            return WsMessage()  # pong
        request_id, reply = answer
        if msg.get("op") == "auth":
            request_id = AUTH_ID
        if not request_id:
            return WsMessage(error=f"answer without reqId: {str(frame)[:200]}")
        return WsMessage(request_id=request_id, reply=reply)

    # --------------------------------------------------------- replies

    def classify(self, status: int, body: bytes | str, headers: dict[str, str]) -> Reply:
        """``{"retCode":110001,"retMsg":"Order does not exist.","result":{},"time":..}``."""
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        return classify_answer(status, data, headers)

    def complete(self, request: SignedRequest, reply: Reply) -> Reply:
        """An acknowledgement (create, cancel) names only the ids: the request's
        symbol, side, price and quantity go beside them for ``order_update``.
        A lookup that finds no order is "not found" (proves absence only after
        the recv window, like any venue's)."""
        if reply.kind != ReplyKind.OK or request.kind not in ("new_order", "cancel_order",
                                                               "query_order"):
            return reply
        if request.kind == "query_order":
            rows = reply.body.get("list") if isinstance(reply.body, dict) else None
            if not rows:
                return Reply(ReplyKind.REJECTED, reply.status, reply.body, message=
                             "order not found", usage=reply.usage, not_found=True)
            return reply
        sent = orjson.loads(request.body)
        params = sent["args"][0] if "args" in sent else sent
        ack = reply.body if isinstance(reply.body, dict) else {}
        return Reply(reply.kind, reply.status, {**params, **ack, "ack": request.kind},
                     usage=reply.usage)

    def order_list(self, body: Any) -> list[Any]:
        return list(body.get("list") or []) if isinstance(body, dict) else []

    def order_update(self, body: Any, recv_ns: int) -> OrderUpdate:
        """An order row (query, open orders, the ``order`` push)::

            {"orderId":"fd4300ae-7847-404e-b947-b46980a4d140","orderLinkId":"E7-1a-3",
             "symbol":"ETHUSDT","price":"1600.00","qty":"0.10","side":"Buy",
             "orderStatus":"PartiallyFilled","cumExecQty":"0.05","cumExecValue":"80",
             "avgPrice":"1600","cumExecFee":"0.044","timeInForce":"PostOnly",
             "rejectReason":"EC_NoError","updatedTime":"1684476068372","category":"spot"}

        A query answer's ``{"list":[row]}`` or an acknowledgement (request
        params + ``orderId``: still NEW as far as we know) are taken too."""
        data = body
        if isinstance(data, dict) and "list" in data:
            data = data["list"][0]
        if data.get("ack"):  # create / cancel acknowledged: the stream says what happened
            return OrderUpdate(self.venue, self.market, self.pair(data["symbol"]),
                               data["orderLinkId"], str(data.get("orderId", "")),
                               OrderStatus.NEW, SIDES.get(data.get("side", ""), Side.BUY),
                               data.get("price", "0"), data.get("qty", "0"), "0", "0",
                               recv_ns=recv_ns)
        status = STATUS.get(data.get("orderStatus", ""), OrderStatus.NEW)
        if data.get("rejectReason") == POST_ONLY_REJECT and status != OrderStatus.FILLED:
            status = OrderStatus.REJECTED
        filled = Decimal(data.get("cumExecQty") or "0")
        average = data.get("avgPrice") or "0"
        if filled > 0 and Decimal(average) == 0 and data.get("cumExecValue"):
            average = str(Decimal(data["cumExecValue"]) / filled)
        return OrderUpdate(self.venue, self.market, self.pair(data["symbol"]),
                           data.get("orderLinkId", ""), str(data["orderId"]), status,
                           SIDES[data["side"]], data.get("price", "0"), data.get("qty", "0"),
                           str(filled), average, data.get("cumExecFee") or "0",
                           data.get("feeCurrency") or "", int(data.get("seq") or 0),
                           int(data.get("updatedTime") or 0) * MS, recv_ns)

    def fee_asset(self, row: dict) -> str:
        """Spot fees are in ``feeCurrency``; linear USDT perpetuals settle in the quote."""
        return str(row.get("feeCurrency") or self.pair(row["symbol"]).split("/")[1])

    def _fill(self, row: dict) -> Fill:
        """An execution row (REST list or the ``execution`` push)::

            {"category":"linear","symbol":"BTCUSDT","execFee":"0.0264","execId":"0ab1..",
             "execPrice":"95900.1","execQty":"0.5","execType":"Trade","orderId":"9aac..",
             "orderLinkId":"E7-1a-3","side":"Sell","execTime":"1746270400353",
             "isMaker":false,"execPnl":"0.05","feeCurrency":""}

        ``BustTrade`` (liquidation) and ``AdlTrade`` (auto-deleveraging) are
        the venue closing our position, not our order: flagged."""
        forced = row.get("execType") in ("BustTrade", "AdlTrade")
        return Fill(self.venue, self.market, self.pair(row["symbol"]),
                    row.get("orderLinkId") or "", str(row["orderId"]), str(row["execId"]),
                    SIDES[row["side"]], row["execPrice"], row["execQty"],
                    row.get("execFee") or "0", self.fee_asset(row), bool(row.get("isMaker")),
                    int(row.get("execTime") or 0) * MS,
                    str(row.get("execPnl", "")) if self.has_positions else "",
                    self.position_side_of(row), forced)

    def position_side_of(self, row: dict) -> str:
        return ""

    def fills(self, body: Any) -> list[Fill]:
        return [self._fill(r) for r in self.order_list(body)
                if r.get("execType", "Trade") in ("Trade", "BustTrade", "AdlTrade")]

    def fills_cursor(self, body: Any) -> str | None:
        """``nextPageCursor`` while the page was full; None on the last page."""
        if not isinstance(body, dict) or len(body.get("list") or []) < self.fills_page:
            return None
        return str(body.get("nextPageCursor") or "") or None

    def balances(self, body: Any) -> dict[str, tuple[str, str]]:
        """wallet-balance ``{"list":[{"accountType":"UNIFIED","coin":[{"coin":"USDT",
        "walletBalance":"1000","locked":"10"}]}]}``: coin -> (wallet - locked, locked)."""
        out = {}
        for account in self.order_list(body):
            for c in account.get("coin", []):
                wallet, locked = Decimal(c.get("walletBalance") or "0"), \
                    Decimal(c.get("locked") or "0")
                out[c["coin"]] = (str(wallet - locked), str(locked))
        return out

    def server_time_ms(self, body: Any) -> int | None:
        """/v5/market/time ``{"timeSecond":"1688639403","timeNano":"1688639403423213947"}``."""
        if isinstance(body, dict) and str(body.get("timeNano", "")).isdigit():
            return int(body["timeNano"]) // 1_000_000
        return None

    def instrument_rules(self, body: Any) -> dict[str, InstrumentRules]:
        """instruments-info rows; spot::

            {"symbol":"BTCUSDT","baseCoin":"BTC","quoteCoin":"USDT","status":"Trading",
             "lotSizeFilter":{"basePrecision":"0.000001","quotePrecision":"0.00000001",
             "minOrderQty":"0.000048","maxOrderQty":"71.73956243","minOrderAmt":"1",
             "maxOrderAmt":"2000000"},"priceFilter":{"tickSize":"0.01"}}

        linear: ``lotSizeFilter`` has ``qtyStep``, ``minOrderQty``, ``maxOrderQty``,
        ``minNotionalValue``."""
        out = {}
        for info in self.order_list(body):
            if info.get("status", "Trading") != "Trading":
                continue
            lot, price = info.get("lotSizeFilter") or {}, info.get("priceFilter") or {}
            step = lot.get("qtyStep") or lot.get("basePrecision")
            if not step or not price.get("tickSize"):
                continue
            pair = f"{info['baseCoin']}/{info['quoteCoin']}"
            out[pair] = InstrumentRules(
                pair, info["symbol"], info["baseCoin"], info["quoteCoin"], price["tickSize"],
                step, lot.get("minOrderQty") or "0", lot.get("maxOrderQty") or "0",
                lot.get("minNotionalValue") or lot.get("minOrderAmt") or "0")
        return out

    def rate_limits(self, body: Any) -> list[RateLimitRule]:
        return []  # instruments-info states none: the documented defaults hold

    # ---------------------------------------------------- private stream

    def parse_user(self, frame: str | bytes, recv_ns: int) -> UserEvent:
        message = self.parse_ws(frame, recv_ns)
        if message.error:
            return UserEvent(error=message.error)
        return message.event or UserEvent()

    def _push(self, msg: dict, recv_ns: int) -> UserEvent:
        """``{"id":"..","topic":"order","creationTime":1672364262474,"data":[row, ...]}``;
        rows of another category (the account-wide topics carry all) are skipped."""
        try:
            topic = str(msg["topic"]).split(".")[0]
            rows = [r for r in msg.get("data") or [] if isinstance(r, dict)]
            mine = [r for r in rows if r.get("category", self.category) == self.category]
            event = UserEvent()
            if topic == "order":
                for row in mine:
                    update = self.order_update(row, recv_ns)
                    event.updates.append(update)
                    if update.status == OrderStatus.REJECTED and \
                            row.get("rejectReason") == POST_ONLY_REJECT:
                        event.would_take.append(update.client_order_id)
            elif topic == "execution":
                event.fills = [self._fill(r) for r in mine
                               if r.get("execType") in ("Trade", "BustTrade", "AdlTrade")]
                event.funding_due = any(r.get("execType") == "Funding" for r in mine)
            elif topic == "wallet":
                event.balances = self.balances({"list": rows})
            else:
                self._other_push(topic, mine, event)
            return event
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the stream
            return UserEvent(error=f"{type(exc).__name__}: {exc}")

    def _other_push(self, topic: str, rows: list[dict], event: UserEvent) -> None:
        """Topics only a subclass reads (``position`` on linear)."""


class BybitSpotTrade(BybitTrade):
    """One Bybit unified account's spot trading."""

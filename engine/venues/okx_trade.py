"""OKX v5 spot trading driver (the TradingDriver contract, engine/model_trade.py),
Sans-I/O: signed REST requests (/api/v5/trade/*, /api/v5/account/*), the
private WebSocket (``login``, channel ``orders``, and the ``order`` /
``cancel-order`` operations as the fast path), the classification of every
answer by OKX's codes, and order/fill pushes as venue-neutral events. Never
opens a socket, never reads a clock, never formats a float. SWAP: okx_trade_swap.py.

API docs: https://www.okx.com/docs-v5/en/ (REST authentication, Trade: place /
cancel / order details / pending orders / fills, Account: balance, Public data:
instruments and time, WebSocket: login, orders channel, place/cancel order,
error codes); changelog https://www.okx.com/docs-v5/log_en. Facts cited in
docs/venues/okx.md "Trading".
"""

from __future__ import annotations

from collections import OrderedDict
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
    SignedRequest,
    TradingDriver,
    TradingEndpoints,
    UserEvent,
    WsMessage,
)
from engine.venues.okx_trade_wire import (
    SocketEvents,
    classify_envelope,
    first_row,
    login_args,
    our_client_id,
    rest_headers,
    rows,
    wire_client_id,
)

MS = 1_000_000
# expTime sent with every signed order call: OKX drops a request still queued
# past it, so an uncertain order is provably dead afterwards (the executor's
# proof before a resend). Shorter resolves uncertain orders sooner but fails
# more sends on a slow link; OKX's own timestamp check allows 30 s.
RECV_WINDOW_MS = 5000

# OKX limits each endpoint on its own (requests per 2 s, by user id or IP); the
# shared limiter has one budget, so each endpoint costs 60 / its limit of a
# 60-per-2-s budget and no endpoint can exceed its own limit. Place / cancel /
# order details / pending orders / fills: 60 per 2 s; balance, positions, bills,
# time: 10 per 2 s; instruments, set-leverage: 20 per 2 s; position mode 5 per 2 s.
WEIGHTS = {"new_order": 1, "cancel_order": 1, "query_order": 1, "open_orders": 1,
           "my_trades": 1, "account": 6, "exchange_info": 3, "time": 6, "user_stream": 1,
           "logon": 1, "positions": 6, "income": 6, "leverage": 3, "margin_type": 3,
           "position_mode": 12}
OKX_RATE_LIMITS = (RateLimitRule(RateLimitKind.REQUEST_WEIGHT, 2, 60),
                   RateLimitRule(RateLimitKind.ORDERS, 2, 60),  # place: per instrument
                   RateLimitRule(RateLimitKind.ORDERS, 2, 1000))  # per sub-account
# Requests the driver remembers so a bare acknowledgement ({ordId, clOrdId,
# sCode}) can be turned into an order update. Larger holds more in-flight
# orders; an ack of a forgotten one still settles (pair/side then blank).
SENT_MEMO = 8192
POST_ONLY_CANCEL_SOURCE = "31"  # "the post-only order will take liquidity"

_STATUS = {"live": OrderStatus.NEW, "partially_filled": OrderStatus.PARTIALLY_FILLED,
           "filled": OrderStatus.FILLED, "canceled": OrderStatus.CANCELED,
           "mmp_canceled": OrderStatus.CANCELED}
SIDES = {"buy": Side.BUY, "sell": Side.SELL}
_LIQUIDATION = frozenset({"full_liquidation", "partial_liquidation", "adl"})


def _neg(value: Any) -> str:
    """OKX fees are negative when charged; ours are positive (a rebate < 0)."""
    text = str(value or "0")
    return str(-Decimal(text)) if text not in ("", "0") else "0"


class OkxSpotTrade(TradingDriver):
    """One OKX account's spot trading (tdMode ``cash``)."""

    venue = "okx"
    exchange: ClassVar[str] = "okx"
    market = Market.SPOT
    inst_type: ClassVar[str] = "SPOT"
    supports_amend = False  # amend-order keeps the ordId; our amend is cancel-replace
    ws_api = True  # order / cancel-order on the private socket
    ws_api_queries = False  # OKX's socket has no order-status op: lookups go over REST
    user_stream = "ws_api"  # login + subscribe on the same private socket
    needs_passphrase = True
    # OKX closes a socket silent for 30 s: a text "ping" (answered "pong") this
    # often. Shorter costs frames; longer nears the venue's cut-off.
    ws_ping_s = 20.0
    recv_window_ms = RECV_WINDOW_MS
    fills_page = 100  # /trade/fills returns at most 100 rows
    default_rate_limits = OKX_RATE_LIMITS

    def __init__(self, endpoints: TradingEndpoints, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None, passphrase: str = "",
                 demo: bool = False) -> None:
        super().__init__(endpoints, api_key, api_secret, symbols)
        self.rest_base = (endpoints.rest or "https://www.okx.com").rstrip("/")
        ws = (endpoints.ws or "").rstrip("/")
        local = ws and "okx.com" not in ws
        self._ws_url = endpoints.ws_api or (f"{ws.removesuffix('/ws/v5/public')}/ws/v5/private"
                                            if local else "wss://ws.okx.com:8443/ws/v5/private")
        self._key, self._secret, self._passphrase = api_key, api_secret.encode(), passphrase
        self.demo = demo  # OKX demo trading: x-simulated-trading: 1
        self._pairs = {s: p for p, s in self._symbols.items()}
        self._sent: OrderedDict[str, tuple[str, Side, str, str]] = OrderedDict()
        self._codes: dict[str, int] = {}  # instId -> instIdCode (WS order ops since 2026-03)
        self._events = SocketEvents()  # login / subscribe answers matched to their ids

    # ---------------------------------------------------------- naming

    def symbol(self, pair: str) -> str:
        return self._symbols.get(pair) or pair.replace("/", "-").upper()

    def pair(self, symbol: str) -> str:
        if symbol in self._pairs:
            return self._pairs[symbol]
        parts = symbol.split("-")
        return f"{parts[0]}/{parts[1]}" if len(parts) >= 2 else symbol

    def size(self, pair: str, quantity: str) -> str:
        """Base quantity -> OKX ``sz`` (spot: the same)."""
        return quantity

    def base_quantity(self, inst_id: str, size: str) -> str:
        """OKX ``sz``/``fillSz``/``accFillSz`` -> base quantity (spot: the same)."""
        return size or "0"

    def td_mode(self) -> str:
        return "cash"

    # ------------------------------------------------------------ REST

    def _rest(self, method: str, path: str, kind: str, params: dict[str, Any],
              timestamp_ms: int, counts_order: bool = False) -> SignedRequest:
        body = ""
        if method == "GET":
            path = f"{path}?{urlencode(params)}" if params else path
        else:
            body = orjson.dumps(params).decode()
        headers = rest_headers(self._key, self._secret, self._passphrase, timestamp_ms, method,
                               path, body, self.demo)
        if kind in ("new_order", "cancel_order"):
            headers["expTime"] = str(timestamp_ms + RECV_WINDOW_MS)
        return SignedRequest(method, f"{self.rest_base}{path}", headers, WEIGHTS[kind], kind,
                             counts_order, body, timestamp_ms=timestamp_ms)

    def order_args(self, spec: OrderSpec) -> dict[str, Any]:
        """``{"instId","tdMode","side","ordType","px","sz","clOrdId"}``: ``post_only``
        (a maker-only limit), ``limit`` (GTC), ``ioc`` or ``fok``."""
        order_type = "post_only" if spec.post_only else {
            "GTC": "limit", "IOC": "ioc", "FOK": "fok"}[spec.time_in_force.value]
        cl_ord_id = wire_client_id(spec.client_order_id)
        self._sent[spec.client_order_id] = (spec.pair, spec.side, spec.price, spec.quantity)
        while len(self._sent) > SENT_MEMO:
            self._sent.popitem(last=False)
        return {"instId": self.symbol(spec.pair), "tdMode": self.td_mode(),
                "side": spec.side.value, "ordType": order_type, "px": spec.price,
                "sz": self.size(spec.pair, spec.quantity), "clOrdId": cl_ord_id}

    def new_order(self, spec: OrderSpec, timestamp_ms: int) -> SignedRequest:
        return self._rest("POST", "/api/v5/trade/order", "new_order", self.order_args(spec),
                          timestamp_ms, True)

    def query_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._rest("GET", "/api/v5/trade/order", "query_order",
                          {"instId": self.symbol(pair),
                           "clOrdId": wire_client_id(client_order_id)}, timestamp_ms)

    def cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._rest("POST", "/api/v5/trade/cancel-order", "cancel_order",
                          {"instId": self.symbol(pair),
                           "clOrdId": wire_client_id(client_order_id)}, timestamp_ms)

    def open_orders(self, pair: str, timestamp_ms: int) -> SignedRequest:
        return self._rest("GET", "/api/v5/trade/orders-pending", "open_orders",
                          {"instType": self.inst_type, "instId": self.symbol(pair)}, timestamp_ms)

    def my_trades(self, pair: str, timestamp_ms: int, cursor: str | None = None,
                  start_ms: int | None = None, limit: int = 100) -> SignedRequest:
        """/trade/fills (3 days), newest first; ``after`` = a billId pages to older rows."""
        params: dict[str, Any] = {"instType": self.inst_type, "instId": self.symbol(pair),
                                  "limit": str(min(limit, self.fills_page))}
        if start_ms is not None:
            params["begin"] = str(start_ms)
        if cursor is not None:
            params["after"] = cursor
        return self._rest("GET", "/api/v5/trade/fills", "my_trades", params, timestamp_ms)

    def account(self, timestamp_ms: int) -> SignedRequest:
        return self._rest("GET", "/api/v5/account/balance", "account", {}, timestamp_ms)

    def exchange_info(self, pairs: Sequence[str]) -> SignedRequest:
        """Every instrument of the type (one instId per call otherwise)."""
        return SignedRequest("GET", f"{self.rest_base}/api/v5/public/instruments?"
                             f"{urlencode({'instType': self.inst_type})}", {},
                             WEIGHTS["exchange_info"], "exchange_info")

    def server_time(self) -> SignedRequest:
        return SignedRequest("GET", f"{self.rest_base}/api/v5/public/time", {}, WEIGHTS["time"],
                             "time")

    # --------------------------------------------------- private socket

    def ws_api_url(self) -> str:
        return self._ws_url

    def ws_ping_frame(self) -> str:
        return "ping"

    def _ws(self, op: str, kind: str, args: list[dict[str, Any]], timestamp_ms: int,
            request_id: str, counts_order: bool = False, expires: bool = False) -> SignedRequest:
        message: dict[str, Any] = {"id": request_id, "op": op, "args": args}
        if expires:
            message["expTime"] = str(timestamp_ms + RECV_WINDOW_MS)
        return SignedRequest("WS", self._ws_url, {}, WEIGHTS[kind], kind, counts_order,
                             orjson.dumps(message).decode(), "ws", request_id, timestamp_ms)

    def ws_logon(self, timestamp_ms: int, request_id: str) -> SignedRequest | None:
        """``{"op":"login","args":[{"apiKey","passphrase","timestamp","sign"}]}``; the
        answer ``{"event":"login","code":"0"}`` names no id, so it is matched to this one."""
        self._events.login_sent(request_id)
        return self._ws("login", "logon", [login_args(self._key, self._secret, self._passphrase,
                                                      timestamp_ms)], timestamp_ms, request_id)

    def user_channels(self) -> list[dict[str, str]]:
        return [{"channel": "orders", "instType": self.inst_type}]

    def ws_subscribe_user(self, timestamp_ms: int, request_id: str) -> SignedRequest:
        """One ack per channel (``{"id","event":"subscribe","arg":{...}}``): the
        answer is the last of them, or the first error."""
        args = self.user_channels()
        self._events.subscribe_sent(request_id, len(args))
        return self._ws("subscribe", "user_stream", args, timestamp_ms, request_id)

    def _ws_instrument(self, pair: str) -> dict[str, Any]:
        """Since 2026-03-26 OKX's WS order ops name the instrument by numeric
        ``instIdCode`` (from the instruments endpoint); instId where none is known."""
        inst_id = self.symbol(pair)
        code = self._codes.get(inst_id)
        return {"instIdCode": code} if code is not None else {"instId": inst_id}

    def ws_new_order(self, spec: OrderSpec, timestamp_ms: int, request_id: str) -> SignedRequest:
        args = self.order_args(spec)
        args = {**self._ws_instrument(spec.pair), **{k: v for k, v in args.items()
                                                      if k != "instId"}}
        return self._ws("order", "new_order", [args], timestamp_ms, request_id, True, True)

    def ws_cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int,
                        request_id: str) -> SignedRequest:
        return self._ws("cancel-order", "cancel_order", [{
            **self._ws_instrument(pair), "clOrdId": wire_client_id(client_order_id)}],
            timestamp_ms, request_id, expires=True)

    def parse_ws(self, frame: str | bytes, recv_ns: int) -> WsMessage:
        """An op answer ``{"id":"r7","op":"order","code":"1","msg":"","data":[{"clOrdId",
        "ordId","sCode":"51008","sMsg":"..."}]}``, a login / subscribe / error event,
        a push ``{"arg":{"channel":"orders",...},"data":[...]}``, or ``pong``."""
        if frame in ("pong", b"pong"):
            return WsMessage()
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            return WsMessage(error=f"not JSON: {exc}: {str(frame)[:200]}")
        if not isinstance(msg, dict):
            return WsMessage(error=f"not an object: {str(frame)[:200]}")
        if msg.get("event") is not None:
            return self._events.answer(msg)
        if "op" in msg and "id" in msg:
            return WsMessage(request_id=str(msg["id"]), reply=classify_envelope(200, msg))
        if "arg" in msg and "data" in msg:
            return WsMessage(event=self._push(msg, recv_ns))
        return WsMessage(error=f"neither answer nor push: {str(frame)[:200]}")

    # --------------------------------------------------------- replies

    def classify(self, status: int, body: bytes | str, headers: dict[str, str]) -> Reply:
        """``{"code":"1","msg":"Operation failed.","data":[{"sCode":"51008",...}]}``."""
        lower = {k.lower(): v for k, v in headers.items()}
        retry_after = lower.get("retry-after", "")
        retry_s = float(retry_after) if retry_after.replace(".", "", 1).isdigit() else None
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        return classify_envelope(status, data, retry_s)

    def order_update(self, body: Any, recv_ns: int) -> OrderUpdate:
        """An order row (order details, pending orders, a push)::

            {"instId":"BTC-USDT","ordId":"312269865356374016","clOrdId":"E7XA1aXA3",
             "px":"30000","sz":"0.01","side":"buy","ordType":"post_only","state":"live",
             "accFillSz":"0","avgPx":"","fee":"0","feeCcy":"BTC","uTime":"1597026383085"}

        or a bare acknowledgement of a place / cancel ``{"ordId","clOrdId","sCode":"0"}``
        (state unknown yet: reported live; the orders channel brings the rest)."""
        row = first_row(body)
        client_id = our_client_id(str(row.get("clOrdId", "")))
        if "state" not in row:
            pair, side, price, quantity = self._sent.get(client_id, ("", Side.BUY, "0", "0"))
            return OrderUpdate(self.venue, self.market, pair, client_id, str(row.get("ordId", "")),
                               OrderStatus.NEW, side, price, quantity, "0", "0",
                               exch_ns=int(row.get("ts") or 0) * MS, recv_ns=recv_ns)
        return self._update(row, recv_ns)

    def _status(self, row: dict) -> OrderStatus:
        if row.get("state") == "canceled" and \
                str(row.get("cancelSource", "")) == POST_ONLY_CANCEL_SOURCE:
            return OrderStatus.EXPIRED  # post-only would have taken: ended by the venue
        return _STATUS.get(str(row.get("state")), OrderStatus.NEW)

    def _update(self, row: dict, recv_ns: int) -> OrderUpdate:
        inst_id = str(row["instId"])
        filled = self.base_quantity(inst_id, str(row.get("accFillSz") or "0"))
        trade_id = str(row.get("tradeId") or "")
        return OrderUpdate(self.venue, self.market, self.pair(inst_id),
                           our_client_id(str(row.get("clOrdId", ""))), str(row["ordId"]),
                           self._status(row), SIDES[str(row["side"])], str(row.get("px") or "0"),
                           self.base_quantity(inst_id, str(row.get("sz") or "0")), filled,
                           str(row.get("avgPx") or "0"), _neg(row.get("fee")),
                           str(row.get("feeCcy") or ""),
                           int(trade_id) if trade_id.isdigit() else 0,
                           int(row.get("uTime") or row.get("cTime") or 0) * MS, recv_ns)

    def order_list(self, body: Any) -> list[Any]:
        return rows(body)

    def fills(self, body: Any) -> list[Fill]:
        """/trade/fills rows (clOrdId included)::

            {"instId":"BTC-USDT","tradeId":"123","ordId":"312","clOrdId":"E7XA1aXA3",
             "billId":"1111","fillPx":"30000","fillSz":"0.01","side":"buy","execType":"M",
             "fee":"-0.00001","feeCcy":"BTC","ts":"1597026383085"}"""
        return [self._fill(r, str(r.get("fillPx")), str(r.get("fillSz")), r.get("fee"),
                           str(r.get("feeCcy") or ""), int(r.get("ts") or 0) * MS)
                for r in rows(body)]

    def _fill(self, r: dict, price: str, size: str, fee: Any, fee_asset: str,
              exch_ns: int) -> Fill:
        inst_id = str(r["instId"])
        return Fill(self.venue, self.market, self.pair(inst_id),
                    our_client_id(str(r.get("clOrdId") or "")), str(r["ordId"]),
                    str(r["tradeId"]), SIDES[str(r["side"])], price,
                    self.base_quantity(inst_id, size), _neg(fee), fee_asset,
                    r.get("execType") == "M", exch_ns, str(r.get("fillPnl") or ""),
                    self.fill_position_side(r),
                    str(r.get("category", "")) in _LIQUIDATION)

    def fill_position_side(self, row: dict) -> str:
        return ""

    def fills_cursor(self, body: Any) -> str | None:
        """The oldest billId of a full page: the next page is older than it."""
        page = rows(body)
        if len(page) < self.fills_page:
            return None
        return str(min(int(r["billId"]) for r in page))

    def balances(self, body: Any) -> dict[str, tuple[str, str]]:
        """/account/balance ``data[0].details[{ccy, availBal, frozenBal}]``."""
        return {d["ccy"]: (str(d.get("availBal") or d.get("cashBal") or "0"),
                           str(d.get("frozenBal") or "0"))
                for d in first_row(body).get("details", [])}

    def server_time_ms(self, body: Any) -> int | None:
        ts = str(first_row(body).get("ts") or "")
        return int(ts) if ts.isdigit() else None

    def instrument_rules(self, body: Any) -> dict[str, InstrumentRules]:
        """/public/instruments rows ``{"instId":"BTC-USDT","baseCcy":"BTC","quoteCcy":
        "USDT","tickSz":"0.1","lotSz":"0.00000001","minSz":"0.00001","maxLmtSz":
        "9999999999","state":"live","instIdCode":1}``."""
        out = {}
        for r in rows(body):
            if r.get("state", "live") != "live" or not r.get("baseCcy"):
                continue
            self._remember_code(r)
            pair = self.pair(str(r["instId"]))
            out[pair] = InstrumentRules(pair, str(r["instId"]), str(r["baseCcy"]),
                                        str(r["quoteCcy"]), str(r["tickSz"]), str(r["lotSz"]),
                                        str(r.get("minSz") or "0"), str(r.get("maxLmtSz") or "0"))
        return out

    def _remember_code(self, row: dict) -> None:
        code = str(row.get("instIdCode") or "")
        if code.isdigit():
            self._codes[str(row["instId"])] = int(code)

    def rate_limits(self, body: Any) -> list[RateLimitRule]:
        return []  # OKX publishes its limits per endpoint in the docs only

    # ------------------------------------------------------ private data

    def parse_user(self, frame: str | bytes, recv_ns: int) -> UserEvent:
        message = self.parse_ws(frame, recv_ns)
        return message.event or UserEvent(error=message.error)

    def _push(self, msg: dict, recv_ns: int) -> UserEvent:
        """A channel push; never raises (a bad row comes back as ``error``)."""
        try:
            channel = str(msg["arg"].get("channel"))
            if channel == "orders":
                return self._orders_push(msg["data"], recv_ns)
            return self.other_push(channel, msg["data"], recv_ns)
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the stream
            return UserEvent(error=f"{type(exc).__name__}: {exc}")

    def other_push(self, channel: str, data: list, recv_ns: int) -> UserEvent:
        return UserEvent()

    def _orders_push(self, data: list, recv_ns: int) -> UserEvent:
        """orders channel rows: the order row plus the latest fill (``tradeId``,
        ``fillPx``, ``fillSz``, ``fillFee``, ``fillFeeCcy``, ``fillTime``, ``execType``).
        A liquidation (``category`` full/partial_liquidation, adl) is not our order."""
        event = UserEvent()
        for row in data:
            liquidation = str(row.get("category", "")) in _LIQUIDATION
            if not liquidation:
                update = self._update(row, recv_ns)
                event.updates.append(update)
                if update.status == OrderStatus.EXPIRED:  # post-only canceled: would take
                    event.would_take.append(update.client_order_id)
            if row.get("tradeId") and Decimal(str(row.get("fillSz") or "0")) > 0:
                event.fills.append(self._fill(
                    row, str(row.get("fillPx")), str(row.get("fillSz")), row.get("fillFee"),
                    str(row.get("fillFeeCcy") or ""),
                    int(row.get("fillTime") or row.get("uTime") or 0) * MS))
        return event

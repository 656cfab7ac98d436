"""Binance USD-M futures trading driver (the TradingDriver contract,
engine/model_trade.py), Sans-I/O: signed /fapi requests (LIMIT orders with GTX
post-only, reduce-only and hedge-mode position sides; queries, cancels,
positions, funding income, leverage, margin type, position mode, listenKeys),
their ``ws-fapi`` WebSocket API twins, the classification of every answer, and
the user stream's ORDER_TRADE_UPDATE / ACCOUNT_UPDATE / MARGIN_CALL frames as
order updates, fills (liquidations flagged), position reports and warnings.
Never opens a socket, never reads a clock, never formats a float.

Facts and sources: docs/venues/binance.md "USD-M futures trading".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import orjson

from engine.model import Market, OrderStatus, OrderUpdate, Side
from engine.model_trade import (
    Fill,
    FundingFee,
    InstrumentRules,
    MarginType,
    OrderSpec,
    PositionMode,
    PositionReport,
    PositionSide,
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
from engine.venues.binance_trade import (
    RECV_WINDOW_MS,
    SIDES,
    _pair,
    classify_answer,
    hmac_hex,
    parse_rate_limits,
    rate_limit_usage,
    symbol_of,
    ws_rate_limit_usage,
    ws_signed_params,
)

EXCHANGE = "binance"
MS = 1_000_000

# Request weights (IP, per minute) from the USD-M REST pages. A new order costs
# 0 IP weight and 1 on each ORDERS window (the executor's order token).
WEIGHTS = {"new_order": 0, "query_order": 1, "cancel_order": 1, "open_orders": 1,
           "my_trades": 5, "account": 5, "exchange_info": 1, "user_stream": 1, "time": 1,
           "positions": 5, "income": 30, "leverage": 1, "margin_type": 1, "position_mode": 1}
# exchangeInfo.rateLimits of the live venue (protocols README section 2).
USDM_RATE_LIMITS = (RateLimitRule(RateLimitKind.REQUEST_WEIGHT, 60, 2400),
                    RateLimitRule(RateLimitKind.ORDERS, 10, 300),
                    RateLimitRule(RateLimitKind.ORDERS, 60, 1200))

GTX_REJECT = -5022  # a post-only (GTX) order that would take: nothing was created
# "No need to change margin type." / "No need to change position side.": already so.
NO_CHANGE = frozenset({-4046, -4059})
_STATUS = {"NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
           "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
           "REJECTED": OrderStatus.REJECTED, "EXPIRED": OrderStatus.EXPIRED,
           "EXPIRED_IN_MATCH": OrderStatus.EXPIRED}
_POSITION_SIDE = {"BOTH": PositionSide.BOTH, "LONG": PositionSide.LONG,
                  "SHORT": PositionSide.SHORT}


def _liquidation(client_id: str, order_type: str) -> bool:
    """The venue's own closing orders: ``autoclose-*`` (liquidation), ``adl_autoclose``
    (auto-deleveraging), order type LIQUIDATION."""
    return client_id.startswith(("autoclose-", "adl_autoclose")) or order_type == "LIQUIDATION"


def _margin(value: Any) -> MarginType | None:
    text = str(value or "").lower()
    return MarginType.ISOLATED if text == "isolated" else \
        MarginType.CROSS if text in ("cross", "crossed") else None


class BinanceUsdmTrade(TradingDriver):
    """One Binance USD-M futures account. ``position_mode`` must match the
    account's (the trader sets it at start): hedge mode sends LONG/SHORT."""

    venue = "binance_futures"  # the trading venue id (orders, fills, positions)
    exchange = EXCHANGE  # market data: futures books of this exchange
    market = Market.FUTURES
    supports_amend = False  # no cancelReplace on USD-M: the executor cancels, then places
    ws_api = True  # ws-fapi order.place / order.cancel / order.status
    user_stream = "listen_key"  # USD-M user data is still a listenKey stream (/private)
    has_positions = True
    recv_window_ms = RECV_WINDOW_MS
    default_rate_limits = USDM_RATE_LIMITS

    def __init__(self, endpoints: TradingEndpoints, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(endpoints, api_key, api_secret, symbols)
        self.rest_base = (endpoints.rest or "https://fapi.binance.com").rstrip("/")
        self.ws_base = (endpoints.ws or "wss://fstream.binance.com").rstrip("/")
        local = "binance.com" not in self.ws_base
        self._ws_api_url = endpoints.ws_api or (f"{self.ws_base}/ws-fapi/v1" if local else
                                                "wss://ws-fapi.binance.com/ws-fapi/v1")
        self._key = api_key
        self._secret = api_secret.encode()
        self._pairs = {s: p for p, s in self._symbols.items()}
        self.position_mode = PositionMode.ONE_WAY

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

    def position_side(self, spec: OrderSpec) -> str:
        """BOTH in one-way mode. Hedge mode: the order's leg as given, else derived
        (opening buys and closing sells are LONG)."""
        if self.position_mode == PositionMode.ONE_WAY:
            return "BOTH"
        if spec.position_side != PositionSide.BOTH:
            return spec.position_side.value.upper()
        return "LONG" if (spec.side == Side.BUY) != spec.reduce_only else "SHORT"

    def _order_params(self, spec: OrderSpec) -> dict[str, str]:
        """LIMIT; post-only is ``timeInForce=GTX`` (refused -5022 if it would take);
        ``reduceOnly`` only in one-way mode (hedge mode refuses it: the leg says it)."""
        params = {"symbol": self.symbol(spec.pair), "side": spec.side.value.upper(),
                  "positionSide": self.position_side(spec), "type": "LIMIT",
                  "timeInForce": "GTX" if spec.post_only else spec.time_in_force.value,
                  "quantity": spec.quantity, "price": spec.price,
                  "newClientOrderId": spec.client_order_id, "newOrderRespType": "RESULT"}
        if spec.reduce_only and self.position_mode == PositionMode.ONE_WAY:
            params["reduceOnly"] = "true"
        return params

    def new_order(self, spec: OrderSpec, timestamp_ms: int) -> SignedRequest:
        return self._signed("POST", "/fapi/v1/order", "new_order", self._order_params(spec),
                            timestamp_ms, True)

    def query_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/fapi/v1/order", "query_order",
                            {"symbol": self.symbol(pair), "origClientOrderId": client_order_id},
                            timestamp_ms)

    def cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("DELETE", "/fapi/v1/order", "cancel_order",
                            {"symbol": self.symbol(pair), "origClientOrderId": client_order_id},
                            timestamp_ms)

    def open_orders(self, pair: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/fapi/v1/openOrders", "open_orders",
                            {"symbol": self.symbol(pair)}, timestamp_ms)

    def my_trades(self, pair: str, timestamp_ms: int, cursor: str | None = None,
                  start_ms: int | None = None, limit: int = 1000) -> SignedRequest:
        """userTrades: ``fromId`` never with a time; a start at most 7 days back."""
        params = {"symbol": self.symbol(pair), "limit": str(limit)}
        if cursor is not None:
            params["fromId"] = cursor
        elif start_ms is not None:
            params["startTime"] = str(max(start_ms, timestamp_ms - 7 * 86_400_000 + 60_000))
        return self._signed("GET", "/fapi/v1/userTrades", "my_trades", params, timestamp_ms)

    def account(self, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/fapi/v3/account", "account", {}, timestamp_ms)

    def exchange_info(self, pairs: Sequence[str]) -> SignedRequest:
        """USD-M's exchangeInfo takes no symbol filter: every contract comes back."""
        return SignedRequest("GET", f"{self.rest_base}/fapi/v1/exchangeInfo", {},
                             WEIGHTS["exchange_info"], "exchange_info")

    def server_time(self) -> SignedRequest:
        return SignedRequest("GET", f"{self.rest_base}/fapi/v1/time", {}, 1, "time")

    # ------------------------------------------------- futures settings

    def positions(self, timestamp_ms: int, pair: str | None = None) -> SignedRequest:
        params = {"symbol": self.symbol(pair)} if pair else {}
        return self._signed("GET", "/fapi/v3/positionRisk", "positions", params, timestamp_ms)

    def set_leverage(self, pair: str, leverage: int, timestamp_ms: int) -> SignedRequest:
        if not 1 <= leverage <= 125:
            raise ValueError(f"leverage {leverage}: Binance USD-M allows 1..125")
        return self._signed("POST", "/fapi/v1/leverage", "leverage",
                            {"symbol": self.symbol(pair), "leverage": str(leverage)}, timestamp_ms)

    def set_margin_type(self, pair: str, margin: MarginType, timestamp_ms: int) -> SignedRequest:
        return self._signed("POST", "/fapi/v1/marginType", "margin_type",
                            {"symbol": self.symbol(pair), "marginType":
                             "ISOLATED" if margin == MarginType.ISOLATED else "CROSSED"},
                            timestamp_ms)

    def set_position_mode(self, mode: PositionMode, timestamp_ms: int) -> SignedRequest:
        self.position_mode = mode  # what the orders built from now on say
        return self._signed("POST", "/fapi/v1/positionSide/dual", "position_mode",
                            {"dualSidePosition": "true" if mode == PositionMode.HEDGE
                             else "false"}, timestamp_ms)

    def funding_fees(self, timestamp_ms: int, start_ms: int,
                     pair: str | None = None) -> SignedRequest:
        params = {"incomeType": "FUNDING_FEE", "startTime": str(start_ms), "limit": "1000"}
        if pair:
            params["symbol"] = self.symbol(pair)
        return self._signed("GET", "/fapi/v1/income", "income", params, timestamp_ms)

    # ------------------------------------------------ listenKey stream

    def listen_key(self, method: str, key: str = "") -> SignedRequest:
        """POST creates (or returns the live) key, PUT keeps it alive; one key per
        account, so no key parameter."""
        return SignedRequest(method, f"{self.rest_base}/fapi/v1/listenKey",
                             {"X-MBX-APIKEY": self._key}, WEIGHTS["user_stream"], "user_stream")

    def listen_key_of(self, body: Any) -> str:
        if not isinstance(body, dict) or not body.get("listenKey"):
            raise ConnectionError(f"no listenKey in {str(body)[:200]}")
        return str(body["listenKey"])

    def user_stream_url(self, listen_key: str) -> str:
        """Since 2026-04-23 user data lives under ``/private`` (protocols section 0)."""
        return f"{self.ws_base}/private/ws?{urlencode({'listenKey': listen_key})}"

    # -------------------------------------------------- WebSocket API

    def ws_api_url(self) -> str:
        return self._ws_api_url

    def _ws(self, method: str, kind: str, params: dict[str, Any], timestamp_ms: int,
            request_id: str, counts_order: bool = False) -> SignedRequest:
        signed = ws_signed_params({**params, "recvWindow": RECV_WINDOW_MS,
                                   "timestamp": timestamp_ms}, self._key, self._secret)
        body = orjson.dumps({"id": request_id, "method": method, "params": signed}).decode()
        return SignedRequest("WS", self._ws_api_url, {}, WEIGHTS[kind], kind, counts_order,
                             body, "ws", request_id, timestamp_ms)

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

    def parse_ws(self, frame: str | bytes, recv_ns: int) -> WsMessage:
        """``{"id":"7","status":400,"error":{"code":-5022,"msg":"..."},"rateLimits":[...]}``."""
        try:
            msg = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            return WsMessage(error=f"not JSON: {exc}: {str(frame)[:200]}")
        if not isinstance(msg, dict) or "id" not in msg or "status" not in msg:
            return WsMessage(error=f"not a response: {str(frame)[:200]}")
        status = int(msg["status"])
        error = msg.get("error")
        body = error if isinstance(error, dict) else msg.get("result")
        reply = self._classify(status, {} if status == 200 and body is None else body,
                               ws_rate_limit_usage(msg.get("rateLimits")), None)
        return WsMessage(request_id=str(msg["id"]), reply=reply)

    # --------------------------------------------------------- replies

    @staticmethod
    def _classify(status: int, data: Any, usage: dict[str, int],
                  retry_after_s: float | None) -> Reply:
        if isinstance(data, dict) and data.get("code") in NO_CHANGE:
            status, data = 200, {"msg": data.get("msg", "")}  # the setting already holds
        reply = classify_answer(status, data, usage, retry_after_s,
                                would_take_codes=frozenset({GTX_REJECT}))
        if status == 503 and isinstance(data, dict) and "Service Unavailable" in \
                str(data.get("msg", "")):
            reply = dataclasses.replace(reply, kind=ReplyKind.RETRY)  # documented: not executed
        return reply

    def classify(self, status: int, body: bytes | str, headers: dict[str, str]) -> Reply:
        """``{"code":-5022,"msg":"Due to the order could not be executed as maker..."}``."""
        lower = {k.lower(): v for k, v in headers.items()}
        retry_after = lower.get("retry-after")
        retry_s = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() \
            else None
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        return self._classify(status, data, rate_limit_usage(headers), retry_s)

    def order_update(self, body: Any, recv_ns: int) -> OrderUpdate:
        """An order as /fapi REST returns it::

            {"orderId":22542179,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"E7-1a-3",
             "price":"30000","avgPrice":"0.00000","origQty":"0.010","executedQty":"0",
             "cumQuote":"0","timeInForce":"GTX","type":"LIMIT","reduceOnly":false,
             "side":"SELL","positionSide":"BOTH","updateTime":1700000000123}"""
        data = body
        filled = Decimal(data.get("executedQty", "0") or "0")
        average = data.get("avgPrice") or "0"
        if filled > 0 and Decimal(average) == 0 and data.get("cumQuote"):
            average = str(Decimal(data["cumQuote"]) / filled)
        client_id = data.get("origClientOrderId") or data["clientOrderId"]
        exch_ms = data.get("updateTime") or data.get("time") or 0
        return OrderUpdate(self.venue, Market.FUTURES, self.pair(data["symbol"]), client_id,
                           str(data["orderId"]), _STATUS.get(data["status"], OrderStatus.NEW),
                           SIDES[data["side"]], data.get("price", "0"), data.get("origQty", "0"),
                           str(filled), average, exch_ns=int(exch_ms) * MS, recv_ns=recv_ns)

    def fills(self, body: Any) -> list[Fill]:
        """userTrades rows::

            {"buyer":false,"commission":"0.07819010","commissionAsset":"USDT","id":698759,
             "maker":false,"orderId":25851813,"price":"7819.01","qty":"0.002",
             "quoteQty":"15.63802","realizedPnl":"-0.91539999","side":"SELL",
             "positionSide":"SHORT","symbol":"BTCUSDT","time":1569514978020}"""
        return [Fill(self.venue, Market.FUTURES, self.pair(r["symbol"]), "", str(r["orderId"]),
                     str(r["id"]), SIDES[r["side"]], r["price"], r["qty"],
                     str(abs(Decimal(r["commission"]))), r["commissionAsset"], bool(r["maker"]),
                     int(r["time"]) * MS, str(r.get("realizedPnl", "")),
                     _POSITION_SIDE.get(r.get("positionSide", "BOTH"), PositionSide.BOTH).value)
                for r in body]

    def fills_cursor(self, body: Any) -> str | None:
        if not isinstance(body, list) or len(body) < self.fills_page:
            return None
        return str(max(int(row["id"]) for row in body) + 1)

    def balances(self, body: Any) -> dict[str, tuple[str, str]]:
        """GET /fapi/v3/account ``assets``: asset -> (available, wallet - available)."""
        out = {}
        for b in body.get("assets", []) if isinstance(body, dict) else []:
            wallet = Decimal(b.get("walletBalance", "0"))
            free = Decimal(b.get("availableBalance", b.get("walletBalance", "0")))
            out[b["asset"]] = (str(free), str(max(wallet - free, Decimal(0))))
        return out

    def position_reports(self, body: Any) -> list[PositionReport]:
        """positionRisk v3 rows ``{"symbol","positionSide","positionAmt","entryPrice",
        "markPrice","unRealizedProfit","liquidationPrice","isolatedMargin","marginType"?,
        "leverage"?,"updateTime"}`` (only symbols with a position or open orders)."""
        return [PositionReport(
            self.venue, Market.FUTURES, self.pair(r["symbol"]),
            _POSITION_SIDE.get(r.get("positionSide", "BOTH"), PositionSide.BOTH),
            r["positionAmt"], r.get("entryPrice", "0"), r.get("unRealizedProfit", "0"),
            r.get("liquidationPrice", "0") or "0", r.get("markPrice", ""),
            str(r.get("leverage", "")),
            _margin(r.get("marginType")) or (MarginType.ISOLATED if Decimal(
                r.get("isolatedMargin", "0") or "0") else MarginType.CROSS),
            r.get("isolatedMargin", "0") or "0", int(r.get("updateTime", 0) or 0) * MS)
            for r in (body if isinstance(body, list) else [])]

    def funding_list(self, body: Any) -> list[FundingFee]:
        """income rows ``{"symbol","incomeType":"FUNDING_FEE","income":"-0.37",
        "asset":"USDT","time":1570608000000,"tranId":9689322392}``."""
        return [FundingFee(self.venue, Market.FUTURES, self.pair(r["symbol"]), r["income"],
                           r["asset"], int(r["time"]) * MS, str(r.get("tranId", "")))
                for r in (body if isinstance(body, list) else [])
                if r.get("incomeType") == "FUNDING_FEE" and r.get("symbol")]

    def server_time_ms(self, body: Any) -> int | None:
        return int(body["serverTime"]) if isinstance(body, dict) and "serverTime" in body else None

    def instrument_rules(self, body: Any) -> dict[str, InstrumentRules]:
        """PERPETUAL contracts from exchangeInfo::

            {"symbol":"BTCUSDT","contractType":"PERPETUAL","baseAsset":"BTC",
             "quoteAsset":"USDT","filters":[{"filterType":"PRICE_FILTER","tickSize":"0.10"},
             {"filterType":"LOT_SIZE","stepSize":"0.001","minQty":"0.001","maxQty":"1000"},
             {"filterType":"MIN_NOTIONAL","notional":"100"}]}"""
        out = {}
        for info in body.get("symbols", []) if isinstance(body, dict) else []:
            if info.get("contractType", "PERPETUAL") != "PERPETUAL":
                continue
            rules: dict[str, str] = {}
            for f in info.get("filters", []):
                kind = f.get("filterType")
                if kind == "PRICE_FILTER":
                    rules["tick_size"] = f["tickSize"]
                elif kind == "LOT_SIZE":
                    rules.update(step_size=f["stepSize"], min_qty=f["minQty"], max_qty=f["maxQty"])
                elif kind == "MIN_NOTIONAL":
                    rules["min_notional"] = f.get("notional") or f.get("minNotional") or "0"
            if "tick_size" in rules and "step_size" in rules:
                pair = self.pair(info["symbol"])
                out[pair] = InstrumentRules(pair, info["symbol"], info["baseAsset"],
                                            info["quoteAsset"], **rules)
        return out

    def rate_limits(self, body: Any) -> list[RateLimitRule]:
        return parse_rate_limits(body.get("rateLimits") if isinstance(body, dict) else None)

    # ---------------------------------------------------- user data

    def parse_user(self, frame: str | bytes, recv_ns: int) -> UserEvent:
        """One /private frame (bare or ``{"stream","data"}``); never raises."""
        try:
            msg = orjson.loads(frame)
            data = msg.get("data", msg) if isinstance(msg, dict) else None
            if not isinstance(data, dict):
                return UserEvent(error=f"not an object: {str(frame)[:200]}")
            kind = data.get("e")
            if kind == "ORDER_TRADE_UPDATE":
                return self._order_trade(data, recv_ns)
            if kind == "ACCOUNT_UPDATE":
                return self._account_update(data)
            if kind == "MARGIN_CALL":
                legs = "; ".join(f"{p.get('s')} {p.get('ps')} amount {p.get('pa')} maint "
                                 f"{p.get('mm')}" for p in data.get("p", []))
                return UserEvent(warnings=[f"margin call: cross wallet {data.get('cw')}; {legs}"])
            if kind == "listenKeyExpired":
                return UserEvent(expired=True)
            return UserEvent()  # TRADE_LITE, ACCOUNT_CONFIG_UPDATE, ...: not tracked
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the stream
            return UserEvent(error=f"{type(exc).__name__}: {exc}")

    def _order_trade(self, data: dict, recv_ns: int) -> UserEvent:
        """``{"e":"ORDER_TRADE_UPDATE","E":..,"T":..,"o":{"s":"BTCUSDT","c":"E7-1a-3",
        "S":"SELL","o":"LIMIT","f":"GTX","q":"0.01","p":"30000","ap":"30000","x":"TRADE",
        "X":"FILLED","i":8886774,"l":"0.01","z":"0.01","L":"30000","N":"USDT","n":"0.06",
        "T":..,"t":7,"m":true,"R":false,"ps":"BOTH","rp":"0"}}``. A liquidation's fill
        (``c`` autoclose-*, ``x`` TRADE or CALCULATED) is not our order's: flagged."""
        o = data["o"]
        pair, side = self.pair(o["s"]), SIDES[o["S"]]
        exch_ns = int(o.get("T") or data.get("T") or data["E"]) * MS
        trade_id = int(o.get("t", 0) or 0)
        liquidation = _liquidation(o.get("c", ""), o.get("o", ""))
        event = UserEvent()
        if not liquidation:
            event.updates.append(OrderUpdate(
                self.venue, Market.FUTURES, pair, o["c"], str(o["i"]),
                _STATUS.get(o["X"], OrderStatus.NEW), side, o["p"], o["q"], o.get("z", "0"),
                o.get("ap") or "0", o.get("n") or "0", o.get("N") or "", trade_id, exch_ns,
                recv_ns))
        if o.get("x") in ("TRADE", "CALCULATED") and Decimal(o.get("l", "0") or "0") > 0:
            event.fills.append(Fill(
                self.venue, Market.FUTURES, pair, o.get("c", ""), str(o["i"]), str(trade_id),
                side, o["L"], o["l"], o.get("n") or "0", o.get("N") or "", bool(o.get("m")),
                exch_ns, str(o.get("rp", "")),
                _POSITION_SIDE.get(o.get("ps", "BOTH"), PositionSide.BOTH).value, liquidation))
        return event

    def _account_update(self, data: dict) -> UserEvent:
        """``{"e":"ACCOUNT_UPDATE","E":..,"T":..,"a":{"m":"ORDER","B":[{"a":"USDT",
        "wb":"122624.12","cw":"100.12","bc":"50.12"}],"P":[{"s":"BTCUSDT","pa":"0",
        "ep":"0.0","bep":"0","cr":"200","up":"0","mt":"isolated","iw":"0","ps":"BOTH"}]}}``.
        On reason FUNDING_FEE the frame names no symbol for a cross position and
        carries no payment id, so it only prompts a read of the income endpoint."""
        a = data.get("a", {})
        exch_ns = int(data.get("T") or data.get("E") or 0) * MS
        event = UserEvent(balances={b["a"]: (b.get("cw") or b["wb"], "0")
                                    for b in a.get("B", [])})
        for p in a.get("P", []):
            event.positions.append(PositionReport(
                self.venue, Market.FUTURES, self.pair(p["s"]),
                _POSITION_SIDE.get(p.get("ps", "BOTH"), PositionSide.BOTH), p["pa"],
                p.get("ep", "0"), p.get("up", "0"), margin_type=_margin(p.get("mt")),
                isolated_margin=p.get("iw", "0") or "0", exch_ns=exch_ns))
        event.funding_due = a.get("m") == "FUNDING_FEE"
        if a.get("m") == "INSURANCE_CLEAR":
            event.warnings.append("insurance clear: a liquidated position was settled")
        return event

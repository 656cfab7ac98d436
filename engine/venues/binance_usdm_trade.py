"""Binance USD-M futures trading, Sans-I/O: signed /fapi requests (orders with
GTX post-only, reduce-only and hedge-mode position sides; queries, cancels,
positions, funding income, leverage, margin type, position mode, listenKeys),
the classification of every reply, and the user stream's ORDER_TRADE_UPDATE /
ACCOUNT_UPDATE / MARGIN_CALL frames as order updates, fills, position reports,
funding fees and liquidations. Never opens a socket, never reads a clock.

Facts and sources: docs/venues/binance.md "USD-M futures trading".
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
from engine.venues.binance_trade import (
    RECV_WINDOW_MS,
    RETRY_CODES,
    UNKNOWN_CODES,
    BinanceTrade,
    Fill,
    Reply,
    SignedRequest,
    UserEvent,
)

VENUE = "binance_usdm"  # the trading account's name: its own orders, fills and positions
EXCHANGE = "binance"  # the market-data exchange whose futures books it trades on
MS = 1_000_000

# Request weights (IP, per minute) from the USD-M REST pages (docs/venues/binance.md).
# New orders cost 0 IP weight but 1 on each ORDERS limit.
WEIGHTS = {"new_order": 0, "query_order": 1, "cancel_order": 1, "cancel_replace": 1,
           "open_orders": 1, "my_trades": 5, "account": 5, "exchange_info": 1,
           "user_stream": 1, "time": 1, "position_risk": 5, "income": 30, "leverage": 1,
           "margin_type": 1, "position_mode": 1}
# exchangeInfo rateLimits of USD-M (protocols README section 2): used when the
# venue's own list has not been read yet.
REQUEST_WEIGHT_PER_MIN = 2400
ORDERS_PER_10S = 300
ORDERS_PER_MIN = 1200

GTX_REJECT = -5022  # post-only (GTX) would take: nothing was created
REDUCE_ONLY_REJECT = -2022
NO_CHANGE = frozenset({-4046, -4059})  # "No need to change margin type / position side."

_STATUS = {"NEW": OrderStatus.NEW, "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
           "FILLED": OrderStatus.FILLED, "CANCELED": OrderStatus.CANCELED,
           "REJECTED": OrderStatus.REJECTED, "EXPIRED": OrderStatus.EXPIRED,
           "EXPIRED_IN_MATCH": OrderStatus.EXPIRED}
_SIDE = {"BUY": Side.BUY, "SELL": Side.SELL}


@dataclass(frozen=True)
class FuturesReply(Reply):
    """A USD-M answer: post-only refusals are -5022, not spot's -2010 text."""

    @property
    def would_take(self) -> bool:
        return self.code == GTX_REJECT

    @property
    def duplicate(self) -> bool:
        return self.code == -4116 or (self.code == -2010 and "Duplicate" in self.message)


@dataclass(frozen=True, slots=True)
class PositionReport:
    """The venue's view of one position (positionRisk row or ACCOUNT_UPDATE entry).
    Money fields are the venue's decimal strings; ``side`` is BOTH (one-way) or
    LONG / SHORT (hedge mode); ``quantity`` is signed (+ long, - short)."""

    venue: str
    pair: str
    side: str
    quantity: str
    entry_price: str = "0"
    mark_price: str = ""
    unrealized_pnl: str = "0"
    liquidation_price: str = ""
    leverage: str = ""
    margin_type: str = ""
    exch_ns: int = 0


@dataclass(frozen=True, slots=True)
class FundingFee:
    """One funding payment (income row or ACCOUNT_UPDATE FUNDING_FEE); ``amount``
    is signed: negative = paid. ``key`` is unique per payment (tranId)."""

    venue: str
    pair: str
    key: str
    amount: str
    asset: str
    exch_ns: int


@dataclass(frozen=True, slots=True)
class Liquidation:
    """A forced close the venue did on our account (its order, not ours)."""

    venue: str
    pair: str
    side: Side
    price: str
    quantity: str
    order_id: str
    trade_id: str
    exch_ns: int
    reason: str


@dataclass
class FuturesEvent(UserEvent):
    positions: list[PositionReport] = field(default_factory=list)
    funding: list[FundingFee] = field(default_factory=list)
    liquidations: list[Liquidation] = field(default_factory=list)
    margin_call: str = ""  # non-empty: the venue warned that margin runs out
    funding_due: bool = False  # a funding payment happened: read the income endpoint


def _liquidation_order(client_id: str, order_type: str) -> bool:
    """The venue's own closing orders: ``autoclose-*`` (liquidation), ``adl_autoclose``
    (auto-deleveraging), order type LIQUIDATION."""
    return client_id.startswith(("autoclose-", "adl_autoclose")) or order_type == "LIQUIDATION"


class BinanceUsdmTrade(BinanceTrade):
    """Request builder and reply parser for one Binance USD-M futures account.
    ``hedge_mode``: LONG/SHORT position sides (else one-way, BOTH)."""

    venue = VENUE
    exchange = EXCHANGE
    market = Market.FUTURES
    supports_batch_place = False  # batchOrders (5 a call) not wired yet
    supports_amend = False  # no cancelReplace on USD-M: amend = cancel, then place
    order_rate_limits = ((ORDERS_PER_10S, 10.0), (ORDERS_PER_MIN, 60.0))
    request_weight_per_min = REQUEST_WEIGHT_PER_MIN

    def __init__(self, rest_url: str, ws_url: str, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None, hedge_mode: bool = False) -> None:
        super().__init__(rest_url or "https://fapi.binance.com",
                         ws_url or "wss://fstream.binance.com", api_key, api_secret, symbols)
        self.hedge_mode = hedge_mode

    # ----------------------------------------------------------- requests

    def _signed(self, method: str, path: str, kind: str, params: dict[str, str],
                timestamp_ms: int, counts_order: bool = False) -> SignedRequest:
        query = urlencode({**params, "recvWindow": RECV_WINDOW_MS, "timestamp": timestamp_ms})
        signature = hmac.new(self._secret, query.encode(), hashlib.sha256).hexdigest()
        return SignedRequest(method, f"{self.rest_base}{path}?{query}&signature={signature}",
                             {"X-MBX-APIKEY": self._key}, WEIGHTS[kind], kind, counts_order)

    def position_side(self, side: Side, reduce_only: bool, position_side: str = "") -> str:
        """BOTH in one-way mode. Hedge mode: the side the order belongs to, given
        (``long``/``short``) or derived: opening buys and closing sells are LONG."""
        if not self.hedge_mode:
            return "BOTH"
        if position_side:
            return position_side.upper()
        return "LONG" if (side == Side.BUY) != reduce_only else "SHORT"

    def new_order(self, pair: str, side: Side, price: str, quantity: str, client_order_id: str,
                  post_only: bool, time_in_force: str, timestamp_ms: int,
                  reduce_only: bool = False, position_side: str = "") -> SignedRequest:
        """LIMIT; post-only is ``timeInForce=GTX`` (refused -5022 if it would take).
        ``reduceOnly`` only in one-way mode (hedge mode refuses it: the side says it)."""
        params = {"symbol": self.symbol(pair), "side": side.value.upper(),
                  "positionSide": self.position_side(side, reduce_only, position_side),
                  "type": "LIMIT", "timeInForce": "GTX" if post_only else time_in_force,
                  "quantity": quantity, "price": price, "newClientOrderId": client_order_id,
                  "newOrderRespType": "RESULT"}
        if reduce_only and not self.hedge_mode:
            params["reduceOnly"] = "true"
        return self._signed("POST", "/fapi/v1/order", "new_order", params, timestamp_ms, True)

    def query_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/fapi/v1/order", "query_order",
                            {"symbol": self.symbol(pair), "origClientOrderId": client_order_id},
                            timestamp_ms)

    def cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("DELETE", "/fapi/v1/order", "cancel_order",
                            {"symbol": self.symbol(pair), "origClientOrderId": client_order_id},
                            timestamp_ms)

    def cancel_replace(self, *args: Any, **kwargs: Any) -> SignedRequest:
        raise NotImplementedError("USD-M has no cancelReplace: supports_amend is False")

    def open_orders(self, pair: str, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/fapi/v1/openOrders", "open_orders",
                            {"symbol": self.symbol(pair)}, timestamp_ms)

    def my_trades(self, pair: str, timestamp_ms: int, from_id: int | None = None,
                  start_ms: int | None = None, limit: int = 1000) -> SignedRequest:
        """userTrades; ``fromId`` never together with a time (the venue refuses it),
        and a start time at most 7 days back (the venue's window)."""
        params = {"symbol": self.symbol(pair), "limit": str(limit)}
        if from_id is not None:
            params["fromId"] = str(from_id)
        elif start_ms is not None:
            params["startTime"] = str(max(start_ms, timestamp_ms - 7 * 86_400_000 + 60_000))
        return self._signed("GET", "/fapi/v1/userTrades", "my_trades", params, timestamp_ms)

    def account(self, timestamp_ms: int) -> SignedRequest:
        return self._signed("GET", "/fapi/v3/account", "account", {}, timestamp_ms)

    def position_risk(self, timestamp_ms: int, pair: str = "") -> SignedRequest:
        params = {"symbol": self.symbol(pair)} if pair else {}
        return self._signed("GET", "/fapi/v3/positionRisk", "position_risk", params, timestamp_ms)

    def income(self, timestamp_ms: int, start_ms: int, pair: str = "",
               income_type: str = "FUNDING_FEE", limit: int = 1000) -> SignedRequest:
        params = {"incomeType": income_type, "startTime": str(start_ms), "limit": str(limit)}
        if pair:
            params["symbol"] = self.symbol(pair)
        return self._signed("GET", "/fapi/v1/income", "income", params, timestamp_ms)

    def set_leverage(self, pair: str, leverage: int, timestamp_ms: int) -> SignedRequest:
        if not 1 <= leverage <= 125:
            raise ValueError(f"leverage {leverage}: Binance USD-M allows 1..125")
        return self._signed("POST", "/fapi/v1/leverage", "leverage",
                            {"symbol": self.symbol(pair), "leverage": str(leverage)}, timestamp_ms)

    def set_margin_type(self, pair: str, margin_type: str, timestamp_ms: int) -> SignedRequest:
        kind = margin_type.upper()
        kind = "CROSSED" if kind == "CROSS" else kind
        if kind not in ("ISOLATED", "CROSSED"):
            raise ValueError(f"margin type {margin_type!r}: expected isolated or crossed")
        return self._signed("POST", "/fapi/v1/marginType", "margin_type",
                            {"symbol": self.symbol(pair), "marginType": kind}, timestamp_ms)

    def set_position_mode(self, hedge: bool, timestamp_ms: int) -> SignedRequest:
        return self._signed("POST", "/fapi/v1/positionSide/dual", "position_mode",
                            {"dualSidePosition": "true" if hedge else "false"}, timestamp_ms)

    def exchange_info(self, pairs: list[str]) -> SignedRequest:
        """USD-M's exchangeInfo takes no symbol filter: all contracts come back."""
        return SignedRequest("GET", f"{self.rest_base}/fapi/v1/exchangeInfo", {},
                             WEIGHTS["exchange_info"], "exchange_info")

    def server_time(self) -> SignedRequest:
        return SignedRequest("GET", f"{self.rest_base}/fapi/v1/time", {}, 1, "time")

    def listen_key(self, method: str, key: str = "") -> SignedRequest:
        """POST creates (or returns the live) key, PUT keeps it alive; the key is
        not a parameter on USD-M (one per account)."""
        return SignedRequest(method, f"{self.rest_base}/fapi/v1/listenKey",
                             {"X-MBX-APIKEY": self._key}, WEIGHTS["user_stream"], "user_stream")

    def user_stream_url(self, listen_key: str) -> str:
        """Since 2026-04-23 user data lives under ``/private`` (protocols section 0)."""
        return f"{self.ws_base}/private/ws?{urlencode({'listenKey': listen_key})}"

    # ------------------------------------------------------------- replies

    @staticmethod
    def classify(status: int, body: bytes | str, headers: dict[str, str]) -> Reply:
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
        elif status == 503 and "Service Unavailable" in message:
            kind = "retry"  # general info: "not executed"
        elif status >= 500 or code in UNKNOWN_CODES or (status == 200 and data is None):
            kind = "unknown"
        elif status == 200 or code in NO_CHANGE:
            kind = "ok"  # a setting already as asked (-4046, -4059) is a success
        else:
            kind = "rejected"
        return FuturesReply(kind, status, data, code, message, retry_s, used_weight)

    def order_update(self, data: dict, recv_ns: int) -> OrderUpdate:
        """An order as /fapi REST returns it::

            {"orderId":22542179,"symbol":"BTCUSDT","status":"NEW","clientOrderId":"E7-1a-3",
             "price":"30000","avgPrice":"0.00000","origQty":"0.010","executedQty":"0",
             "cumQuote":"0","timeInForce":"GTX","type":"LIMIT","reduceOnly":false,
             "side":"SELL","positionSide":"BOTH","updateTime":1700000000123}"""
        filled = Decimal(data.get("executedQty", "0") or "0")
        average = data.get("avgPrice") or "0"
        if filled > 0 and Decimal(average) == 0 and data.get("cumQuote"):
            average = str(Decimal(data["cumQuote"]) / filled)
        client_id = data.get("origClientOrderId") or data["clientOrderId"]
        exch_ms = data.get("updateTime") or data.get("time") or 0
        return OrderUpdate(VENUE, Market.FUTURES, self.pair(data["symbol"]), client_id,
                           str(data["orderId"]), _STATUS.get(data["status"], OrderStatus.NEW),
                           _SIDE[data["side"]], data.get("price", "0"), data.get("origQty", "0"),
                           str(filled), average, exch_ns=int(exch_ms) * MS, recv_ns=recv_ns)

    def fills(self, rows: list[dict]) -> list[Fill]:
        """userTrades rows::

            {"buyer":false,"commission":"-0.07819010","commissionAsset":"USDT","id":698759,
             "maker":false,"orderId":25851813,"price":"7819.01","qty":"0.002",
             "quoteQty":"15.63802","realizedPnl":"-0.91539999","side":"SELL",
             "positionSide":"SHORT","symbol":"BTCUSDT","time":1569514978020}

        ``commission`` is the amount paid (the example's sign is the venue's)."""
        return [Fill(VENUE, Market.FUTURES, self.pair(r["symbol"]), "", str(r["orderId"]),
                     str(r["id"]), _SIDE[r["side"]], r["price"], r["qty"],
                     str(abs(Decimal(r["commission"]))), r["commissionAsset"], bool(r["maker"]),
                     int(r["time"]) * MS) for r in rows]

    def positions(self, body: Any) -> list[PositionReport]:
        """positionRisk v3 rows (only symbols with a position or orders)."""
        out = []
        for r in body if isinstance(body, list) else []:
            out.append(PositionReport(
                VENUE, self.pair(r["symbol"]), r.get("positionSide", "BOTH"), r["positionAmt"],
                r.get("entryPrice", "0"), r.get("markPrice", ""),
                r.get("unRealizedProfit", "0"), r.get("liquidationPrice", ""),
                str(r.get("leverage", "")), str(r.get("marginType", "") or
                                                ("isolated" if r.get("isolatedMargin") not in
                                                 (None, "0", "0.00000000") else "")),
                int(r.get("updateTime", 0) or 0) * MS))
        return out

    def funding(self, rows: Any) -> list[FundingFee]:
        """income rows ``{"symbol","incomeType":"FUNDING_FEE","income":"-0.37","asset":"USDT",
        "time":1570608000000,"tranId":9689322392,"tradeId":""}``."""
        return [FundingFee(VENUE, self.pair(r["symbol"]), str(r["tranId"]), r["income"],
                           r["asset"], int(r["time"]) * MS)
                for r in (rows if isinstance(rows, list) else [])
                if r.get("incomeType") == "FUNDING_FEE" and r.get("symbol")]

    def parse_user(self, frame: str | bytes, recv_ns: int) -> FuturesEvent:
        """One user-data frame; never raises."""
        try:
            msg = orjson.loads(frame)
            data = msg.get("data", msg) if isinstance(msg, dict) else None
            if not isinstance(data, dict):
                return FuturesEvent(error=f"not an object: {str(frame)[:200]}")
            kind = data.get("e")
            if kind == "ORDER_TRADE_UPDATE":
                return self._order_trade(data, recv_ns)
            if kind == "ACCOUNT_UPDATE":
                return self._account_update(data)
            if kind == "MARGIN_CALL":
                names = ", ".join(f"{p.get('s')} {p.get('ps')} {p.get('pa')} maint "
                                  f"{p.get('mm')}" for p in data.get("p", []))
                return FuturesEvent(margin_call=f"margin call: cross wallet {data.get('cw')}; "
                                    f"{names}")
            if kind == "listenKeyExpired":
                return FuturesEvent(expired=True)
            return FuturesEvent()  # TRADE_LITE, ACCOUNT_CONFIG_UPDATE, ...: nothing we track
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the stream
            return FuturesEvent(error=f"{type(exc).__name__}: {exc}")

    def _order_trade(self, data: dict, recv_ns: int) -> FuturesEvent:
        """``{"e":"ORDER_TRADE_UPDATE","E":..,"T":..,"o":{"s":"BTCUSDT","c":"E7-1a-3",
        "S":"SELL","o":"LIMIT","f":"GTX","q":"0.01","p":"30000","ap":"30000","x":"TRADE",
        "X":"FILLED","i":8886774,"l":"0.01","z":"0.01","L":"30000","N":"USDT","n":"0.06",
        "T":..,"t":7,"m":true,"R":false,"ps":"BOTH","rp":"0"}}``"""
        o = data["o"]
        pair, side = self.pair(o["s"]), _SIDE[o["S"]]
        exch_ns = int(o.get("T") or data.get("T") or data["E"]) * MS
        trade_id = int(o.get("t", 0) or 0)
        if _liquidation_order(o.get("c", ""), o.get("o", "")):
            event = FuturesEvent()
            if o.get("x") in ("TRADE", "CALCULATED") and Decimal(o.get("l", "0")) > 0:
                event.liquidations.append(Liquidation(
                    VENUE, pair, side, o["L"], o["l"], str(o["i"]), str(trade_id), exch_ns,
                    f"{o.get('o')} {o.get('c')} {o.get('X')}"))
                event.fills.append(Fill(VENUE, Market.FUTURES, pair, o.get("c", ""), str(o["i"]),
                                        str(trade_id), side, o["L"], o["l"], o.get("n") or "0",
                                        o.get("N") or "", bool(o.get("m")), exch_ns))
            return event
        filled = o.get("z", "0")
        update = OrderUpdate(VENUE, Market.FUTURES, pair, o["c"], str(o["i"]),
                             _STATUS.get(o["X"], OrderStatus.NEW), side, o["p"], o["q"], filled,
                             o.get("ap") or "0", o.get("n") or "0", o.get("N") or "",
                             trade_id, exch_ns, recv_ns)
        event = FuturesEvent(updates=[update])
        if o.get("x") == "TRADE" and Decimal(o.get("l", "0")) > 0:
            event.fills.append(Fill(VENUE, Market.FUTURES, pair, o["c"], str(o["i"]),
                                    str(trade_id), side, o["L"], o["l"], o.get("n") or "0",
                                    o.get("N") or "", bool(o.get("m")), exch_ns))
        return event

    def _account_update(self, data: dict) -> FuturesEvent:
        """``{"e":"ACCOUNT_UPDATE","E":..,"T":..,"a":{"m":"ORDER","B":[{"a":"USDT",
        "wb":"122624.12","cw":"100.12","bc":"50.12"}],"P":[{"s":"BTCUSDT","pa":"0",
        "ep":"0.0","bep":"0","cr":"200","up":"0","mt":"isolated","iw":"0","ps":"BOTH"}]}}``.
        On reason FUNDING_FEE the frame names no symbol for a cross position and
        carries no payment id, so it only prompts a read of the income endpoint
        (the record, keyed by ``tranId``)."""
        a = data.get("a", {})
        exch_ns = int(data.get("T") or data.get("E") or 0) * MS
        event = FuturesEvent(balances={b["a"]: (b.get("cw") or b["wb"], "0")
                                       for b in a.get("B", [])})
        for p in a.get("P", []):
            event.positions.append(PositionReport(
                VENUE, self.pair(p["s"]), p.get("ps", "BOTH"), p["pa"], p.get("ep", "0"), "",
                p.get("up", "0"), "", "", p.get("mt", ""), exch_ns))
        event.funding_due = a.get("m") == "FUNDING_FEE"
        return event

    def parse_exchange_info(self, body: Any) -> dict[str, dict[str, str]]:
        """pair -> rule strings for each PERPETUAL contract trading now::

            {"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL",
             "status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT","marginAsset":"USDT",
             "filters":[{"filterType":"PRICE_FILTER","tickSize":"0.10",...},
             {"filterType":"LOT_SIZE","stepSize":"0.001","minQty":"0.001","maxQty":"1000"},
             {"filterType":"MIN_NOTIONAL","notional":"100"}]}"""
        out = {}
        for info in body.get("symbols", []):
            if info.get("contractType", "PERPETUAL") != "PERPETUAL":
                continue
            rules = {"symbol": info["symbol"], "base": info["baseAsset"],
                     "quote": info["quoteAsset"]}
            for f in info.get("filters", []):
                kind = f.get("filterType")
                if kind == "PRICE_FILTER":
                    rules["tick_size"] = f["tickSize"]
                elif kind == "LOT_SIZE":
                    rules.update(step_size=f["stepSize"], min_qty=f["minQty"], max_qty=f["maxQty"])
                elif kind == "MIN_NOTIONAL":
                    rules["min_notional"] = f.get("notional") or f.get("minNotional", "0")
            if "tick_size" in rules and "step_size" in rules:
                out[self.pair(info["symbol"])] = rules
        return out

    @staticmethod
    def balances(body: Any) -> dict[str, tuple[str, str]]:
        """GET /fapi/v3/account: asset -> (available, wallet - available)."""
        out = {}
        for b in body.get("assets", []) if isinstance(body, dict) else []:
            wallet = Decimal(b.get("walletBalance", "0"))
            free = Decimal(b.get("availableBalance", b.get("walletBalance", "0")))
            out[b["asset"]] = (str(free), str(max(wallet - free, Decimal(0))))
        return out

    @staticmethod
    def order_limits(body: Any) -> list[tuple[int, float]]:
        """exchangeInfo ``rateLimits`` ORDERS entries as (count, seconds)."""
        units = {"SECOND": 1.0, "MINUTE": 60.0, "HOUR": 3600.0, "DAY": 86400.0}
        return [(int(r["limit"]), units.get(r.get("interval", ""), 60.0) *
                 int(r.get("intervalNum", 1)))
                for r in (body.get("rateLimits", []) if isinstance(body, dict) else [])
                if r.get("rateLimitType") == "ORDERS"]

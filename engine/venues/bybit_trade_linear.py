"""Bybit v5 linear USDT perpetuals trading driver: bybit_trade.py's wire with
category ``linear``, plus positions (/v5/position/list and the ``position``
push), leverage, position mode (one-way / hedge by ``positionIdx``), the
account's margin mode, reduce-only orders and funding from the transaction
log. Never opens a socket, never reads a clock, never formats a float.

API docs: https://bybit-exchange.github.io/docs/v5/position (list, leverage,
switch-mode), .../v5/account/set-margin-mode, .../v5/account/transaction-log,
.../v5/websocket/private/position; facts in docs/venues/bybit.md "Trading".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.model import Market, Side
from engine.model_trade import (
    FundingFee,
    MarginType,
    OrderSpec,
    PositionMode,
    PositionReport,
    PositionSide,
    RateLimitKind,
    RateLimitRule,
    SignedRequest,
    TradingEndpoints,
    UserEvent,
)
from engine.venues.bybit_trade import IP_LIMIT, MS, BybitTrade

# positionIdx: 0 one-way, 1 the long leg of hedge mode, 2 the short leg.
_IDX_SIDE = {0: PositionSide.BOTH, 1: PositionSide.LONG, 2: PositionSide.SHORT}
_SIDE_IDX = {v: k for k, v in _IDX_SIDE.items()}
LEVERAGE_MAX = 200  # set-leverage refuses more than the symbol's risk tier allows anyway
FUNDING_PAGE = 50  # transaction-log: limit [1, 50]


class BybitLinearTrade(BybitTrade):
    """One Bybit unified account's linear USDT perpetuals. ``position_mode``
    must match the account's (the trader sets it at start)."""

    category = "linear"
    venue = "bybit_futures"  # the trading venue id (orders, fills, positions)
    exchange = "bybit"  # market data: bybit's futures (linear) books
    market = Market.FUTURES
    has_positions = True
    default_rate_limits = (IP_LIMIT, RateLimitRule(RateLimitKind.ORDERS, 1, 10))
    topics = ("order", "execution", "position", "wallet")

    def __init__(self, endpoints: TradingEndpoints, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(endpoints, api_key, api_secret, symbols)
        self.position_mode = PositionMode.ONE_WAY

    def position_index(self, spec: OrderSpec) -> int:
        """0 in one-way mode. Hedge mode: the order's leg as given, else derived
        (opening buys and closing sells are the long leg)."""
        if self.position_mode == PositionMode.ONE_WAY:
            return 0
        if spec.position_side != PositionSide.BOTH:
            return _SIDE_IDX[spec.position_side]
        return 1 if (spec.side == Side.BUY) != spec.reduce_only else 2

    def _order_params(self, spec: OrderSpec) -> dict[str, Any]:
        """``reduceOnly`` only in one-way mode: in hedge mode the leg says it (a
        sell on the long leg can only close it), and the flag is refused there."""
        params = {**super()._order_params(spec), "positionIdx": self.position_index(spec)}
        if spec.reduce_only and self.position_mode == PositionMode.ONE_WAY:
            params["reduceOnly"] = True
        return params

    def position_side_of(self, row: dict) -> str:
        idx = row.get("positionIdx")
        return _IDX_SIDE[int(idx)].value if idx is not None and int(idx) in _IDX_SIDE else ""

    # ------------------------------------------------- futures settings

    def positions(self, timestamp_ms: int, pair: str | None = None) -> SignedRequest:
        params = {"category": self.category, "limit": "200"}
        if pair:
            params["symbol"] = self.symbol(pair)
        else:
            params["settleCoin"] = "USDT"
        return self._get("/v5/position/list", "positions", params, timestamp_ms)

    def set_leverage(self, pair: str, leverage: int, timestamp_ms: int) -> SignedRequest:
        if not 1 <= leverage <= LEVERAGE_MAX:
            raise ValueError(f"leverage {leverage}: Bybit linear allows 1..{LEVERAGE_MAX}")
        return self._post("/v5/position/set-leverage", "leverage",
                          {"category": self.category, "symbol": self.symbol(pair),
                           "buyLeverage": str(leverage), "sellLeverage": str(leverage)},
                          timestamp_ms)

    def set_margin_type(self, pair: str, margin: MarginType, timestamp_ms: int) -> SignedRequest:
        """On a unified account the margin mode is the account's, not a symbol's."""
        return self._post("/v5/account/set-margin-mode", "margin_type",
                          {"setMarginMode": "ISOLATED_MARGIN" if margin == MarginType.ISOLATED
                           else "REGULAR_MARGIN"}, timestamp_ms)

    def set_position_mode(self, mode: PositionMode, timestamp_ms: int) -> SignedRequest:
        self.position_mode = mode  # what the orders built from now on say
        return self._post("/v5/position/switch-mode", "position_mode",
                          {"category": self.category, "coin": "USDT",
                           "mode": 3 if mode == PositionMode.HEDGE else 0}, timestamp_ms)

    def funding_fees(self, timestamp_ms: int, start_ms: int,
                     pair: str | None = None) -> SignedRequest:
        """transaction-log type SETTLEMENT (funding), at most 7 days per call."""
        params = {"accountType": "UNIFIED", "category": self.category, "type": "SETTLEMENT",
                  "startTime": str(max(start_ms, timestamp_ms - 7 * 86_400_000 + 60_000)),
                  "limit": str(FUNDING_PAGE)}
        if pair:
            params["symbol"] = self.symbol(pair)
        return self._get("/v5/account/transaction-log", "income", params, timestamp_ms)

    # --------------------------------------------------------- replies

    def _report(self, row: dict, entry_key: str) -> PositionReport:
        size = Decimal(row.get("size") or "0")
        signed = -size if row.get("side") == "Sell" else size
        mode = str(row.get("tradeMode", "0"))
        return PositionReport(
            self.venue, Market.FUTURES, self.pair(row["symbol"]),
            _IDX_SIDE.get(int(row.get("positionIdx") or 0), PositionSide.BOTH), str(signed),
            row.get(entry_key) or row.get("avgPrice") or "0", row.get("unrealisedPnl") or "0",
            row.get("liqPrice") or "0", row.get("markPrice") or "", str(row.get("leverage", "")),
            MarginType.ISOLATED if mode == "1" else MarginType.CROSS,
            row.get("positionIM") or "0" if mode == "1" else "0",
            int(row.get("updatedTime") or 0) * MS)

    def position_reports(self, body: Any) -> list[PositionReport]:
        """/v5/position/list rows::

            {"positionIdx":0,"symbol":"BTCUSDT","side":"Sell","size":"0.01",
             "avgPrice":"30000","markPrice":"29950","unrealisedPnl":"0.5",
             "liqPrice":"45000","leverage":"10","tradeMode":0,"positionIM":"30",
             "updatedTime":"1697682317038"}

        ``size`` is unsigned; ``side`` Sell makes it short."""
        return [self._report(r, "avgPrice") for r in self.order_list(body)
                if r.get("category", self.category) == self.category]

    def funding_list(self, body: Any) -> list[FundingFee]:
        """transaction-log SETTLEMENT rows ``{"id":"592324_XRPUSDT_161440249321",
        "symbol":"XRPUSDT","category":"linear","transactionTime":"1697530800000",
        "type":"SETTLEMENT","funding":"0.003676","change":"-0.003676","currency":"USDT"}``:
        ``change`` is what the wallet moved (< 0 paid), the amount we book."""
        return [FundingFee(self.venue, Market.FUTURES, self.pair(r["symbol"]),
                           str(r.get("change") or -Decimal(r.get("funding") or "0")),
                           r.get("currency") or "USDT", int(r["transactionTime"]) * MS,
                           str(r.get("id", "")))
                for r in self.order_list(body)
                if r.get("type") == "SETTLEMENT" and r.get("symbol")]

    def _other_push(self, topic: str, rows: list[dict], event: UserEvent) -> None:
        """``position`` rows carry ``entryPrice`` where the REST list says ``avgPrice``."""
        if topic == "position":
            event.positions = [self._report(r, "entryPrice") for r in rows]

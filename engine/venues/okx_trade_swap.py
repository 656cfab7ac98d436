"""OKX v5 USDT-margined perpetual (SWAP) trading driver: okx_trade.py's spot
driver plus contracts (``sz`` counts contracts of ``ctVal`` base each: the
driver converts both ways, so the trader only ever sees base quantities),
margin mode per order (``tdMode`` cross / isolated), one-way (``net``) or
long/short position mode, leverage, reduce-only, the ``positions`` channel,
position reports and funding fees (account bills, type 8). Sans-I/O.

Facts and sources: docs/venues/okx.md "Trading".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from engine.model import Market
from engine.model_trade import (
    FundingFee,
    InstrumentRules,
    MarginType,
    OrderSpec,
    PositionMode,
    PositionReport,
    PositionSide,
    SignedRequest,
    TradingEndpoints,
    UserEvent,
)
from engine.venues.okx_trade import MS, OkxSpotTrade
from engine.venues.okx_trade_wire import rows

FUNDING_BILL_TYPE = "8"  # account bills: type 8 = funding fee (subType 173 paid, 174 received)
_POS_SIDE = {"net": PositionSide.BOTH, "long": PositionSide.LONG, "short": PositionSide.SHORT}


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


class OkxSwapTrade(OkxSpotTrade):
    """One OKX account's USDT perpetuals. ``position_mode`` must match the
    account's (the trader sets it at start); ``margin`` is every order's tdMode."""

    venue = "okx_futures"  # the trading venue id (orders, fills, positions)
    exchange = "okx"
    market = Market.FUTURES
    inst_type = "SWAP"
    has_positions = True

    def __init__(self, endpoints: TradingEndpoints, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None, passphrase: str = "",
                 demo: bool = False) -> None:
        super().__init__(endpoints, api_key, api_secret, symbols, passphrase, demo)
        self.position_mode = PositionMode.ONE_WAY
        self.margin = MarginType.CROSS
        self._ct_val: dict[str, Decimal] = {}  # instId -> base units per contract

    def symbol(self, pair: str) -> str:
        return self._symbols.get(pair) or f"{pair.replace('/', '-').upper()}-SWAP"

    def pair(self, symbol: str) -> str:
        if symbol in self._pairs:
            return self._pairs[symbol]
        parts = symbol.split("-")
        return f"{parts[0]}/{parts[1]}" if len(parts) >= 2 else symbol

    # ---------------------------------------------------------- contracts

    def contract_value(self, inst_id: str) -> Decimal:
        try:
            return self._ct_val[inst_id]
        except KeyError:
            raise ValueError(f"okx SWAP {inst_id}: contract value unknown; the instruments "
                             f"were not loaded (exchange_info) for it") from None

    def size(self, pair: str, quantity: str) -> str:
        """Base quantity -> contracts; refused unless a whole number of contracts'
        lots (the trader quantizes to the step that instrument_rules gave)."""
        inst_id = self.symbol(pair)
        contracts = Decimal(quantity) / self.contract_value(inst_id)
        return _plain(contracts)

    def base_quantity(self, inst_id: str, size: str) -> str:
        if not size or Decimal(size) == 0:
            return "0"
        return _plain(Decimal(size) * self.contract_value(inst_id))

    def td_mode(self) -> str:
        return self.margin.value

    def order_args(self, spec: OrderSpec) -> dict[str, Any]:
        """Adds ``posSide`` (long_short_mode: the leg; derived as opening buys and
        closing sells are long) and ``reduceOnly`` (one-way mode only)."""
        args = super().order_args(spec)
        if self.position_mode == PositionMode.HEDGE:
            side = spec.position_side
            if side == PositionSide.BOTH:
                side = PositionSide.LONG if (spec.side.value == "buy") != spec.reduce_only \
                    else PositionSide.SHORT
            args["posSide"] = side.value
        elif spec.reduce_only:
            args["reduceOnly"] = True
        return args

    # -------------------------------------------------- futures settings

    def positions(self, timestamp_ms: int, pair: str | None = None) -> SignedRequest:
        params = {"instType": "SWAP"}
        if pair:
            params["instId"] = self.symbol(pair)
        return self._rest("GET", "/api/v5/account/positions", "positions", params, timestamp_ms)

    def set_leverage(self, pair: str, leverage: int, timestamp_ms: int) -> SignedRequest:
        if not 1 <= leverage <= 125:
            raise ValueError(f"leverage {leverage}: OKX SWAP allows 1..125 (per instrument less)")
        return self._rest("POST", "/api/v5/account/set-leverage", "leverage",
                          {"instId": self.symbol(pair), "lever": str(leverage),
                           "mgnMode": self.margin.value}, timestamp_ms)

    def set_margin_type(self, pair: str, margin: MarginType, timestamp_ms: int) -> SignedRequest:
        """OKX has no margin-type setting: every order names its ``tdMode``. This
        records it for the orders from now on and reads the account configuration
        (a cheap signed call that proves the keys)."""
        self.margin = margin
        return self._rest("GET", "/api/v5/account/config", "margin_type", {}, timestamp_ms)

    def set_position_mode(self, mode: PositionMode, timestamp_ms: int) -> SignedRequest:
        self.position_mode = mode
        return self._rest("POST", "/api/v5/account/set-position-mode", "position_mode",
                          {"posMode": "long_short_mode" if mode == PositionMode.HEDGE
                           else "net_mode"}, timestamp_ms)

    def funding_fees(self, timestamp_ms: int, start_ms: int,
                     pair: str | None = None) -> SignedRequest:
        params = {"instType": "SWAP", "type": FUNDING_BILL_TYPE, "begin": str(start_ms),
                  "limit": "100"}
        if pair:
            params["instId"] = self.symbol(pair)
        return self._rest("GET", "/api/v5/account/bills", "income", params, timestamp_ms)

    def user_channels(self) -> list[dict[str, str]]:
        return [{"channel": "orders", "instType": "SWAP"},
                {"channel": "positions", "instType": "SWAP"}]

    # ------------------------------------------------------------ replies

    def fill_position_side(self, row: dict) -> str:
        return _POS_SIDE.get(str(row.get("posSide") or "net"), PositionSide.BOTH).value

    def position_reports(self, body: Any) -> list[PositionReport]:
        """/account/positions rows (and the positions channel)::

            {"instId":"BTC-USDT-SWAP","posSide":"net","pos":"-3","avgPx":"30000",
             "upl":"1.2","liqPx":"45000","markPx":"29990","lever":"5","mgnMode":"cross",
             "margin":"","uTime":"1597026383085"}

        ``pos`` counts contracts (signed in net mode): reported in base units."""
        out = []
        for r in rows(body):
            inst_id = str(r["instId"])
            if inst_id not in self._ct_val:
                continue  # an instrument we do not trade
            side = _POS_SIDE.get(str(r.get("posSide") or "net"), PositionSide.BOTH)
            quantity = Decimal(self.base_quantity(inst_id, str(r.get("pos") or "0")))
            if side == PositionSide.SHORT and quantity > 0:
                quantity = -quantity  # a hedge-mode short leg is reported positive
            out.append(PositionReport(
                self.venue, Market.FUTURES, self.pair(inst_id), side, _plain(quantity),
                str(r.get("avgPx") or "0"), str(r.get("upl") or "0"),
                str(r.get("liqPx") or "0"), str(r.get("markPx") or ""), str(r.get("lever") or ""),
                MarginType.ISOLATED if r.get("mgnMode") == "isolated" else MarginType.CROSS,
                str(r.get("margin") or "0") if r.get("mgnMode") == "isolated" else "0",
                int(r.get("uTime") or 0) * MS))
        return out

    def funding_list(self, body: Any) -> list[FundingFee]:
        """Bills of type 8 ``{"billId":"123","instId":"BTC-USDT-SWAP","ccy":"USDT",
        "balChg":"-0.37","type":"8","subType":"173","ts":"1570608000000"}``."""
        return [FundingFee(self.venue, Market.FUTURES, self.pair(str(r["instId"])),
                           str(r.get("balChg") or r.get("pnl") or "0"), str(r.get("ccy", "")),
                           int(r.get("ts") or 0) * MS, str(r.get("billId", "")))
                for r in rows(body)
                if str(r.get("type")) == FUNDING_BILL_TYPE and r.get("instId")]

    def instrument_rules(self, body: Any) -> dict[str, InstrumentRules]:
        """Linear SWAP rows ``{"instId":"BTC-USDT-SWAP","ctVal":"0.01","ctValCcy":"BTC",
        "settleCcy":"USDT","ctType":"linear","tickSz":"0.1","lotSz":"0.01","minSz":"0.01",
        "state":"live","instIdCode":10}``: lot and minimum in base units (× ctVal)."""
        out = {}
        for r in rows(body):
            if r.get("state", "live") != "live" or r.get("ctType", "linear") != "linear":
                continue
            inst_id = str(r["instId"])
            ct_val = Decimal(str(r.get("ctVal") or "1"))
            self._ct_val[inst_id] = ct_val
            self._remember_code(r)
            pair = self.pair(inst_id)
            base, quote = pair.split("/")
            max_size = Decimal(str(r.get("maxLmtSz") or "0"))
            out[pair] = InstrumentRules(
                pair, inst_id, base, quote, str(r["tickSz"]),
                _plain(Decimal(str(r["lotSz"])) * ct_val),
                _plain(Decimal(str(r.get("minSz") or "0")) * ct_val),
                _plain(max_size * ct_val), "0", _plain(ct_val))
        return out

    def other_push(self, channel: str, data: list, recv_ns: int) -> UserEvent:
        if channel == "positions":
            return UserEvent(positions=self.position_reports({"data": data}))
        return UserEvent()

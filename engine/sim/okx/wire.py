"""OKX v5 JSON shapes from engine records: instruments, orders (REST answers
and the ``orders`` channel), fills, positions and balances. Pure formatting;
money is always a decimal string, trimmed as OKX prints it ("30243.5").

Docs: https://www.okx.com/docs-v5/en/#public-data-rest-api-get-instruments,
#order-book-trading-trade-get-order-details, #order-book-trading-trade-ws-order-channel,
#trading-account-rest-api-get-positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from engine.sim import orders as o
from engine.sim.amounts import format_units
from engine.sim.filters import SymbolSpec
from engine.sim.orders import Order

Json = dict[str, Any]
SPOT, SWAP = "SPOT", "SWAP"
# ordId = instrument index * ORDER_ID_SPAN + the core's per-symbol order id: one
# number per order across instruments, as OKX's ordIds are.
ORDER_ID_SPAN = 10**12
# Post-only orders the venue accepted and at once canceled (they never reach
# the core) take ids from here up, far above any core id.
KILLED_BASE = 9 * 10**11
INST_ID_CODE_BASE = 10_000  # instIdCode = base + index (numeric, as OKX's are)

STATES = {o.NEW: "live", o.PARTIALLY_FILLED: "partially_filled", o.FILLED: "filled",
          o.CANCELED: "canceled", o.EXPIRED: "canceled", o.EXPIRED_IN_MATCH: "canceled",
          o.REJECTED: "canceled"}


@dataclass(frozen=True)
class Instrument:
    inst_id: str  # BTC-USDT, BTC-USDT-SWAP
    inst_type: str  # SPOT | SWAP
    spec: SymbolSpec  # the core's spec (internal symbol BTCUSDT or BTCUSDT-PERP)
    index: int  # 1.., for ordIds and instIdCode

    @property
    def code(self) -> int:
        return INST_ID_CODE_BASE + self.index

    def ord_id(self, order_id: int) -> str:
        return str(self.index * ORDER_ID_SPAN + order_id)


def trim(text: str) -> str:
    """"60000.10" -> "60000.1", "5.000" -> "5" (OKX prints no trailing zeros)."""
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def px(spec: SymbolSpec, value: int) -> str:
    return trim(format_units(value, spec.price_decimals))


def sz(spec: SymbolSpec, value: int) -> str:
    return trim(format_units(value, spec.qty_decimals))


def amount(spec: SymbolSpec, value: int) -> str:
    return trim(format_units(value, spec.amount_decimals))


def units_text(value: int, decimals: int) -> str:
    return trim(format_units(value, decimals))


def avg_px(spec: SymbolSpec, cum_quote: int, qty: int) -> str:
    if not qty:
        return ""
    exact = Fraction(cum_quote, qty * spec.notional_scale)
    decimals = max(spec.price_decimals, 8)
    scaled = exact * 10**decimals / 10**spec.price_decimals
    return trim(format_units(scaled.numerator // scaled.denominator, decimals))


def ord_type(order: Order) -> str:
    if order.type == o.LIMIT_MAKER:
        return "post_only"
    if order.type == o.MARKET:
        return "market"
    return {o.IOC: "ioc", o.FOK: "fok"}.get(order.time_in_force, "limit")


def instrument_json(inst: Instrument, now_ms: int) -> Json:
    """GET /api/v5/public/instruments row (trimmed to what clients read)::

        {"instType":"SPOT","instId":"BTC-USDT","instIdCode":10001,"baseCcy":"BTC",
         "quoteCcy":"USDT","tickSz":"0.01","lotSz":"0.00001","minSz":"0.00001","state":"live"}
    """
    spec = inst.spec
    swap = inst.inst_type == SWAP
    tick, lot = px(spec, spec.tick), sz(spec, spec.step)
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "instIdCode": inst.code,
        "uly": f"{spec.base}-{spec.quote}" if swap else "",
        "instFamily": f"{spec.base}-{spec.quote}" if swap else "",
        "baseCcy": "" if swap else spec.base, "quoteCcy": "" if swap else spec.quote,
        "settleCcy": spec.quote if swap else "", "ctVal": "1" if swap else "",
        "ctMult": "1" if swap else "", "ctValCcy": spec.base if swap else "",
        "ctType": "linear" if swap else "", "optType": "", "stk": "", "listTime": "1600000000000",
        "expTime": "", "lever": "125" if swap else "10", "tickSz": tick, "lotSz": lot,
        "minSz": lot, "maxLmtSz": "1000000000", "maxMktSz": "1000000000",
        "maxLmtAmt": "20000000", "maxMktAmt": "1000000", "maxTwapSz": "", "maxIcebergSz": "",
        "maxTriggerSz": "", "maxStopSz": "", "alias": "", "state": "live", "ruleType": "normal",
        "category": "1", "openType": "", "auctionEndTime": "", "contTdSwTime": "",
        "futureSettlement": False, "tradeQuoteCcyList": [] if swap else [spec.quote],
        "instCategory": "1", "upcChg": [], "preMktSwTime": "", "seriesId": "",
        "groupId": "1", "elp": False}


def order_json(inst: Instrument, order: Order, td_mode: str, fee: tuple[int, str] | None,
               lever: str, fill: tuple[int, int, int, int] | None = None,
               cancel_source: str = "", cancel_reason: str = "") -> Json:
    """GET /api/v5/trade/order row and ``orders`` channel item; ``fill`` is
    (trade id, price, qty, fee) of the fill that caused a push::

        {"instType":"SPOT","instId":"BTC-USDT","ordId":"1000000000001","clOrdId":"b15",
         "px":"60000","sz":"0.01","ordType":"post_only","side":"buy","state":"live",
         "accFillSz":"0","avgPx":"","fee":"0","feeCcy":"BTC","cTime":"...","uTime":"..."}
    """
    spec = inst.spec
    swap = inst.inst_type == SWAP
    fee_units, fee_ccy = fee if fee is not None else (0, spec.quote if swap or order.side ==
                                                      o.SELL else spec.base)
    decimals = spec.amount_decimals
    trade_id, fill_px, fill_sz, fill_fee = fill if fill is not None else (0, 0, 0, 0)
    size = order.orig_qty
    tgt = ""
    if order.orig_quote_qty:  # a spot market buy sized in quote
        size_text = units_text(order.orig_quote_qty, decimals)
        tgt = "quote_ccy"
    else:
        size_text = sz(spec, size)
        tgt = "" if swap else "base_ccy"
    state = STATES.get(order.status, "canceled")
    return {
        "instType": inst.inst_type, "instId": inst.inst_id, "tgtCcy": tgt, "ccy": "",
        "ordId": inst.ord_id(order.order_id), "clOrdId": order.client_order_id, "tag": "",
        "px": px(spec, order.price) if order.price else "", "pxUsd": "", "pxVol": "",
        "pxType": "", "sz": size_text, "pnl": "0", "ordType": ord_type(order),
        "side": order.side.lower(), "posSide": "net" if swap else "",
        "tdMode": td_mode, "accFillSz": sz(spec, order.executed_qty),
        "fillPx": px(spec, fill_px) if fill is not None else "",
        "tradeId": str(trade_id) if fill is not None else "",
        "fillSz": sz(spec, fill_sz) if fill is not None else "0",
        "fillTime": str(order.update_ms) if fill is not None else "",
        "fillFee": f"-{units_text(fill_fee, decimals)}" if fill_fee else "0",
        "fillFeeCcy": fee_ccy if fill is not None else "",
        "avgPx": avg_px(spec, order.cum_quote, order.executed_qty),
        "state": state, "lever": lever if swap else "", "attachAlgoClOrdId": "",
        "tpTriggerPx": "", "tpTriggerPxType": "", "tpOrdPx": "", "slTriggerPx": "",
        "slTriggerPxType": "", "slOrdPx": "", "attachAlgoOrds": [], "linkedAlgoOrd": {"algoId": ""},
        "stpId": "", "stpMode": "cancel_maker", "feeCcy": fee_ccy,
        "fee": f"-{units_text(fee_units, decimals)}" if fee_units else "0",
        "rebateCcy": fee_ccy, "rebate": "0", "source": "", "category": "normal",
        "reduceOnly": "true" if order.reduce_only else "false", "isTpLimit": "false",
        "cancelSource": cancel_source, "cancelSourceReason": cancel_reason,
        "quickMgnType": "", "algoClOrdId": "", "algoId": "", "tradeQuoteCcy": "" if swap
        else spec.quote, "uTime": str(order.update_ms), "cTime": str(order.time_ms)}

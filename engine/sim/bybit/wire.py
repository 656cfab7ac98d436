"""Bybit v5 JSON shapes from engine records: orders (REST lists and the
`order` topic), executions, positions and the unified wallet. Pure
formatting; money is always a decimal string, times are ms (strings where
Bybit sends strings).

Docs: bybit-exchange.github.io/docs/v5 order/open-order, order/order-list,
order/execution, position, account/wallet-balance, websocket/private/*.
"""

from __future__ import annotations

import uuid
from fractions import Fraction
from typing import Any

from engine.sim import orders as o
from engine.sim.amounts import format_units
from engine.sim.bybit.errors import LINEAR, SPOT
from engine.sim.bybit.records import ExecRecord, OrderRecord
from engine.sim.derivatives import Derivatives
from engine.sim.filters import SymbolSpec
from engine.sim.positions import LONG, SHORT, Position

Json = dict[str, Any]
SIDES = {o.BUY: "Buy", o.SELL: "Sell"}
INTERNAL_SIDES = {"Buy": o.BUY, "Sell": o.SELL}
POSITION_IDX = {"BOTH": 0, LONG: 1, SHORT: 2, "": 0}
_EXEC_NAMESPACE = uuid.UUID("6b0e7c1a-6d1e-4a4f-9a51-0c6f1d2b3e4f")


def price_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value, spec.price_decimals)


def qty_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value, spec.qty_decimals)


def amount_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value, spec.amount_decimals)


def ratio_text(value: Fraction, decimals: int) -> str:
    scaled = value * 10**decimals
    return format_units(scaled.numerator // scaled.denominator, decimals)


def wire_symbol(spec: SymbolSpec) -> str:
    return spec.symbol.removesuffix("-PERP")


def trade_id_text(category: str, symbol: str, trade_id: int) -> str:
    """Spot trade ids are numbers, linear ones UUIDs (the docs' samples)."""
    if category == SPOT:
        return str(trade_id)
    return str(uuid.uuid5(_EXEC_NAMESPACE, f"{symbol}:{trade_id}"))


def exec_id_text(symbol: str, trade_id: int, side: str) -> str:
    """One side of a trade: unique per account and fill."""
    return str(uuid.uuid5(_EXEC_NAMESPACE, f"{symbol}:{trade_id}:{side}"))


def order_status(record: OrderRecord) -> str:
    order = record.order
    status = order.status
    if status == o.NEW:
        return "New"
    if status == o.PARTIALLY_FILLED:
        return "PartiallyFilled"
    if status == o.FILLED:
        return "Filled"
    if status == o.REJECTED:
        return "Rejected"
    if order.executed_qty and record.category == SPOT:
        return "PartiallyFilledCanceled"  # "only spot has this order status" (enum page)
    return "Cancelled"


def time_in_force(order: o.Order) -> str:
    if order.type == o.LIMIT_MAKER:
        return "PostOnly"
    if order.type == o.MARKET:
        return "IOC"
    return order.time_in_force


def order_type(order: o.Order) -> str:
    return "Market" if order.type in (o.MARKET, o.STOP_LOSS, o.TAKE_PROFIT) else "Limit"


def avg_price(spec: SymbolSpec, order: o.Order) -> str:
    if not order.executed_qty:
        return "" if order.type == o.MARKET else "0"
    exact = Fraction(order.cum_quote, order.executed_qty * spec.notional_scale)
    return ratio_text(exact / 10**spec.price_decimals, spec.price_decimals + 2)


def order_json(record: OrderRecord, spec: SymbolSpec) -> Json:
    """GET /v5/order/realtime and /history rows; the `order` topic adds category."""
    order = record.order
    quote_market = order.orig_quote_qty and not order.orig_qty
    open_ = order.is_open
    leaves = order.remaining if open_ else 0
    out = {
        "orderId": str(order.order_id), "orderLinkId": record.link_id, "blockTradeId": "",
        "symbol": wire_symbol(spec),
        "price": price_text(spec, order.price) if order.price else "0",
        "qty": amount_text(spec, order.orig_quote_qty) if quote_market
        else qty_text(spec, order.orig_qty),
        "side": SIDES[order.side], "isLeverage": "0" if record.category == SPOT else "",
        "positionIdx": POSITION_IDX.get(order.position_side, 0),
        "orderStatus": order_status(record), "createType": "CreateByUser",
        "cancelType": record.cancel_type, "rejectReason": record.reject_reason,
        "avgPrice": avg_price(spec, order), "leavesQty": qty_text(spec, leaves),
        "leavesValue": amount_text(spec, spec.notional(order.price, leaves)),
        "cumExecQty": qty_text(spec, order.executed_qty),
        "cumExecValue": amount_text(spec, order.cum_quote),
        "cumExecFee": amount_text(spec, record.fee),
        # changelog 2025-09-18: fees per coin; 2026-01-07: parentOrderLinkId (TP/SL only)
        "cumFeeDetail": {_fee_coin(record.category, spec, order.side):
                         amount_text(spec, record.fee)} if record.fee else {},
        "parentOrderLinkId": "", "timeInForce": time_in_force(order),
        "orderType": order_type(order), "stopOrderType": "", "orderIv": "",
        "marketUnit": record.market_unit, "triggerPrice": "", "takeProfit": "",
        "stopLoss": "", "tpTriggerBy": "", "slTriggerBy": "", "triggerDirection": 0,
        "triggerBy": "", "lastPriceOnCreated": "", "reduceOnly": order.reduce_only,
        "closeOnTrigger": False, "placeType": "", "smpType": "None", "smpGroup": 0,
        "smpOrderId": "", "tpLimitPrice": "", "slLimitPrice": "",
        "createdTime": str(order.time_ms), "updatedTime": str(order.update_ms)}
    if record.category == LINEAR:
        out["tpslMode"] = "UNKNOWN"  # ccxt tells a linear push from a spot one by it
    return out


def execution_json(e: ExecRecord, spec: SymbolSpec) -> Json:
    """GET /v5/execution/list rows; the `execution` topic adds category."""
    order = e.order
    value = spec.notional(e.price, e.qty)
    rate = spec.maker_fee if e.is_maker else spec.taker_fee
    return {
        "symbol": wire_symbol(spec), "orderId": str(order.order_id), "orderLinkId": e.link_id,
        "side": SIDES[order.side], "orderPrice": price_text(spec, order.price),
        "orderQty": qty_text(spec, order.orig_qty), "leavesQty": qty_text(spec, e.leaves_qty),
        "createType": "CreateByUser", "orderType": order_type(order), "stopOrderType": "",
        "execFee": amount_text(spec, e.fee), "execId": e.exec_id,
        "execPrice": price_text(spec, e.price), "execQty": qty_text(spec, e.qty),
        "execType": "Trade", "execValue": amount_text(spec, value),
        "execTime": str(e.time_ms), "isMaker": e.is_maker, "feeRate": rate.text,
        "tradeIv": "", "markIv": "", "markPrice": "", "indexPrice": "", "underlyingPrice": "",
        "blockTradeId": "", "closedSize": "0", "seq": e.trade_id,
        "execPnl": amount_text(spec, e.realized),
        # changelog 2025-09-18: feeCurrency for derivatives too
        "feeCurrency": _fee_coin(e.category, spec, order.side)}


def _fee_coin(category: str, spec: SymbolSpec, side: str) -> str:
    """Spot buys pay in the base coin, spot sells in the quote; perpetuals in the settle coin."""
    return spec.base if category == SPOT and side == o.BUY else spec.quote


def position_json(d: Derivatives, position: Position | None, spec: SymbolSpec,
                  account: str, now_ms: int) -> Json:
    """GET /v5/position/list rows and the `position` topic (an empty row for
    a symbol with no position, as Bybit lists one)."""
    leverage = d.book.leverage_of(account, spec.symbol)
    size = position.qty if position is not None else 0
    base: Json = {"positionIdx": POSITION_IDX.get(position.side if position else "", 0),
                  "riskId": 1, "riskLimitValue": "2000000", "symbol": wire_symbol(spec),
                  "leverage": str(leverage), "autoAddMargin": 0, "tradeMode": 0,
                  "positionStatus": "Normal", "adlRankIndicator": 0, "isReduceOnly": False,
                  "tpslMode": "Full", "takeProfit": "", "stopLoss": "", "trailingStop": "0",
                  "bustPrice": "", "liqPrice": "", "sessionAvgPrice": "",
                  "mmrSysUpdatedTime": "", "leverageSysUpdatedTime": "", "seq": -1}
    mark = d.mark(spec.symbol)
    if position is None or not size:
        realized = position.realized if position is not None else 0
        return base | {"side": "", "size": qty_text(spec, 0), "avgPrice": "0",
                       "breakEvenPrice": "0",
                       "positionValue": "0", "positionBalance": "0", "positionIM": "0",
                       "positionMM": "0", "markPrice": price_text(spec, mark),
                       "unrealisedPnl": "0", "curRealisedPnl": "0",
                       "cumRealisedPnl": amount_text(spec, realized),
                       "createdTime": str(position.update_ms if position else now_ms),
                       "updatedTime": str(position.update_ms if position else now_ms)}
    risk = d.position_risk(position)
    entry = Fraction(abs(position.cost), abs(size) * spec.notional_scale) / 10**spec.price_decimals
    return base | {
        "side": "Buy" if size > 0 else "Sell", "size": qty_text(spec, abs(size)),
        "avgPrice": ratio_text(entry, spec.price_decimals + 2),
        "breakEvenPrice": ratio_text(entry, spec.price_decimals + 2),  # changelog 2026-01-13
        "positionValue": amount_text(spec, abs(position.cost)),
        "positionBalance": amount_text(spec, risk.initial),
        "positionIM": amount_text(spec, risk.initial),
        "positionMM": amount_text(spec, risk.maintenance),
        "markPrice": price_text(spec, risk.mark),
        "unrealisedPnl": amount_text(spec, risk.unrealized),
        "curRealisedPnl": amount_text(spec, position.realized),
        "cumRealisedPnl": amount_text(spec, position.realized),
        "createdTime": str(position.update_ms), "updatedTime": str(position.update_ms)}


def coin_json(coin: str, decimals: int, free: int, locked: int, unrealized: int,
              order_im: int, position_im: int, position_mm: int, usd: Fraction) -> Json:
    wallet = free + locked
    equity = wallet + unrealized
    text = lambda v: format_units(v, decimals)
    return {"coin": coin, "equity": text(equity), "usdValue": ratio_text(usd * equity
                                                                            / 10**decimals, 4),
            "walletBalance": text(wallet), "free": text(free), "locked": text(locked),
            "spotHedgingQty": "0", "borrowAmount": "0", "availableToWithdraw": text(free),
            "availableToBorrow": "", "accruedInterest": "0", "totalOrderIM": text(order_im),
            "totalPositionIM": text(position_im), "totalPositionMM": text(position_mm),
            "unrealisedPnl": text(unrealized), "cumRealisedPnl": "0", "bonus": "0",
            "collateralSwitch": True, "marginCollateral": True}

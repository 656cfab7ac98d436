"""Binance USD-M JSON shapes from engine records: orders (REST answers and
ORDER_TRADE_UPDATE), positions (positionRisk, ACCOUNT_UPDATE), balances,
trades and income. Pure formatting; money is always a decimal string.

Docs: developers.binance.com/docs/derivatives/usds-margined-futures
(trade/rest-api New-Order, Query-Order, Position-Information-V3,
account/rest-api Account-Information-V3 and Futures-Account-Balance-V3,
user-data-streams Event-Order-Update and Event-Balance-and-Position-Update).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from engine.sim import orders as o
from engine.sim.amounts import format_units
from engine.sim.derivatives import Derivatives, Fill, Income
from engine.sim.filters import SymbolSpec
from engine.sim.margin import AccountRisk, PositionRisk, liquidation_price
from engine.sim.orders import Execution, Order
from engine.sim.positions import BOTH, Position

Json = dict[str, Any]

# internal type -> (USD-M type, time in force override)
TYPE_NAMES = {o.LIMIT: "LIMIT", o.LIMIT_MAKER: "LIMIT", o.MARKET: "MARKET",
              o.STOP_LOSS_LIMIT: "STOP", o.STOP_LOSS: "STOP_MARKET",
              o.TAKE_PROFIT_LIMIT: "TAKE_PROFIT", o.TAKE_PROFIT: "TAKE_PROFIT_MARKET"}
INTERNAL_TYPES = {v: k for k, v in TYPE_NAMES.items() if k != o.LIMIT_MAKER}
LIQUIDATION_PREFIX = "autoclose-"


def price_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value, spec.price_decimals)


def qty_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value, spec.qty_decimals)


def amount_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value, spec.amount_decimals)


def fraction_text(value: Fraction, decimals: int) -> str:
    scaled = value * 10**decimals
    units = scaled.numerator // scaled.denominator
    return format_units(units, decimals)


def wire_symbol(spec: SymbolSpec) -> str:
    return spec.symbol.removesuffix("-PERP")


def order_type(order: Order) -> str:
    if order.client_order_id.startswith(LIQUIDATION_PREFIX):
        return "LIQUIDATION"
    return TYPE_NAMES.get(order.type, order.type)


def time_in_force(order: Order) -> str:
    return "GTX" if order.type == o.LIMIT_MAKER else order.time_in_force


def avg_price(spec: SymbolSpec, order: Order) -> str:
    if not order.executed_qty:
        return price_text(spec, 0)
    exact = Fraction(order.cum_quote, order.executed_qty * spec.notional_scale)
    return fraction_text(exact / 10**spec.price_decimals, max(spec.price_decimals, 5))


def order_json(order: Order, spec: SymbolSpec) -> Json:
    """GET/POST/DELETE /fapi/v1/order, openOrders, allOrders."""
    kind = order_type(order)
    return {
        "orderId": order.order_id, "symbol": wire_symbol(spec), "status": order.status,
        "clientOrderId": order.client_order_id, "price": price_text(spec, order.price),
        "avgPrice": avg_price(spec, order), "origQty": qty_text(spec, order.orig_qty),
        "executedQty": qty_text(spec, order.executed_qty),
        "cumQty": qty_text(spec, order.executed_qty),
        "cumQuote": amount_text(spec, order.cum_quote), "timeInForce": time_in_force(order),
        "type": kind, "reduceOnly": order.reduce_only, "closePosition": False,
        "side": order.side, "positionSide": order.position_side or BOTH,
        "stopPrice": price_text(spec, order.stop_price), "workingType": "CONTRACT_PRICE",
        "priceProtect": False, "origType": kind, "priceMatch": "NONE",
        "selfTradePreventionMode": order.stp_mode, "goodTillDate": 0,
        "time": order.time_ms, "updateTime": order.update_ms,
    }


def order_update(execution: Execution, spec: SymbolSpec, fill: Fill | None,
                 event_ms: int) -> Json:
    """ORDER_TRADE_UPDATE (user data stream)."""
    order = execution.order
    kind = order_type(order)
    commission = fill.commission if fill is not None else 0
    realized = fill.realized if fill is not None else 0
    is_trade = execution.exec_type == o.EXEC_TRADE
    exec_type = o.EXEC_EXPIRED if execution.exec_type == o.EXEC_TRADE_PREVENTION else \
        execution.exec_type
    avg = Fraction(execution.cum_quote, execution.executed_qty * spec.notional_scale) \
        if execution.executed_qty else Fraction(0)
    return {"e": "ORDER_TRADE_UPDATE", "E": event_ms, "T": execution.time_ms, "o": {
        "s": wire_symbol(spec), "c": order.client_order_id, "S": order.side, "o": kind,
        "f": time_in_force(order), "q": qty_text(spec, order.orig_qty),
        "p": price_text(spec, order.price),
        "ap": fraction_text(avg / 10**spec.price_decimals, max(spec.price_decimals, 5)),
        "sp": price_text(spec, order.stop_price), "x": exec_type, "X": execution.status,
        "i": order.order_id, "l": qty_text(spec, execution.last_qty),
        "z": qty_text(spec, execution.executed_qty),
        "L": price_text(spec, execution.last_price), "N": spec.quote,
        "n": amount_text(spec, commission), "T": execution.time_ms,
        "t": execution.trade_id if is_trade else 0, "b": "0", "a": "0",
        "m": execution.is_maker, "R": order.reduce_only, "wt": "CONTRACT_PRICE", "ot": kind,
        "ps": order.position_side or BOTH, "cp": False, "rp": amount_text(spec, realized),
        "pP": False, "si": 0, "ss": 0, "V": order.stp_mode, "pm": "NONE", "gtd": 0,
        "er": "0"}}


def position_json(d: Derivatives, row: PositionRisk, account: AccountRisk, v2: bool) -> Json:
    """GET /fapi/v3/positionRisk (v2 adds leverage, marginType, maxNotionalValue)."""
    position = row.position
    spec = d.specs[position.symbol]
    tiers = d.brackets[position.symbol]
    liq = liquidation_price(row, account, tiers, spec.notional_scale) if position.qty else 0
    entry = _entry(spec, position)
    out: Json = {
        "symbol": wire_symbol(spec), "positionSide": position.side,
        "positionAmt": qty_text(spec, position.qty), "entryPrice": entry,
        "breakEvenPrice": entry, "markPrice": price_text(spec, row.mark),
        "unRealizedProfit": amount_text(spec, row.unrealized),
        "liquidationPrice": fraction_text(Fraction(liq) / 10**spec.price_decimals,
                                          spec.price_decimals),
        "isolatedMargin": amount_text(spec, position.margin + row.unrealized
                                      if row.isolated else 0),
        "notional": amount_text(spec, position.qty * row.mark * spec.notional_scale),
        "marginAsset": spec.quote,
        "isolatedWallet": amount_text(spec, position.margin),
        "initialMargin": amount_text(spec, row.initial),
        "maintMargin": amount_text(spec, row.maintenance),
        "positionInitialMargin": amount_text(spec, row.initial),
        "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0",
        "updateTime": position.update_ms,
    }
    if v2:
        out.update({"leverage": str(row.leverage),
                    "maxNotionalValue": str(tiers[0].notional_cap),
                    "marginType": "isolated" if row.isolated else "cross",
                    "isAutoAddMargin": "false"})
    return out


def _entry(spec: SymbolSpec, position: Position) -> str:
    if not position.qty:
        return price_text(spec, 0)
    exact = Fraction(abs(position.cost), abs(position.qty) * spec.notional_scale)
    return fraction_text(exact / 10**spec.price_decimals, max(spec.price_decimals, 8))


def account_position_json(d: Derivatives, position: Position) -> Json:
    """One "P" entry of ACCOUNT_UPDATE."""
    spec = d.specs[position.symbol]
    row = d.position_risk(position)
    isolated = d.book.is_isolated(position.account, position.symbol)
    return {"s": wire_symbol(spec), "pa": qty_text(spec, position.qty),
            "ep": _entry(spec, position), "bep": _entry(spec, position),
            "cr": amount_text(spec, position.realized),
            "up": amount_text(spec, row.unrealized if position.qty else 0),
            "mt": "isolated" if isolated else "cross",
            "iw": amount_text(spec, position.margin), "ps": position.side, "ma": spec.quote}


def balance_json(asset: str, decimals: int, risk: AccountRisk) -> Json:
    """One "B" entry of ACCOUNT_UPDATE."""
    return {"a": asset, "wb": format_units(risk.wallet + risk.isolated_margin, decimals),
            "cw": format_units(risk.wallet, decimals), "bc": "0"}


def trade_json(fill: Fill, spec: SymbolSpec) -> Json:
    """GET /fapi/v1/userTrades."""
    return {"buyer": fill.side == o.BUY, "commission": amount_text(spec, fill.commission),
            "commissionAsset": spec.quote, "id": fill.trade_id, "maker": fill.is_maker,
            "orderId": fill.order_id, "price": price_text(spec, fill.price),
            "qty": qty_text(spec, fill.qty), "quoteQty": amount_text(spec, fill.quote_qty),
            "realizedPnl": amount_text(spec, fill.realized), "side": fill.side,
            "positionSide": fill.position_side, "symbol": wire_symbol(spec),
            "time": fill.time_ms}


def income_json(income: Income, spec: SymbolSpec) -> Json:
    return {"symbol": wire_symbol(spec), "incomeType": income.kind,
            "income": amount_text(spec, income.amount), "asset": income.asset,
            "info": income.kind, "time": income.time_ms, "tranId": income.tran_id,
            "tradeId": str(income.trade_id) if income.trade_id else ""}


def decimal_text(value: Fraction, places: int = 8) -> str:
    return f"{Decimal(value.numerator) / Decimal(value.denominator):.{places}f}"

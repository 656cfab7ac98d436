"""Binance's JSON shapes for orders: new-order responses (ACK, RESULT, FULL),
order queries, cancels, executionReport and outboundAccountPosition.

Pure formatting from engine records; field names, order and conditional
fields follow rest-api.md ("Conditional fields in Order Responses") and
user-data-stream.md. Money is always a decimal string.
"""

from __future__ import annotations

from typing import Any

from engine.sim import orders as o
from engine.sim.amounts import format_units
from engine.sim.filters import SymbolSpec
from engine.sim.matching import OpResult
from engine.sim.orders import Execution, Order, Trade

Json = dict[str, Any]


def price_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value * 10 ** (spec.wire_price_decimals - spec.price_decimals),
                        spec.wire_price_decimals)


def qty_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value * 10 ** (spec.wire_qty_decimals - spec.qty_decimals),
                        spec.wire_qty_decimals)


def amount_text(spec: SymbolSpec, value: int) -> str:
    return format_units(value, spec.amount_decimals)


def _common(order: Order, spec: SymbolSpec) -> Json:
    return {
        "price": price_text(spec, order.price),
        "origQty": qty_text(spec, order.orig_qty),
        "executedQty": qty_text(spec, order.executed_qty),
        "cummulativeQuoteQty": amount_text(spec, order.cum_quote),
        "status": order.status,
        "timeInForce": order.time_in_force,
        "type": order.type,
        "side": order.side,
    }


def _conditional(order: Order, spec: SymbolSpec, out: Json) -> Json:
    if order.type in o.STOP_TYPES and "stopPrice" not in out:
        out["stopPrice"] = price_text(spec, order.stop_price)
    if order.prevented_match_id >= 0:
        out["preventedMatchId"] = order.prevented_match_id
        out["preventedQuantity"] = qty_text(spec, order.prevented_qty)
    return out


def new_order(result: OpResult, spec: SymbolSpec, response_type: str) -> Json:
    order = result.order
    assert order is not None
    out: Json = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                 "clientOrderId": order.client_order_id, "transactTime": order.time_ms}
    if response_type == "ACK":
        return out
    out.update(_common(order, spec))
    out["workingTime"] = order.working_ms
    if response_type == "FULL":
        out["fills"] = [fill(t, order, spec) for t in result.trades
                        if t.taker_order_id == order.order_id]
        if result.prevented:
            out["preventedMatches"] = [prevented(p, spec) for p in result.prevented]
    out["selfTradePreventionMode"] = order.stp_mode
    return _conditional(order, spec, out)


def fill(trade: Trade, order: Order, spec: SymbolSpec) -> Json:
    is_buyer = order.side == o.BUY
    return {"price": price_text(spec, trade.price), "qty": qty_text(spec, trade.qty),
            "commission": amount_text(spec, trade.buyer_fee if is_buyer else trade.seller_fee),
            "commissionAsset": spec.base if is_buyer else spec.quote,
            "tradeId": trade.trade_id}


def prevented(match: o.PreventedMatch, spec: SymbolSpec) -> Json:
    out: Json = {"preventedMatchId": match.prevented_match_id,
                 "makerOrderId": match.maker_order_id, "price": price_text(spec, match.price)}
    if match.taker_prevented_qty:
        out["takerPreventedQuantity"] = qty_text(spec, match.taker_prevented_qty)
    if match.maker_prevented_qty:
        out["makerPreventedQuantity"] = qty_text(spec, match.maker_prevented_qty)
    return out


def query(order: Order, spec: SymbolSpec) -> Json:
    """GET /api/v3/order, openOrders, allOrders."""
    out: Json = {"symbol": order.symbol, "orderId": order.order_id, "orderListId": -1,
                 "clientOrderId": order.client_order_id}
    out.update(_common(order, spec))
    out.update({
        "stopPrice": price_text(spec, order.stop_price),
        "icebergQty": qty_text(spec, 0),
        "time": order.time_ms,
        "updateTime": order.update_ms,
        "isWorking": order.working_ms >= 0,
        "workingTime": order.working_ms,
        "origQuoteOrderQty": amount_text(spec, order.orig_quote_qty),
        "selfTradePreventionMode": order.stp_mode,
    })
    return _conditional(order, spec, out)


def canceled(order: Order, spec: SymbolSpec, cancel_client_id: str, now_ms: int) -> Json:
    out: Json = {"symbol": order.symbol, "origClientOrderId": order.client_order_id,
                 "orderId": order.order_id, "orderListId": -1,
                 "clientOrderId": cancel_client_id, "transactTime": now_ms}
    out.update(_common(order, spec))
    out["selfTradePreventionMode"] = order.stp_mode
    return _conditional(order, spec, out)


def execution_report(execution: Execution, spec: SymbolSpec, event_ms: int) -> Json:
    order = execution.order
    is_cancel = execution.exec_type == o.EXEC_CANCELED
    out: Json = {
        "e": "executionReport", "E": event_ms, "s": order.symbol,
        "c": execution.cancel_client_id if is_cancel else order.client_order_id,
        "S": order.side, "o": order.type, "f": order.time_in_force,
        "q": qty_text(spec, order.orig_qty), "p": price_text(spec, order.price),
        "P": price_text(spec, order.stop_price), "F": qty_text(spec, 0), "g": -1,
        "C": order.client_order_id if is_cancel else "",
        "x": execution.exec_type, "X": execution.status, "r": "NONE", "i": order.order_id,
        "l": qty_text(spec, execution.last_qty), "z": qty_text(spec, execution.executed_qty),
        "L": price_text(spec, execution.last_price),
        "n": amount_text(spec, execution.commission) if execution.commission_asset else "0",
        "N": execution.commission_asset, "T": execution.time_ms, "t": execution.trade_id,
        "I": 0, "w": execution.status in o.OPEN_STATUSES and order.in_book,
        "m": execution.is_maker, "M": False, "O": order.time_ms,
        "Z": amount_text(spec, execution.cum_quote),
        "Y": amount_text(spec, spec.notional(execution.last_price, execution.last_qty)),
        "Q": amount_text(spec, order.orig_quote_qty),
        "W": order.working_ms, "V": order.stp_mode,
    }
    if execution.exec_type == o.EXEC_TRADE_PREVENTION:
        out.update({"v": order.prevented_match_id,
                    "A": qty_text(spec, order.prevented_qty),
                    "B": qty_text(spec, execution.last_prevented_qty), "u": -1})
    return out


def account_position(positions: list[tuple[str, int, int]], amount_decimals: int,
                     event_ms: int) -> Json:
    return {"e": "outboundAccountPosition", "E": event_ms, "u": event_ms,
            "B": [{"a": asset, "f": format_units(free, amount_decimals),
                   "l": format_units(locked, amount_decimals)}
                  for asset, free, locked in positions]}


def my_trade(trade: Trade, is_buyer: bool, order_list_id: int, spec: SymbolSpec) -> Json:
    is_maker = is_buyer == trade.buyer_is_maker
    return {
        "symbol": trade.symbol, "id": trade.trade_id,
        "orderId": trade.buyer_order_id if is_buyer else trade.seller_order_id,
        "orderListId": order_list_id, "price": price_text(spec, trade.price),
        "qty": qty_text(spec, trade.qty), "quoteQty": amount_text(spec, trade.quote_qty),
        "commission": amount_text(spec, trade.buyer_fee if is_buyer else trade.seller_fee),
        "commissionAsset": spec.base if is_buyer else spec.quote, "time": trade.time_ms,
        "isBuyer": is_buyer, "isMaker": is_maker, "isBestMatch": True,
    }

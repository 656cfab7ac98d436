"""POST /api/v3/order parameters -> OrderRequest, with Binance's checks.

rest-api.md, "New order (TRADE)": which parameters each type needs, which it
must not get (-1106), enum errors (-1115/-1116/-1117), and the precision of
DECIMAL values (-1100 for illegal text, -1111 beyond the asset's precision;
off-tick or off-step values are filter failures, -1013).
"""

from __future__ import annotations

from engine.sim import orders as o
from engine.sim.filters import SymbolSpec
from engine.sim.orders import OrderRequest
from engine.sim.rest_params import ApiError, Params

RESPONSE_TYPES = ("ACK", "RESULT", "FULL")
ORDER_PARAMS = frozenset({
    "symbol", "side", "type", "timeInForce", "quantity", "quoteOrderQty", "price",
    "newClientOrderId", "strategyId", "strategyType", "stopPrice", "trailingDelta",
    "icebergQty", "newOrderRespType", "selfTradePreventionMode", "recvWindow", "timestamp",
    "signature", "computeCommissionRates"})
CANCEL_REPLACE_PARAMS = ORDER_PARAMS | {
    "cancelReplaceMode", "cancelNewClientOrderId", "cancelOrigClientOrderId", "cancelOrderId",
    "cancelRestrictions", "orderRateLimitExceededMode"}
_NO_TIME_IN_FORCE = frozenset({o.MARKET, o.LIMIT_MAKER, o.STOP_LOSS, o.TAKE_PROFIT})
_NO_PRICE = frozenset({o.MARKET, o.STOP_LOSS, o.TAKE_PROFIT})
_NO_STOP_PRICE = frozenset({o.LIMIT, o.LIMIT_MAKER, o.MARKET})


def _not_required(name: str) -> ApiError:
    return ApiError(-1106, f"Parameter '{name}' sent when not required.")


def _units(params: Params, name: str, spec_decimals: int, wire_decimals: int,
           filter_name: str) -> int | None:
    """A price or quantity: parsed at the wire precision, then it must sit on
    the symbol's grid (Binance: a filter failure, not a precision error)."""
    value = params.units(name, wire_decimals)
    if value is None:
        return None
    factor = 10 ** (wire_decimals - spec_decimals)
    if value % factor:
        raise ApiError(-1013, f"Filter failure: {filter_name}")
    return value // factor


def order_request(params: Params, spec: SymbolSpec) -> tuple[OrderRequest, str]:
    """(request, newOrderRespType) or ApiError."""
    side = params.choice("side", o.SIDES, -1117, "Invalid side.", required=True)
    kind = params.choice("type", o.ORDER_TYPES, -1116, "Invalid orderType.", required=True)
    assert side is not None and kind is not None
    time_in_force = params.choice("timeInForce", o.TIMES_IN_FORCE, -1115,
                                  "Invalid timeInForce.")
    if time_in_force is not None and kind in _NO_TIME_IN_FORCE:
        raise _not_required("timeInForce")
    if kind in _NO_PRICE and params.text("price") is not None:
        raise _not_required("price")
    if kind in _NO_STOP_PRICE and params.text("stopPrice") is not None:
        raise _not_required("stopPrice")
    if params.text("icebergQty") is not None:
        raise ApiError(-2010, "Iceberg orders are not supported for this symbol.")
    if params.text("trailingDelta") is not None:
        raise ApiError(-2010, "Trailing stop orders are not supported for this symbol.")
    strategy_type = params.integer("strategyType")
    if strategy_type is not None and strategy_type < 1_000_000:
        raise ApiError(-1134, "strategyType was less than 1000000.")
    params.integer("strategyId")
    quantity = _units(params, "quantity", spec.qty_decimals, spec.wire_qty_decimals,
                      "LOT_SIZE")
    quote_quantity = params.units("quoteOrderQty", spec.amount_decimals)
    if quantity is not None and quote_quantity is not None:
        raise _not_required("quoteOrderQty")
    price = _units(params, "price", spec.price_decimals, spec.wire_price_decimals,
                   "PRICE_FILTER")
    stop_price = _units(params, "stopPrice", spec.price_decimals, spec.wire_price_decimals,
                        "PRICE_FILTER")
    stp = params.choice("selfTradePreventionMode", o.STP_MODES, -1013,
                        "This symbol does not allow the specified self-trade prevention mode.")
    response_type = params.choice("newOrderRespType", RESPONSE_TYPES, -1136,
                                  "Invalid newOrderRespType.")
    if response_type is None:
        response_type = "FULL" if kind in (o.MARKET, o.LIMIT) else "ACK"
    request = OrderRequest(
        symbol=spec.symbol, side=side, type=kind, time_in_force=time_in_force,
        quantity=quantity, quote_quantity=quote_quantity, price=price, stop_price=stop_price,
        client_order_id=params.client_id("newClientOrderId"), stp_mode=stp)
    return request, response_type

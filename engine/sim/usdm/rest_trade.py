"""USD-M order endpoints: new (with GTX post-only, reduceOnly and
positionSide), query, cancel, cancel all, open orders, all orders and user
trades. Parameters and answers per the USD-M trade REST pages.
"""

from __future__ import annotations

import re
from typing import Any, cast

from engine.sim import history
from engine.sim import orders as o
from engine.sim.filters import SymbolSpec
from engine.sim.orders import OrderRequest
from engine.sim.rest import Call, Route, VenueContext
from engine.sim.rest_params import SIGNED, ApiError, Params
from engine.sim.usdm import errors
from engine.sim.usdm.context import UsdmContext
from engine.sim.usdm.errors import usdm_errors
from engine.sim.usdm.wire import INTERNAL_TYPES, order_json, trade_json

CLIENT_ID_PATTERN = r"^[\.A-Z\:/a-z0-9_-]{1,36}$"  # USD-M New Order: newClientOrderId
_CLIENT_ID_RE = re.compile(CLIENT_ID_PATTERN)
TIMES_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH")


def _ctx(ctx: VenueContext) -> UsdmContext:
    return cast(UsdmContext, ctx)


def _units(params: Params, name: str, decimals: int, filter_error: tuple[int, str]) -> int | None:
    value = params.units(name, max(decimals, 8))
    if value is None:
        return None
    factor = 10 ** (max(decimals, 8) - decimals)
    if value % factor:
        raise ApiError(*filter_error)
    return value // factor


def order_request(params: Params, spec: SymbolSpec) -> OrderRequest:
    side = params.choice("side", o.SIDES, -1117, "Invalid side.", required=True)
    kind = params.choice("type", tuple(INTERNAL_TYPES) + ("TRAILING_STOP_MARKET",), -1116,
                         "Invalid orderType.", required=True)
    assert side is not None and kind is not None
    if kind == "TRAILING_STOP_MARKET":
        raise ApiError(-4120, "Order type not supported for this endpoint.")
    tif = params.choice("timeInForce", TIMES_IN_FORCE, -1115, "Invalid timeInForce.")
    internal = INTERNAL_TYPES[kind]
    if tif == "GTX":
        if internal != o.LIMIT:
            raise ApiError(-1115, "Invalid timeInForce.")
        internal, tif = o.LIMIT_MAKER, None
    elif internal not in o.PRICED_TYPES:
        tif = None  # MARKET and *_MARKET ignore it, as Binance does
    elif tif is None:
        tif = o.GTC
    position_side = params.choice("positionSide", ("BOTH", "LONG", "SHORT"), -4006,
                                  "Invalid position side.") or "BOTH"
    reduce_only = params.choice("reduceOnly", ("true", "false", "True", "False"), -1130,
                                "Data sent for parameter 'reduceOnly' is not valid.")
    if params.text("closePosition") == "true":
        raise ApiError(-4120, "closePosition is not supported by this venue.")
    client_id = params.text("newClientOrderId")
    if client_id is not None and not _CLIENT_ID_RE.match(client_id):
        raise ApiError(-1100, f"Illegal characters found in parameter 'newClientOrderId'; "
                              f"legal range is '{CLIENT_ID_PATTERN}'.")
    quantity = _units(params, "quantity", spec.qty_decimals, errors.QTY_PRECISION)
    if quantity is None:
        raise ApiError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, "
                              "or malformed.")
    price = _units(params, "price", spec.price_decimals, errors.PRICE_TICK)
    stop_price = _units(params, "stopPrice", spec.price_decimals, errors.PRICE_TICK)
    if internal in o.PRICED_TYPES and price is None:
        raise ApiError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or "
                              "malformed.")
    if internal not in o.PRICED_TYPES:
        price = None
    if internal in o.STOP_TYPES and stop_price is None:
        raise ApiError(-1102, "Mandatory parameter 'stopPrice' was not sent, was empty/null, "
                              "or malformed.")
    stp = params.choice("selfTradePreventionMode", STP_MODES, -4085,
                        "Invalid selfTradePreventionMode.")
    return OrderRequest(symbol=spec.symbol, side=side, type=internal, time_in_force=tif,
                        quantity=quantity, price=price,
                        stop_price=stop_price if internal in o.STOP_TYPES else None,
                        client_order_id=client_id, stp_mode=stp or o.EXPIRE_MAKER,
                        position_side=position_side,
                        reduce_only=(reduce_only or "").lower() == "true")


@usdm_errors
def new_order(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    request = order_request(call.params, spec)
    result = ctx.exchange.place(call.account, request)
    assert result.order is not None
    return order_json(result.order, spec)


def _ref(params: Params) -> tuple[int | None, str | None]:
    order_id = params.integer("orderId")
    client_id = params.text("origClientOrderId")
    if order_id is None and client_id is None:
        raise ApiError(-1102, "Either orderId or origClientOrderId must be sent.")
    return order_id, (None if order_id is not None else client_id)


@usdm_errors
def query_order(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    order_id, client_id = _ref(call.params)
    order = ctx.exchange.find_order(call.account, spec.symbol, order_id, client_id)
    if order is None:
        raise ApiError(*errors.NO_SUCH_ORDER)
    return order_json(order, spec)


@usdm_errors
def open_order(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    order_id, client_id = _ref(call.params)
    order = ctx.exchange.read(lambda ex: ex.engine.find_open(call.account, spec.symbol,
                                                              order_id, client_id))
    if order is None:
        raise ApiError(-2013, "Order does not exist.")
    return order_json(order, spec)


@usdm_errors
def cancel_order(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    order_id, client_id = _ref(call.params)
    result = ctx.exchange.cancel(call.account, spec.symbol, order_id, client_id)
    return order_json(result.executions[-1].order, spec)


def cancel_all(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    try:
        ctx.exchange.cancel_all(call.account, spec.symbol)
    except o.Rejected:
        pass  # nothing open: Binance answers success all the same
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def open_orders(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params, required=False)
    found = ctx.exchange.open_orders(call.account, spec.symbol if spec else None)
    return [order_json(x, u.by_internal(x.symbol)) for x in found if x.symbol in
            u.derivatives.specs]


def all_orders(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    p = call.params
    found = ctx.exchange.history(history.all_orders, call.account, spec.symbol,
                                 p.integer("orderId"), p.integer("startTime"),
                                 p.integer("endTime"), p.limit(500, 1000))
    live = {x.order_id: x for x in ctx.exchange.open_orders(call.account, spec.symbol)}
    return [order_json(live.get(x.order_id, x), spec) for x in found]


def user_trades(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params)
    assert spec is not None
    p = call.params
    order_id, from_id = p.integer("orderId"), p.integer("fromId")
    start, end, limit = p.integer("startTime"), p.integer("endTime"), p.limit(500, 1000)
    fills = ctx.exchange.read(lambda ex: list(u.derivatives.fills.get(call.account, ())))
    chosen = [f for f in fills if f.symbol == spec.symbol
              and (order_id is None or f.order_id == order_id)
              and (from_id is None or f.trade_id >= from_id)
              and (start is None or f.time_ms >= start) and (end is None or f.time_ms <= end)]
    chosen = chosen[:limit] if from_id is not None else chosen[-limit:]
    return [trade_json(f, spec) for f in chosen]


def _open_orders_weight(params: Params) -> int:
    return 1 if params.text("symbol") else 40


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/fapi/v1/order"): Route(new_order, SIGNED, 0, counts_order=True),
    ("GET", "/fapi/v1/order"): Route(query_order, SIGNED, 1),
    ("DELETE", "/fapi/v1/order"): Route(cancel_order, SIGNED, 1),
    ("DELETE", "/fapi/v1/allOpenOrders"): Route(cancel_all, SIGNED, 1),
    ("GET", "/fapi/v1/openOrder"): Route(open_order, SIGNED, 1),
    ("GET", "/fapi/v1/openOrders"): Route(open_orders, SIGNED, _open_orders_weight),
    ("GET", "/fapi/v1/allOrders"): Route(all_orders, SIGNED, 5),
    ("GET", "/fapi/v1/userTrades"): Route(user_trades, SIGNED, 5),
}

"""Account REST endpoints: orders (new, test, query, cancel, cancel-replace),
open and all orders, trades, account information and user data stream keys.

Parameters, responses and errors as rest-api.md ("Account endpoints", "User
data stream endpoints") and errors.md state them. Every state change goes
through the exchange; rendering is wire_orders.py's.
"""

from __future__ import annotations

import zlib
from typing import Any

from engine.sim import history
from engine.sim import wire_orders as wire
from engine.sim.amounts import format_units
from engine.sim.exchange import CancelReplace
from engine.sim.listen_keys import UnknownListenKey
from engine.sim.order_params import CANCEL_REPLACE_PARAMS, ORDER_PARAMS, order_request
from engine.sim.orders import Rejected
from engine.sim.rest import Call, Route, VenueContext, spec_for
from engine.sim.rest_params import SIGNED, USER_STREAM, ApiError, Params

CANCEL_RESTRICTIONS = ("ONLY_NEW", "ONLY_PARTIALLY_FILLED")


def new_order(ctx: VenueContext, call: Call) -> Any:
    call.params.unread(ORDER_PARAMS)
    spec = spec_for(ctx, call.params)
    request, response_type = order_request(call.params, spec)
    result = ctx.exchange.place(call.account, request)
    return wire.new_order(result, spec, response_type)


def test_order(ctx: VenueContext, call: Call) -> Any:
    call.params.unread(ORDER_PARAMS)
    spec = spec_for(ctx, call.params)
    request, _ = order_request(call.params, spec)
    ctx.exchange.test_order(request)
    if call.params.text("computeCommissionRates") == "true":
        rates = ctx.exchange.engine.fee_overrides.get(call.account)
        maker, taker = rates if rates else (spec.maker_fee, spec.taker_fee)
        zero = {"maker": "0.00000000", "taker": "0.00000000"}
        return {"standardCommissionForOrder": {"maker": _rate(maker.text),
                                               "taker": _rate(taker.text)},
                "taxCommissionForOrder": zero,
                "discount": {"enabledForAccount": False, "enabledForSymbol": False,
                             "discountAsset": "BNB", "discount": "0.00000000"}}
    return {}


def _rate(text: str) -> str:
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(8, '0')}"


def _order_ref(params: Params, id_name: str, client_name: str) -> tuple[int | None, str | None]:
    order_id = params.integer(id_name)
    client_id = params.text(client_name)
    if order_id is None and client_id is None:
        raise ApiError(-1102, f"Param '{client_name}' or '{id_name}' must be sent, but both "
                              f"were empty/null!")
    return order_id, (None if order_id is not None else client_id)


def query_order(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    order_id, client_id = _order_ref(call.params, "orderId", "origClientOrderId")
    order = ctx.exchange.find_order(call.account, spec.symbol, order_id, client_id)
    if order is None:
        raise ApiError(-2013, "Order does not exist.")
    return wire.query(order, spec)


def _restriction(params: Params, name: str = "cancelRestrictions") -> str | None:
    return params.choice(name, CANCEL_RESTRICTIONS, -1145, "Invalid cancelRestrictions")


def cancel_order(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    order_id, client_id = _order_ref(call.params, "orderId", "origClientOrderId")
    cancel_id = call.params.client_id("newClientOrderId")
    restriction = _restriction(call.params)
    result = ctx.exchange.cancel(call.account, spec.symbol, order_id, client_id, cancel_id,
                                 restriction)
    execution = result.executions[-1]
    return wire.canceled(execution.order, spec, execution.cancel_client_id, call.now_ms)


def open_orders(ctx: VenueContext, call: Call) -> Any:
    symbol = call.params.text("symbol")
    spec = spec_for(ctx, call.params) if symbol else None
    found = ctx.exchange.open_orders(call.account, spec.symbol if spec else None)
    return [wire.query(order, ctx.specs[order.symbol]) for order in found
            if order.symbol in ctx.specs]  # not the USD-M dialect's perpetuals


def cancel_open_orders(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    result = ctx.exchange.cancel_all(call.account, spec.symbol)
    return [wire.canceled(x.order, spec, x.cancel_client_id, call.now_ms)
            for x in result.executions]


def all_orders(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    p = call.params
    found = ctx.exchange.history(history.all_orders, call.account, spec.symbol,
                                 p.integer("orderId"), p.integer("startTime"),
                                 p.integer("endTime"), p.limit(500, 1000))
    return [wire.query(order, spec) for order in found]


def my_trades(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    p = call.params
    start, end = p.integer("startTime"), p.integer("endTime")
    if start is not None and end is not None and end - start > 24 * 3600 * 1000:
        raise ApiError(-1127, "More than 24 hours between startTime and endTime.")
    found = ctx.exchange.history(history.my_trades, call.account, spec.symbol,
                                 p.integer("orderId"), p.integer("fromId"), start, end,
                                 p.limit(500, 1000))
    return [wire.my_trade(trade, is_buyer, -1, spec) for trade, is_buyer in found]


def account(ctx: VenueContext, call: Call) -> Any:
    spec = next(iter(ctx.specs.values()))
    rates = ctx.exchange.engine.fee_overrides.get(call.account)
    maker, taker = rates if rates else (spec.maker_fee, spec.taker_fee)
    decimals = spec.amount_decimals
    omit_zero = call.params.text("omitZeroBalances") == "true"
    balances = [{"asset": asset, "free": format_units(free, decimals),
                 "locked": format_units(locked, decimals)}
                for asset, free, locked in ctx.exchange.balances(call.account)
                if not (omit_zero and free == 0 and locked == 0)]
    return {
        "makerCommission": maker.numerator * 10_000 // maker.denominator,
        "takerCommission": taker.numerator * 10_000 // taker.denominator,
        "buyerCommission": 0, "sellerCommission": 0,
        "commissionRates": {"maker": _rate(maker.text), "taker": _rate(taker.text),
                            "buyer": "0.00000000", "seller": "0.00000000"},
        "canTrade": True, "canWithdraw": False, "canDeposit": False, "brokered": False,
        "requireSelfTradePrevention": False, "preventSor": False,
        "updateTime": call.now_ms, "accountType": "SPOT", "balances": balances,
        "permissions": ["SPOT"], "uid": zlib.crc32(call.account.encode()),
    }


def cancel_replace(ctx: VenueContext, call: Call) -> Any:
    p = call.params
    p.unread(CANCEL_REPLACE_PARAMS)
    spec = spec_for(ctx, p)
    mode = p.text("cancelReplaceMode", required=True)
    if mode not in ("STOP_ON_FAILURE", "ALLOW_FAILURE"):
        raise ApiError(-1130, "Data sent for parameter 'cancelReplaceMode' is not valid.")
    cancel_id, cancel_client = _order_ref(p, "cancelOrderId", "cancelOrigClientOrderId")
    request, response_type = order_request(p, spec)
    outcome = ctx.exchange.cancel_replace(
        call.account, request, cancel_id, cancel_client,
        p.client_id("cancelNewClientOrderId"), _restriction(p),
        stop_on_failure=mode == "STOP_ON_FAILURE")
    return _cancel_replace_answer(outcome, spec, response_type, call.now_ms)


def _cancel_replace_answer(outcome: CancelReplace, spec: Any, response_type: str,
                           now_ms: int) -> Any:
    if isinstance(outcome.cancel, Rejected):
        cancel_part: Any = {"code": outcome.cancel.code, "msg": outcome.cancel.msg}
        cancel_ok = False
    else:
        execution = outcome.cancel.executions[-1]
        cancel_part = wire.canceled(execution.order, spec, execution.cancel_client_id, now_ms)
        cancel_ok = True
    if outcome.new is None:
        new_part, new_result = None, "NOT_ATTEMPTED"
    elif isinstance(outcome.new, Rejected):
        new_part, new_result = {"code": outcome.new.code, "msg": outcome.new.msg}, "FAILURE"
    else:
        new_part, new_result = wire.new_order(outcome.new, spec, response_type), "SUCCESS"
    body = {"cancelResult": "SUCCESS" if cancel_ok else "FAILURE",
            "newOrderResult": new_result, "cancelResponse": cancel_part,
            "newOrderResponse": new_part}
    if cancel_ok and new_result == "SUCCESS":
        return body
    if not cancel_ok and new_result != "SUCCESS":
        raise ApiError(-2022, "Order cancel-replace failed.", status=400, data=body)
    raise ApiError(-2021, "Order cancel-replace partially failed.", status=409, data=body)


def start_user_stream(ctx: VenueContext, call: Call) -> Any:
    return {"listenKey": ctx.listen_keys.create(call.account, call.now_ms)}


def keepalive_user_stream(ctx: VenueContext, call: Call) -> Any:
    key = call.params.text("listenKey", required=True) or ""
    try:
        ctx.listen_keys.keepalive(key, call.account, call.now_ms)
    except UnknownListenKey:
        raise ApiError(-1125, "This listenKey does not exist.") from None
    return {}


def close_user_stream(ctx: VenueContext, call: Call) -> Any:
    key = call.params.text("listenKey", required=True) or ""
    try:
        ctx.listen_keys.close(key, call.account)
    except UnknownListenKey:
        raise ApiError(-1125, "This listenKey does not exist.") from None
    return {}


def _open_orders_weight(params: Params) -> int:
    return 6 if params.text("symbol") else 80


def test_order_weight(params: Params) -> int:
    """rest-api.md: 1, or 20 with computeCommissionRates=true."""
    return 20 if params.text("computeCommissionRates") == "true" else 1


def my_trades_weight(params: Params) -> int:
    """rest-api.md: 20, or 5 with orderId."""
    return 5 if params.text("orderId") else 20


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/api/v3/order"): Route(new_order, SIGNED, 1, counts_order=True),
    ("POST", "/api/v3/order/test"): Route(test_order, SIGNED, test_order_weight),
    ("GET", "/api/v3/order"): Route(query_order, SIGNED, 4),
    ("DELETE", "/api/v3/order"): Route(cancel_order, SIGNED, 1),
    ("POST", "/api/v3/order/cancelReplace"): Route(cancel_replace, SIGNED, 1,
                                                   counts_order=True),
    ("GET", "/api/v3/openOrders"): Route(open_orders, SIGNED, _open_orders_weight),
    ("DELETE", "/api/v3/openOrders"): Route(cancel_open_orders, SIGNED, 1),
    ("GET", "/api/v3/allOrders"): Route(all_orders, SIGNED, 20),
    ("GET", "/api/v3/myTrades"): Route(my_trades, SIGNED, my_trades_weight),
    ("GET", "/api/v3/account"): Route(account, SIGNED, 20),
}

# Binance discontinued these on 2026-02-20 (CHANGELOG 2026-01-21: "will no longer
# be available"); LocalVenue serves them only with legacy_listen_keys=True, for
# clients written before. Weight 2 as their last documented edition says.
LISTEN_KEY_ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/api/v3/userDataStream"): Route(start_user_stream, USER_STREAM, 2),
    ("PUT", "/api/v3/userDataStream"): Route(keepalive_user_stream, USER_STREAM, 2),
    ("DELETE", "/api/v3/userDataStream"): Route(close_user_stream, USER_STREAM, 2),
}

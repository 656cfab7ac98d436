"""Order endpoints: /v5/order/create, cancel, cancel-all, realtime (open and
recent), history and /v5/execution/list; create and cancel are shared with
the trade WebSocket (order.create / order.cancel).

PostOnly that would take liquidity is accepted (retCode 0, an orderId) and
then cancelled with rejectReason EC_PostOnlyWillTakeLiquidity, as the
create-order page says ("If the order would be filled immediately when
submitted, it will be cancelled"); it is pushed on the `order` topic.
"""

from __future__ import annotations

import re
from itertools import count
from typing import Any

from engine.sim import orders as o
from engine.sim.amounts import to_units
from engine.sim.bybit import errors
from engine.sim.bybit.context import BybitContext
from engine.sim.bybit.errors import LINEAR, SPOT, BybitError, params_error
from engine.sim.bybit.records import AUTO_LINK_PREFIX, POST_ONLY_WILL_TAKE, OrderRecord
from engine.sim.bybit.rest import Call, Route
from engine.sim.bybit.wire import INTERNAL_SIDES, execution_json, order_json
from engine.sim.exchange import Exchange
from engine.sim.filters import SymbolSpec
from engine.sim.orders import Order, OrderRequest, Rejected

LINK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,36}$"  # create-order: orderLinkId
_LINK_ID_RE = re.compile(LINK_ID_PATTERN)
_auto_ids = count(1)
TIMES_IN_FORCE = ("GTC", "IOC", "FOK", "PostOnly")
POSITION_SIDES = {0: "BOTH", 1: "LONG", 2: "SHORT"}
UNSUPPORTED = ("triggerPrice", "takeProfit", "stopLoss", "tpslMode", "orderIv")
WOULD_TAKE = "Order would immediately match and take."


def _text(params: dict, name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    return str(value)


def _units(text: str, decimals: int, error: BybitError) -> int:
    units = to_units(text, decimals)
    if units is None or units <= 0:
        raise error
    return units


def _flag(params: dict, name: str) -> bool:
    value = params.get(name)
    return value is True or str(value).lower() == "true"


def order_request(category: str, spec: SymbolSpec, params: dict,
                  link_id: str) -> tuple[OrderRequest, str]:
    """(the core request, marketUnit as shown) from create-order parameters."""
    side = INTERNAL_SIDES.get(str(params.get("side")))
    if side is None:
        raise params_error("side invalid")
    kind = params.get("orderType")
    if kind not in ("Limit", "Market"):
        raise params_error("orderType invalid")
    tif = _text(params, "timeInForce") or ("IOC" if kind == "Market" else "GTC")
    if tif not in TIMES_IN_FORCE:
        raise params_error("timeInForce invalid")
    for name in UNSUPPORTED:
        if _text(params, name) not in (None, "0"):
            raise params_error(f"{name} is not supported by this venue")
    qty_text = _text(params, "qty")
    if qty_text is None:
        raise params_error("qty is required")
    position_side, reduce_only = "", False
    if category == SPOT:
        if str(params.get("isLeverage", "0")) not in ("0", ""):
            raise params_error("margin trading is not supported by this venue")
    else:
        idx = params.get("positionIdx", 0)
        if str(idx) not in ("0", "1", "2"):
            raise params_error("position idx not match position mode")
        position_side = POSITION_SIDES[int(idx)]
        reduce_only = _flag(params, "reduceOnly")
    market_unit = ""
    quantity: int | None = None
    quote_quantity: int | None = None
    if kind == "Market" and category == SPOT:
        market_unit = _text(params, "marketUnit") or ("quoteCoin" if side == o.BUY else "baseCoin")
        if market_unit not in ("baseCoin", "quoteCoin") or (
                market_unit == "quoteCoin" and side == o.SELL):
            raise params_error("marketUnit invalid")
        if market_unit == "quoteCoin":
            quote_quantity = _units(qty_text, spec.amount_decimals, errors.bad_qty(category))
    if quote_quantity is None:
        quantity = _units(qty_text, spec.qty_decimals, errors.bad_qty(category))
    price = None
    if kind == "Limit":
        price_text = _text(params, "price")
        if price_text is None:
            raise params_error("price is required for Limit orders")
        price = _units(price_text, spec.price_decimals, errors.bad_price(category))
    if kind == "Market":
        internal, core_tif = o.MARKET, None
    elif tif == "PostOnly":
        internal, core_tif = o.LIMIT_MAKER, None
    else:
        internal, core_tif = o.LIMIT, tif
    client_id = link_id or f"{AUTO_LINK_PREFIX}{next(_auto_ids)}"
    return OrderRequest(symbol=spec.symbol, side=side, type=internal, time_in_force=core_tif,
                        quantity=quantity, quote_quantity=quote_quantity, price=price,
                        client_order_id=client_id, position_side=position_side,
                        reduce_only=reduce_only), market_unit


def create(ctx: BybitContext, account: str, params: dict) -> dict[str, str]:
    category = ctx.category(params)
    spec = ctx.spec(category, params)
    assert spec is not None
    link_id = _text(params, "orderLinkId") or ""
    if link_id and not _LINK_ID_RE.match(link_id):
        raise params_error("orderLinkId invalid")
    request, market_unit = order_request(category, spec, params, link_id)
    exchange = ctx.exchange
    if link_id and exchange.read(lambda ex: ctx.records.by_link_id(account, link_id)):
        raise errors.duplicate_link_id(category)
    try:
        result = exchange.place(account, request)
    except Rejected as exc:
        if exc.msg != WOULD_TAKE:
            raise errors.translate(exc, category) from None
        record = exchange.read(lambda ex: _post_only_cancelled(ctx, ex, account, category,
                                                               request, link_id))
        return {"orderId": str(record.order.order_id), "orderLinkId": link_id}
    order = result.order
    assert order is not None
    record = exchange.read(lambda ex: ctx.records.track(order, category))
    record.market_unit = market_unit
    return {"orderId": str(order.order_id), "orderLinkId": link_id}


def _post_only_cancelled(ctx: BybitContext, ex: Exchange, account: str, category: str,
                         request: OrderRequest, link_id: str) -> OrderRecord:
    """The order Bybit accepts and cancels at once: a real id, no book change."""
    engine, symbol = ex.engine, request.symbol
    order_id = engine.next_order_id[symbol]
    engine.next_order_id[symbol] += 1
    now = ex.now_ms()
    order = Order(symbol, order_id, account, request.client_order_id or "", request.side,
                  o.LIMIT_MAKER, o.GTC, request.price or 0, request.quantity or 0, 0, 0,
                  o.DEFAULT_STP, now)
    order.status = o.CANCELED
    order.position_side = request.position_side
    record = ctx.records.track(order, category, link_id)
    record.reject_reason = POST_ONLY_WILL_TAKE
    ctx.notify(record)
    return record


def _reference(params: dict) -> tuple[int | None, str | None]:
    order_id, link_id = _text(params, "orderId"), _text(params, "orderLinkId")
    if order_id is None and link_id is None:
        raise params_error("orderId or orderLinkId is required")
    if order_id is not None:  # Bybit prefers orderId when both are given
        if not order_id.isdigit():
            raise params_error("orderId invalid")
        return int(order_id), None
    return None, link_id


def cancel(ctx: BybitContext, account: str, params: dict) -> dict[str, str]:
    category = ctx.category(params)
    spec = ctx.spec(category, params)
    assert spec is not None
    order_id, link_id = _reference(params)
    try:
        result = ctx.exchange.cancel(account, spec.symbol, order_id, link_id)
    except Rejected:
        raise errors.not_found(category) from None
    order = result.executions[-1].order
    record = ctx.exchange.read(lambda ex: ctx.records.track(order, category))
    return {"orderId": str(order.order_id), "orderLinkId": record.link_id}


def create_order(ctx: BybitContext, call: Call) -> Any:
    return create(ctx, call.account, call.params)


def cancel_order(ctx: BybitContext, call: Call) -> Any:
    return cancel(ctx, call.account, call.params)


def cancel_all(ctx: BybitContext, call: Call) -> Any:
    p = call.params
    category = ctx.category(p)
    spec = ctx.spec(category, p, required=False)
    base, settle = _text(p, "baseCoin"), _text(p, "settleCoin")
    if category == LINEAR and spec is None and base is None and settle is None:
        raise params_error("symbol, baseCoin or settleCoin is required")
    chosen = [spec] if spec is not None else [
        s for s in ctx.specs(category).values()
        if (base is None or s.base == base) and (settle is None or s.quote == settle)]
    cancelled = []
    for s in chosen:
        try:
            result = ctx.exchange.cancel_all(call.account, s.symbol)
        except Rejected:
            continue  # nothing open on this symbol
        records = ctx.exchange.read(lambda ex, r=result: [  # type: ignore[misc]
            ctx.records.track(x, category) for x in r.canceled])
        cancelled += [{"orderId": str(r.order.order_id), "orderLinkId": r.link_id}
                      for r in records]
    return {"list": cancelled, "success": "1"}


def _page(params: dict, rows: list, default: int, high: int) -> tuple[list, str]:
    raw_limit, raw_cursor = _text(params, "limit"), _text(params, "cursor")
    limit = default if raw_limit is None else int(raw_limit) if raw_limit.isdigit() else -1
    if not 1 <= limit:
        raise params_error("limit invalid")
    limit = min(limit, high)
    start = int(raw_cursor) if raw_cursor and raw_cursor.isdigit() else 0
    chosen = rows[start:start + limit]
    return chosen, str(start + limit) if start + limit < len(rows) else ""


def _matches(record: OrderRecord, category: str, spec: SymbolSpec | None, params: dict) -> bool:
    order = record.order
    order_id, link_id = _text(params, "orderId"), _text(params, "orderLinkId")
    return (record.category == category and (spec is None or order.symbol == spec.symbol)
            and (order_id is None or str(order.order_id) == order_id)
            and (link_id is None or record.link_id == link_id))


def _newest_first(records: list[OrderRecord]) -> list[OrderRecord]:
    return sorted(records, key=lambda r: (r.order.time_ms, r.order.order_id), reverse=True)


def realtime(ctx: BybitContext, call: Call) -> Any:
    """openOnly 0 (default): open orders, plus the named order (orderId or
    orderLinkId) in any state; 1: recent closed orders (up to 500)."""
    p = call.params
    category = ctx.category(p)
    spec = ctx.spec(category, p, required=False)
    open_only = str(p.get("openOnly") or "0")
    named = _text(p, "orderId") is not None or _text(p, "orderLinkId") is not None

    def collect(ex: Exchange) -> list[OrderRecord]:
        for s in ([spec] if spec else ctx.specs(category).values()):
            for order in ex.engine.open_orders[s.symbol].values():
                if order.account == call.account:
                    ctx.records.track(order, category)  # restored orders too
        mine = ctx.records.orders.get(call.account, {}).values()
        chosen = [r for r in mine if _matches(r, category, spec, p)]
        if open_only == "1":
            return _newest_first([r for r in chosen if not r.order.is_open])[:500]
        return _newest_first([r for r in chosen if r.order.is_open or named])
    rows, cursor = _page(p, ctx.exchange.read(collect), 20, 50)
    return {"category": category, "list": [order_json(r, _spec(ctx, r)) for r in rows],
            "nextPageCursor": cursor}


def _spec(ctx: BybitContext, record: OrderRecord) -> SymbolSpec:
    return ctx.by_internal[record.order.symbol][1]


def history(ctx: BybitContext, call: Call) -> Any:
    p = call.params
    category = ctx.category(p)
    spec = ctx.spec(category, p, required=False)
    status = _text(p, "orderStatus")
    start, end = _text(p, "startTime"), _text(p, "endTime")

    def collect(ex: Exchange) -> list[dict]:
        mine = ctx.records.orders.get(call.account, {}).values()
        chosen = [r for r in mine if _matches(r, category, spec, p)
                  and (start is None or r.order.time_ms >= int(start))
                  and (end is None or r.order.time_ms <= int(end))]
        rows = [order_json(r, _spec(ctx, r)) for r in _newest_first(chosen)]
        return [x for x in rows if status is None or x["orderStatus"] == status]
    rows, cursor = _page(p, ctx.exchange.read(collect), 20, 50)
    return {"category": category, "list": rows, "nextPageCursor": cursor}


def executions(ctx: BybitContext, call: Call) -> Any:
    p = call.params
    category = ctx.category(p)
    spec = ctx.spec(category, p, required=False)
    order_id, link_id = _text(p, "orderId"), _text(p, "orderLinkId")
    start, end = _text(p, "startTime"), _text(p, "endTime")

    def collect(ex: Exchange) -> list[dict]:
        found = [e for e in ctx.records.executions.get(call.account, ())
                 if e.category == category and (spec is None or e.symbol == spec.symbol)
                 and (order_id is None or str(e.order.order_id) == order_id)
                 and (link_id is None or e.link_id == link_id)
                 and (start is None or e.time_ms >= int(start))
                 and (end is None or e.time_ms <= int(end))]
        return [execution_json(e, ctx.by_internal[e.symbol][1]) for e in reversed(found)]
    rows, cursor = _page(p, ctx.exchange.read(collect), 50, 100)
    return {"category": category, "list": rows, "nextPageCursor": cursor}


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v5/order/create"): Route(create_order, True, "order.create"),
    ("POST", "/v5/order/cancel"): Route(cancel_order, True, "order.cancel"),
    ("POST", "/v5/order/cancel-all"): Route(cancel_all, True),
    ("GET", "/v5/order/realtime"): Route(realtime, True),
    ("GET", "/v5/order/history"): Route(history, True),
    ("GET", "/v5/execution/list"): Route(executions, True),
}

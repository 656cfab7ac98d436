"""OKX v5 trade REST: place (single and batch), cancel (single and batch),
order details by ordId or clOrdId, pending orders, order history and fills.
Docs: https://www.okx.com/docs-v5/en/#order-book-trading-trade-post-place-order
and the pages after it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.sim import history
from engine.sim.okx import errors as e
from engine.sim.okx import trading
from engine.sim.okx.errors import OkxError, OrderError
from engine.sim.okx.rest import Call, Route
from engine.sim.okx.wire import SWAP, Instrument, order_json, px, sz, units_text
from engine.sim.orders import Order

if TYPE_CHECKING:
    from engine.sim.okx.service import OkxDialect

BATCH_MAX = 20  # OKX: up to 20 orders per batch request
PAGE_MAX = 100


def render(dialect: OkxDialect, inst: Instrument, order: Order) -> dict:
    killed = dialect.killed.get(inst.ord_id(order.order_id))
    source, reason = (e.POST_ONLY_CANCEL_SOURCE, e.POST_ONLY_CANCEL_REASON) \
        if killed is not None and killed[1] is order else ("", "")
    return order_json(inst, order, dialect.td_mode(inst, order.account), dialect.fee_of(order),
                      dialect.lever(inst, order.account), cancel_source=source,
                      cancel_reason=reason)


def place_order(dialect: OkxDialect, call: Call) -> Any:
    if not isinstance(call.params, dict):
        raise OkxError(e.PARAM_ERROR, "Parameter body error")
    return [trading.place(dialect, call.account, call.params)]


def batch_orders(dialect: OkxDialect, call: Call) -> Any:
    items = call.params if isinstance(call.params, list) else [call.params]
    if len(items) > BATCH_MAX:
        raise OkxError("50025", f"Parameter order count exceeds the limit {BATCH_MAX}")
    return [trading.place(dialect, call.account, item) for item in items]


def cancel_order(dialect: OkxDialect, call: Call) -> Any:
    return [trading.cancel(dialect, call.account, call.params)]


def cancel_batch(dialect: OkxDialect, call: Call) -> Any:
    items = call.params if isinstance(call.params, list) else [call.params]
    if len(items) > BATCH_MAX:
        raise OkxError("50025", f"Parameter order count exceeds the limit {BATCH_MAX}")
    return [trading.cancel(dialect, call.account, item) for item in items]


def get_order(dialect: OkxDialect, call: Call) -> Any:
    found = trading.find(dialect, call.account, call.params)
    if found is None:
        raise OrderError(*e.ORDER_MISSING)
    return [render(dialect, *found)]


def _chosen(dialect: OkxDialect, params: dict, need_type: bool) -> list[Instrument]:
    kind = params.get("instType") or ""
    if need_type and not kind:
        raise OkxError(e.PARAM_EMPTY, "Parameter instType can not be empty.")
    inst_id = params.get("instId") or ""
    if inst_id and inst_id not in dialect.instruments:
        raise OkxError(*e.INSTRUMENT_MISSING)
    return [i for i in dialect.instruments.values()
            if (not kind or i.inst_type == kind) and (not inst_id or i.inst_id == inst_id)]


def _page(params: dict) -> int:
    raw = params.get("limit") or ""
    if not raw:
        return PAGE_MAX
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise OkxError(e.PARAM_ERROR, "Parameter limit error")
    return int(raw)


def orders_pending(dialect: OkxDialect, call: Call) -> Any:
    insts = _chosen(dialect, call.params, need_type=False)
    symbols = {i.spec.symbol: i for i in insts}
    found = dialect.exchange.open_orders(call.account, None)
    rows = [render(dialect, symbols[x.symbol], x) for x in found if x.symbol in symbols]
    rows.sort(key=lambda r: int(r["ordId"]), reverse=True)  # newest first
    return rows[:_page(call.params)]


def orders_history(dialect: OkxDialect, call: Call) -> Any:
    insts = _chosen(dialect, call.params, need_type=True)
    limit = _page(call.params)
    rows = []
    for inst in insts:
        found = dialect.exchange.history(history.all_orders, call.account, inst.spec.symbol,
                                         None, None, None, limit)
        rows += [render(dialect, inst, x) for x in found if not x.is_open]
    rows += [render(dialect, inst, x) for inst, x in list(dialect.killed.values())
             if inst in insts and x.account == call.account]
    rows.sort(key=lambda r: int(r["uTime"]), reverse=True)
    return rows[:limit]


def fills(dialect: OkxDialect, call: Call) -> Any:
    """``{"instType":"SPOT","instId":"BTC-USDT","tradeId":"1","ordId":"...","clOrdId":"b1",
    "fillPx":"60000","fillSz":"0.01","side":"buy","execType":"M","fee":"-0.00001",
    "feeCcy":"BTC","ts":"..."}``, newest first."""
    insts = _chosen(dialect, call.params, need_type=False)
    limit = _page(call.params)
    ord_id = call.params.get("ordId") or ""
    rows: list[dict] = []
    for inst in insts:
        spec = inst.spec
        order_id = None
        if ord_id:
            located = dialect.instrument_of(ord_id)
            if located is None or located[0] is not inst:
                continue
            order_id = located[1]
        if inst.inst_type == SWAP:
            mine = dialect.exchange.read(lambda ex: list(
                dialect.derivatives.fills.get(call.account, ())))
            picked = [(f.trade_id, f.order_id, f.side, f.price, f.qty, f.commission, spec.quote,
                       f.is_maker, f.time_ms, f.realized) for f in mine
                      if f.symbol == spec.symbol and (order_id is None or f.order_id == order_id)]
        else:
            trades = dialect.exchange.history(history.my_trades, call.account, spec.symbol,
                                              order_id, None, None, None, limit)
            picked = []
            for t, is_buyer in trades:
                mine_id = t.buyer_order_id if is_buyer else t.seller_order_id
                maker = t.buyer_is_maker == is_buyer
                picked.append((t.trade_id, mine_id, "BUY" if is_buyer else "SELL", t.price,
                               t.qty, t.buyer_fee if is_buyer else t.seller_fee,
                               spec.base if is_buyer else spec.quote, maker, t.time_ms, 0))
        for trade_id, oid, side, price, qty, fee, fee_ccy, maker, time_ms, pnl in picked:
            rows.append({
                "instType": inst.inst_type, "instId": inst.inst_id, "tradeId": str(trade_id),
                "ordId": inst.ord_id(oid), "clOrdId": _client_id(dialect, call.account, inst,
                                                                  oid),
                "billId": str(trade_id), "subType": "1", "tag": "", "fillPx": px(spec, price),
                "fillSz": sz(spec, qty), "fillIdxPx": "", "fillPnl": units_text(
                    pnl, spec.amount_decimals), "fillPxVol": "", "fillPxUsd": "",
                "fillMarkVol": "", "fillFwdPx": "", "fillMarkPx": "", "side": side.lower(),
                "posSide": "net" if inst.inst_type == SWAP else "",
                "execType": "M" if maker else "T", "feeCcy": fee_ccy,
                "fee": f"-{units_text(fee, spec.amount_decimals)}" if fee else "0",
                "ts": str(time_ms), "fillTime": str(time_ms), "feeRate": ""})
    rows.sort(key=lambda r: (int(r["ts"]), int(r["tradeId"])), reverse=True)
    return rows[:limit]


def _client_id(dialect: OkxDialect, account: str, inst: Instrument, order_id: int) -> str:
    order = dialect.exchange.find_order(account, inst.spec.symbol, order_id, None)
    return order.client_order_id if order is not None else ""


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/api/v5/trade/order"): Route(place_order, True, "order"),
    ("GET", "/api/v5/trade/order"): Route(get_order, True, "query"),
    ("POST", "/api/v5/trade/batch-orders"): Route(batch_orders, True, "batch"),
    ("POST", "/api/v5/trade/cancel-order"): Route(cancel_order, True, "cancel"),
    ("POST", "/api/v5/trade/cancel-batch-orders"): Route(cancel_batch, True, "batch"),
    ("GET", "/api/v5/trade/orders-pending"): Route(orders_pending, True, "pending"),
    ("GET", "/api/v5/trade/orders-history"): Route(orders_history, True, "history"),
    ("GET", "/api/v5/trade/fills"): Route(fills, True, "fills"),
    # the last 3 months on OKX; here the same records as /fills (ccxt fetchMyTrades)
    ("GET", "/api/v5/trade/fills-history"): Route(fills, True, "history"),
}

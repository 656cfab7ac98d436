"""Order operations shared by REST (/api/v5/trade/*) and the private
WebSocket's ``order``/``cancel-order``/``batch-orders``: parse one OKX order
argument, run it on the core, and answer OKX's per-order item
{"ordId", "clOrdId", "tag", "ts", "sCode", "sMsg"}.

A post-only order that would take is accepted and canceled at once, as OKX
does (sCode "0", then state "canceled" with cancelSource "31"); it never
reaches the core's book.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from engine.sim import orders as o
from engine.sim.amounts import is_decimal_text, to_units
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.okx import errors as e
from engine.sim.okx.errors import OrderError
from engine.sim.okx.wire import SPOT, SWAP, Instrument
from engine.sim.orders import Order, OrderRequest, Rejected

if TYPE_CHECKING:
    from engine.sim.okx.service import OkxDialect

# OKX clOrdId: "A combination of case-sensitive alphanumerics, all numbers, or
# all letters of up to 32 characters."
CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
ORD_TYPES = {"limit": (o.LIMIT, o.GTC), "post_only": (o.LIMIT_MAKER, None),
             "market": (o.MARKET, None), "ioc": (o.LIMIT, o.IOC), "fok": (o.LIMIT, o.FOK)}


def text(args: dict, name: str) -> str | None:
    """A parameter; python-okx sends "" for every one not given: absent."""
    value = args.get(name)
    if value is None or value == "":
        return None
    return str(value)


def instrument(dialect: OkxDialect, args: dict, ws: bool = False) -> Instrument:
    """By instId (REST); WebSocket order entry names it by the numeric
    instIdCode since 2026-03-26 and refuses a request without it (50014)."""
    code = text(args, "instIdCode")
    if ws or code is not None:
        if code is None:
            raise OrderError(e.PARAM_EMPTY, "Parameter instIdCode can not be empty.")
        inst = dialect.by_code.get(int(code)) if code.isdigit() else None
    else:
        inst_id = text(args, "instId")
        if inst_id is None:
            raise OrderError(e.PARAM_EMPTY, "Parameter instId can not be empty.")
        inst = dialect.instruments.get(inst_id)
    if inst is None:
        raise OrderError(*e.INSTRUMENT_MISSING)
    return inst


def _units(args: dict, name: str, decimals: int, fail: tuple[str, str]) -> int | None:
    value = text(args, name)
    if value is None:
        return None
    if not is_decimal_text(value):
        raise e.param_error(name)
    units = to_units(value, decimals)
    if units is None:
        raise OrderError(*fail)
    return units


def order_request(dialect: OkxDialect, account: str, inst: Instrument,
                  args: dict) -> OrderRequest:
    spec = inst.spec
    side = text(args, "side")
    if side not in ("buy", "sell"):
        raise e.param_error("side") if side else e.param_empty("side")
    kind = text(args, "ordType")
    if kind not in ORD_TYPES:
        raise e.param_error("ordType") if kind else e.param_empty("ordType")
    internal, tif = ORD_TYPES[kind]
    td_mode = text(args, "tdMode")
    if td_mode is None:
        raise e.param_empty("tdMode")
    if inst.inst_type == SPOT and td_mode != "cash":
        raise e.param_error("tdMode")
    if inst.inst_type == SWAP:
        _margin_mode(dialect, account, inst, td_mode)
    if text(args, "posSide") not in (None, "net"):
        raise e.param_error("posSide")  # the venue's accounts are in net (one-way) mode
    client_id = text(args, "clOrdId")
    if client_id is not None and not CLIENT_ID_RE.match(client_id):
        raise e.param_error("clOrdId")
    price = _units(args, "px", spec.price_decimals, e.TICK_SIZE)
    if internal != o.MARKET and price is None:
        raise e.param_empty("px")
    if internal == o.MARKET:
        price = None
    quantity = quote = None
    target = text(args, "tgtCcy")
    if (internal == o.MARKET and inst.inst_type == SPOT and side == "buy"
            and target != "base_ccy"):  # OKX: a spot market buy is sized in quote by default
        quote = _units(args, "sz", spec.amount_decimals, e.LOT_SIZE)
        if quote is None:
            raise e.param_empty("sz")
    else:
        quantity = _units(args, "sz", spec.qty_decimals, e.LOT_SIZE)
        if quantity is None:
            raise e.param_empty("sz")
    reduce_only = args.get("reduceOnly") in (True, "true")
    if reduce_only and inst.inst_type == SPOT:
        raise e.param_error("reduceOnly")
    return OrderRequest(symbol=spec.symbol, side=side.upper(), type=internal,
                        time_in_force=tif, quantity=quantity, quote_quantity=quote,
                        price=price, client_order_id=client_id, stp_mode=o.EXPIRE_MAKER,
                        position_side="BOTH" if inst.inst_type == SWAP else "",
                        reduce_only=reduce_only)


def _margin_mode(dialect: OkxDialect, account: str, inst: Instrument, td_mode: str) -> None:
    """tdMode cross|isolated: switch the symbol's margin mode while nothing is open."""
    if td_mode not in ("cross", "isolated"):
        raise e.param_error("tdMode")
    book = dialect.derivatives.book
    key = (account, inst.spec.symbol)
    if (key in book.isolated) == (td_mode == "isolated"):
        return

    def switch(ex: Any) -> None:
        busy = any(p.qty for p in book.of_account(account, inst.spec.symbol)) or any(
            x.account == account for x in ex.engine.open_orders[inst.spec.symbol].values())
        if busy:
            raise e.param_error("tdMode")
        (book.isolated.add if td_mode == "isolated" else book.isolated.discard)(key)
    dialect.exchange.read(switch)


def ack(inst_ord_id: str, client_id: str, now_ms: int, code: str = "0", msg: str = "",
        tag: str = "") -> dict:
    return {"clOrdId": client_id, "ordId": inst_ord_id, "tag": tag, "ts": str(now_ms),
            "sCode": code, "sMsg": msg if code != "0" else "Order placed"}


def place(dialect: OkxDialect, account: str, args: Any, ws: bool = False) -> dict:
    """One order; never raises (the failure is the item's sCode/sMsg)."""
    now = dialect.exchange.now_ms()
    if not isinstance(args, dict):
        return ack("", "", now, e.PARAM_ERROR, "Parameter args error")
    client_id = str(args.get("clOrdId") or "")
    tag = str(args.get("tag") or "")
    try:
        inst = instrument(dialect, args, ws)
        request = order_request(dialect, account, inst, args)
        killed: list[Order] = []

        def submit(engine: MatchingEngine, now_ms: int) -> list[OpResult]:
            book = engine.books[request.symbol]
            if request.type == o.LIMIT_MAKER and book.would_take(request.side, request.price or 0):
                engine.check(request)
                if request.client_order_id and engine.find_open(
                        account, request.symbol, None, request.client_order_id):
                    raise Rejected(-2010, "Duplicate order sent.")
                _check_funds(engine, account, request)
                killed.append(_killed_order(dialect, account, request, now_ms))
                return []
            return [engine.submit(account, request, now_ms)]
        results = dialect.exchange.run(submit)
        if killed:
            order = killed[0]
            dialect.kill(inst, order)
            dialect.push_killed(inst, order)
            return ack(inst.ord_id(order.order_id), client_id, now, tag=tag)
        placed = results[0].order
        assert placed is not None
        return ack(inst.ord_id(placed.order_id), client_id, now, tag=tag)
    except OrderError as exc:
        return ack("", client_id, now, exc.code, exc.msg, tag)
    except Rejected as exc:
        failed = e.translate(exc)
        return ack("", client_id, now, failed.code, failed.msg, tag)


def _check_funds(engine: MatchingEngine, account: str, request: OrderRequest) -> None:
    """A spot post-only killed on arrival still needs the funds it would lock (51008 first)."""
    if request.symbol in engine.settlement:
        return
    spec = engine.specs[request.symbol]
    qty, price = request.quantity or 0, request.price or 0
    asset, needed = (spec.quote, spec.notional(price, qty)) if request.side == o.BUY else (
        spec.base, qty * spec.base_scale)
    if not engine.ledger.has_account(account) or engine.ledger.free(account, asset) < needed:
        raise Rejected(-2010, "Account has insufficient balance for requested action.")


def _killed_order(dialect: OkxDialect, account: str, request: OrderRequest,
                  now_ms: int) -> Order:
    dialect.next_killed += 1
    order = Order(request.symbol, dialect.next_killed, account,
                  request.client_order_id or "", request.side, request.type, o.GTC,
                  request.price or 0, request.quantity or 0, 0, 0, o.EXPIRE_MAKER, now_ms)
    order.status = o.CANCELED
    return order


def find(dialect: OkxDialect, account: str, args: dict) -> tuple[Instrument, Order] | None:
    """The order named by ordId or clOrdId (open, in history, or killed on arrival)."""
    inst = instrument(dialect, args)
    ord_id, client_id = text(args, "ordId"), text(args, "clOrdId")
    if ord_id is None and client_id is None:
        raise OrderError(e.PARAM_EITHER, "Either parameter ordId or clOrdId is required.")
    order_id = None
    if ord_id is not None:
        killed = dialect.killed.get(ord_id)
        if killed is not None and killed[1].account == account and killed[0] is inst:
            return killed
        located = dialect.instrument_of(ord_id)
        if located is None or located[0] is not inst:
            return None
        order_id = located[1]
    order = dialect.exchange.find_order(account, inst.spec.symbol, order_id,
                                        None if order_id is not None else client_id)
    if order is not None:
        return inst, order
    if client_id is not None:
        for k_inst, k_order in reversed(dialect.killed.values()):
            if (k_inst is inst and k_order.account == account
                    and k_order.client_order_id == client_id):
                return k_inst, k_order
    return None


def cancel(dialect: OkxDialect, account: str, args: Any, ws: bool = False) -> dict:
    now = dialect.exchange.now_ms()
    if not isinstance(args, dict):
        return {"clOrdId": "", "ordId": "", "ts": str(now), "sCode": e.PARAM_ERROR,
                "sMsg": "Parameter args error"}
    ord_id, client_id = text(args, "ordId") or "", text(args, "clOrdId") or ""
    try:
        inst = instrument(dialect, args, ws)
        if not ord_id and not client_id:
            raise OrderError(e.PARAM_EITHER, "Either parameter ordId or clOrdId is required.")
        order_id = None
        if ord_id:
            located = dialect.instrument_of(ord_id)
            if located is None or located[0] is not inst:
                raise OrderError(*e.CANCEL_MISSING)
            order_id = located[1]
        result = dialect.exchange.cancel(account, inst.spec.symbol, order_id,
                                         None if order_id is not None else client_id)
        order = result.executions[-1].order
        return {"clOrdId": order.client_order_id, "ordId": inst.ord_id(order.order_id),
                "ts": str(now), "sCode": "0", "sMsg": ""}
    except OrderError as exc:
        return {"clOrdId": client_id, "ordId": ord_id, "ts": str(now), "sCode": exc.code,
                "sMsg": exc.msg}
    except Rejected:
        return {"clOrdId": client_id, "ordId": ord_id, "ts": str(now),
                "sCode": e.CANCEL_MISSING[0], "sMsg": e.CANCEL_MISSING[1]}

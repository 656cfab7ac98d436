"""What an order would do before it does it: walks of the opposite book that
size FOK checks and MARKET order funding, and the funds each order locks.

Read-only over the book; the matching engine acts on the answers. A walk
follows the same self-trade prevention rules as matching (rest-api.md and
faqs/stp_faq.md: the taker's mode decides) so its answer bounds what
matching will really do.
"""

from __future__ import annotations

from engine.sim import orders as o
from engine.sim.book import OrderBook
from engine.sim.filters import SymbolSpec
from engine.sim.orders import BUY, Order


def walk(book: OrderBook, spec: SymbolSpec, taker_account: str, side: str, stp_mode: str,
         limit: int, qty: int = 0, budget: int = 0) -> tuple[int, int]:
    """(quantity, notional) the taker could fill right now.

    ``limit`` 0 means none (market). Give ``qty`` to size by base quantity or
    ``budget`` (amount units) to size by quote amount, as quoteOrderQty does.
    """
    filled = cost = 0
    scale = spec.notional_scale
    is_buy = side == BUY
    for level in book.opposite_of(side).iter_levels():
        price = level.price
        if limit and (price > limit if is_buy else price < limit):
            break
        if stp_mode == o.STP_NONE:
            available = level.total
            stopped = False
        else:
            available, stopped = _available_for(level.orders, taker_account, stp_mode)
        if budget:
            affordable = (budget - cost) // (price * scale)
            take = min(available, affordable - affordable % spec.step)
        else:
            take = min(available, qty - filled)
        filled += take
        cost += price * take * scale
        if stopped or (budget and take < available) or (not budget and filled >= qty):
            break
    return filled, cost


def _available_for(level_orders: object, account: str, stp_mode: str) -> tuple[int, bool]:
    """Quantity a taker can trade in one level under STP, and whether its own
    order there ends the match (EXPIRE_TAKER / EXPIRE_BOTH)."""
    available = 0
    for maker in level_orders:  # type: ignore[attr-defined]
        if not maker.in_book:
            continue
        if maker.account == account:
            if stp_mode == o.EXPIRE_MAKER:
                continue
            return available, True
        available += maker.remaining
    return available, False


def funds_needed(book: OrderBook, spec: SymbolSpec, order: Order,
                 market_now: bool) -> tuple[str, int]:
    """(asset, amount) the order must lock before it may rest or trade.

    Limit prices lock price x quantity like Binance. ``market_now`` marks a
    market order about to execute: a BUY by quantity locks what the book says
    it costs now, a SELL by quote amount the quantity that amount needs. A
    stop that will become a MARKET BUY locks quantity x stopPrice as its
    reservation while it waits and is re-priced when it fires.
    """
    if order.side == BUY:
        if order.orig_quote_qty:
            return spec.quote, order.orig_quote_qty
        if market_now:
            _, cost = walk(book, spec, order.account, BUY, order.stp_mode, 0,
                           qty=order.remaining)
            return spec.quote, cost
        return spec.quote, spec.notional(order.price or order.stop_price, order.remaining)
    if order.orig_quote_qty:
        qty, _ = walk(book, spec, order.account, o.SELL, order.stp_mode, 0,
                      budget=order.orig_quote_qty)
        return spec.base, qty * spec.base_scale
    return spec.base, order.remaining * spec.base_scale

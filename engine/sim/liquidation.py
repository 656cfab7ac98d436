"""Liquidation of derivative positions whose margin has run out, and margin
calls before it.

Venue-neutral. Cross positions are judged together (the account's cross
margin balance against their summed maintenance margin), isolated ones each
on its own margin. A liquidation cancels the account's open orders on the
affected symbols, then sends a reduce-only MARKET order per position, owned
by the account, with a client id ``autoclose-...`` (Binance's marker; other
dialects render their own); whatever the book cannot take is taken over by
the insurance fund at the mark price. Losses beyond the account's balance are
covered by the insurance fund (derivatives.settle_pnl).
"""

from __future__ import annotations

from fractions import Fraction

from engine.sim import orders as o
from engine.sim.derivatives import INSURANCE_ACCOUNT, Derivatives, PerpSettlement
from engine.sim.margin import AccountRisk
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.orders import Order, OrderRequest, Rejected
from engine.sim.positions import BOTH, Position

LIQUIDATION_PREFIX = "autoclose-"
# Margin ratio (maintenance / margin balance) at which a margin call is sent;
# Binance's user-stream docs describe MARGIN_CALL as a warning before this hits 100%.
MARGIN_CALL_RATIO = Fraction(8, 10)


def accounts_with_positions(d: Derivatives) -> set[str]:
    return {p.account for p in d.book.open_positions() if not p.account.startswith("_")}


def due(d: Derivatives, asset: str) -> list[tuple[str, list[Position]]]:
    """(account, positions to liquidate now) for every account in trouble."""
    found = []
    for account in sorted(accounts_with_positions(d)):
        risk = d.risk(account, asset)
        doomed = [r.position for r in risk.positions if r.isolated
                  and r.position.margin + r.unrealized <= r.maintenance]
        if risk.cross_liquidatable():
            doomed += [r.position for r in risk.positions if not r.isolated]
        if doomed:
            found.append((account, doomed))
    return found


def margin_calls(d: Derivatives, asset: str) -> list[tuple[str, AccountRisk]]:
    calls = []
    for account in sorted(accounts_with_positions(d)):
        risk = d.risk(account, asset)
        if risk.cross_maintenance and risk.margin_ratio() >= MARGIN_CALL_RATIO:
            calls.append((account, risk))
    return calls


def liquidate(engine: MatchingEngine, d: Derivatives, account: str, positions: list[Position],
              now_ms: int) -> list[OpResult]:
    results: list[OpResult] = []
    for symbol in sorted({p.symbol for p in positions}):
        if any(x.account == account for x in engine.open_orders[symbol].values()):
            results.append(engine.cancel_all(account, symbol, now_ms))
    for number, position in enumerate(positions):
        if not position.qty:
            continue
        request = OrderRequest(
            symbol=position.symbol, side=o.SELL if position.qty > 0 else o.BUY, type=o.MARKET,
            quantity=abs(position.qty), client_order_id=f"{LIQUIDATION_PREFIX}{now_ms}-{number}",
            stp_mode=o.STP_NONE, position_side=position.side,
            reduce_only=position.side == BOTH)
        try:
            results.append(engine.submit(account, request, now_ms))
        except Rejected:
            pass  # e.g. below the notional floor: the insurance fund takes it all
        if position.qty:
            take_over(engine, d, position, now_ms)
    return results


def knocked_out(engine: MatchingEngine, d: Derivatives) -> list[Order]:
    """Open reduce-only orders that would now open or grow a position (the
    position shrank or closed while they rested): Binance expires these
    ("knocked out ... or reversed positions would be opened")."""
    found = []
    for symbol in d.specs:
        for order in list(engine.open_orders[symbol].values()):
            if not order.reduce_only or order.account.startswith("_"):
                continue
            position = d.book.get(order.account, symbol, order.position_side or BOTH)
            held = position.qty if position is not None else 0
            selling = order.side == o.SELL
            if not held or (held > 0) != selling or order.remaining > abs(held):
                found.append(order)
    return found


def take_over(engine: MatchingEngine, d: Derivatives, position: Position, now_ms: int) -> None:
    """The insurance fund takes the rest of ``position`` at the mark price."""
    settlement = engine.settlement[position.symbol]
    assert isinstance(settlement, PerpSettlement)
    spec = d.specs[position.symbol]
    mark = d.mark(position.symbol) or engine.last_price[position.symbol] or 1
    qty = abs(position.qty)
    buying_back = position.qty < 0
    realized = settlement._move(position, buying_back, qty, 0, mark, now_ms)
    d.settle_pnl(position.account, spec.quote, realized)
    d.record_income(position.account, position.symbol, "REALIZED_PNL", realized, spec.quote,
                    now_ms)
    fund = d.book.open(INSURANCE_ACCOUNT, position.symbol, position.side)
    settlement._move(fund, not buying_back, 0, qty, mark, now_ms)

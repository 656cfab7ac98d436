"""Derivatives settlement on the shared matching engine and ledger: margin
reservations for new orders, positions moved by fills, realized PnL, fees,
and the records (income, fills) that dialects report.

Venue-neutral and pure (the caller holds the exchange lock and passes the
time). Money moves only between ledger accounts, so every asset's ledger
total is conserved exactly:
  realized PnL    clearing account <-> trader (the clearing account's
                  change always equals minus the sum of open positions' cost)
  fees            trader -> the ledger's fee pool
  funding, and losses a bankrupt account cannot pay  <-> insurance fund
Margin sits in the trader's locked balance: open orders' initial margin
(order.locked) and isolated positions' margin (position.margin).
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

from engine.sim import orders as o
from engine.sim.amounts import FeeRate
from engine.sim.book import OrderBook
from engine.sim.filters import SymbolSpec
from engine.sim.ledger import Ledger
from engine.sim.margin import (
    DEFAULT_BRACKETS,
    AccountRisk,
    Bracket,
    PositionRisk,
    initial_margin,
    maintenance_margin,
)
from engine.sim.orders import BUY, Order, OrderRequest, Rejected
from engine.sim.positions import BOTH, LONG, SHORT, Position, PositionBook, release_cost, split_fill
from engine.sim.pretrade import walk

CLEARING_ACCOUNT = "_clearing"
INSURANCE_ACCOUNT = "_insurance"
# Per-account records kept for income and trade history queries; older ones
# are dropped (a paper session rarely asks further back).
RECORDS_KEPT = 10_000
# Opening balance of the clearing account and the insurance fund, whole
# units: they pay out PnL and cover bankruptcies, so they must never run dry.
HOUSE_GRANT = 10**15

# Income kinds (Binance's names, which Bybit and OKX map onto their own)
REALIZED_PNL, COMMISSION, FUNDING_FEE, INSURANCE_CLEAR = (
    "REALIZED_PNL", "COMMISSION", "FUNDING_FEE", "INSURANCE_CLEAR")

MARGIN_INSUFFICIENT = (-2019, "Margin is insufficient.")
REDUCE_ONLY_REJECTED = (-2022, "ReduceOnly Order is rejected.")
POSITION_SIDE_MISMATCH = (-4061, "Order's position side does not match user's setting.")


class Income(NamedTuple):
    account: str
    symbol: str
    kind: str
    amount: int  # signed amount units
    asset: str
    time_ms: int
    tran_id: int
    trade_id: int  # 0 when not a trade's


class Fill(NamedTuple):
    """One side of a trade as its owner sees it."""

    account: str
    symbol: str
    trade_id: int
    order_id: int
    side: str
    position_side: str
    price: int
    qty: int
    quote_qty: int
    commission: int
    realized: int
    is_maker: bool
    time_ms: int


class Derivatives:
    """Shared state of every derivative symbol on one venue."""

    def __init__(self, ledger: Ledger, default_leverage: int = 20) -> None:
        self.ledger = ledger
        self.book = PositionBook(default_leverage)
        self.specs: dict[str, SymbolSpec] = {}
        self.brackets: dict[str, tuple[Bracket, ...]] = {}
        self.marks: dict[str, int] = {}  # symbol -> mark price (price units)
        self.income: dict[str, deque[Income]] = {}
        self.fills: dict[str, deque[Fill]] = {}
        self.insurance_paid = 0  # losses the insurance fund covered (amount units)
        self.orders: dict[int, Order] = {}  # id(order) -> order with a margin to release
        self._tran_id = 0

    def add_symbol(self, spec: SymbolSpec,
                   tiers: tuple[Bracket, ...] = DEFAULT_BRACKETS) -> PerpSettlement:
        self.specs[spec.symbol] = spec
        self.brackets[spec.symbol] = tiers
        grant = HOUSE_GRANT * 10**spec.amount_decimals
        for house in (CLEARING_ACCOUNT, INSURANCE_ACCOUNT):
            if not self.ledger.has_account(house):
                self.ledger.open_account(house)
            if spec.quote not in self.ledger.balances[house]:
                self.ledger.balances[house][spec.quote] = [grant, 0]
        return PerpSettlement(self, spec)

    # ------------------------------------------------------------- pricing

    def mark(self, symbol: str, fallback: int = 0) -> int:
        return self.marks.get(symbol) or fallback

    def risk(self, account: str, asset: str) -> AccountRisk:
        """The account's margin state in ``asset`` at current marks."""
        ledger = self.ledger
        free = ledger.free(account, asset) if ledger.has_account(account) else 0
        locked = ledger.locked(account, asset) if ledger.has_account(account) else 0
        rows: list[PositionRisk] = []
        isolated_margin = cross_upnl = cross_im = cross_mm = 0
        for position in self.book.of_account(account):
            spec = self.specs[position.symbol]
            if spec.quote != asset:
                continue
            isolated = self.book.is_isolated(account, position.symbol)
            isolated_margin += position.margin
            if not position.qty:
                continue
            row = self.position_risk(position)
            rows.append(row)
            if not isolated:
                cross_upnl += row.unrealized
                cross_im += row.initial
                cross_mm += row.maintenance
        return AccountRisk(free + locked - isolated_margin, isolated_margin, free,
                           locked - isolated_margin, cross_upnl, cross_im, cross_mm, rows)

    def available(self, account: str, asset: str) -> int:
        """AccountRisk.available without the maintenance arithmetic (the
        per-order check): free less cross initial margin plus cross PnL."""
        free = self.ledger.free(account, asset) if self.ledger.has_account(account) else 0
        cross = 0
        for position in self.book.by_account.get(account, ()):
            if not position.qty or self.book.is_isolated(account, position.symbol):
                continue
            spec = self.specs[position.symbol]
            if spec.quote != asset:
                continue
            mark = self.marks.get(position.symbol) or abs(position.cost) // (
                abs(position.qty) * spec.notional_scale)
            notional = abs(position.qty) * mark * spec.notional_scale
            cross += position.qty * mark * spec.notional_scale - position.cost \
                - initial_margin(notional, self.book.leverage_of(account, position.symbol))
        return max(0, min(free, free + cross))

    def position_risk(self, position: Position) -> PositionRisk:
        spec = self.specs[position.symbol]
        mark = self.mark(position.symbol, abs(position.cost) // max(
            1, abs(position.qty) * spec.notional_scale))
        notional = abs(position.qty) * mark * spec.notional_scale
        leverage = self.book.leverage_of(position.account, position.symbol)
        return PositionRisk(
            position, mark, notional, position.unrealized(mark, spec.notional_scale),
            initial_margin(notional, leverage),
            maintenance_margin(self.brackets[position.symbol], notional, spec.amount_decimals),
            leverage, self.book.is_isolated(position.account, position.symbol),
            10**spec.amount_decimals)

    # ----------------------------------------------------------- transfers

    def pay(self, source: str, target: str, asset: str, amount: int) -> int:
        """Move up to ``amount`` from source's free balance; what was moved."""
        if amount <= 0:
            return 0
        moved = min(amount, self.ledger.free(source, asset))
        if moved:
            self.ledger.lock(source, asset, moved)
            self.ledger.spend_locked(source, asset, moved)
            self.ledger.credit(target, asset, moved)
        return moved

    def settle_pnl(self, account: str, asset: str, amount: int) -> None:
        """Realized PnL through the clearing account; a loss the account
        cannot pay is covered by the insurance fund, so the clearing account
        is always made whole."""
        if amount > 0:
            self.pay(CLEARING_ACCOUNT, account, asset, amount)
        elif amount < 0:
            paid = self.pay(account, CLEARING_ACCOUNT, asset, -amount)
            shortfall = -amount - paid
            if shortfall:
                self.insurance_paid += shortfall
                self.pay(INSURANCE_ACCOUNT, CLEARING_ACCOUNT, asset, shortfall)

    def record_income(self, account: str, symbol: str, kind: str, amount: int, asset: str,
                      now_ms: int, trade_id: int = 0) -> None:
        if not amount or account.startswith("_"):
            return
        self._tran_id += 1
        log = self.income.get(account)
        if log is None:
            log = self.income[account] = deque(maxlen=RECORDS_KEPT)
        log.append(Income(account, symbol, kind, amount, asset, now_ms, self._tran_id,
                          trade_id))


class PerpSettlement:
    """engine.sim.settlement.Settlement for one linear perpetual."""

    def __init__(self, derivatives: Derivatives, spec: SymbolSpec) -> None:
        self.d = derivatives
        self.spec = spec
        self.asset = spec.quote

    # --------------------------------------------------------- new orders

    def reserve(self, account: str, req: OrderRequest, order: Order, book: OrderBook,
                now_ms: int) -> tuple[str, int]:
        positions = self.d.book
        hedge = account in positions.hedge
        side = req.position_side or BOTH
        if hedge != (side in (LONG, SHORT)):
            raise Rejected(*POSITION_SIDE_MISMATCH)
        position = positions.get(account, self.spec.symbol, side)
        held = position.qty if position is not None else 0
        quantity = req.quantity or 0
        signed = quantity if req.side == BUY else -quantity
        if hedge:
            closes = (side == LONG) != (req.side == BUY)
            if req.reduce_only:
                raise Rejected(-1106, "Parameter 'reduceonly' sent when not required.")
            if closes and quantity > abs(held):
                raise Rejected(*REDUCE_ONLY_REJECTED)
            opening = 0 if closes else quantity
        elif req.reduce_only:
            if not held or (held > 0) == (signed > 0):
                raise Rejected(*REDUCE_ONLY_REJECTED)
            opening = 0
        else:
            opening = split_fill(held, signed)[1]
        amount = 0
        if opening:
            notional = self._opening_notional(req, book, account, opening)
            leverage = positions.leverage_of(account, self.spec.symbol)
            amount = initial_margin(notional, leverage)
            if amount > self.d.available(account, self.asset):
                raise Rejected(*MARGIN_INSUFFICIENT)
        order.position_side = side
        order.reduce_only = req.reduce_only or (hedge and opening == 0)
        return self.asset, amount

    def _opening_notional(self, req: OrderRequest, book: OrderBook, account: str,
                          qty: int) -> int:
        spec = self.spec
        price = req.price or req.stop_price
        if price:
            return spec.notional(price, qty)
        _, cost = walk(book, spec, account, req.side, req.stp_mode or o.STP_NONE, 0, qty=qty)
        mark = self.d.mark(spec.symbol)
        return max(cost, spec.notional(mark, qty)) if mark else cost

    # --------------------------------------------------------------- fills

    def fill(self, buyer: Order, seller: Order, buyer_rate: FeeRate, seller_rate: FeeRate,
             price: int, qty: int, notional: int, maker_is_buyer: bool, trade_id: int,
             now_ms: int) -> tuple[int, int]:
        buyer_fee = self._settle(buyer, qty, price, notional, buyer_rate, maker_is_buyer,
                                 trade_id, now_ms)
        seller_fee = self._settle(seller, -qty, price, notional, seller_rate,
                                  not maker_is_buyer, trade_id, now_ms)
        return buyer_fee, seller_fee

    def _settle(self, order: Order, signed: int, price: int, notional: int, rate: FeeRate,
                is_maker: bool, trade_id: int, now_ms: int) -> int:
        d, spec, asset, ledger = self.d, self.spec, self.asset, self.d.ledger
        account, symbol = order.account, spec.symbol
        size = abs(signed)
        share = order.locked if size >= order.remaining else order.locked * size // \
            order.remaining
        if share:  # this fill's part of the order's initial margin comes back
            ledger.unlock(account, asset, share)
            order.locked -= share
        positions = d.book
        position = positions.open(account, symbol, order.position_side or BOTH)
        if position.side == BOTH:
            closing, opening = split_fill(position.qty, signed)
            legs = [(position, closing, opening)]
        elif (position.side == LONG) != (signed > 0):  # hedge: closes this side
            closing = min(size, abs(position.qty))
            legs = [(position, closing, 0)]
            if size > closing:  # the side shrank since the order was placed
                other = positions.open(account, symbol, SHORT if position.side == LONG
                                       else LONG)
                legs.append((other, 0, size - closing))
        else:
            legs = [(position, 0, size)]
        realized = 0
        for leg, closing, opening in legs:
            realized += self._move(leg, signed > 0, closing, opening, price, now_ms)
        d.settle_pnl(account, asset, realized)
        fee = self._charge_fee(account, rate.of(notional) if rate else 0)
        d.record_income(account, symbol, REALIZED_PNL, realized, asset, now_ms, trade_id)
        d.record_income(account, symbol, COMMISSION, -fee, asset, now_ms, trade_id)
        if not account.startswith("_"):
            log = d.fills.get(account)
            if log is None:
                log = d.fills[account] = deque(maxlen=RECORDS_KEPT)
            log.append(Fill(account, symbol, trade_id, order.order_id, order.side,
                            position.side, price, size, notional, fee, realized, is_maker,
                            now_ms))
        return fee

    def _move(self, position: Position, buying: bool, closing: int, opening: int, price: int,
              now_ms: int) -> int:
        """Close then open quantity on one position; the realized PnL."""
        spec, ledger, asset = self.spec, self.d.ledger, self.asset
        account = position.account
        realized = 0
        if closing:
            released = release_cost(position, closing)
            exit_value = price * closing * spec.notional_scale
            realized = exit_value - released if position.qty > 0 else -released - exit_value
            margin = position.margin if closing >= abs(position.qty) else \
                position.margin * closing // abs(position.qty)
            if margin:
                ledger.unlock(account, asset, margin)
                position.margin -= margin
            position.cost -= released
            position.qty += closing if buying else -closing
            position.realized += realized
        if opening:
            opened = price * opening * spec.notional_scale
            position.qty += opening if buying else -opening
            position.cost += opened if buying else -opened
            positions = self.d.book
            if positions.is_isolated(account, spec.symbol):
                need = initial_margin(opened, positions.leverage_of(account, spec.symbol))
                take = min(need, ledger.free(account, asset))
                if take:
                    ledger.lock(account, asset, take)
                    position.margin += take
        position.update_ms = now_ms
        self.d.book.touch(position)
        return realized

    def _charge_fee(self, account: str, fee: int) -> int:
        """The fee goes to the fee pool; an account that cannot pay all of it
        pays what it has (the rest is waived, never minted)."""
        ledger = self.d.ledger
        fee = min(fee, ledger.free(account, self.asset))
        if fee:
            ledger.lock(account, self.asset, fee)
            ledger.spend_locked(account, self.asset, fee)
            ledger.fees[self.asset] = ledger.fees.get(self.asset, 0) + fee
        return fee

"""Balances, positions, realized and unrealized PnL and fees, in exact
decimals. Fed only with fills the order store committed (each exactly once)
and balances the venue reported; rebuilt from TRADER_FILLS at start. No I/O.

Average-cost accounting per (venue, pair): a fill that grows the position
moves the average price; one that shrinks it realizes (price - average) x
quantity. Fees in the quote asset are realized costs; fees in the base asset
shrink the quantity received (Binance charges a buyer in base); fees in a third
asset (BNB) are summed per asset, not converted. Futures add funding payments
(realized when paid) and the venue's own report of each position (entry price,
unrealized PnL, liquidation price), kept beside what the fills give.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

from engine.model import Side
from engine.model_trade import Fill, PositionReport

ZERO = Decimal(0)
# /status shows two realized figures; this says why they differ.
REALIZED_PNL_BASIS = (
    "positions.realized_pnl: per account pair, average cost over every fill (all strategies "
    "and hand trades), fees included. slots <id>.realized: one grid's completed cycles only "
    "(proceeds - cost of what it sold). They differ by fills outside the grid, open "
    "inventory and fees.")


@dataclass
class Position:
    venue: str
    pair: str
    quantity: Decimal = ZERO  # base units, + long / - short
    average_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO  # quote units, fees in quote and base included
    fees_quote: Decimal = ZERO  # fees paid, valued in quote at the fill price
    fees_other: dict[str, Decimal] = field(default_factory=dict)
    bought: Decimal = ZERO
    sold: Decimal = ZERO
    mark_price: Decimal | None = None
    funding: Decimal = ZERO  # futures: funding received (+) / paid (-), in realized_pnl
    liquidations: int = 0  # fills of the venue's forced closes on this position
    # The venue's last report (futures): leg -> PositionReport; what reconcile compares.
    reported: dict[str, PositionReport] = field(default_factory=dict)

    def unrealized_pnl(self) -> Decimal:
        if self.mark_price is None or self.quantity == 0:
            return ZERO
        return (self.mark_price - self.average_price) * self.quantity

    def apply(self, fill: Fill, base: str, quote: str) -> Decimal:
        """Book one fill; returns the PnL it realized (fees included)."""
        price, quantity, fee = Decimal(fill.price), Decimal(fill.quantity), Decimal(fill.fee)
        signed = quantity if fill.side == Side.BUY else -quantity
        realized = ZERO
        if fee:
            if fill.fee_asset == base:
                signed -= fee  # received (buy) or paid (sell) that much less base
                self.fees_quote += fee * price
            elif fill.fee_asset == quote:
                realized -= fee
                self.fees_quote += fee
            else:
                self.fees_other[fill.fee_asset] = self.fees_other.get(fill.fee_asset, ZERO) + fee
        if fill.side == Side.BUY:
            self.bought += quantity
        else:
            self.sold += quantity
        position = self.quantity
        if position == 0 or (position > 0) == (signed > 0):
            total = position + signed
            self.average_price = (self.average_price * abs(position) + price * abs(signed)) / \
                abs(total) if total else ZERO
            self.quantity = total
        else:
            closing = min(abs(signed), abs(position))
            direction = Decimal(1) if position > 0 else Decimal(-1)
            realized += (price - self.average_price) * closing * direction
            self.quantity = position + signed
            if self.quantity == 0:
                self.average_price = ZERO
            elif (self.quantity > 0) != (position > 0):
                self.average_price = price  # flipped: the rest opened at this price
        self.realized_pnl += realized
        return realized


def _day(exch_ns: int) -> str:
    return datetime.fromtimestamp(exch_ns / 1e9, UTC).strftime("%Y-%m-%d")


class PositionBook:
    """Thread-safe: fills arrive from the executor and the user-stream threads."""

    def __init__(self, assets: dict[tuple[str, str], tuple[str, str]] | None = None) -> None:
        self._lock = threading.Lock()
        self._assets = dict(assets or {})  # (venue, pair) -> (base, quote)
        self._positions: dict[tuple[str, str], Position] = {}
        self._balances: dict[tuple[str, str], tuple[Decimal, Decimal]] = {}
        self._realized_by_day: dict[str, Decimal] = {}
        self._day_open_unrealized: dict[str, Decimal] = {}
        self.fills_applied = 0

    def set_assets(self, venue: str, pair: str, base: str, quote: str) -> None:
        with self._lock:
            self._assets[(venue, pair)] = (base, quote)

    def _assets_of(self, venue: str, pair: str) -> tuple[str, str]:
        found = self._assets.get((venue, pair))
        if found is not None:
            return found
        base, _, quote = pair.partition("/")
        return base, quote

    def _get(self, venue: str, pair: str) -> Position:
        position = self._positions.get((venue, pair))
        if position is None:
            position = self._positions[(venue, pair)] = Position(venue, pair)
        return position

    def on_fill(self, fill: Fill) -> None:
        with self._lock:
            position = self._get(fill.venue, fill.pair)
            realized = position.apply(fill, *self._assets_of(fill.venue, fill.pair))
            position.liquidations += fill.liquidation
            day = _day(fill.exch_ns)
            self._realized_by_day[day] = self._realized_by_day.get(day, ZERO) + realized
            self.fills_applied += 1

    def on_funding(self, venue: str, pair: str, amount: Decimal, exch_ns: int) -> None:
        """One funding payment (each exactly once: the caller dedups by its id)."""
        with self._lock:
            position = self._get(venue, pair)
            position.funding += amount
            position.realized_pnl += amount
            day = _day(exch_ns)
            self._realized_by_day[day] = self._realized_by_day.get(day, ZERO) + amount

    def on_report(self, report: PositionReport) -> None:
        """The venue's view of one leg; a later report of the same leg replaces it."""
        with self._lock:
            position = self._get(report.venue, report.pair)
            before = position.reported.get(report.position_side.value)
            if before is not None and report.exch_ns and before.exch_ns > report.exch_ns:
                return  # an older report arriving late
            if not report.liquidation_price and before is not None:  # stream rows lack it
                report = _keep(report, before)
            position.reported = {**position.reported, report.position_side.value: report}

    def set_balances(self, venue: str, balances: dict[str, tuple[str, str]]) -> None:
        with self._lock:
            for asset, (free, locked) in balances.items():
                self._balances[(venue, asset)] = (Decimal(free), Decimal(locked))

    def mark(self, venue: str, pair: str, price: Decimal, now_ns: int) -> None:
        with self._lock:
            position = self._positions.get((venue, pair))
            if position is None:
                position = self._positions[(venue, pair)] = Position(venue, pair)
            position.mark_price = price
            day = _day(now_ns)
            if day not in self._day_open_unrealized:
                self._day_open_unrealized = {day: self._unrealized()}

    def _unrealized(self) -> Decimal:
        return sum((p.unrealized_pnl() for p in self._positions.values()), ZERO)

    # -------------------------------------------------------------- views

    def position(self, venue: str, pair: str) -> Position:
        with self._lock:
            found = self._positions.get((venue, pair))
            if found is None:
                return Position(venue, pair)
            return Position(**{**found.__dict__, "fees_other": dict(found.fees_other),
                               "reported": dict(found.reported)})

    def balance(self, venue: str, asset: str) -> tuple[Decimal, Decimal]:
        with self._lock:
            return self._balances.get((venue, asset), (ZERO, ZERO))

    def daily_pnl(self, now_ns: int) -> Decimal:
        """Realized today (UTC) plus the change in unrealized since the day's first mark."""
        with self._lock:
            day = _day(now_ns)
            opened = self._day_open_unrealized.get(day, ZERO)
            return self._realized_by_day.get(day, ZERO) + self._unrealized() - opened

    def status(self) -> dict:
        with self._lock:
            return {
                "positions": {f"{v}:{p}": {
                    "quantity": str(x.quantity), "average_price": str(x.average_price),
                    "realized_pnl": str(x.realized_pnl), "unrealized_pnl": str(x.unrealized_pnl()),
                    "fees_quote": str(x.fees_quote),
                    "fees_other": {a: str(f) for a, f in x.fees_other.items()},
                    "mark_price": None if x.mark_price is None else str(x.mark_price),
                    **({"funding": str(x.funding), "liquidations": x.liquidations,
                        "venue": {leg: _report(r) for leg, r in x.reported.items()}}
                       if x.reported or x.funding or x.liquidations else {})}
                    for (v, p), x in sorted(self._positions.items())},
                "balances": {f"{v}:{a}": {"free": str(f), "locked": str(lk)}
                             for (v, a), (f, lk) in sorted(self._balances.items())},
                "fills_applied": self.fills_applied,
                "realized_pnl_basis": REALIZED_PNL_BASIS,
            }


def _keep(new: PositionReport, old: PositionReport) -> PositionReport:
    """A stream report (no liquidation / mark price) keeps the REST one's."""
    return replace(new, liquidation_price=old.liquidation_price, mark_price=new.mark_price or
                   old.mark_price, leverage=new.leverage or old.leverage)


def _report(r: PositionReport) -> dict:
    return {"quantity": r.quantity, "entry_price": r.entry_price,
            "unrealized_pnl": r.unrealized_pnl, "liquidation_price": r.liquidation_price,
            "mark_price": r.mark_price, "leverage": r.leverage,
            "margin_type": r.margin_type.value if r.margin_type else ""}

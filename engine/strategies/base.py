"""The contract a strategy is written against: what it sees (a View of its
books, its own orders, slots and position, the time and its instrument's
rules) and what it returns (intents: Place, Cancel, Amend). Plain values and
one small base class; imports only engine.model (engine.LAYERS), no I/O, no
clock of its own: the time is in the view.

A strategy is one file under engine/strategies/ plus one registry line
(engine/trade/strategy.py STRATEGIES)::

    @dataclass(frozen=True)
    class Params:
        size: Decimal
        def check(self) -> None: ...          # optional cross-field validation

    class MyStrategy(Strategy):
        name = "mine"
        Params = Params
        def decide(self, view: View) -> list[Intent]:
            return [Place(Side.BUY, price, self.params.size)] if ... else []

Intents are requests, not orders: the trader assigns client order ids,
quantizes to the instrument, commits them (and any slot they move) to the
task DB, and refuses what does not fit (a second order on an occupied grid
level, a cancel of someone else's order). Money is Decimal, never float.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any, ClassVar, Protocol

from engine.model import Side

ZERO = Decimal(0)


def money(value: Any) -> Decimal:
    """A float from market data as the shortest exact decimal (repr), so
    0.1 becomes Decimal("0.1"), not 0.1000000000000000055..."""
    return value if isinstance(value, Decimal) else Decimal(repr(float(value)))


# ----------------------------------------------------------------------- inputs


class BookLike(Protocol):
    """A consistent copy of one book's top levels (engine.book.reader.BookView)."""

    @property
    def key(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def recv_ns(self) -> int: ...
    @property
    def synced(self) -> bool: ...
    @property
    def best_bid(self) -> float: ...
    @property
    def best_ask(self) -> float: ...
    @property
    def mid(self) -> float: ...
    @property
    def bid_px(self) -> Any: ...  # sequences of float, best first
    @property
    def bid_sz(self) -> Any: ...
    @property
    def ask_px(self) -> Any: ...
    @property
    def ask_sz(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Rules:
    """The instrument's order-entry rules (the venue's tick, lot and minimums)."""

    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = ZERO
    min_notional: Decimal = ZERO

    def price(self, value: Decimal, side: Side) -> Decimal:
        """On the tick, never more aggressive: a buy rounds down, a sell up."""
        rounding = ROUND_FLOOR if side == Side.BUY else ROUND_CEILING
        return (value / self.tick_size).to_integral_value(rounding) * self.tick_size

    def quantity(self, value: Decimal) -> Decimal:
        """Down to the lot step."""
        return (value / self.step_size).to_integral_value(ROUND_DOWN) * self.step_size

    def tradable(self, price: Decimal, quantity: Decimal) -> bool:
        """Would the venue accept this size at this price (minimums only)?"""
        return quantity > 0 and quantity >= self.min_qty and price * quantity >= self.min_notional


class SlotState(str, enum.Enum):
    FREE = "free"  # no order, nothing held (maybe a dust carry below one lot)
    PENDING = "pending"  # entry order sent (buy, for a long grid)
    LOCKED = "locked"  # entry filled; the exit (sell) rests or is being re-armed


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """One grid slot as the slot manager last committed it."""

    slot_id: int
    state: SlotState
    entry_side: Side
    entry_price: Decimal  # the level
    exit_price: Decimal
    quantity: Decimal  # size of the entry order
    entry_filled: Decimal  # base filled on the current entry order
    held: Decimal  # base held for the exit (net of base fees, plus any dust carry)
    client_order_id: str  # the slot's current order ("" none)
    closing: bool  # a cancel of the entry was sent
    rearm_ns: int  # a rejected order of this slot is not retried before this time
    cycles: int
    realized: Decimal  # profit booked over all completed cycles, quote units


@dataclass(frozen=True, slots=True)
class OrderInfo:
    """One of the strategy's live orders (slot orders included)."""

    client_order_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    filled: Decimal
    state: str  # intent | unknown | open | partially_filled
    slot_id: int | None


@dataclass(frozen=True, slots=True)
class PositionInfo:
    """The account's position on the strategy's pair (positions.Position)."""

    quantity: Decimal = ZERO
    average_price: Decimal = ZERO
    realized_pnl: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class View:
    """Everything one decision may look at. Built fresh for every decision."""

    now_ns: int
    strategy_id: str
    venue: str
    market: str
    pair: str
    rules: Rules
    book: BookLike | None  # the strategy's own pair; None until the feed has it
    books: Mapping[str, BookLike] = field(default_factory=dict)  # every watched book
    orders: tuple[OrderInfo, ...] = ()
    slots: tuple[SlotInfo, ...] = ()
    position: PositionInfo = PositionInfo()
    # Why new orders stop now (the trader is halted, or a circuit breaker is
    # open for this pair); "" while they may go. Placements made meanwhile are
    # dropped before the executor; cancels still go.
    halted: str = ""


# ----------------------------------------------------------------------- intents


def _check_money(*values: Decimal | None) -> None:
    for value in values:
        if value is None:
            continue
        if not isinstance(value, Decimal):
            raise TypeError(f"{value!r}: prices and quantities are Decimal, never float")
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{value}: prices and quantities must be positive")


@dataclass(frozen=True, slots=True)
class Place:
    """A new limit order. With ``exit_price`` it opens a grid slot: the slot
    manager places the opposite order at ``exit_price`` for what the entry
    bought, and books the cycle's profit when that fills."""

    side: Side
    price: Decimal
    quantity: Decimal
    post_only: bool = True
    exit_price: Decimal | None = None

    def __post_init__(self) -> None:
        _check_money(self.price, self.quantity, self.exit_price)
        if self.exit_price is not None and \
                (self.exit_price <= self.price if self.side == Side.BUY else
                 self.exit_price >= self.price):
            raise ValueError(f"exit {self.exit_price} must be on the profitable side of "
                             f"{self.side.value} {self.price}")


@dataclass(frozen=True, slots=True)
class Cancel:
    client_order_id: str


@dataclass(frozen=True, slots=True)
class Amend:
    """Move one of the strategy's own (non-slot) orders: cancel-replace."""

    client_order_id: str
    price: Decimal
    quantity: Decimal
    post_only: bool = True

    def __post_init__(self) -> None:
        _check_money(self.price, self.quantity)


Intent = Place | Cancel | Amend


# ----------------------------------------------------------------------- strategy


@dataclass(frozen=True)
class NoParams:
    pass


class Strategy:
    """Base class: set ``name`` and ``Params``, implement ``decide``.

    One instance per running TRADE task, living in a worker process. It may
    keep state between decisions (indicators), but must not rely on it
    surviving: a restarted worker builds a fresh instance, and everything
    durable (orders, slots, position) comes back in the view."""

    name: ClassVar[str] = ""
    Params: ClassVar[type] = NoParams
    # Decide at least this often even when no watched book changed (timers,
    # re-arming). Shorter reacts sooner to time; each wake is one decision.
    wake_s: ClassVar[float] = 1.0

    def __init__(self, params: Any) -> None:
        self.params = params

    def extra_books(self) -> tuple[str, ...]:
        """Book keys ("venue:market:BASE/QUOTE") watched besides the own pair."""
        return ()

    def decide(self, view: View) -> Sequence[Intent]:
        raise NotImplementedError

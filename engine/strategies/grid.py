"""Grid strategy: buy levels spaced a fixed (or ATR-derived) interval apart
below the price, one slot each; the slot manager sells each filled buy
``profit_levels`` intervals higher and books the profit. This module only
chooses levels (a window that trails the price, capped by inventory and
skewed down as inventory grows); it never touches orders, slots or storage.

  book (best bid) ─► step (fixed | pct | ATR) ─► lattice anchor + k*step
     ─► window: the `window` levels at or below the bid, shifted down by skew
     ─► cancel pending buys that fell out of it (one level of slack)
     ─► place buys on empty levels, within max_inventory, at most N per decision
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from engine.model import Side
from engine.strategies.base import (
    ZERO,
    Cancel,
    Intent,
    Place,
    SlotInfo,
    SlotState,
    Strategy,
    View,
    money,
)

# A new ATR interval replaces the current one only when it differs by more
# than this share: every change re-spaces the lattice and cancels the pending
# buys that are off it. Lower follows volatility closer; higher churns less.
ATR_HYSTERESIS = 0.10
# Pending buys this many levels below the window survive (they would be
# re-placed at once if the price ticked back). More slack, fewer cancels.
TRAIL_SLACK_LEVELS = 1


@dataclass(frozen=True)
class GridParams:
    order_size: Decimal  # base units per level; more = more profit and risk per cycle
    interval: Decimal = ZERO  # fixed step in quote units (0: use interval_pct)
    interval_pct: float = 0.0  # step as % of the reference price
    # > 0: step = atr_multiplier x ATR over atr_period bars of atr_bar_s seconds
    # (interval / interval_pct serve until the bars are in; neither = wait).
    atr_period: int = 0
    atr_bar_s: float = 60.0
    atr_multiplier: float = 1.0
    window: int = 5  # active buy levels; wider holds more orders and catches deeper dips
    profit_levels: int = 1  # sell this many steps above the buy
    max_inventory: Decimal = ZERO  # base held + pending buys; 0 = window x order_size
    # 0..1: at full inventory the window sits skew x window levels lower, so a
    # falling market is bought more slowly. 0 = no skew.
    inventory_skew: float = 0.0
    reference_price: Decimal = ZERO  # lattice anchor; 0 = existing slots' level or first price
    post_only: bool = True  # entries rest as makers (a crossing one is re-priced)
    # Read by the slot manager: a rejected order of a slot waits this long
    # before it is sent again (the level is re-armed then).
    rearm_s: float = 5.0
    # No fill for this long shows the grid on /health. 0 = never.
    idle_alert_s: float = 3600.0
    max_orders_per_decision: int = 10  # new intents per decision; bounds bursts
    # long: buy below, sell higher; short: sell above, buy back lower; neutral:
    # both (short and neutral need a market that can go short: perpetuals).
    direction: str = "long"

    def check(self) -> None:
        if self.order_size <= 0:
            raise ValueError("order_size must be positive")
        if self.interval < 0 or self.interval_pct < 0:
            raise ValueError("interval and interval_pct must not be negative")
        if self.interval and self.interval_pct:
            raise ValueError("give interval or interval_pct, not both")
        if not (self.interval or self.interval_pct or self.atr_period):
            raise ValueError("give interval, interval_pct or atr_period")
        if self.atr_period < 0 or self.atr_bar_s <= 0 or self.atr_multiplier <= 0:
            raise ValueError("atr_period >= 0, atr_bar_s > 0 and atr_multiplier > 0")
        if self.window < 1 or self.profit_levels < 1 or self.max_orders_per_decision < 1:
            raise ValueError("window, profit_levels and max_orders_per_decision must be >= 1")
        if self.max_inventory < 0 or self.reference_price < 0:
            raise ValueError("max_inventory and reference_price must not be negative")
        if not 0 <= self.inventory_skew <= 1:
            raise ValueError("inventory_skew must be in [0, 1]")
        if self.direction not in ("long", "short", "neutral"):
            raise ValueError(f"direction {self.direction!r}: expected long, short or neutral")
        if self.rearm_s < 0 or self.idle_alert_s < 0:
            raise ValueError("rearm_s and idle_alert_s must not be negative")


class Bars:
    """Mid-price bars for the ATR: OHLC per ``bar_ns``, the last ``period`` kept."""

    def __init__(self, bar_ns: int, period: int) -> None:
        self.bar_ns = bar_ns
        self.period = period
        self.closed: deque[tuple[float, float, float, float]] = deque(maxlen=period + 1)
        self._open_at = -1
        self._bar: list[float] = []

    def add(self, now_ns: int, price: float) -> bool:
        """Record a price; True when it closed a bar."""
        start = now_ns - now_ns % self.bar_ns
        closed = False
        if start != self._open_at:
            if self._bar:
                self.closed.append((self._bar[0], self._bar[1], self._bar[2], self._bar[3]))
                closed = True
            self._open_at, self._bar = start, [price, price, price, price]
            return closed
        bar = self._bar
        bar[1], bar[2], bar[3] = max(bar[1], price), min(bar[2], price), price
        return closed

    def atr(self) -> float | None:
        """Mean true range of the last ``period`` closed bars; None until there are enough."""
        bars = list(self.closed)
        if len(bars) < self.period + 1:
            return None
        ranges = [max(h - lo, abs(h - prev[3]), abs(lo - prev[3]))
                  for prev, (_, h, lo, _) in zip(bars, bars[1:])]
        return sum(ranges) / len(ranges)


class GridStrategy(Strategy):
    name = "grid"
    Params = GridParams
    wake_s = 1.0

    def __init__(self, params: GridParams) -> None:
        super().__init__(params)
        self.params: GridParams = params
        self.anchor: Decimal | None = None
        self.atr_step: Decimal | None = None
        self.bars = Bars(int(params.atr_bar_s * 1e9), params.atr_period) \
            if params.atr_period else None

    # ------------------------------------------------------------ decisions

    def decide(self, view: View) -> Sequence[Intent]:
        book = view.book
        if view.halted or book is None or not book.synced:  # halted: nothing would leave
            return []
        bid, ask = book.best_bid, book.best_ask
        if not (bid > 0 and ask > bid):  # also false for NaN (an empty side)
            return []
        rules = view.rules
        if self.bars is not None and self.bars.add(view.now_ns, (bid + ask) / 2):
            self._update_atr_step(rules.tick_size)
        anchor = self._anchor(view, money(bid))
        step = self.step(anchor, rules.tick_size)
        if step is None:
            return []
        intents: list[Intent] = []
        for side in self.sides():
            intents += self._side(view, side, anchor, step, money(bid), money(ask), intents)
        return intents[:self.params.max_orders_per_decision]

    def sides(self) -> tuple[Side, ...]:
        """long: buy entries below the bid; short: sell entries above the ask
        (futures); neutral: both, each within its own inventory cap."""
        return {"long": (Side.BUY,), "short": (Side.SELL,),
                "neutral": (Side.BUY, Side.SELL)}[self.params.direction]

    def _side(self, view: View, side: Side, anchor: Decimal, step: Decimal, bid: Decimal,
              ask: Decimal, earlier: list[Intent]) -> list[Intent]:
        """One side's window: ``d`` is the direction away from the price (down for
        buys), ``near`` the level closest to the price on the right side of it."""
        p, rules = self.params, view.rules
        d = -1 if side == Side.BUY else 1
        if side == Side.BUY:
            near = int(((bid - anchor) / step).to_integral_value(ROUND_FLOOR))
        else:
            near = int(((ask - anchor) / step).to_integral_value(ROUND_CEILING))
        slots = [s for s in view.slots if s.entry_side == side]
        inventory = sum((s.held for s in slots if s.state == SlotState.LOCKED), ZERO) + \
            sum((s.entry_filled for s in slots if s.state == SlotState.PENDING), ZERO)
        cap = p.max_inventory or p.order_size * p.window
        near += d * math.floor(p.inventory_skew * float(min(Decimal(1), inventory / cap)) *
                               p.window)
        intents: list[Intent] = []
        occupied: set[Decimal] = set()
        pending_open = ZERO
        for slot in view.slots:
            if slot.state == SlotState.FREE:
                if slot.rearm_ns > view.now_ns:  # rejected recently: leave the level alone
                    occupied.add(slot.entry_price)
                continue
            occupied.add(slot.entry_price)
            if slot.state != SlotState.PENDING or slot.entry_side != side:
                continue
            pending_open += slot.quantity - slot.entry_filled
            level = self._level_of(slot, anchor, step)
            out_of_window = level is None or (level - near) * d < 0 or \
                (level - near) * d > p.window - 1 + TRAIL_SLACK_LEVELS
            if out_of_window and slot.entry_filled == 0 and not slot.closing \
                    and slot.client_order_id:
                intents.append(Cancel(slot.client_order_id))
        room = cap - inventory - pending_open
        exit_side = Side.SELL if side == Side.BUY else Side.BUY
        for i in range(p.window):
            if len(earlier) + len(intents) >= p.max_orders_per_decision or room < p.order_size:
                break
            price = anchor + (near + d * i) * step
            if price <= 0 or price in occupied:
                continue
            exit_price = rules.price(price - d * p.profit_levels * step, exit_side)
            if exit_price <= 0 or not rules.tradable(price, p.order_size):
                continue
            intents.append(Place(side, price, p.order_size, post_only=p.post_only,
                                 exit_price=exit_price))
            room -= p.order_size
        return intents

    # -------------------------------------------------------------- lattice

    def _anchor(self, view: View, bid: Decimal) -> Decimal:
        """Where level 0 sits: the configured reference, else a level an
        existing slot already uses (a restarted worker keeps the lattice),
        else the first bid seen."""
        if self.anchor is None:
            rules = view.rules
            if self.params.reference_price:
                chosen = self.params.reference_price
            else:
                levels = [s.entry_price for s in view.slots if s.state != SlotState.FREE]
                chosen = min(levels) if levels else bid
            self.anchor = rules.price(chosen, Side.BUY)
        return self.anchor

    def step(self, anchor: Decimal, tick: Decimal) -> Decimal | None:
        """The level spacing on the tick grid (at least one tick); None: not known yet."""
        p = self.params
        if self.atr_step is not None:
            raw = self.atr_step
        elif p.interval:
            raw = p.interval
        elif p.interval_pct:
            raw = anchor * money(p.interval_pct) / 100
        else:
            return None  # ATR only, and its bars are not in yet
        ticks = (raw / tick).to_integral_value(ROUND_FLOOR)
        return max(ticks, Decimal(1)) * tick

    def _update_atr_step(self, tick: Decimal) -> None:
        assert self.bars is not None
        atr = self.bars.atr()
        if atr is None or atr <= 0:
            return
        new = money(atr * self.params.atr_multiplier)
        if self.atr_step is None or abs(new - self.atr_step) > self.atr_step * \
                money(ATR_HYSTERESIS):
            self.atr_step = max(new, tick)

    @staticmethod
    def _level_of(slot: SlotInfo, anchor: Decimal, step: Decimal) -> int | None:
        """The lattice index of a slot's level; None if it is off the lattice."""
        k, rest = divmod(slot.entry_price - anchor, step)
        return int(k) if rest == 0 else None

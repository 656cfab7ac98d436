"""Instrument rules for order entry (tick, lot, minimums) as exact decimals, and
the quantizing every order price and quantity goes through. Loaded from the
venue (its driver's instrument rules); never guessed, never float.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from engine.model import Side
from engine.model_trade import InstrumentRules


class OffGrid(ValueError):
    """A price or quantity not on the instrument's tick / lot, or outside its limits."""


@dataclass(frozen=True, slots=True)
class Instrument:
    venue: str
    pair: str  # BASE/QUOTE
    symbol: str  # the venue's name (BTCUSDT)
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal = Decimal(0)
    max_qty: Decimal = Decimal(0)  # 0: no limit
    min_notional: Decimal = Decimal(0)

    @classmethod
    def from_rules(cls, venue: str, rules: InstrumentRules) -> Instrument:
        """From a driver's rules (``TradingDriver.instrument_rules``)."""
        return cls(venue, rules.pair, rules.symbol, rules.base, rules.quote,
                   Decimal(rules.tick_size), Decimal(rules.step_size), Decimal(rules.min_qty),
                   Decimal(rules.max_qty), Decimal(rules.min_notional))

    # --------------------------------------------------------------- quantize

    def price(self, value: Decimal, side: Side | None = None) -> Decimal:
        """``value`` on the tick: a buy rounds down, a sell up (never more
        aggressive than asked); no side rounds toward zero."""
        rounding = ROUND_DOWN if side is None else ROUND_FLOOR if side == Side.BUY else ROUND_CEILING
        return _on_step(value, self.tick_size, rounding)

    def quantity(self, value: Decimal) -> Decimal:
        """``value`` down to the lot step (never more than asked)."""
        return _on_step(value, self.step_size, ROUND_DOWN)

    def tick_away(self, price: Decimal, side: Side) -> Decimal:
        """One tick less aggressive: a buy one tick lower, a sell one tick higher."""
        return price - self.tick_size if side == Side.BUY else price + self.tick_size

    # ---------------------------------------------------------------- checks

    def check(self, price: Decimal, quantity: Decimal) -> None:
        """Raise OffGrid unless the venue would accept these as they are."""
        if price <= 0 or price % self.tick_size != 0:
            raise OffGrid(f"{self.pair}: price {price} is not a positive multiple of tick "
                          f"{self.tick_size}")
        if quantity <= 0 or quantity % self.step_size != 0:
            raise OffGrid(f"{self.pair}: quantity {quantity} is not a positive multiple of "
                          f"step {self.step_size}")
        if quantity < self.min_qty or (self.max_qty and quantity > self.max_qty):
            raise OffGrid(f"{self.pair}: quantity {quantity} outside [{self.min_qty}, "
                          f"{self.max_qty or 'inf'}]")
        if price * quantity < self.min_notional:
            raise OffGrid(f"{self.pair}: notional {price * quantity} below {self.min_notional}")


def _on_step(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    if not isinstance(value, Decimal):
        raise TypeError(f"{value!r}: money is Decimal, never float")
    steps = (value / step).to_integral_value(rounding=rounding)
    return (steps * step).quantize(step)


class Instruments:
    """(venue, pair) -> Instrument. Filled once at start and on refresh;
    readers take a reference (replacing the dict is atomic)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str], Instrument] = {}

    def update(self, instruments: list[Instrument]) -> None:
        merged = dict(self._by_key)
        for instrument in instruments:
            merged[(instrument.venue, instrument.pair)] = instrument
        self._by_key = merged

    def get(self, venue: str, pair: str) -> Instrument:
        try:
            return self._by_key[(venue, pair)]
        except KeyError:
            raise KeyError(f"no instrument rules for {venue} {pair}; is the pair listed?") from None

    def find(self, venue: str, pair: str) -> Instrument | None:
        return self._by_key.get((venue, pair))

    def __len__(self) -> int:
        return len(self._by_key)

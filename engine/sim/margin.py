"""Margin arithmetic for derivative positions: initial and maintenance
margin, maintenance brackets, an account's margin balance and available
balance, and estimated liquidation prices.

Venue-neutral and pure. Amounts are ints of the venue's amount units; rates
are exact fractions. Cross positions share the account's wallet (free plus
locked balance of the settlement asset, less isolated margins); an isolated
position has only its own margin.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

from engine.sim.positions import Position


class Bracket(NamedTuple):
    """One maintenance tier: positions up to ``notional_cap`` (whole quote
    units) may use up to ``max_leverage``; maintenance = notional x ``rate`` -
    ``cum`` (the cumulative amount that keeps tiers continuous)."""

    number: int
    notional_floor: int
    notional_cap: int
    max_leverage: int
    rate: Fraction
    cum: int


def brackets(tiers: tuple[tuple[int, int, str], ...]) -> tuple[Bracket, ...]:
    """Build tiers from (cap, max leverage, maintenance rate text), computing
    each tier's cum = previous cum + previous cap x (rate - previous rate)."""
    built: list[Bracket] = []
    floor, cum, previous_rate = 0, Fraction(0), Fraction(0)
    for number, (cap, leverage, rate_text) in enumerate(tiers, start=1):
        rate = Fraction(Decimal(rate_text))
        cum += floor * (rate - previous_rate)
        built.append(Bracket(number, floor, cap, leverage, rate, int(cum)))
        floor, previous_rate = cap, rate
    return tuple(built)


# A default tier table shaped like a major USD-M perpetual's (Binance
# BTCUSDT's first tiers, rounded); the venue's config can replace it.
DEFAULT_BRACKETS = brackets((
    (50_000, 125, "0.004"), (600_000, 100, "0.005"), (3_000_000, 75, "0.0065"),
    (12_000_000, 50, "0.01"), (70_000_000, 25, "0.02"), (100_000_000, 20, "0.025"),
    (230_000_000, 10, "0.05"), (480_000_000, 5, "0.1"), (1_000_000_000, 1, "0.5")))


def bracket_for(tiers: tuple[Bracket, ...], notional_whole: int) -> Bracket:
    for tier in tiers:
        if notional_whole < tier.notional_cap:
            return tier
    return tiers[-1]


def initial_margin(notional: int, leverage: int) -> int:
    """Notional / leverage, rounded up: the venue never under-reserves."""
    return -(-notional // leverage)


def maintenance_margin(tiers: tuple[Bracket, ...], notional: int, amount_decimals: int) -> int:
    """notional x rate - cum of its tier, in amount units (rounded up)."""
    whole = notional // 10**amount_decimals
    tier = bracket_for(tiers, whole)
    value = Fraction(notional) * tier.rate - tier.cum * 10**amount_decimals
    return max(0, -(-value.numerator // value.denominator))


@dataclass
class PositionRisk:
    position: Position
    mark: int
    notional: int  # |qty| x mark, amount units
    unrealized: int
    initial: int
    maintenance: int
    leverage: int
    isolated: bool
    amount_unit: int  # 10**amount_decimals: one whole quote unit


@dataclass
class AccountRisk:
    """One account's margin state in the settlement asset."""

    wallet: int  # cross wallet: free + locked - isolated margins
    isolated_margin: int
    free: int
    order_margin: int  # locked for open orders
    cross_unrealized: int
    cross_initial: int
    cross_maintenance: int
    positions: list[PositionRisk]

    @property
    def cross_margin_balance(self) -> int:
        return self.wallet + self.cross_unrealized

    @property
    def available(self) -> int:
        """What new orders may use: the ledger's free balance less cross
        position margin plus cross PnL, never more than free (locks are real)."""
        return max(0, min(self.free, self.free - self.cross_initial + self.cross_unrealized))

    @property
    def total_unrealized(self) -> int:
        return sum(r.unrealized for r in self.positions)

    def cross_liquidatable(self) -> bool:
        return self.cross_maintenance > 0 and \
            self.cross_margin_balance <= self.cross_maintenance

    def margin_ratio(self) -> Fraction:
        balance = self.cross_margin_balance
        if self.cross_maintenance == 0:
            return Fraction(0)
        return Fraction(self.cross_maintenance, balance) if balance > 0 else Fraction(10**9)


def liquidation_price(risk: PositionRisk, account: AccountRisk, tiers: tuple[Bracket, ...],
                      notional_scale: int) -> Fraction:
    """Estimated mark price (price units) at which the position's margin
    balance meets its maintenance margin, all else held still (0: none).

    Long q at cost C with margin M: M + q*p - C = q*p*r - cum, so
    p = (C - M - cum) / (q (1 - r)); short: p = (M + |C| + cum) / (|q| (1 + r)).
    A cross position's M is the account's cross margin balance less this
    position's PnL and less the other cross positions' maintenance."""
    position = risk.position
    if not position.qty:
        return Fraction(0)
    tier = bracket_for(tiers, risk.notional // risk.amount_unit)
    cum = Fraction(tier.cum * risk.amount_unit)
    if risk.isolated:
        margin = Fraction(position.margin)
    else:
        margin = Fraction(account.cross_margin_balance - risk.unrealized
                          - (account.cross_maintenance - risk.maintenance))
    q = Fraction(abs(position.qty) * notional_scale)
    if position.qty > 0:
        price = (position.cost - margin - cum) / (q * (1 - tier.rate))
    else:
        price = (margin + abs(position.cost) + cum) / (q * (1 + tier.rate))
    return max(price, Fraction(0))

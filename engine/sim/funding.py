"""Mark prices, premium sampling, funding rates and funding settlement for
perpetuals.

Venue-neutral and pure: the caller passes the time, the index price (the
same pair's spot book on this venue when it has one) and the perpetual's own
book. The rule follows the common perpetual design Binance documents:
mark = median(index, mid, last); premium = (mid - index) / index sampled
each tick; funding rate = P + clamp(interest - P, -clamp, +clamp) with P the
average premium, capped; at each funding time (every ``interval_ms`` from the
epoch, 8 h by default: 00:00, 08:00, 16:00 UTC) longs pay shorts
notional-at-mark x rate (shorts pay when it is negative).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction

from engine.sim.derivatives import FUNDING_FEE, INSURANCE_ACCOUNT, Derivatives
from engine.sim.positions import Position

HOUR_MS = 3_600_000
HISTORY_KEPT = 1000  # funding times remembered (REST fundingRate answers up to 1000)


@dataclass(frozen=True)
class FundingRules:
    interval_ms: int = 8 * HOUR_MS
    interest_rate: Fraction = Fraction(1, 10_000)  # 0.01% per interval
    clamp: Fraction = Fraction(5, 10_000)  # 0.05%
    cap: Fraction = Fraction(75, 10_000)  # +-0.75% (a venue sets this per symbol)


@dataclass
class FundingState:
    premium_sum: Fraction = Fraction(0)
    samples: int = 0
    next_funding_ms: int = 0
    last_rate: Fraction = Fraction(0)  # the rate applied at the last funding time
    index: int = 0


@dataclass
class Payment:
    account: str
    symbol: str
    position_side: str
    amount: int  # signed: < 0 paid, > 0 received


def median_price(index: int, bid: int, ask: int, last: int | None) -> int:
    """median(index, mid, last) of those that exist; 0 when none do."""
    candidates = [p for p in (index, (bid + ask) // 2 if bid and ask else 0, last or 0) if p]
    if not candidates:
        return 0
    candidates.sort()
    return candidates[len(candidates) // 2] if len(candidates) != 2 else \
        (candidates[0] + candidates[1]) // 2


@dataclass
class Funding:
    derivatives: Derivatives
    rules: FundingRules = field(default_factory=FundingRules)
    states: dict[str, FundingState] = field(default_factory=dict)
    # (symbol, funding time, rate, mark) of past funding times, newest last
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY_KEPT))

    def next_time(self, now_ms: int) -> int:
        interval = self.rules.interval_ms
        return (now_ms // interval + 1) * interval

    def state(self, symbol: str, now_ms: int) -> FundingState:
        state = self.states.get(symbol)
        if state is None:
            state = self.states[symbol] = FundingState(next_funding_ms=self.next_time(now_ms))
        return state

    def update(self, symbol: str, index: int, bid: int, ask: int, last: int | None,
               now_ms: int) -> int:
        """New mark price from the inputs; samples the premium. Returns mark."""
        state = self.state(symbol, now_ms)
        index = index or ((bid + ask) // 2 if bid and ask else (last or 0))
        state.index = index
        mark = median_price(index, bid, ask, last)
        if mark:
            self.derivatives.marks[symbol] = mark
        if index and bid and ask:
            state.premium_sum += Fraction((bid + ask) // 2 - index, index)
            state.samples += 1
        return mark

    def rate(self, symbol: str, now_ms: int) -> Fraction:
        """The estimated rate for the coming funding time."""
        state = self.state(symbol, now_ms)
        rules = self.rules
        premium = state.premium_sum / state.samples if state.samples else Fraction(0)
        rate = premium + min(max(rules.interest_rate - premium, -rules.clamp), rules.clamp)
        return min(max(rate, -rules.cap), rules.cap)

    def due(self, now_ms: int) -> list[str]:
        return [symbol for symbol, state in self.states.items()
                if now_ms >= state.next_funding_ms]

    def settle(self, symbol: str, now_ms: int) -> list[Payment]:
        """Apply funding on ``symbol`` now: payers first into the insurance
        fund, then receivers from it, so nothing is minted; rounding (down,
        on both sides) leaves dust with the fund."""
        d = self.derivatives
        state = self.state(symbol, now_ms)
        rate = self.rate(symbol, now_ms)
        state.last_rate = rate
        state.premium_sum, state.samples = Fraction(0), 0
        state.next_funding_ms = self.next_time(now_ms)
        spec = d.specs[symbol]
        mark = d.mark(symbol)
        if mark:
            self.history.append((symbol, now_ms, rate, mark))
        if not rate or not mark:
            return []
        payers: list[tuple[Position, int]] = []
        receivers: list[tuple[Position, int]] = []
        for position in list(d.book.open_positions()):
            if position.symbol != symbol:
                continue
            value = Fraction(abs(position.qty) * mark * spec.notional_scale) * abs(rate)
            amount = value.numerator // value.denominator
            if not amount:
                continue
            pays = (position.qty > 0) == (rate > 0)
            (payers if pays else receivers).append((position, amount))
        payments = []
        for position, amount in payers:
            paid = self._collect(position, amount, spec.quote)
            payments.append(Payment(position.account, symbol, position.side, -paid))
        for position, amount in receivers:
            d.pay(INSURANCE_ACCOUNT, position.account, spec.quote, amount)
            payments.append(Payment(position.account, symbol, position.side, amount))
        for payment in payments:
            d.record_income(payment.account, symbol, FUNDING_FEE, payment.amount, spec.quote,
                            now_ms)
        return payments

    def _collect(self, position: Position, amount: int, asset: str) -> int:
        """Isolated positions pay from their own margin first."""
        d = self.derivatives
        from_margin = min(position.margin, amount)
        if from_margin:
            d.ledger.unlock(position.account, asset, from_margin)
            position.margin -= from_margin
        paid = d.pay(position.account, INSURANCE_ACCOUNT, asset, amount)
        d.book.touch(position)
        return paid

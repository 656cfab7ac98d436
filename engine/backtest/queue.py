"""Where our resting order stands in its price level's queue, and when a
recorded tape fills it. An L2 tape shows only each level's total size, so
what is ahead of us is estimated: it starts as the displayed size when we
join, shrinks with every trade at our price, and with cancels as the model
says; we fill only once nothing is left ahead.

  join(order, displayed) ─► ahead = displayed
  trade at our price q  ─► ahead -= q; what goes past ahead fills us
  trade through our price ─► fills us whole (the level is gone)
  level shrinks by c, no trade ─► the model: back (ahead unchanged unless the
      level is now smaller), pro rata (ahead -= c·ahead/size), probabilistic
  level grows ─► joins behind us: ahead unchanged

Models follow hftbacktest's (RiskAverseQueueModel, ProbQueueModel with a
power function); prices and sizes are Decimal, as everywhere in trading.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol

from engine.model import Side

ZERO = Decimal(0)


class QueueModel(Protocol):
    """How a shrink of ``change`` (cancels, not trades) in a level of
    ``before`` displayed size moves what is ``ahead`` of us (0 ≤ ahead ≤ before)."""

    name: str

    def after_cancel(self, ahead: Decimal, before: Decimal, change: Decimal) -> Decimal: ...


class RiskAverse:
    """Cancels come from behind us: we move up only when the level becomes
    smaller than what was ahead (the pessimistic bound)."""

    name = "risk_averse"

    def after_cancel(self, ahead: Decimal, before: Decimal, change: Decimal) -> Decimal:
        return min(ahead, before - change)


class ProRata:
    """Cancels are spread over the level in proportion: the share ahead of
    us shrinks by the same fraction as the level."""

    name = "pro_rata"

    def after_cancel(self, ahead: Decimal, before: Decimal, change: Decimal) -> Decimal:
        if before <= 0:
            return ZERO
        return max(ZERO, ahead - change * ahead / before)


@dataclass
class Probabilistic:
    """hftbacktest's ProbQueueModel: a cancel comes from ahead of us with
    probability f(back) / (f(front) + f(back)), f(x) = x**power; power 1 is
    pro rata by position, larger powers put cancels nearer the back."""

    power: float = 3.0
    name: str = "probabilistic"

    def after_cancel(self, ahead: Decimal, before: Decimal, change: Decimal) -> Decimal:
        behind = max(ZERO, before - ahead)
        front_w, back_w = float(ahead) ** self.power, float(behind) ** self.power
        if front_w + back_w == 0:
            return min(ahead, before - change)
        share = Decimal(repr(back_w / (front_w + back_w)))  # the part of the change ahead of us
        return min(max(ZERO, ahead - change * share), before - change)


MODELS: dict[str, QueueModel] = {"risk_averse": RiskAverse(), "pro_rata": ProRata(),
                                 "probabilistic": Probabilistic()}


def model(name: str, power: float | None = None) -> QueueModel:
    """A model by its config name; ``power`` only for "probabilistic"."""
    if name == "probabilistic" and power is not None:
        if not power > 0:
            raise ValueError(f"queue model power {power!r}: must be positive")
        return Probabilistic(power)
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"queue model {name!r}: expected one of {sorted(MODELS)}") from None


@dataclass
class QueuedOrder:
    """One resting order of ours at ``price``; ``filled`` grows as the tape fills it."""

    order_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    ahead: Decimal
    filled: Decimal = ZERO
    fills: list[tuple[int, Decimal]] = field(default_factory=list)  # (tape ns, quantity)

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    def _fill(self, now_ns: int, quantity: Decimal) -> Decimal:
        take = min(quantity, self.remaining)
        if take > 0:
            self.filled += take
            self.fills.append((now_ns, take))
        return take


class QueueBook:
    """Our resting orders on one pair and what the tape does to them.
    ``level(side, price)`` is the displayed size the tape shows now."""

    def __init__(self, queue_model: QueueModel) -> None:
        self.model = queue_model
        self.orders: dict[str, QueuedOrder] = {}
        self._sizes: dict[tuple[Side, Decimal], Decimal] = {}  # displayed size per level

    def level(self, side: Side, price: Decimal) -> Decimal:
        return self._sizes.get((side, price), ZERO)

    def join(self, order_id: str, side: Side, price: Decimal, quantity: Decimal) -> QueuedOrder:
        """Our order joins the back of its level: everything displayed is ahead."""
        if order_id in self.orders:
            raise ValueError(f"order {order_id} is already resting")
        order = QueuedOrder(order_id, side, price, quantity, self.level(side, price))
        self.orders[order_id] = order
        return order

    def cancel(self, order_id: str) -> QueuedOrder | None:
        return self.orders.pop(order_id, None)

    def on_depth(self, side: Side, price: Decimal, size: Decimal, traded: Decimal = ZERO) -> None:
        """The tape sets a level's displayed size. ``traded``: how much of the
        drop was trades already passed to ``on_trade`` (not cancels)."""
        key = (side, price)
        before = self._sizes.get(key, ZERO)
        if size > 0:
            self._sizes[key] = size
        else:
            self._sizes.pop(key, None)
        cancelled = before - traded - size
        if cancelled <= 0:
            return  # grew (joins behind us) or only trades: nothing more moves
        base = before - traded
        for order in self.orders.values():
            if order.side == side and order.price == price and order.ahead > 0:
                order.ahead = max(ZERO, min(self.model.after_cancel(order.ahead, base, cancelled), size))

    def on_trade(self, now_ns: int, price: Decimal, quantity: Decimal,
                 taker: Side) -> list[tuple[QueuedOrder, Decimal]]:
        """A recorded trade; what it fills of ours, as (order, quantity).
        A sell taker hits bids at ``price`` and above; a buy taker lifts asks."""
        resting = Side.BUY if taker == Side.SELL else Side.SELL
        out: list[tuple[QueuedOrder, Decimal]] = []
        ours_at_price = ZERO  # what this trade already gave our earlier orders at its price
        for order in list(self.orders.values()):  # join order: the earlier one is ahead
            if order.side != resting or order.remaining <= 0:
                continue
            through = price < order.price if resting == Side.BUY else price > order.price
            if through:  # the tape traded past our price: our level was taken whole
                got = order._fill(now_ns, order.remaining)
            elif price == order.price:
                left = quantity - order.ahead - ours_at_price
                order.ahead = max(ZERO, order.ahead - quantity)
                got = order._fill(now_ns, left) if left > 0 else ZERO
                ours_at_price += got
            else:
                continue
            if got > 0:
                out.append((order, got))
            if order.remaining <= 0:
                del self.orders[order.order_id]
        return out

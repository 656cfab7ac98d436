"""Pending stop orders of one symbol and the last-trade-price rule that wakes
them.

Binance (rest-api.md, New order): stop price *above* the market for STOP_LOSS
BUY and TAKE_PROFIT SELL, *below* it for STOP_LOSS SELL and TAKE_PROFIT BUY.
So an "above" order triggers once a trade prints at or above its stop price,
a "below" order once one prints at or below. Owns only that ordering; what a
triggered order does is matching.py's business.
"""

from __future__ import annotations

from sortedcontainers import SortedList

from engine.sim.orders import BUY, STOP_LOSS, STOP_LOSS_LIMIT, Order


def triggers_above(order_type: str, side: str) -> bool:
    is_stop_loss = order_type in (STOP_LOSS, STOP_LOSS_LIMIT)
    return is_stop_loss == (side == BUY)


def would_trigger(order_type: str, side: str, stop_price: int, last_price: int) -> bool:
    if triggers_above(order_type, side):
        return last_price >= stop_price
    return last_price <= stop_price


class StopBook:
    __slots__ = ("above", "below", "orders")

    def __init__(self) -> None:
        self.above = SortedList()  # (stop_price, order_id): lowest stop first
        self.below = SortedList()  # (-stop_price, order_id): highest stop first
        self.orders: dict[int, Order] = {}

    def __len__(self) -> int:
        return len(self.orders)

    def add(self, order: Order) -> None:
        self.orders[order.order_id] = order
        if triggers_above(order.type, order.side):
            self.above.add((order.stop_price, order.order_id))
        else:
            self.below.add((-order.stop_price, order.order_id))

    def remove(self, order: Order) -> None:
        del self.orders[order.order_id]
        if triggers_above(order.type, order.side):
            self.above.remove((order.stop_price, order.order_id))
        else:
            self.below.remove((-order.stop_price, order.order_id))

    def pop_triggered(self, low: int, high: int) -> list[Order]:
        """Remove and return the orders that trades within [low, high] trigger,
        oldest first (the order they were placed in)."""
        fired: list[tuple[int, int]] = []
        above, below = self.above, self.below
        while above and above[0][0] <= high:
            fired.append(above.pop(0))
        while below and -below[0][0] >= low:
            fired.append(below.pop(0))
        if not fired:
            return []
        fired.sort(key=lambda item: item[1])
        return [self.orders.pop(order_id) for _, order_id in fired]

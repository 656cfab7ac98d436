"""One symbol's order book: price levels in price-time priority.

Owns the resting orders' queueing and the level totals, and the bookkeeping
the depth stream needs: an update id bumped once per book-changing operation
and the set of levels touched since the last diff. It never decides who
trades with whom (matching.py does) and never touches balances.

Cancels are lazy: a canceled order stays in its level's deque, flagged out of
the book, and is dropped when it reaches the head or when the level is
compacted. That keeps cancel O(1) without a linked list.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from sortedcontainers import SortedList

from engine.sim.orders import BUY, Order

# A level is rebuilt once it holds this many more dead entries than live ones:
# higher saves rebuilds under cancel storms, lower bounds the memory they hold.
COMPACT_SLACK = 32


class Level:
    __slots__ = ("price", "orders", "total", "live")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[Order] = deque()
        self.total = 0  # sum of live orders' remaining quantity
        self.live = 0

    def head(self) -> Order | None:
        """The first live order, dropping canceled ones in front of it."""
        orders = self.orders
        while orders:
            first = orders[0]
            if first.in_book:
                return first
            orders.popleft()
        return None


class BookSide:
    """Bids or asks. ``keys`` sorts best first (bids store -price)."""

    __slots__ = ("is_bid", "levels", "keys", "dirty")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, Level] = {}
        self.keys = SortedList()
        self.dirty: set[int] = set()

    def best(self) -> Level | None:
        keys = self.keys
        if not keys:
            return None
        key = keys[0]
        return self.levels[-key if self.is_bid else key]

    def add(self, order: Order) -> None:
        price = order.price
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = Level(price)
            self.keys.add(-price if self.is_bid else price)
        level.orders.append(order)
        level.total += order.remaining
        level.live += 1
        order.in_book = True
        self.dirty.add(price)

    def remove(self, order: Order) -> None:
        """Take a live order out (cancel, expiry): O(1) apart from level removal."""
        level = self.levels[order.price]
        order.in_book = False
        level.total -= order.remaining
        level.live -= 1
        self.dirty.add(order.price)
        if level.live == 0:
            self._drop(level)
        elif len(level.orders) > 2 * level.live + COMPACT_SLACK:
            level.orders = deque(x for x in level.orders if x.in_book)

    def reduce(self, level: Level, order: Order, qty: int) -> None:
        """A resting order traded ``qty``; the caller already lowered remaining."""
        level.total -= qty
        self.dirty.add(level.price)
        if order.remaining == 0:
            order.in_book = False
            level.orders.popleft()
            level.live -= 1
            if level.live == 0:
                self._drop(level)

    def _drop(self, level: Level) -> None:
        del self.levels[level.price]
        self.keys.remove(-level.price if self.is_bid else level.price)

    def iter_levels(self) -> Iterator[Level]:
        levels = self.levels
        sign = -1 if self.is_bid else 1
        for key in self.keys:
            yield levels[sign * key]

    def top(self, depth: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for level in self.iter_levels():
            if len(out) >= depth:
                break
            out.append((level.price, level.total))
        return out

    def take_dirty(self) -> list[tuple[int, int]]:
        """Absolute totals of levels touched since the last call (0: gone)."""
        levels = self.levels
        out = []
        for price in sorted(self.dirty, reverse=self.is_bid):
            level = levels.get(price)
            out.append((price, level.total if level is not None else 0))
        self.dirty.clear()
        return out


class OrderBook:
    """Both sides of one symbol plus the update-id bookkeeping of Binance's
    diff-depth stream: ``update_id`` is the REST snapshot's lastUpdateId and a
    diff covers ids ``first_pending_id .. update_id``."""

    __slots__ = ("symbol", "bids", "asks", "update_id", "first_pending_id", "changed")

    def __init__(self, symbol: str, update_id: int = 0) -> None:
        self.symbol = symbol
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.update_id = update_id
        self.first_pending_id = 0  # 0: nothing pending since the last diff
        self.changed = False

    def side_of(self, side: str) -> BookSide:
        return self.bids if side == BUY else self.asks

    def opposite_of(self, side: str) -> BookSide:
        return self.asks if side == BUY else self.bids

    def add(self, order: Order) -> None:
        self.side_of(order.side).add(order)
        self.changed = True

    def remove(self, order: Order) -> None:
        self.side_of(order.side).remove(order)
        self.changed = True

    def would_take(self, side: str, price: int) -> bool:
        best = self.opposite_of(side).best()
        if best is None:
            return False
        return best.price <= price if side == BUY else best.price >= price

    def end_operation(self) -> None:
        """Close one engine operation: a changed book gets the next update id."""
        if self.changed:
            self.changed = False
            self.update_id += 1
            if not self.first_pending_id:
                self.first_pending_id = self.update_id

    def take_diff(self) -> tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]] | None:
        """(U, u, bids, asks) since the last call, or None if nothing changed."""
        if not self.first_pending_id:
            return None
        first, self.first_pending_id = self.first_pending_id, 0
        return first, self.update_id, self.bids.take_dirty(), self.asks.take_dirty()

    def best_bid_ask(self) -> tuple[Level | None, Level | None]:
        return self.bids.best(), self.asks.best()

    def is_crossed(self) -> bool:
        bid, ask = self.bids.best(), self.asks.best()
        return bid is not None and ask is not None and bid.price >= ask.price

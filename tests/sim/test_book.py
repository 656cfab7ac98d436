"""Price levels in price-time priority, lazy cancels, and the diff-depth
bookkeeping (update ids and touched levels)."""

from __future__ import annotations

from engine.sim import orders as o
from engine.sim.book import COMPACT_SLACK, OrderBook
from engine.sim.orders import Order


def order(order_id: int, side: str, price: int, qty: int) -> Order:
    return Order("X", order_id, "a", f"c{order_id}", side, o.LIMIT, o.GTC, price, qty, 0, 0,
                 o.STP_NONE, 0)


def test_best_levels_sort_best_first_on_both_sides() -> None:
    book = OrderBook("X")
    for i, (side, price) in enumerate([(o.BUY, 99), (o.BUY, 100), (o.SELL, 102),
                                       (o.SELL, 101)]):
        book.add(order(i, side, price, 5))
    assert [lv.price for lv in book.bids.iter_levels()] == [100, 99]
    assert [lv.price for lv in book.asks.iter_levels()] == [101, 102]
    assert book.would_take(o.BUY, 101) and not book.would_take(o.BUY, 100)
    assert book.would_take(o.SELL, 100) and not book.is_crossed()


def test_level_keeps_arrival_order_and_skips_canceled_heads() -> None:
    book = OrderBook("X")
    first, second = order(1, o.BUY, 100, 5), order(2, o.BUY, 100, 7)
    book.add(first)
    book.add(second)
    level = book.bids.best()
    assert level.head() is first and level.total == 12
    book.remove(first)
    assert level.head() is second and level.total == 7 and level.live == 1


def test_level_disappears_with_its_last_order() -> None:
    book = OrderBook("X")
    only = order(1, o.SELL, 101, 5)
    book.add(only)
    book.remove(only)
    assert book.asks.best() is None and not book.asks.levels


def test_cancel_storm_compacts_the_level() -> None:
    book = OrderBook("X")
    keeper = order(0, o.BUY, 100, 1)
    book.add(keeper)
    for i in range(1, 3 * COMPACT_SLACK):
        extra = order(i, o.BUY, 100, 1)
        book.add(extra)
        book.remove(extra)
    assert len(book.bids.best().orders) <= 2 * 1 + COMPACT_SLACK + 1


def test_diff_covers_update_ids_and_reports_absolute_totals() -> None:
    book = OrderBook("X", update_id=41)
    a, b = order(1, o.BUY, 100, 5), order(2, o.SELL, 101, 3)
    book.add(a)
    book.end_operation()
    book.add(b)
    book.end_operation()
    book.remove(a)
    book.end_operation()
    assert book.update_id == 44
    assert book.take_diff() == (42, 44, [(100, 0)], [(101, 3)])
    assert book.take_diff() is None
    book.end_operation()  # an operation that changed nothing keeps the id
    assert book.update_id == 44

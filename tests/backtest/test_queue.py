"""Queue position on hand-built tapes: our resting order fills only after
the displayed size ahead of it has traded; cancels ahead move it up as each
model says; a trade through our price fills it whole; two orders of ours at
one price never take the same traded quantity twice."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.backtest.queue import Probabilistic, ProRata, QueueBook, RiskAverse, model
from engine.model import Side

BID = D("100")


def book_with_level(queue_model, size: str = "5") -> QueueBook:
    book = QueueBook(queue_model)
    book.on_depth(Side.BUY, BID, D(size))
    return book


@pytest.mark.parametrize("queue_model", [RiskAverse(), ProRata(), Probabilistic()], ids=lambda m: m.name)
def test_fills_only_after_the_displayed_size_ahead_has_traded(queue_model) -> None:
    book = book_with_level(queue_model)
    order = book.join("o1", Side.BUY, BID, D("1"))
    assert order.ahead == D("5")
    assert book.on_trade(1, BID, D("3"), Side.SELL) == [] and order.ahead == D("2")
    book.on_depth(Side.BUY, BID, D("2"), traded=D("3"))  # the tape's depth after the trade
    assert order.ahead == D("2"), "a trade already counted is not a cancel too"
    assert book.on_trade(2, BID, D("2"), Side.SELL) == [] and order.ahead == 0
    filled = book.on_trade(3, BID, D("0.4"), Side.SELL)
    assert filled == [(order, D("0.4"))] and order.remaining == D("0.6")
    book.on_trade(4, BID, D("5"), Side.SELL)
    assert order.filled == D("1") and "o1" not in book.orders
    assert order.fills == [(3, D("0.4")), (4, D("0.6"))]


def test_buy_takers_and_other_prices_leave_a_bid_alone() -> None:
    book = book_with_level(RiskAverse())
    order = book.join("o1", Side.BUY, BID, D("1"))
    assert book.on_trade(1, BID, D("50"), Side.BUY) == []  # lifts asks, not our bid
    assert book.on_trade(2, D("101"), D("50"), Side.SELL) == []  # above our bid: others first
    assert order.ahead == D("5") and order.filled == 0


def test_a_trade_through_our_price_fills_the_order_whole() -> None:
    book = book_with_level(RiskAverse())
    order = book.join("o1", Side.BUY, BID, D("2"))
    assert book.on_trade(1, D("99.5"), D("0.1"), Side.SELL) == [(order, D("2"))]


def test_cancels_ahead_move_us_up_as_each_model_says() -> None:
    # We join behind 5; 5 more join behind us; then 3 are cancelled (no trade).
    results = {}
    for queue_model in (RiskAverse(), ProRata(), Probabilistic(3.0), Probabilistic(1.0)):
        book = book_with_level(queue_model)
        order = book.join("o1", Side.BUY, BID, D("1"))
        book.on_depth(Side.BUY, BID, D("10"))
        assert order.ahead == D("5"), "orders joining later are behind us"
        book.on_depth(Side.BUY, BID, D("7"))
        results[(queue_model.name, getattr(queue_model, "power", None))] = order.ahead
    assert results[("risk_averse", None)] == D("5")  # cancels came from behind us
    assert results[("pro_rata", None)] == D("3.5")  # 3 × 5/10 of them were ahead
    assert results[("probabilistic", 1.0)] == D("3.5")  # equal halves: half the cancels ahead
    # With more weight at the back, cancels still split evenly when front = back:
    assert results[("probabilistic", 3.0)] == D("3.5")
    # A level that shrinks below what was ahead caps it, under every model.
    for queue_model in (RiskAverse(), ProRata(), Probabilistic()):
        book = book_with_level(queue_model)
        order = book.join("o1", Side.BUY, BID, D("1"))
        book.on_depth(Side.BUY, BID, D("1"))
        assert order.ahead <= D("1")


def test_probabilistic_puts_cancels_nearer_the_back_with_a_larger_power() -> None:
    ahead = {}
    for power in (1.0, 3.0):
        book = book_with_level(Probabilistic(power), "2")
        order = book.join("o1", Side.BUY, BID, D("1"))  # 2 ahead
        book.on_depth(Side.BUY, BID, D("10"))  # 8 behind
        book.on_depth(Side.BUY, BID, D("8"))  # 2 cancelled
        ahead[power] = order.ahead
    # front 2, back 8: the share ahead is f(8)/(f(2)+f(8)), which grows with the power
    assert ahead[3.0] < ahead[1.0] < D("2")


def test_two_orders_at_one_price_do_not_share_one_traded_quantity() -> None:
    book = QueueBook(RiskAverse())  # an empty level: nothing displayed ahead
    first = book.join("o1", Side.BUY, BID, D("1"))
    second = book.join("o2", Side.BUY, BID, D("1"))
    assert book.on_trade(1, BID, D("1.5"), Side.SELL) == [(first, D("1")), (second, D("0.5"))]


def test_model_names_and_bad_power() -> None:
    assert model("pro_rata").name == "pro_rata" and model("probabilistic", 2.0).power == 2.0
    with pytest.raises(ValueError, match="queue model 'fifo'"):
        model("fifo")
    with pytest.raises(ValueError, match="power"):
        model("probabilistic", 0.0)


@given(st.lists(st.tuples(st.sampled_from(["trade", "depth"]), st.integers(0, 20)), max_size=40),
       st.sampled_from(["risk_averse", "pro_rata", "probabilistic"]))
def test_never_fills_more_than_traded_nor_more_than_the_order(steps, name) -> None:
    book = book_with_level(model(name), "5")
    order = book.join("o1", Side.BUY, BID, D("3"))
    traded = D(0)
    for kind, n in steps:
        if kind == "trade":
            traded += n
            book.on_trade(0, BID, D(n), Side.SELL)
        else:
            book.on_depth(Side.BUY, BID, D(n))
        assert D(0) <= order.ahead
    assert order.filled <= order.quantity
    assert order.filled <= max(D(0), traded)
    # Fills only once what was ahead at the start has traded or been cancelled.
    if order.filled and not any(kind == "depth" for kind, _ in steps):
        assert traded > D("5")

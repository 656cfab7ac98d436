"""The grid strategy as a pure function: views in, intents out (no process,
no venue). Books are real BookView values; time is whatever the view says."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from engine.book.reader import BookView
from engine.model import Side, SyncState
from engine.strategies.base import Cancel, Place, Rules, SlotInfo, SlotState, View
from engine.strategies.grid import GridParams, GridStrategy
from engine.trade.strategy import ParamError, parse_params

RULES = Rules(D("0.01"), D("0.00001"), D("0.00001"), D("5"))
NOW = 1_700_000_000_000_000_000


def book(bid: float, ask: float, state: SyncState = SyncState.SYNCED) -> BookView:
    return BookView("binance:spot:BTC/USDT", 0, 2, 1, 0, NOW, state, 1,
                    np.array([bid]), np.array([1.0]), np.array([ask]), np.array([1.0]))


def view(bid: float = 100.0, ask: float = 100.5, slots: tuple[SlotInfo, ...] = (),
         now_ns: int = NOW, state: SyncState = SyncState.SYNCED) -> View:
    return View(now_ns, "7", "binance", "spot", "BTC/USDT", RULES, book(bid, ask, state),
                slots=slots)


def slot(slot_id: int, state: SlotState, price: str, filled: str = "0", held: str = "0",
         cid: str = "", rearm_ns: int = 0, closing: bool = False) -> SlotInfo:
    return SlotInfo(slot_id, state, Side.BUY, D(price), D(price) + 1, D("0.1"), D(filled),
                    D(held), cid or f"E7-{slot_id}-1", closing, rearm_ns, 0, D(0))


def grid(**params: object) -> GridStrategy:
    raw = {"order_size": "0.1", "interval": "1", "window": 3, **params}
    return GridStrategy(parse_params(GridParams, {k: v for k, v in raw.items() if v is not None}))


def places(intents) -> list[tuple[D, D]]:
    return [(i.price, i.exit_price) for i in intents if isinstance(i, Place)]


def cancels(intents) -> list[str]:
    return [i.client_order_id for i in intents if isinstance(i, Cancel)]


def test_grid_empty_book_places_window_of_buys_below_the_bid_with_exits_one_step_up():
    intents = grid().decide(view(100.0, 100.5))
    assert places(intents) == [(D(100), D(101)), (D(99), D(100)), (D(98), D(99))]
    assert all(i.side == Side.BUY and i.quantity == D("0.1") and i.post_only for i in intents)


def test_grid_occupied_levels_are_not_placed_twice():
    g = grid()
    g.decide(view())
    busy = (slot(0, SlotState.PENDING, "100"), slot(1, SlotState.LOCKED, "99", held="0.1"))
    assert places(g.decide(view(slots=busy))) == [(D(98), D(99))]


def test_grid_window_trails_a_rising_price_cancelling_buys_left_behind():
    g = grid()
    g.decide(view(100.0, 100.5))
    pending = tuple(slot(i, SlotState.PENDING, str(100 - i)) for i in range(3))  # 100 99 98
    intents = g.decide(view(103.2, 103.5, pending))
    # window is now 103 102 101; one level of slack keeps 100, cancels 99 and 98;
    # nothing new yet: buys being cancelled may still fill, so they count as exposure
    assert cancels(intents) == ["E7-1-1", "E7-2-1"] and places(intents) == []
    after = (pending[0],)  # the two cancels went through: those slots are free
    assert places(g.decide(view(103.2, 103.5, after))) == [(D(103), D(104)), (D(102), D(103))]


def test_grid_partially_filled_or_closing_buys_are_not_cancelled():
    g = grid()
    g.decide(view(100.0, 100.5))
    pending = (slot(0, SlotState.PENDING, "95", filled="0.05"),
               slot(1, SlotState.PENDING, "94", closing=True))
    assert cancels(g.decide(view(100.0, 100.5, pending))) == []


def test_grid_inventory_cap_stops_new_buys():
    g = grid(max_inventory="0.2")
    g.decide(view())
    full = (slot(0, SlotState.LOCKED, "100", held="0.1"), slot(1, SlotState.LOCKED, "99",
                                                                 held="0.1"))
    assert places(g.decide(view(slots=full))) == []
    half = full[:1]
    assert places(g.decide(view(slots=half))) == [(D(99), D(100))]


def test_grid_inventory_skew_moves_the_window_down_as_inventory_grows():
    g = grid(window=4, max_inventory="0.4", inventory_skew=1.0)
    g.decide(view(100.0, 100.5))
    held = (slot(0, SlotState.LOCKED, "90", held="0.2"),)  # half full: window 2 levels lower
    assert [p for p, _ in places(g.decide(view(100.0, 100.5, held)))] == [D(98), D(97)]


def test_grid_rejected_level_waits_for_its_rearm_time_then_is_placed_again():
    g = grid(window=1)
    g.decide(view())
    rejected = (slot(0, SlotState.FREE, "100", rearm_ns=NOW + 5_000_000_000),)
    assert places(g.decide(view(slots=rejected))) == []
    assert places(g.decide(view(slots=rejected, now_ns=NOW + 6_000_000_000))) == \
        [(D(100), D(101))]


def test_grid_does_nothing_on_a_book_that_is_not_synced_or_empty():
    assert grid().decide(view(state=SyncState.RESYNCING)) == []
    assert grid().decide(view(bid=float("nan"))) == []


def test_grid_restarted_worker_keeps_the_lattice_of_existing_slots():
    g = grid()  # fresh instance, as after a worker restart; bid is between levels
    existing = (slot(0, SlotState.LOCKED, "99.37", held="0.1"),)
    assert places(g.decide(view(100.5, 101.0, existing)))[0] == (D("100.37"), D("101.37"))


def test_grid_interval_pct_and_reference_price():
    g = grid(interval=None, interval_pct=1.0, reference_price="200", window=2)
    assert places(g.decide(view(205.0, 205.5))) == [(D(204), D(206)), (D(202), D(204))]


def test_grid_atr_interval_waits_for_bars_then_spaces_levels_by_atr():
    g = grid(interval=None, atr_period=2, atr_bar_s=1.0, atr_multiplier=1.0)
    t = NOW
    for px in (100.0, 102.0, 100.0):  # three 1 s bars, each with a 2.0 range inside
        assert g.decide(view(px, px + 0.5, now_ns=t)) == [] or g.atr_step is not None
        g.decide(view(px + 2.0, px + 2.5, now_ns=t + 500_000_000))
        t += 1_000_000_000
    intents = g.decide(view(100.0, 100.5, now_ns=t))
    assert g.atr_step is not None and places(intents)
    steps = {a - b for (a, _), (b, _) in zip(places(intents), places(intents)[1:])}
    assert steps == {g.step(g.anchor, D("0.01"))} and g.step(g.anchor, D("0.01")) >= 2


def test_grid_caps_intents_per_decision():
    assert len(grid(window=8, max_orders_per_decision=3).decide(view())) == 3


@pytest.mark.parametrize("raw, message", [
    ({"interval": "1"}, "order_size: missing"),
    ({"order_size": 0.1, "interval": "1"}, "never a float"),
    ({"order_size": "0.1", "interval": "1", "levels": 3}, "levels: unknown key"),
    ({"order_size": "0.1"}, "give interval, interval_pct or atr_period"),
    ({"order_size": "0.1", "interval": "1", "interval_pct": 1}, "not both"),
    ({"order_size": "0.1", "interval": "1", "inventory_skew": 2}, r"\[0, 1\]"),
    ({"order_size": "0.1", "interval": "1", "window": "3"}, "not an integer"),
])
def test_grid_params_refuse_what_the_grid_cannot_run(raw, message):
    with pytest.raises(ParamError, match=message):
        parse_params(GridParams, raw)

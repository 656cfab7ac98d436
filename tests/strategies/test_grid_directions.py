"""The grid's short and neutral directions (perpetuals): sell entries at or
above the ask bought back lower, a window trailing a falling price, per-side
inventory caps, and both windows at once when neutral."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D

import pytest

from engine.model import Side
from engine.strategies.base import Place, SlotState
from engine.strategies.grid import GridParams
from engine.trade.strategy import ParamError, parse_params
from tests.strategies.test_grid import cancels, grid, slot, view


def sells(intents) -> list[tuple[D, D]]:
    return [(i.price, i.exit_price) for i in intents if isinstance(i, Place) and i.side == Side.SELL]


def buys(intents) -> list[tuple[D, D]]:
    return [(i.price, i.exit_price) for i in intents if isinstance(i, Place) and i.side == Side.BUY]


def test_short_grid_sells_above_the_ask_with_exits_one_step_down():
    intents = grid(direction="short").decide(view(100.0, 100.5))
    # the anchor is the first bid (100): levels 101, 102, 103 are the first at/above 100.5
    assert sells(intents) == [(D(101), D(100)), (D(102), D(101)), (D(103), D(102))]
    assert buys(intents) == []


def test_short_window_trails_a_falling_price_cancelling_sells_left_behind():
    g = grid(direction="short")
    g.decide(view(100.0, 100.5))
    left = dataclasses.replace(slot(0, SlotState.PENDING, "103"), entry_side=Side.SELL)
    intents = g.decide(view(96.0, 96.5, slots=(left,)))
    assert cancels(intents) == ["E7-0-1"]
    # the cancelled sell still counts against the cap until it is gone: two new ones
    assert sells(intents) == [(D(97), D(96)), (D(98), D(97))]


def test_short_inventory_cap_counts_only_short_slots():
    held = tuple(dataclasses.replace(slot(i, SlotState.LOCKED, str(110 + i), held="0.1"),
                                     entry_side=Side.SELL) for i in range(3))
    assert sells(grid(direction="short").decide(view(slots=held))) == []
    # long slots' inventory does not use the short side's room
    longs = tuple(slot(i, SlotState.LOCKED, str(90 + i), held="0.1") for i in range(3))
    assert len(sells(grid(direction="short").decide(view(slots=longs)))) == 3


def test_neutral_grid_quotes_both_windows():
    intents = grid(direction="neutral").decide(view(100.0, 100.5))
    assert buys(intents) == [(D(100), D(101)), (D(99), D(100)), (D(98), D(99))]
    assert sells(intents) == [(D(101), D(100)), (D(102), D(101)), (D(103), D(102))]


@pytest.mark.parametrize("bad", ["up", "", "LONG"])
def test_direction_must_be_known(bad):
    with pytest.raises((ParamError, ValueError), match="direction"):
        parse_params(GridParams, {"order_size": "0.1", "interval": "1", "direction": bad})

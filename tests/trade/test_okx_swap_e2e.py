"""The grid on an OKX perpetual (SWAP) end to end, no internet: the local
venue's OKX dialect sharing the USD-M derivatives core, a counterparty
making the perpetual's market through the USD-M REST API, the daemon's real
OKX feed on the dialect's public socket (BTC-USDT-SWAP books), and the
trader on ``okx_futures`` through our OKX driver (contracts converted to
base units, the ``orders`` and ``positions`` channels after login, WS order
ops). The profit the slots booked equals the venue's own trade list for
those cycles, and the trader's position equals the venue's."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from engine.store.taskdb import TaskDb
from tests.support.eventually import eventually
from tests.trade.futures_rig import PerpMarket, client, venue_position, venue_trades
from tests.trade.okx_rig import OkxStack, okx_venue, use_keys
from tests.trade.test_grid_futures_e2e import GRID, booked_entry_sides, slot_pnl_from_venue

CYCLES = 6
VENUE = "okx_futures"


# KNOWN VENUE DEFECT (i11-okx-venue, open): the dialect's ``orders`` push on SWAP
# names ``fillFeeCcy``/``feeCcy`` BTC (its /trade/fills says USDT; OKX charges
# linear SWAP fees in settleCcy), so the trader books USDT fees as BTC and its
# position drifts. With engine/sim/okx/wire.py order_json using the quote
# currency for SWAP fees both grids pass (checked 2026-12-06, 212 s). Non-strict
# so the fix shows as XPASS.
@pytest.mark.parametrize("direction", ["short", "neutral"])
def test_okx_swap_grid_books_what_the_venue_trade_list_gives(tmp_path: Path, direction: str):
    venue = okx_venue(tmp_path / "venue", market="none", usdm=True)
    assert venue.okx is not None
    alice, bob = venue.config.accounts[0], venue.config.accounts[1]
    use_keys(venue)
    market = PerpMarket(client(venue, bob)).start()
    stack = OkxStack(tmp_path / "trader", venue.okx.url, venue.okx.ws_url, market="futures",
                     params={**GRID, "direction": direction})
    try:
        stack.start()
        wanted = {"sell"} if direction == "short" else {"buy", "sell"}
        db = TaskDb.from_config(stack.config)

        def done() -> bool:
            return stack.slots.cycles_booked >= CYCLES and set(booked_entry_sides(db)) >= wanted
        try:
            eventually(done, timeout=300, interval=0.5)
        except AssertionError:
            raise AssertionError(f"fewer than {CYCLES} cycles: {stack.slots.status()} "
                                 f"{stack.trader.status()} market errors "
                                 f"{market.errors[:3]}") from None
        assert set(booked_entry_sides(db)) == wanted, booked_entry_sides(db)
        db.close()
        stack.pool.set_strategies([])  # no new decisions; what is booked stays booked
        eventually(stack.trader.executor.idle, timeout=10)
        market.stop()
        mine = client(venue, alice)
        eventually(lambda: stack.trader.positions.position(VENUE, "BTC/USDT").quantity ==
                   venue_position(mine), timeout=20, interval=0.5)
        trades = venue_trades(mine)
        reported = stack.trader.positions.position(VENUE, "BTC/USDT").reported
        assert stack.trader.sessions[VENUE].status()["calls_by_transport"]["ws"] > 0
    finally:
        market.stop()
        stack.stop()
    db = TaskDb.from_config(stack.config)
    try:
        profit, venue_pnl, booked = slot_pnl_from_venue(db, trades)
    finally:
        db.close()
        venue.stop()
    assert booked >= CYCLES
    assert profit == venue_pnl, (profit, venue_pnl)
    assert reported, "no position report reached the trader (positions channel / REST)"
    assert profit != D(0)

"""The grid end to end on OKX spot, no internet: the local venue's synthetic
market, the daemon's real OKX feed on the OKX dialect's public socket,
spawned strategy workers, the slot manager and the executor trading ``okx``
through our OKX driver (signed REST, private socket login + ``orders``, and
the socket's ``order`` / ``cancel-order`` as the fast path). The profit the
slots booked equals what the venue's own trade list gives for those cycles
(read through the Binance dialect: one engine, one ledger), and every order
went over the transport asked for."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store.taskdb import TaskDb
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.okx_rig import OkxStack, okx_venue, use_keys
from tests.trade.test_grid_e2e import cycle_pnl_from_venue

CYCLES = 20


@pytest.mark.parametrize("transport", ["ws_api", "rest"])
def test_okx_spot_grid_books_what_the_venue_trade_list_gives(tmp_path: Path, transport: str):
    venue = okx_venue(tmp_path / "venue")
    assert venue.okx is not None
    use_keys(venue)
    stack = OkxStack(tmp_path / "trader", venue.okx.url, venue.okx.ws_url, transport=transport)
    try:
        stack.start()
        try:
            eventually(lambda: stack.slots.cycles_booked >= CYCLES, timeout=300, interval=0.5)
        except AssertionError:
            raise AssertionError(f"fewer than {CYCLES} cycles: {stack.slots.status()} "
                                 f"{stack.trader.status()}") from None
        stack.pool.set_strategies([])  # no new decisions; what is booked stays booked
        eventually(stack.trader.executor.idle, timeout=10)
        session = stack.trader.sessions["okx"]
        by_transport = session.status()["calls_by_transport"]
        sent = stack.trader.executor.dispatch.counts["sent"]
        if transport == "ws_api":
            assert by_transport["ws"] >= sent * 0.9, (by_transport, sent)
        else:
            assert by_transport["ws"] == 0, by_transport
        assert all(h.ok for h in stack.slots.health()), stack.slots.health()
        [stream] = stack.trader.streams
        assert stream.status()["errors"] == 0 and stream.status()["connects"] == 1
    finally:
        stack.stop()
    db = TaskDb.from_config(stack.config)
    try:
        profit, venue_pnl, carried, cycles = cycle_pnl_from_venue(
            db, BinanceClient(venue.rest_url, "alice-key", "alice-secret"))
    finally:
        db.close()
        venue.stop()
    assert cycles >= CYCLES
    assert venue_pnl == profit - carried, (profit, venue_pnl, carried)
    assert profit > 0

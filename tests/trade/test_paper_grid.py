"""Paper mode end to end: the grid trades on a paper venue that mirrors a
"live" venue (here the local venue's synthetic market, reached only by the
feed, as Binance would be) and plays its trades against our orders. Cycles
complete on paper, nothing is ever sent to the live venue, and the booked
PnL equals the paper venue's own trade list."""

from __future__ import annotations

import socket
from pathlib import Path

from engine.model_trade import TradingEndpoints
from engine.sim.paper import PaperVenue, live_pairs
from engine.store.taskdb import TaskDb
from engine.venues import make_trading_driver
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.test_grid_e2e import Stack, cycle_pnl_from_venue, synthetic_venue


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_paper_grid_cycles_against_the_live_book_and_never_sends_to_the_live_venue(
        tmp_path: Path):
    live = synthetic_venue(tmp_path / "live")
    pairs = live_pairs(make_trading_driver("binance", "spot", TradingEndpoints(live.rest_url), "",
                                           ""), ["BTC/USDT"], maker_fee="0.0001",
                       taker_fee="0.0005")
    assert [(p.pair, p.rules.tick_size, p.rules.step_size) for p in pairs] == \
        [("BTC/USDT", "0.01000000", "0.00001000")]  # the live venue's exchangeInfo
    paper = PaperVenue("binance", "spot", pairs, lambda: None, tmp_path / "paper",
                       {"USDT": "100000"}, port=free_port())
    stack = Stack(tmp_path / "trader", live.rest_url, live.ws_url, trade_at=paper)
    try:
        stack.start()
        eventually(lambda: stack.slots.cycles_booked >= 3, timeout=240, interval=0.5)
        stack.pool.set_strategies([])
        eventually(stack.trader.executor.idle, timeout=10)
        assert paper.paper_fills > 0
    finally:
        stack.stop()
    theirs = BinanceClient(live.rest_url, "alice-key", "alice-secret")
    assert theirs.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT").json() == []
    paper.local = None  # restart the paper venue on its saved state to read its trades
    paper.start()
    try:
        profit, venue_pnl, carried, cycles = cycle_pnl_from_venue(
            TaskDb.from_config(stack.config),
            BinanceClient(paper.rest_url, paper.api_key, paper.api_secret))
    finally:
        paper.stop(2.0)
        live.stop()
    assert cycles >= 3 and venue_pnl == profit - carried

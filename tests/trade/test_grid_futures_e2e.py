"""The grid on a perpetual end to end, no internet: the local venue's USD-M
dialect (its own port, funding every few seconds), a counterparty making the
market through its REST API, the daemon's real Binance futures feed keeping a
shared-memory book, spawned workers running a short grid and a neutral grid,
the slot manager and the executor trading ``binance_futures`` on it.

Checked against the venue's own records: the profit the slots booked equals
what the venue's trade list gives for those cycles (signed notional minus
commission), and the trader's position PnL (fills, fees and funding) equals
the venue's trade list, commissions and funding income, exactly."""

from __future__ import annotations

import dataclasses
import os
import uuid
from decimal import Decimal as D
from pathlib import Path
from typing import Any

from engine import config as config_mod
from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.limiter import RestLimiter
from engine.feed.service import FeedService
from engine.store.taskdb import TaskDb
from engine.trade.pool import PoolSettings, StrategyPool
from engine.trade.service import TraderService
from engine.trade.settings import RiskConfig, TraderConfig
from engine.trade.slots import SlotManager
from engine.trade.sources import ConfiguredStrategy, StrategySource, rules_from
from engine.venues import make_trading_driver
from tests.support.eventually import eventually
from tests.trade.futures_rig import (
    VENUE,
    PerpMarket,
    client,
    signed,
    start_venue,
    venue_funding,
    venue_position,
    venue_trades,
)
from tests.trade.test_grid_e2e import _Closer

KEY_ENV, SECRET_ENV = "ENGINE_TEST_FGRID_KEY", "ENGINE_TEST_FGRID_SECRET"
SETTINGS = TraderConfig(venues=(VENUE,), pairs=(f"{VENUE}:BTC/USDT",), request_timeout_s=2.0,
                        risk=RiskConfig(error_burst=1000, max_order_notional="",
                                        max_open_orders=1000))
GRID = {"order_size": "0.01", "interval": "30", "window": 3, "max_inventory": "0.3",
        "rearm_s": 1.0, "idle_alert_s": 600}


class FuturesStack:
    """books ─► futures feed ─► TraderService(binance_futures) ─► SlotManager ─►
    StrategyPool ─► StrategySource, stopped in reverse."""

    def __init__(self, data_dir: Path, rest: str, ws: str, strategies: list[ConfiguredStrategy],
                 settings: TraderConfig = SETTINGS) -> None:
        self.config = config_mod.parse({
            "daemon": {"data_dir": str(data_dir), "id": "fgrid-e2e"},
            "books": {"capacity": 8, "depth": 20},
            "exchanges": {"binance": {"futures": {"rest": rest, "ws": ws},
                                      "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}},
            "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT",
                                        "market": "futures", "depth": 20}]}})
        self.strategies = strategies
        self.settings = settings
        self.started: list[Any] = []

    def start(self) -> FuturesStack:
        segment = f"fgrid_{uuid.uuid4().hex[:10]}"
        self.books = BookStore.create(segment, 8, 20)
        self.started.append(_Closer(self.books))
        reader, writer = BookReader(self.books), BookWriter(self.books)
        self.feed = self._start(FeedService(self.config, lambda: writer))
        self.trader = TraderService(
            self.config, "fgrid-e2e",
            lambda venue, market, weight: RestLimiter(weight, 60.0, fraction=1.0),
            make_trading_driver, books=lambda: reader, settings=self.settings,
            slots_for=lambda venue: self.slots.slots_for(venue))  # asked at its start
        self.slots = SlotManager(TaskDb.from_config(self.config), self.trader.store,
                                 self.trader.positions, self.trader.instruments,
                                 lambda: self.trader.executor)
        self._start(self.trader)
        self._start(self.slots)
        self.pool = StrategyPool(segment, self.slots, PoolSettings(workers=2))
        self._start(self.pool)
        self.source = self._start(StrategySource(self.strategies, self.pool.set_strategies,
                                                 rules_from(self.trader), "fgrid-e2e"))
        return self

    def _start(self, component: Any) -> Any:
        component.start()
        self.started.append(component)
        return component

    def stop(self) -> None:
        for component in reversed(self.started):
            component.stop(5.0)
        self.started.clear()


def slot_pnl_from_venue(db: TaskDb, trades: list[dict]) -> tuple[D, D, int]:
    """(booked profit, signed notional minus commission of the booked cycles'
    trades as the venue lists them, cycles)."""
    by_key = {(str(t["id"]), t["side"].lower()): t for t in trades}
    booked = {(s, slot): n for s, slot, n in db.query(
        "SELECT STRATEGY_ID, SLOT_ID, MAX(CYCLE) FROM TRADER_SLOT_CYCLES GROUP BY STRATEGY_ID, "
        "SLOT_ID")}
    venue_pnl = D(0)
    for trade_id, side, sid, slot, cycle in db.query(
            "SELECT TRADE_ID, SIDE, STRATEGY_ID, SLOT_ID, CYCLE FROM TRADER_SLOT_FILLS"):
        if cycle > booked.get((sid, slot), 0):
            continue  # a cycle still running
        t = by_key[(trade_id, side)]
        notional = D(t["price"]) * D(t["qty"])
        venue_pnl += (notional if side == "sell" else -notional) - abs(D(t["commission"]))
    profit = sum((D(p) for (p,) in db.query("SELECT PROFIT FROM TRADER_SLOT_CYCLES")), D(0))
    cycles = db.query("SELECT COUNT(*) FROM TRADER_SLOT_CYCLES")[0][0]
    return profit, venue_pnl, int(cycles)


def booked_entry_sides(db: TaskDb) -> dict[str, int]:
    """Booked cycles by the side their entry took (the cycle's first fill)."""
    booked = {(s, slot): n for s, slot, n in db.query(
        "SELECT STRATEGY_ID, SLOT_ID, MAX(CYCLE) FROM TRADER_SLOT_CYCLES GROUP BY STRATEGY_ID, "
        "SLOT_ID")}
    first: dict[tuple, tuple[int, str]] = {}
    for sid, slot, cycle, side, ms in db.query(
            "SELECT s.STRATEGY_ID, s.SLOT_ID, s.CYCLE, SIDE, f.EXCH_MS FROM TRADER_SLOT_FILLS s "
            "JOIN TRADER_FILLS f USING (VENUE, TRADE_PAIR, TRADE_ID, SIDE)"):
        if cycle <= booked.get((sid, slot), 0):
            key = (sid, slot, cycle)
            first[key] = min(first.get(key, (ms, side)), (ms, side))
    out: dict[str, int] = {}
    for _, side in first.values():
        out[side] = out.get(side, 0) + 1
    return out


def run_grid(tmp_path: Path, direction: str, cycles: int) -> None:
    venue = start_venue(tmp_path / "venue", funding_interval_s=5)
    alice, bob = venue.config.accounts[0], venue.config.accounts[1]
    os.environ[KEY_ENV], os.environ[SECRET_ENV] = alice.api_key, alice.api_secret
    assert venue.usdm is not None
    market = PerpMarket(client(venue, bob)).start()
    stack = FuturesStack(tmp_path / "trader", venue.usdm.url, venue.usdm.ws_url, [
        ConfiguredStrategy(f"g{direction[:3]}", "grid", "binance", "futures", "BTC/USDT",
                           {**GRID, "direction": direction})])
    try:
        stack.start()
        wanted = {"sell"} if direction == "short" else {"buy", "sell"}
        db = TaskDb.from_config(stack.config)

        def done() -> bool:
            sides = booked_entry_sides(db)
            return stack.slots.cycles_booked >= cycles and set(sides) >= wanted
        try:
            eventually(done, timeout=300, interval=0.5)
        except AssertionError:
            raise AssertionError(f"fewer than {cycles} cycles: {stack.slots.status()} "
                                 f"{stack.trader.status()} market errors "
                                 f"{market.errors[:3]}") from None
        assert set(booked_entry_sides(db)) == wanted, booked_entry_sides(db)
        db.close()
        stack.pool.set_strategies([])  # no new decisions; what is booked stays booked
        eventually(stack.trader.executor.idle, timeout=10)
        account = stack.trader.futures[VENUE]
        eventually(lambda: account.funding_inserted > 0, timeout=60,
                   message="no funding payment reached the trader")
        market.stop()
        mine = client(venue, alice)
        eventually(lambda: venue_funding(mine) and account.catch_up() is None and
                   len(venue_funding(mine)) == account.funding_inserted, timeout=30)
        position = stack.trader.positions.position(VENUE, "BTC/USDT")
        trades = venue_trades(mine)
        funding = venue_funding(mine)
        assert position.quantity == venue_position(mine)
    finally:
        market.stop()
        stack.stop()
    db = TaskDb.from_config(stack.config)
    try:
        profit, venue_pnl, booked = slot_pnl_from_venue(db, trades)
    finally:
        db.close()
    assert booked >= cycles
    assert profit == venue_pnl, (profit, venue_pnl)
    # The whole account: cash from the venue's trades, commissions and funding,
    # plus the open position valued at a price P, equals our realized PnL plus
    # the same position's value against its average cost at P.
    cash = sum(((D(t["price"]) * D(t["qty"])) * (1 if t["side"] == "SELL" else -1) -
                abs(D(t["commission"])) for t in trades), D(0))
    paid = sum((D(f["income"]) for f in funding), D(0))
    assert paid != 0 and position.funding == paid, (position.funding, paid)
    price = D(trades[-1]["price"])
    ours = position.realized_pnl + (price - position.average_price) * position.quantity
    theirs = cash + paid + position.quantity * price
    assert abs(ours - theirs) < D("1e-12"), (ours, theirs)


def test_short_grid_on_a_perpetual_books_what_the_venue_trade_list_gives(tmp_path: Path):
    run_grid(tmp_path, "short", 6)


def test_neutral_grid_on_a_perpetual_books_what_the_venue_trade_list_gives(tmp_path: Path):
    run_grid(tmp_path, "neutral", 6)


__all__ = ["FuturesStack", "dataclasses", "signed"]

"""Where the pool's strategies come from: config entries and TRADE rows of a
real SQLite task DB, leased like MONITORING rows (one daemon runs each; a
stopped daemon's rows move to another), with STRATEGY_PARAMS validated and
bad rows reported on /health instead of started."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from engine.store import tasktables
from engine.store.migrations import migrate
from engine.store.taskdb import TaskDb
from engine.store.taskrows import runnable_trade
from engine.strategies.base import Rules
from engine.trade.sources import ConfiguredStrategy, StrategySource
from engine.trade.strategy import StrategySpec
from tests.store.test_taskdb_fixtures import open_db, sqlite_config

RULES = Rules(Decimal("0.01"), Decimal("0.00001"), Decimal("0.00001"), Decimal("5"))
GRID = {"order_size": "0.001", "interval": "10"}


def source(db: TaskDb, daemon: str, applied: list[list[StrategySpec]],
           configured: tuple = ()) -> StrategySource:
    return StrategySource(configured, applied.append, lambda venue, pair: RULES, daemon,
                          trade_tasks=lambda: runnable_trade(tasktables.read(db, "TRADE"))[0],
                          db=db, capacity=10)


def test_trade_rows_are_leased_validated_and_move_when_their_daemon_stops(tmp_path: Path):
    config = sqlite_config(tmp_path)
    db1, db2 = open_db(config), open_db(config)
    migrate(db1)
    good = tasktables.add_trade(db1, "binance", "BTC/USDT", "grid", GRID)
    tasktables.add_trade(db1, "binance", "ETH/USDT", "grid", {"order_size": 0.1, "interval": "1"})
    tasktables.add_trade(db1, "binance", "BTC/USDT", "martingale", {})
    applied1: list[list[StrategySpec]] = []
    applied2: list[list[StrategySpec]] = []
    first = source(db1, "d1", applied1, (ConfiguredStrategy("grid1", params=GRID),))
    first.cycle()
    assert [s.strategy_id for s in applied1[-1]] == ["grid1", str(good)]
    assert applied1[-1][1].params == GRID and applied1[-1][1].rules == RULES
    bad = {h.component: h.reason for h in first.health() if not h.ok}
    assert "never a float" in bad["strategy:2"] and "unknown strategy 'martingale'" in \
        bad["strategy:3"]
    second = source(db2, "d2", applied2)
    second.cycle()
    assert applied2[-1] == []  # d1 holds every lease
    first.stop(1.0)  # releases its leases at once
    second.cycle()
    assert [s.strategy_id for s in applied2[-1]] == [str(good)]
    second.stop(1.0)

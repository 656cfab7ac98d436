"""The slot tables (sql/taskdb/*/0003_grid_slots.sql): both dialects create
the same columns in the same order with the same defaults (on a real
MariaDB), money survives as exact text, and the slot manager runs on MySQL
as it does on SQLite."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from engine.store.migrations import migrate
from engine.store.taskdb import TaskDb
from engine.strategies.base import SlotState
from engine.trade.slotstore import Slot
from tests.store.test_taskdb_fixtures import mysql_config, open_db, scratch_database, sqlite_config

SLOT_TABLES = ("TRADER_GRID_SLOTS", "TRADER_SLOT_FILLS", "TRADER_SLOT_CYCLES",
               "TRADER_STRATEGIES")


def columns(db: TaskDb, table: str) -> list[str]:
    if db.dialect.name == "sqlite":
        return [row[1] for row in db.query(f"PRAGMA table_info({table})")]
    return [row[0] for row in db.query(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", (table,))]


def test_slot_tables_have_the_same_columns_and_defaults_in_both_dialects(mariadb, tmp_path: Path):
    lite = open_db(sqlite_config(tmp_path))
    my = open_db(mysql_config(mariadb, scratch_database(mariadb), tmp_path), mariadb)
    slot = Slot("7", 3, "binance", "BTC/USDT", SlotState.LOCKED, 2, "E7-3-2",
                entry_price=Decimal("0.00000001"), held=Decimal("12345678.12345678"),
                updated_ms=1)
    for db in (lite, my):
        migrate(db)
        db.execute(f"INSERT INTO TRADER_GRID_SLOTS VALUES ({', '.join('?' * 22)})", slot.row())
        db.execute("INSERT INTO TRADER_STRATEGIES (STRATEGY_ID, NAME, VENUE, TRADE_PAIR, "
                   "UPDATED_MS) VALUES ('7', 'grid', 'binance', 'BTC/USDT', 1)")
    for table in SLOT_TABLES:
        assert columns(lite, table) == columns(my, table) and columns(lite, table), table
    read = "SELECT * FROM TRADER_GRID_SLOTS"
    assert [Slot.from_row(r) for r in lite.query(read)] == \
        [Slot.from_row(r) for r in my.query(read)] == [slot]
    defaults = "SELECT GENERATION, ACTIVITY_MS FROM TRADER_STRATEGIES"
    assert lite.query(defaults) == my.query(defaults) == [(0, 0)]
    lite.close()
    my.close()

"""The futures tables (sql/taskdb/*/0004_futures.sql): both dialects create
the same columns in the same order (on a real MariaDB), payments keyed by the
venue's id are stored once, and money survives as exact text."""

from __future__ import annotations

from pathlib import Path

from engine.store.migrations import migrate
from tests.store.test_taskdb_fixtures import mysql_config, open_db, scratch_database, sqlite_config
from tests.trade.test_slots_schema import columns

FUTURES_TABLES = ("TRADER_FUNDING", "TRADER_LIQUIDATIONS", "TRADER_POSITIONS")


def test_futures_tables_match_in_both_dialects_and_dedup_payments(mariadb, tmp_path: Path):
    lite = open_db(sqlite_config(tmp_path))
    my = open_db(mysql_config(mariadb, scratch_database(mariadb), tmp_path), mariadb)
    for db in (lite, my):
        migrate(db)
        for _ in range(2):  # the same payment read twice
            db.execute("{insert_ignore} INTO TRADER_FUNDING (VENUE, FUNDING_ID, TRADE_PAIR, "
                       "AMOUNT, ASSET, EXCH_MS, CREATED_MS) VALUES ('binance_futures', '9689322392', "
                       "'BTC/USDT', '-0.00000001', 'USDT', 1, 2)")
        db.execute("INSERT INTO TRADER_POSITIONS (VENUE, TRADE_PAIR, POSITION_SIDE, QUANTITY, "
                   "UPDATED_MS) VALUES ('binance_futures', 'BTC/USDT', 'both', '-0.020', 1)")
    for table in FUTURES_TABLES:
        assert columns(lite, table) == columns(my, table) and columns(lite, table), table
    read = "SELECT AMOUNT FROM TRADER_FUNDING"
    assert lite.query(read) == my.query(read) == [("-0.00000001",)]
    defaults = "SELECT ENTRY_PRICE, LIQUIDATION_PRICE, MARK_PRICE FROM TRADER_POSITIONS"
    assert lite.query(defaults) == my.query(defaults) == [("0", "0", "")]
    lite.close()
    my.close()

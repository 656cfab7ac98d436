"""The task database connection and its versioned migrations, on real SQLite
files and a real MariaDB: a fresh database gets the schema, a second run
changes nothing, a database from a newer engine is refused, and both
dialects' schemas hold the same tables, columns and defaults."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.store import migrations
from engine.store.migrations import SchemaTooNew, available, current_version, migrate, split_statements
from engine.store.taskdb import TaskDb, TaskDbError
from engine.store.tasks import TaskFetcher
from tests.store.test_taskdb_fixtures import (
    RecordingSink,
    mysql_config,
    open_db,
    scratch_database,
    sqlite_config,
)

TABLES = {"ENGINE_SCHEMA", "MONITORING", "TRADE", "TRADE_HISTORY", "DAEMONS", "TASK_LEASES"}


@pytest.fixture(params=["sqlite", "mysql"])
def taskdb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskDb]:
    if request.param == "sqlite":
        db = open_db(sqlite_config(tmp_path))
    else:
        server = request.getfixturevalue("mariadb")
        db = open_db(mysql_config(server, scratch_database(server), tmp_path), server)
    yield db
    db.close()


def columns(db: TaskDb, table: str) -> list[str]:
    if db.dialect.name == "sqlite":
        return [row[1] for row in db.query(f"PRAGMA table_info({table})")]
    return [row[0] for row in db.query(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
        " AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", (table,))]


# -- migrations ----------------------------------------------------------------

def test_migrate_fresh_database_creates_every_table_at_newest_version(taskdb: TaskDb) -> None:
    result = migrate(taskdb)
    newest = len(available(taskdb.dialect.name))
    assert (result.before, result.after, result.applied) == (0, newest, tuple(range(1, newest + 1)))
    assert all(taskdb.table_exists(t) for t in TABLES)
    assert current_version(taskdb) == newest
    assert taskdb.query("SELECT VERSION, NAME FROM ENGINE_SCHEMA ORDER BY VERSION")[0] == (1, "tasks")


def test_migrate_twice_changes_nothing_the_second_time(taskdb: TaskDb) -> None:
    migrate(taskdb)
    taskdb.execute("INSERT INTO MONITORING (EXCHANGE_ID, TRADE_PAIR) VALUES ('binance', 'BTC/USDT')")
    again = migrate(taskdb)
    assert again.applied == () and again.before == again.after
    assert taskdb.query("SELECT COUNT(*) FROM ENGINE_SCHEMA") == [(len(available(taskdb.dialect.name)),)]
    assert taskdb.query("SELECT COUNT(*) FROM MONITORING") == [(1,)]


def test_migrate_rerun_after_a_cut_short_migration_completes_it(taskdb: TaskDb) -> None:
    # MySQL DDL commits as it goes: a daemon killed mid-migration leaves some
    # tables and no version row. Every statement is IF NOT EXISTS, so a re-run finishes.
    first = available(taskdb.dialect.name)[0].statements()
    for statement in first[:3]:
        taskdb.execute(statement)
    assert current_version(taskdb) == 0
    assert migrate(taskdb).after == len(available(taskdb.dialect.name))
    assert all(taskdb.table_exists(t) for t in TABLES)


def test_migrate_database_newer_than_code_is_refused_untouched(taskdb: TaskDb) -> None:
    migrate(taskdb)
    taskdb.execute("INSERT INTO ENGINE_SCHEMA (VERSION, NAME) VALUES (99, 'from_the_future')")
    latest = len(available(taskdb.dialect.name))
    with pytest.raises(SchemaTooNew, match=rf"schema version 99.*knows versions up to {latest}.*newer engine"):
        migrate(taskdb)
    assert current_version(taskdb) == 99


def test_fetcher_start_on_newer_schema_fails_with_the_clear_error(tmp_path: Path) -> None:
    config = sqlite_config(tmp_path)
    db = open_db(config)
    migrate(db)
    db.execute("INSERT INTO ENGINE_SCHEMA (VERSION, NAME) VALUES (7, 'later')")
    db.close()
    fetcher = TaskFetcher(config, "d1", RecordingSink(), db=open_db(config))
    with pytest.raises(SchemaTooNew, match="schema version 7"):
        fetcher.start()


def test_migrate_from_many_daemons_at_once_applies_each_version_once(mariadb, tmp_path: Path) -> None:
    config = mysql_config(mariadb, scratch_database(mariadb), tmp_path)
    results, errors = [], []

    def run() -> None:
        db = open_db(config, mariadb)
        try:
            results.append(migrate(db))
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)
        finally:
            db.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    newest = len(available("mysql"))
    assert sorted(len(r.applied) for r in results) == [0, 0, 0, newest]
    db = open_db(config, mariadb)
    assert db.query("SELECT COUNT(*) FROM ENGINE_SCHEMA") == [(newest,)]
    db.close()


def test_migration_files_must_be_numbered_without_gaps(tmp_path: Path) -> None:
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "sqlite" / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "sqlite" / "0003_c.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match=r"numbered 1..N, found \[1, 3\]"):
        available("sqlite", tmp_path)


def test_split_statements_keeps_trigger_bodies_whole() -> None:
    script = ("-- comment\nCREATE TABLE A (X INT);\n\nCREATE TRIGGER T AFTER UPDATE ON A\nBEGIN\n"
              "  UPDATE A SET X = 1;\nEND;\nINSERT INTO A VALUES (';');\n")
    statements = split_statements(script)
    assert len(statements) == 3
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END")
    assert statements[2] == "INSERT INTO A VALUES (';')"


# -- the two dialects ----------------------------------------------------------

def test_both_dialects_ship_the_same_migrations() -> None:
    assert [(m.version, m.name) for m in available("sqlite")] == \
        [(m.version, m.name) for m in available("mysql")]


def test_both_dialects_create_the_same_columns_and_defaults(mariadb, tmp_path: Path) -> None:
    lite = open_db(sqlite_config(tmp_path))
    my = open_db(mysql_config(mariadb, scratch_database(mariadb), tmp_path), mariadb)
    for db in (lite, my):
        migrate(db)
        db.execute("INSERT INTO MONITORING (EXCHANGE_ID, TRADE_PAIR) VALUES ('okx', 'ETH/USDT')")
        db.execute("INSERT INTO TRADE (EXCHANGE_ID, TRADE_PAIR) VALUES ('okx', 'ETH/USDT')")
    for table in sorted(TABLES):
        assert columns(lite, table) == columns(my, table), table
    # the plan's columns, in the plan's order
    assert columns(lite, "MONITORING") == [
        "ID", "EXCHANGE_ID", "EXCHANGE_NAME", "MARKET_TYPE", "TRADE_PAIR_ID", "TRADE_PAIR",
        "DAEMON_PRIORITY", "ENABLED", "ORDERBOOK_DEPTH", "CREATED_AT", "UPDATED_AT"]
    defaults = "SELECT MARKET_TYPE, DAEMON_PRIORITY, ENABLED, ORDERBOOK_DEPTH FROM MONITORING"
    assert lite.query(defaults) == my.query(defaults) == [("spot", 0, 1, 20)]
    trade = "SELECT MARKET_TYPE, DAEMON_PRIORITY, ENABLED, STRATEGY_PARAMS FROM TRADE"
    assert lite.query(trade) == my.query(trade) == [("spot", 0, 1, None)]
    lite.close()
    my.close()


def test_trade_history_keeps_exact_decimal_amounts(taskdb: TaskDb) -> None:
    migrate(taskdb)
    taskdb.execute("INSERT INTO TRADE_HISTORY (DAEMON_ID, EXCHANGE_ID, TRADE_PAIR, ORDER_ID, SIDE, PRICE,"
                   " AMOUNT, COMMISSION, STATUS) VALUES ('d1', 'binance', 'BTC/USDT', 'o1', 'buy', ?, ?, ?,"
                   " 'filled')", ("42000.12345678", "0.00000001", "0.1"))
    price, amount, fee = taskdb.query("SELECT PRICE, AMOUNT, COMMISSION FROM TRADE_HISTORY")[0]
    from decimal import Decimal

    assert (Decimal(str(price)), Decimal(str(amount)), Decimal(str(fee))) == \
        (Decimal("42000.12345678"), Decimal("0.00000001"), Decimal("0.1"))


# -- the connection ------------------------------------------------------------

def test_transaction_rolls_back_on_error(taskdb: TaskDb) -> None:
    migrate(taskdb)
    with pytest.raises(RuntimeError, match="boom"), taskdb.transaction():
        taskdb.execute("INSERT INTO MONITORING (EXCHANGE_ID, TRADE_PAIR) VALUES ('okx', 'A/B')")
        raise RuntimeError("boom")
    assert taskdb.query("SELECT COUNT(*) FROM MONITORING") == [(0,)]


def test_now_ms_is_the_database_clock_in_epoch_ms(taskdb: TaskDb) -> None:
    import time

    assert abs(taskdb.now_ms() - time.time() * 1000) < 5000  # same machine here


def test_unreachable_mysql_raises_a_taskdb_error_naming_the_database(tmp_path: Path, mariadb) -> None:
    config = mysql_config(mariadb, "nowhere", tmp_path, port=1)
    db = open_db(config, mariadb)
    with pytest.raises(TaskDbError, match=r"mysql://engine@127\.0\.0\.1:1/nowhere"):
        migrate(db)


def test_bad_sql_error_names_the_statement(taskdb: TaskDb) -> None:
    with pytest.raises(TaskDbError, match="SELECT NO_SUCH_COLUMN FROM NOWHERE"):
        taskdb.query("SELECT NO_SUCH_COLUMN FROM NOWHERE")
    assert taskdb.query("SELECT 1") == [(1,)]  # the connection survives a bad statement


def test_sql_root_is_under_the_repository_sql_dir() -> None:
    assert migrations.SQL_ROOT.parts[-2:] == ("sql", "taskdb")

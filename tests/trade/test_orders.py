"""The durable order store on a real SQLite file and a real MariaDB: intents
are committed before a send, updates merge monotonically (duplicates,
replays and stale updates change nothing), fills are recorded exactly once,
and both dialects' trader tables hold the same columns."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from engine.model import Market, OrderStatus, OrderUpdate, Side
from engine.model_trade import Fill
from engine.store.migrations import migrate
from engine.store.taskdb import TaskDb
from engine.trade.orders import OrderStore
from tests.store.test_taskdb_fixtures import mysql_config, open_db, scratch_database, sqlite_config
from tests.trade.rig import Orders

TRADER_TABLES = ("TRADER_ORDERS", "TRADER_FILLS", "TRADER_FLAGS")


@pytest.fixture(params=["sqlite", "mysql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskDb]:
    if request.param == "sqlite":
        database = open_db(sqlite_config(tmp_path))
    else:
        server = request.getfixturevalue("mariadb")
        database = open_db(mysql_config(server, scratch_database(server), tmp_path), server)
    migrate(database)
    yield database
    database.close()


def update(cid: str, status: OrderStatus, filled: str, trade_id: int = 0,
           venue_order_id: str = "7") -> OrderUpdate:
    return OrderUpdate("binance", Market.SPOT, "BTC/USDT", cid, venue_order_id, status, Side.BUY,
                       "29000.00", "0.01", filled, "29000.00" if filled != "0" else "0",
                       update_id=trade_id)


def fill(cid: str, trade_id: str, quantity: str = "0.005") -> Fill:
    return Fill("binance", Market.SPOT, "BTC/USDT", cid, "7", trade_id, Side.BUY, "29000.00",
                quantity, "0.000005", "BTC", True, 1_700_000_000_000_000_000)


def test_intent_is_committed_before_the_send_and_survives_a_reopen(db: TaskDb) -> None:
    store = OrderStore(db, "d1")
    order = Orders().place(Side.BUY, "29000.00")
    record, fresh = store.record_intent(order, sent_ms=123)
    assert fresh and record.state == "intent"
    again = OrderStore(db, "d1")
    assert [(r.client_order_id, r.state, r.sent_ms, r.price) for r in again.load()] == [
        (order.client_order_id, "intent", 123, "29000.00")]


def test_an_intent_already_recorded_is_never_armed_twice(db: TaskDb) -> None:
    store = OrderStore(db, "d1")
    order = Orders().place(Side.BUY, "29000")
    store.record_intent(order, sent_ms=1)
    record, fresh = store.record_intent(order, sent_ms=2)
    assert not fresh and record.sent_ms == 1
    store.settle("binance", order.client_order_id, "absent", "proven")
    record, fresh = store.record_intent(dataclasses.replace(order, price=Decimal("28999")), 3)
    assert fresh and (record.state, record.sent_ms, record.price) == ("intent", 3, "28999")


def test_duplicate_replayed_and_stale_updates_change_nothing(db: TaskDb) -> None:
    store = OrderStore(db, "d1")
    cid = Orders().place(Side.BUY, "29000").client_order_id
    store.record_intent(Orders().place(Side.BUY, "29000"), 1)
    seen: list = []
    store.listeners.append(lambda record, fills: seen.append((record.state, len(fills))))
    partial = update(cid, OrderStatus.PARTIALLY_FILLED, "0.005", trade_id=11)
    assert len(store.apply([partial], [fill(cid, "11")])) == 1
    assert store.apply([partial], [fill(cid, "11")]) == []  # duplicate
    assert store.apply([update(cid, OrderStatus.NEW, "0")]) == []  # stale: older than held
    full = update(cid, OrderStatus.FILLED, "0.01", trade_id=12)
    store.apply([full], [fill(cid, "12")])
    assert store.apply([partial, full], [fill(cid, "11"), fill(cid, "12")]) == []  # replay
    assert seen == [("partially_filled", 1), ("filled", 1)]
    assert db.query("SELECT COUNT(*) FROM TRADER_FILLS") == [(2,)]
    assert db.query("SELECT STATE, FILLED FROM TRADER_ORDERS") == [("filled", "0.01")]
    assert store.duplicates >= 4


def test_a_finished_order_is_never_moved_back(db: TaskDb) -> None:
    store = OrderStore(db, "d1")
    order = Orders().place(Side.BUY, "29000")
    store.record_intent(order, 1)
    store.apply([update(order.client_order_id, OrderStatus.CANCELED, "0")])
    assert store.settle("binance", order.client_order_id, "unknown").state == "canceled"
    assert store.apply([update(order.client_order_id, OrderStatus.NEW, "0")]) == []
    assert store.live_orders() == []


def test_updates_of_orders_we_never_recorded_are_ignored(db: TaskDb) -> None:
    store = OrderStore(db, "d1")
    assert store.apply([update("web_abc", OrderStatus.NEW, "0")], [fill("web_abc", "1")]) == []
    assert db.query("SELECT COUNT(*) FROM TRADER_ORDERS") == [(0,)]
    assert db.query("SELECT COUNT(*) FROM TRADER_FILLS") == [(0,)]


def test_fills_without_a_client_id_are_matched_by_venue_order_id(db: TaskDb) -> None:
    store = OrderStore(db, "d1")
    order = Orders().place(Side.BUY, "29000")
    store.record_intent(order, 1)
    store.apply([update(order.client_order_id, OrderStatus.NEW, "0", venue_order_id="99")])
    from_rest = dataclasses.replace(fill("", "5"), venue_order_id="99")
    store.apply([], [from_rest])
    assert [(f.client_order_id, f.trade_id) for f in OrderStore(db).fills()] == [
        (order.client_order_id, "5")]


def test_money_strings_are_kept_exactly(db: TaskDb) -> None:
    store = OrderStore(db, "d1")
    order = Orders().place(Side.BUY, "0.00000001", quantity="12345678.12345678")
    store.record_intent(order, 1)
    record = OrderStore(db).load()[0]
    assert (record.price, record.quantity) == ("0.00000001", "12345678.12345678")
    assert Decimal(record.price) == Decimal("0.00000001")


def test_halt_flag_persists(db: TaskDb) -> None:
    store = OrderStore(db)
    store.set_flag("halt:*", "by test")
    store.set_flag("halt:*", "again")
    assert OrderStore(db).flags() == {"halt:*": "again"}
    store.set_flag("halt:*", None)
    assert OrderStore(db).flags() == {}


def test_both_dialects_create_the_same_trader_columns(mariadb, tmp_path: Path) -> None:
    lite = open_db(sqlite_config(tmp_path))
    my = open_db(mysql_config(mariadb, scratch_database(mariadb), tmp_path), mariadb)
    for database in (lite, my):
        migrate(database)
    for table in TRADER_TABLES:
        lite_columns = [row[1] for row in lite.query(f"PRAGMA table_info({table})")]
        my_columns = [row[0] for row in my.query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()"
            " AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION", (table,))]
        assert lite_columns == my_columns and lite_columns, table
    lite.close()
    my.close()


def test_sqlite_intent_survives_a_sigkill_right_after_its_commit(tmp_path: Path) -> None:
    """synchronous=NORMAL (no fsync per intent, docs/trading.md "Durability"):
    the COMMIT is in the WAL when record_intent returns, so a process killed
    at once (before any checkpoint or close) leaves it for the next start."""
    import subprocess
    import sys

    child = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from engine.model import Side\n"
        "from engine.store.migrations import migrate\n"
        "from engine.trade.orders import OrderStore\n"
        "from tests.store.test_taskdb_fixtures import open_db, sqlite_config\n"
        "from tests.trade.rig import Orders\n"
        "db = open_db(sqlite_config(Path(sys.argv[1])))\n"
        "migrate(db)\n"
        "store = OrderStore(db, 'd1')\n"
        "store.load()\n"
        "assert db.query('PRAGMA synchronous') == [(1,)], db.query('PRAGMA synchronous')\n"
        "store.record_intent(Orders().place(Side.BUY, '29000.00', slot=7), sent_ms=456)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", child, str(tmp_path)], capture_output=True,
                          cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    db = open_db(sqlite_config(tmp_path))
    try:
        assert [(r.slot_id, r.state, r.sent_ms) for r in OrderStore(db, "d1").load()] == \
            [(7, "intent", 456)]
    finally:
        db.close()

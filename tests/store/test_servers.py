"""The private test servers and chdb really work: MariaDB through
mysql-connector-python, ClickHouse 18.16 through clickhouse-driver (native
protocol, columnar inserts), chdb in-process, and the SQL subset the history
store may use runs with the same results on the server and on chdb."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import chdb
import mysql.connector
import psutil
import pytest
from chdb.session import Session
from clickhouse_driver import Client
from clickhouse_driver.errors import Error as ClickHouseError

from tests.support import servers
from tests.support.eventually import eventually
from tests.support.fixtures import create_server, unavailable
from tests.support.process import ServerBinaryMissing, ServerStartError, find_binary
from tests.support.servers import ClickHouseServer, MariaDbServer

NS = 1_000_000_000
T0_NS = 1_700_000_000 * NS  # 2023-11-14 22:13:20 UTC, on a second boundary

# The shared subset (see the notes in tests/support/servers.py): MergeTree DDL
# with Int64 ns timestamps, INSERT .. SELECT, intDiv buckets, argMin/argMax.
TRADES_DDL = """
CREATE TABLE IF NOT EXISTS {table} (
    venue String, pair String, recv_ns Int64, exch_ns Int64,
    px Float64, qty Float64, side Int8
) ENGINE = MergeTree()
PARTITION BY intDiv(recv_ns, 86400000000000)
ORDER BY (venue, pair, recv_ns)
"""
TRADES = [  # venue, pair, recv_ns, exch_ns, px, qty, side
    ("binance", "BTCUSDT", T0_NS + 123_456_789, T0_NS + 120_000_000, 42000.5, 0.25, 1),
    ("binance", "BTCUSDT", T0_NS + 523_456_789, T0_NS + 520_000_000, 42001.0, 0.5, -1),
    ("binance", "BTCUSDT", T0_NS + 1_023_456_789, T0_NS + 1_020_000_000, 41999.0, 1.0, 1),
    ("okx", "BTC-USDT", T0_NS + 2_000_000_000, T0_NS + 1_999_000_000, 41998.5, 2.0, -1),
]
OHLC_1S = """
SELECT venue, pair, intDiv(recv_ns, 1000000000) * 1000000000 AS bucket_ns,
       argMin(px, recv_ns) AS open, max(px) AS high, min(px) AS low,
       argMax(px, recv_ns) AS close, sum(qty) AS volume, count() AS trades
FROM {table}
WHERE recv_ns >= {start_ns} AND recv_ns < {end_ns}
GROUP BY venue, pair, bucket_ns
ORDER BY venue, pair, bucket_ns
"""
EXPECTED_OHLC = [
    ("binance", "BTCUSDT", T0_NS, 42000.5, 42001.0, 42000.5, 42001.0, 0.75, 2),
    ("binance", "BTCUSDT", T0_NS + NS, 41999.0, 41999.0, 41999.0, 41999.0, 1.0, 1),
    ("okx", "BTC-USDT", T0_NS + 2 * NS, 41998.5, 41998.5, 41998.5, 41998.5, 2.0, 1),
]


def insert_select(table: str, rows: list[tuple[Any, ...]]) -> str:
    """Rows as one INSERT .. SELECT .. UNION ALL (literal VALUES would hang
    clickhouse-driver on 18.16)."""
    selects = " UNION ALL ".join("SELECT " + ", ".join(map(repr, row)) for row in rows)
    return f"INSERT INTO {table} (venue, pair, recv_ns, exch_ns, px, qty, side) {selects}"


def columns(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows)]


def chdb_rows(session: Session, sql: str) -> list[tuple[Any, ...]]:
    """Rows as Python values (JSONCompact quotes 64-bit integers)."""
    result = json.loads(session.query(sql, "JSONCompact").bytes())
    integer = [column["type"].lstrip("U").startswith("Int") for column in result["meta"]]
    return [tuple(int(value) if is_int else value for value, is_int in zip(row, integer))
            for row in result["data"]]


def listening(pid: int) -> set[tuple[str, int]]:
    return {(conn.laddr.ip, conn.laddr.port) for conn in psutil.Process(pid).net_connections("inet")
            if conn.status == psutil.CONN_LISTEN}


@pytest.fixture
def mysql_connection(mariadb: MariaDbServer) -> Iterator[Any]:
    connection = mysql.connector.connect(**mariadb.connect_kwargs())
    yield connection
    connection.close()


def clickhouse_client(server: ClickHouseServer) -> Client:
    return Client(**server.connect_kwargs(), send_receive_timeout=20)


# -- MariaDB ---------------------------------------------------------------

def test_mariadb_insert_then_select_returns_rows(mysql_connection: Any) -> None:
    cursor = mysql_connection.cursor()
    cursor.execute("DROP TABLE IF EXISTS slots_roundtrip")
    cursor.execute("CREATE TABLE slots_roundtrip (id BIGINT PRIMARY KEY, state VARCHAR(16) NOT NULL,"
                   " price DECIMAL(20, 8) NOT NULL) ENGINE=InnoDB")
    cursor.executemany("INSERT INTO slots_roundtrip VALUES (%s, %s, %s)",
                       [(1, "FREE", "42000.5"), (2, "LOCKED", "0.00000001")])
    mysql_connection.commit()
    cursor.execute("SELECT id, state, CAST(price AS CHAR) FROM slots_roundtrip ORDER BY id")
    assert cursor.fetchall() == [(1, "FREE", "42000.50000000"), (2, "LOCKED", "0.00000001")]


def test_mariadb_rollback_discards_uncommitted_rows(mariadb: MariaDbServer, mysql_connection: Any) -> None:
    cursor = mysql_connection.cursor()
    cursor.execute("DROP TABLE IF EXISTS orders_rollback")
    cursor.execute("CREATE TABLE orders_rollback (client_order_id VARCHAR(36) PRIMARY KEY) ENGINE=InnoDB")
    mysql_connection.commit()
    mysql_connection.start_transaction()
    cursor.execute("INSERT INTO orders_rollback VALUES ('kept')")
    mysql_connection.commit()
    mysql_connection.start_transaction()
    cursor.execute("INSERT INTO orders_rollback VALUES ('discarded')")
    other = mysql.connector.connect(**mariadb.connect_kwargs())  # does not see uncommitted rows
    other_cursor = other.cursor()
    other_cursor.execute("SELECT client_order_id FROM orders_rollback")
    assert other_cursor.fetchall() == [("kept",)]
    other.close()
    mysql_connection.rollback()
    cursor.execute("SELECT client_order_id FROM orders_rollback ORDER BY client_order_id")
    assert cursor.fetchall() == [("kept",)]


def test_mariadb_wrong_password_is_rejected(mariadb: MariaDbServer) -> None:
    with pytest.raises(mysql.connector.errors.ProgrammingError, match="Access denied"):
        mysql.connector.connect(**{**mariadb.connect_kwargs(), "password": "wrong"})


def test_mariadb_listens_on_loopback_only_with_socket_in_temp_dir(
        mariadb: MariaDbServer, mysql_connection: Any) -> None:
    cursor = mysql_connection.cursor()
    cursor.execute("SELECT @@bind_address, @@port, @@socket, @@skip_grant_tables")
    assert cursor.fetchall() == [("127.0.0.1", mariadb.port, str(mariadb.socket_path), 0)]
    assert mariadb.pid is not None
    assert listening(mariadb.pid) == {("127.0.0.1", mariadb.port)}


def test_mariadb_kill_then_start_keeps_committed_rows(
        mariadb_factory: Callable[[], MariaDbServer]) -> None:
    server = mariadb_factory()
    connection = mysql.connector.connect(**server.connect_kwargs())
    cursor = connection.cursor()
    cursor.execute("CREATE TABLE fills (id INT PRIMARY KEY) ENGINE=InnoDB")
    cursor.executemany("INSERT INTO fills VALUES (%s)", [(n,) for n in range(100)])
    connection.commit()
    connection.close()
    port = server.port
    server.kill()
    server.start()
    assert server.port == port
    connection = mysql.connector.connect(**server.connect_kwargs())
    cursor = connection.cursor()
    cursor.execute("SELECT COUNT(*) FROM fills")
    assert cursor.fetchall() == [(100,)]
    connection.close()


# -- ClickHouse server -----------------------------------------------------

def test_clickhouse_columnar_insert_then_select_returns_rows(clickhouse: ClickHouseServer) -> None:
    client = clickhouse_client(clickhouse)
    client.execute("DROP TABLE IF EXISTS trades_columnar")
    client.execute(TRADES_DDL.format(table="trades_columnar"))
    client.execute("INSERT INTO trades_columnar (venue, pair, recv_ns, exch_ns, px, qty, side) VALUES",
                   columns(TRADES), columnar=True)
    rows = client.execute("SELECT venue, pair, recv_ns, exch_ns, px, qty, side FROM trades_columnar"
                          " ORDER BY venue, pair, recv_ns")
    assert rows == TRADES
    day_partitions = client.execute(
        "SELECT DISTINCT partition FROM system.parts WHERE database = %(db)s"
        " AND table = 'trades_columnar' AND active", {"db": clickhouse.database})
    assert day_partitions == [(str(T0_NS // (86400 * NS)),)]
    client.disconnect()


def test_clickhouse_wrong_password_is_rejected(clickhouse: ClickHouseServer) -> None:
    client = Client(**{**clickhouse.connect_kwargs(), "password": "wrong"})
    with pytest.raises(ClickHouseError, match="(?i)password"):
        client.execute("SELECT 1")


def test_clickhouse_listens_on_loopback_native_and_http_only(clickhouse: ClickHouseServer) -> None:
    assert clickhouse.pid is not None
    assert listening(clickhouse.pid) == {("127.0.0.1", clickhouse.port), ("127.0.0.1", clickhouse.http_port)}
    assert clickhouse.http_query("SELECT currentDatabase()").strip() == "default"


@pytest.mark.parametrize("halt", ["stop", "kill"])
def test_clickhouse_restart_keeps_data(
        clickhouse_factory: Callable[[], ClickHouseServer], halt: str) -> None:
    server = clickhouse_factory()
    client = clickhouse_client(server)
    client.execute(TRADES_DDL.format(table="trades_restart"))
    client.execute("INSERT INTO trades_restart (venue, pair, recv_ns, exch_ns, px, qty, side) VALUES",
                   columns(TRADES), columnar=True)
    ports = (server.port, server.http_port)
    getattr(server, halt)()
    with pytest.raises((ClickHouseError, OSError)):
        client.execute("SELECT 1")
    server.start()
    assert (server.port, server.http_port) == ports
    # The same client reconnects on its next query.
    assert eventually(lambda: client.execute("SELECT count() FROM trades_restart"),
                      timeout=10, ignoring=(ClickHouseError, OSError)) == [(len(TRADES),)]
    client.disconnect()


def test_clickhouse_first_start_retries_when_port_taken(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    picks = iter([taken.getsockname()[1]])
    real_free_port = servers.free_port
    monkeypatch.setattr(servers, "free_port", lambda: next(picks, None) or real_free_port())
    server = create_server(ClickHouseServer, tmp_path / "clash")
    try:
        server.start()
        assert server.port != taken.getsockname()[1]
        assert server.http_query("SELECT 1").strip() == "1"
    finally:
        server.stop()
        taken.close()


def test_clickhouse_start_failure_reports_exit_code_and_log(tmp_path: Path) -> None:
    server = create_server(ClickHouseServer, tmp_path / "broken")
    server.server_command = [sys.executable, "-c", "import sys; print('no config for you'); sys.exit(3)"]
    with pytest.raises(ServerStartError, match="(?s)exited with code 3.*no config for you"):
        server.start()
    assert not server.running


# -- chdb and the shared SQL subset ----------------------------------------

def test_chdb_query_runs_in_process() -> None:
    assert str(chdb.query("SELECT intDiv(toInt64(1700000000123456789), 1000000000)", "CSV")).strip() \
        == "1700000000"


def test_chdb_session_keeps_data_across_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "history")
    session = Session(path)
    try:
        session.query("CREATE DATABASE IF NOT EXISTS engine")
        session.query(TRADES_DDL.format(table="engine.trades"))
        session.query(insert_select("engine.trades", TRADES))
    finally:
        session.close()
    session = Session(path)
    try:
        assert chdb_rows(session, "SELECT count() FROM engine.trades") == [(len(TRADES),)]
    finally:
        session.close()


def test_shared_sql_gives_same_ohlc_on_server_and_chdb(
        clickhouse: ClickHouseServer, chdb_session: Session) -> None:
    query = OHLC_1S.format(table="{table}", start_ns=T0_NS, end_ns=T0_NS + 3 * NS)
    client = clickhouse_client(clickhouse)
    client.execute("DROP TABLE IF EXISTS trades_shared")
    client.execute(TRADES_DDL.format(table="trades_shared"))
    client.execute(insert_select("trades_shared", TRADES))
    server_rows = client.execute(query.format(table="trades_shared"))
    client.disconnect()

    chdb_session.query("CREATE DATABASE IF NOT EXISTS engine")
    chdb_session.query(TRADES_DDL.format(table="engine.trades_shared"))
    chdb_session.query(insert_select("engine.trades_shared", TRADES))
    embedded_rows = chdb_rows(chdb_session, query.format(table="engine.trades_shared"))

    assert server_rows == EXPECTED_OHLC
    assert embedded_rows == EXPECTED_OHLC


# -- availability ------------------------------------------------------------

def test_missing_binary_names_the_debian_package() -> None:
    with pytest.raises(ServerBinaryMissing, match="no-such-server.*'no-such-package'"):
        find_binary("no-such-server", package="no-such-package")


@pytest.mark.parametrize(("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_missing_prerequisite_fails_under_ci_else_skips(
        monkeypatch: pytest.MonkeyPatch, ci: str, outcome: type[BaseException]) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="mariadbd"):
        unavailable("mariadbd not found: install Debian package 'mariadb-server'")

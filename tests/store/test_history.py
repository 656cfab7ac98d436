"""The history store on both engines (the private ClickHouse 18.16 server and
chdb): the same schema, and batches written exactly once whatever a retry
finds already stored. Also home of the ``history`` fixtures the other
history tests import."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import config as cfg
from engine.config import Config
from engine.model import BookDelta, BookSnapshot, Market, Side, Trade
from engine.store.batch import DAY_NS, TABLES, Batch, BatchBuilder
from engine.store.history import HistoryStore, PartialBatch, schema_statements
from tests.support.servers import ClickHouseServer

NS = 1_000_000_000
T0 = 1_700_000_000 * NS
PASSWORD_ENV = "ENGINE_TEST_CLICKHOUSE_PASSWORD"


def history_config(tmp_path: Path, backend: str, server: ClickHouseServer | None = None,
                   **daemon: Any) -> Config:
    history: dict[str, Any] = {"backend": backend, "database": f"t_{uuid.uuid4().hex[:12]}",
                               "password_env": PASSWORD_ENV}
    if server is not None:
        history |= {"host": server.host, "port": server.port, "user": server.user}
    return cfg.parse({"daemon": {"data_dir": str(tmp_path / "data"), "id": "test-daemon", **daemon},
                      "storage": {"history": history}})


def open_history(request: pytest.FixtureRequest, tmp_path: Path, backend: str,
                 monkeypatch: pytest.MonkeyPatch) -> HistoryStore:
    server = None
    if backend == "clickhouse":
        server = request.getfixturevalue("clickhouse")
        monkeypatch.setenv(PASSWORD_ENV, server.password)
    store = HistoryStore(history_config(tmp_path, backend, server))
    store.start()
    store.ensure_schema()  # the server backend connects lazily
    return store


@pytest.fixture(params=["chdb", "clickhouse"])
def history(request: pytest.FixtureRequest, tmp_path: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[HistoryStore]:
    """A started HistoryStore on a fresh database of each engine."""
    store = open_history(request, tmp_path, request.param, monkeypatch)
    yield store
    store.stop(2.0)


def count(store: HistoryStore, table: str, where: str = "1") -> int:
    return int(store.query(f"SELECT count() FROM {{db}}.{table} WHERE {where}")[0][0])


def sample_batch(batch_id: int, start_ns: int = T0, trades: int = 5) -> Batch:
    builder = BatchBuilder()
    builder.add_snapshot("binance", "spot", "BTC/USDT", "resync", 10, start_ns, start_ns,
                         [(100.0, 1.0), (99.5, 2.0)], [(100.5, 3.0)])
    for i in range(trades):
        builder.add_trade(Trade("binance", Market.SPOT, "BTC/USDT", 100.0 + i, 0.5, Side.BUY,
                                f"{batch_id}-{i}", start_ns + i * NS, start_ns + i * NS + 7))
        builder.add_delta(BookDelta("binance", Market.SPOT, "BTC/USDT", [(100.0, float(i))],
                                    [(100.5, 1.0), (101.0, 2.0)], 11 + i, 11 + i, -1,
                                    start_ns + i * NS, start_ns + i * NS + 9))
    return builder.cut(batch_id)


# -- schema --------------------------------------------------------------------

def test_history_schema_is_idempotent_and_the_same_on_both_engines(
        request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    columns = {}
    for backend in ("chdb", "clickhouse"):
        store = open_history(request, tmp_path / backend, backend, monkeypatch)
        try:
            store.ensure_schema()
            for statement in schema_statements(store.database):  # again: nothing changes
                store.backend.execute(statement, writer=True)
            columns[backend] = store.query(
                "SELECT table, name, type FROM system.columns WHERE database = '{db}'"
                " ORDER BY table, name")
        finally:
            store.stop(2.0)
    assert columns["chdb"] == columns["clickhouse"]
    tables = {table for table, _, _ in columns["chdb"]}
    assert tables == set(TABLES) | {"history_batches"}
    for table, names in TABLES.items():
        stored = {name for t, name, _ in columns["chdb"] if t == table}
        assert set(names) <= stored


# -- exactly once ------------------------------------------------------------------

def test_history_write_batch_stores_every_row_and_a_marker_per_table(history: HistoryStore) -> None:
    batch = sample_batch(4096 * 7 + 1)
    assert history.write_batch(batch) == 1 + 5 + 15
    assert count(history, "trades") == 5
    assert count(history, "book_deltas") == 15
    assert count(history, "book_snapshots") == 1
    markers = history.query("SELECT table_name, day, rows, writer FROM {db}.history_batches"
                            " ORDER BY table_name")
    day = T0 // DAY_NS
    assert markers == [("book_deltas", day, 15, "test-daemon"), ("book_snapshots", day, 1, "test-daemon"),
                       ("trades", day, 5, "test-daemon")]
    stored = history.query("SELECT trade_id, price, size, taker_side, exch_ns, recv_ns, ts_ns, batch_id"
                           " FROM {db}.trades ORDER BY trade_id")
    assert stored[0] == (f"{batch.batch_id}-0", 100.0, 0.5, 1, T0, T0 + 7, T0, batch.batch_id)
    snapshot = history.query("SELECT toString(reason), seq, bid_prices, bid_sizes, ask_prices, ask_sizes"
                             " FROM {db}.book_snapshots")
    assert snapshot == [("resync", 10, [100.0, 99.5], [1.0, 2.0], [100.5], [3.0])]


def test_history_retry_of_a_stored_batch_writes_nothing(history: HistoryStore) -> None:
    batch = sample_batch(4096 * 8 + 1)
    history.write_batch(batch)
    batch.maybe_sent = True
    assert history.write_batch(batch) == 0
    assert count(history, "trades") == 5 and count(history, "book_deltas") == 15
    assert count(history, "history_batches") == 3


def test_history_retry_finds_rows_without_marker_and_inserts_only_the_rest(
        history: HistoryStore) -> None:
    """The write died after the trades insert, before its marker: the retry
    must not insert the trades again, and must insert the other tables."""
    batch = sample_batch(4096 * 9 + 1)
    history.backend.insert(history.table("trades"), TABLES["trades"], batch.tables["trades"])
    batch.maybe_sent = True
    assert history.write_batch(batch) == 15 + 1
    assert count(history, "trades") == 5
    assert count(history, "book_deltas") == 15
    assert sorted(r[0] for r in history.query("SELECT table_name FROM {db}.history_batches")) == [
        "book_deltas", "book_snapshots", "trades"]


def test_history_markers_wait_and_a_retry_finds_the_waiting_ones(history: HistoryStore) -> None:
    history.write_batch(sample_batch(4096 * 20 + 1))  # the first flushes at once
    batch = sample_batch(4096 * 21 + 1)
    history.write_batch(batch)  # within MARKER_FLUSH_S: its markers wait
    assert count(history, "history_batches", f"batch_id = {batch.batch_id}") == 0
    batch.maybe_sent = True
    assert history.write_batch(batch) == 0
    assert count(history, "trades") == 10
    history.flush_markers()
    assert count(history, "history_batches", f"batch_id = {batch.batch_id}") == 3


def test_history_fresh_batch_is_not_checked(history: HistoryStore) -> None:
    """A batch never sent before skips the checks (the fast path): writing
    the same fresh batch twice is the caller's bug, and shows as duplicates."""
    batch = sample_batch(4096 * 10 + 1)
    history.write_batch(batch)
    assert batch.maybe_sent  # set by the first write; a retry would check
    history.write_batch(sample_batch(4096 * 10 + 1))
    assert count(history, "trades") == 10


def test_history_batch_across_midnight_is_one_insert_and_marker_per_day(
        history: HistoryStore) -> None:
    midnight = (T0 // DAY_NS + 1) * DAY_NS
    batch = sample_batch(4096 * 11 + 1, start_ns=midnight - 2 * NS, trades=4)
    history.write_batch(batch)
    markers = history.query("SELECT day, rows FROM {db}.history_batches WHERE table_name = 'trades'"
                            " ORDER BY day")
    assert markers == [(midnight // DAY_NS - 1, 2), (midnight // DAY_NS, 2)]
    batch.maybe_sent = True
    assert history.write_batch(batch) == 0
    assert count(history, "trades") == 4


def test_history_partly_stored_unit_is_reported_not_guessed(history: HistoryStore) -> None:
    batch = sample_batch(4096 * 12 + 1)
    half = [column[:2] for column in batch.tables["trades"]]
    history.backend.insert(history.table("trades"), TABLES["trades"], half)
    batch.maybe_sent = True
    with pytest.raises(PartialBatch, match="2 of 5 rows"):
        history.write_batch(batch)


def test_history_max_batch_id_is_this_writers_highest(history: HistoryStore) -> None:
    from engine.store.batch_ids import writer_tag

    tag = writer_tag("test-daemon")
    assert history.max_batch_id() == 0
    history.write_batch(sample_batch((5 << 12) | tag))
    history.write_batch(sample_batch((3 << 12) | tag))
    history.write_batch(sample_batch((9 << 12) | ((tag + 1) % 4096)))  # another daemon's
    assert history.max_batch_id() == (5 << 12) | tag


def test_history_server_down_raises_unavailable_and_reports_health(
        clickhouse_factory: Callable[[], ClickHouseServer], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.store.backends import StoreUnavailable

    server = clickhouse_factory()
    monkeypatch.setenv(PASSWORD_ENV, server.password)
    store = HistoryStore(history_config(tmp_path, "clickhouse", server))
    store.start()
    server.stop()
    batch = sample_batch(4096 * 13 + 1)
    with pytest.raises(StoreUnavailable):
        store.write_batch(batch)
    assert not batch.maybe_sent, "nothing can have arrived: the connect failed"
    assert not store.health()[0].ok
    server.start()
    store.write_batch(batch)
    assert store.health()[0].ok
    assert count(store, "trades") == 5
    store.stop(2.0)


def test_history_snapshot_builder_keeps_levels_best_first() -> None:
    builder = BatchBuilder()
    snap = BookSnapshot("okx", Market.FUTURES, "ETH/USDT", [(10.0, 1.0)], [(11.0, 1.0)])
    builder.add_snapshot(snap.venue, snap.market.value, snap.pair, "periodic", 3, 0, 5,
                         [(10.0, 1.0), (9.0, 2.0)], [(11.0, 1.0)])
    batch = builder.cut(77)
    row = [column[0] for column in batch.tables["book_snapshots"]]
    assert row == ["okx", "futures", "ETH/USDT", "periodic", 3, 0, 5, [10.0, 9.0], [1.0, 2.0],
                   [11.0], [1.0], 77, 0]

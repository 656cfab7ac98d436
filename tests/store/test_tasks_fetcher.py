"""The task fetcher as a running Component on a real SQLite file and a real
MariaDB: rows added, removed and edited reach the sink at run time; bad rows
are reported by id and skipped; a database outage keeps tasks running with
degraded health and recovers; capacity and priority bound what it claims."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.config import Config
from engine.lifecycle import Component
from engine.store import leases, tasktables
from engine.store.migrations import available, migrate
from engine.store.taskdb import TaskDb
from engine.store.tasks import TaskFetcher
from tests.store.test_taskdb_fixtures import (
    RecordingSink,
    mysql_config,
    open_db,
    scratch_database,
    sqlite_config,
)
from tests.support.eventually import eventually
from tests.support.servers import MariaDbServer

LEASE_S = 3.0


class Rig:
    """A migrated database, a handle on it for the test, and fetchers to start."""

    def __init__(self, config: Config, server: MariaDbServer | None) -> None:
        self.config, self.server = config, server
        self.db = open_db(config, server)
        migrate(self.db)
        self.fetchers: list[TaskFetcher] = []

    def fetcher(self, daemon_id: str = "d1", sink: RecordingSink | None = None, **kwargs) -> TaskFetcher:
        fetcher = TaskFetcher(self.config, daemon_id, sink or RecordingSink(),
                              db=open_db(self.config, self.server), lease_s=LEASE_S, **kwargs)
        self.fetchers.append(fetcher)
        fetcher.start()
        return fetcher

    def close(self) -> None:
        for fetcher in self.fetchers:
            fetcher.stop(3.0)
        self.db.close()


@pytest.fixture(params=["sqlite", "mysql"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    if request.param == "sqlite":
        rig = Rig(sqlite_config(tmp_path), None)
    else:
        server = request.getfixturevalue("mariadb")
        rig = Rig(mysql_config(server, scratch_database(server), tmp_path), server)
    yield rig
    rig.close()


def sink_of(fetcher: TaskFetcher) -> RecordingSink:
    assert isinstance(fetcher.sink, RecordingSink)
    return fetcher.sink


def test_fetcher_is_a_component_named_task_db(rig: Rig) -> None:
    fetcher = TaskFetcher(rig.config, "d1", RecordingSink(), db=open_db(rig.config, rig.server))
    assert isinstance(fetcher, Component) and fetcher.name == "task-db"
    assert fetcher.health()[0].ok is False  # not started


def test_fetcher_applies_added_removed_and_changed_rows_at_run_time(rig: Rig) -> None:
    btc = tasktables.add_monitoring(rig.db, "binance", "BTC/USDT", depth=20)
    eth = tasktables.add_monitoring(rig.db, "okx", "ETH/USDT", market="futures", depth=50)
    fetcher = rig.fetcher()
    sink = sink_of(fetcher)
    eventually(lambda: sink.ids() == {btc, eth})

    sol = tasktables.add_monitoring(rig.db, "bybit", "SOL/USDT")  # new pair
    eventually(lambda: sink.ids() == {btc, eth, sol})
    tasktables.set_enabled(rig.db, "MONITORING", [eth], False)  # removed pair
    eventually(lambda: sink.ids() == {btc, sol})
    tasktables.set_monitoring(rig.db, btc, depth=200)  # changed depth
    eventually(lambda: sink.depth(btc) == 200)
    tasktables.delete(rig.db, "MONITORING", [sol])  # deleted row
    eventually(lambda: sink.ids() == {btc})

    with sink.lock:
        calls = list(sink.calls)
    assert ([], [], [btc]) in calls and ([], [eth], []) in calls and ([], [sol], []) in calls
    status = fetcher.status()
    assert status["task_ids"] == [btc] and status["tasks"][0]["depth"] == 200
    assert status["state"] == "running" and status["schema_version"] == len(available("sqlite"))
    assert fetcher.health()[0].ok
    assert {lease.task_id for lease in leases.leases(rig.db, leases.MONITORING)} == {btc}


def test_bad_rows_are_reported_by_id_and_skipped_never_fatal(rig: Rig) -> None:
    good = tasktables.add_monitoring(rig.db, "binance", "BTC/USDT")
    unknown = rig.db.insert("INSERT INTO MONITORING (EXCHANGE_ID, TRADE_PAIR) VALUES ('nyse', 'BTC/USDT')")
    malformed = rig.db.insert("INSERT INTO MONITORING (EXCHANGE_ID, TRADE_PAIR) VALUES ('okx', 'BTCUSDT')")
    too_deep = rig.db.insert(
        "INSERT INTO MONITORING (EXCHANGE_ID, TRADE_PAIR, ORDERBOOK_DEPTH) VALUES ('okx', 'A/B', 0)")
    # MariaDB's JSON column rejects malformed text itself; a non-object is still ours to catch.
    params = "{not json" if rig.db.dialect.name == "sqlite" else "[1, 2, 3]"
    bad_trade = rig.db.insert("INSERT INTO TRADE (EXCHANGE_ID, TRADE_PAIR, STRATEGY_ID, STRATEGY_PARAMS)"
                              " VALUES ('okx', 'ETH/USDT', 'grid', ?)", (params,))
    good_trade = tasktables.add_trade(rig.db, "binance", "BTC/USDT", "grid", {"levels": 10})
    fetcher = rig.fetcher()
    eventually(lambda: sink_of(fetcher).ids() == {good})

    reasons = {(b["table"], b["id"]): b["reason"] for b in fetcher.status()["bad_rows"]}
    assert "unknown exchange 'nyse'" in reasons[("MONITORING", unknown)]
    assert "malformed pair 'BTCUSDT'" in reasons[("MONITORING", malformed)]
    assert "depth 0" in reasons[("MONITORING", too_deep)]
    assert "JSON params" in reasons[("TRADE", bad_trade)]
    health = {h.component: h for h in fetcher.health()}
    assert health["task-db"].ok and health["task-db.rows"].ok
    assert f"MONITORING#{unknown}" in health["task-db.rows"].reason
    assert [t.id for t in fetcher.trade_tasks()] == [good_trade]
    assert fetcher.trade_tasks()[0].params == {"levels": 10}

    rig.db.execute("UPDATE MONITORING SET TRADE_PAIR = 'BTC/USDC' WHERE ID = ?", (malformed,))  # fixed
    eventually(lambda: sink_of(fetcher).ids() == {good, malformed})


def test_capacity_takes_highest_priority_first_and_a_second_daemon_the_rest(rig: Rig) -> None:
    low = tasktables.add_monitoring(rig.db, "binance", "BTC/USDT", priority=1)
    high = tasktables.add_monitoring(rig.db, "binance", "ETH/USDT", priority=9)
    mid = tasktables.add_monitoring(rig.db, "binance", "SOL/USDT", priority=5)
    first = rig.fetcher("d1", capacity=2)
    eventually(lambda: sink_of(first).ids() == {high, mid})
    second = rig.fetcher("d2", capacity=2)
    eventually(lambda: sink_of(second).ids() == {low})
    urgent = tasktables.add_monitoring(rig.db, "okx", "BTC/USDT", priority=50)
    eventually(lambda: sink_of(second).ids() == {low, urgent})  # d1 is full; d2 has room
    assert sink_of(first).ids() == {high, mid}


def test_stop_releases_leases_so_another_daemon_takes_over_at_once(rig: Rig) -> None:
    ids = {tasktables.add_monitoring(rig.db, "binance", pair) for pair in ("BTC/USDT", "ETH/USDT")}
    first = rig.fetcher("d1")
    eventually(lambda: sink_of(first).ids() == ids)
    second = rig.fetcher("d2")
    first.stop(3.0)
    assert leases.held(rig.db, leases.MONITORING, "d1") == set()
    eventually(lambda: sink_of(second).ids() == ids, timeout=LEASE_S - 0.5)  # well before a lapse


def test_daemon_heartbeat_is_recorded(rig: Rig) -> None:
    rig.fetcher("d7", capacity=3)
    row = eventually(lambda: [d for d in leases.daemons(rig.db) if d["daemon_id"] == "d7"])[0]
    assert row["capacity"] == 3 and row["heartbeat_age_s"] < LEASE_S


# -- outages (a private MariaDB we can stop) -------------------------------------

@pytest.fixture
def private_rig(mariadb_factory: Callable[[], MariaDbServer], tmp_path: Path) -> Iterator[Rig]:
    server = mariadb_factory()
    rig = Rig(mysql_config(server, scratch_database(server), tmp_path), server)
    yield rig
    rig.close()


def test_database_outage_keeps_tasks_running_degrades_health_then_recovers(private_rig: Rig) -> None:
    rig = private_rig
    assert rig.server is not None
    ids = {tasktables.add_monitoring(rig.db, "binance", pair) for pair in ("BTC/USDT", "ETH/USDT")}
    fetcher = rig.fetcher()
    sink = sink_of(fetcher)
    eventually(lambda: sink.ids() == ids)
    rig.db.close()

    rig.server.stop()
    health = eventually(lambda: [h for h in fetcher.health() if h.component == "task-db" and not h.ok])[0]
    assert "task db failing for" in health.reason and "keeping 2 tasks running" in health.reason
    assert "TaskDbError" in health.reason and "next retry in" in health.reason
    assert fetcher.status()["state"] == "degraded" and fetcher.status()["task_ids"] == sorted(ids)
    calls_during_outage = len(sink.calls)
    eventually(lambda: fetcher.status()["error"] and "attempts" in fetcher.health()[0].reason)
    assert sink.ids() == ids and len(sink.calls) == calls_during_outage  # nothing stopped

    rig.server.start()
    eventually(lambda: fetcher.health()[0].ok, timeout=30)
    assert sink.ids() == ids
    new = tasktables.add_monitoring(rig.db, "okx", "SOL/USDT")  # and it polls again
    eventually(lambda: sink.ids() == ids | {new})


def test_database_down_at_start_starts_degraded_and_catches_up(private_rig: Rig) -> None:
    rig = private_rig
    assert rig.server is not None
    task = tasktables.add_monitoring(rig.db, "binance", "BTC/USDT")
    rig.db.close()
    rig.server.stop()
    fetcher = rig.fetcher()  # does not raise
    assert not fetcher.health()[0].ok and sink_of(fetcher).ids() == set()
    rig.server.start()
    eventually(lambda: sink_of(fetcher).ids() == {task}, timeout=30)
    assert fetcher.health()[0].ok


def test_sqlite_file_lives_in_the_data_dir(tmp_path: Path) -> None:
    config = sqlite_config(tmp_path / "data")
    db = TaskDb.from_config(config)
    migrate(db)
    db.close()
    assert (tmp_path / "data" / "tasks.sqlite").is_file()

"""Leases on a real MariaDB (and the same code on SQLite): a task is won by
exactly one of many racing daemons, a live lease is never taken, a lapsed
one is, renewal keeps what is still ours, and every time is the database's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.config import Config
from engine.store import leases
from engine.store.migrations import migrate
from engine.store.taskdb import TaskDb, TaskDbContention
from tests.store.test_taskdb_fixtures import mysql_config, open_db, scratch_database, sqlite_config
from tests.support.eventually import eventually
from tests.support.servers import MariaDbServer

KIND = leases.MONITORING


class Handles:
    """One migrated database; ``open()`` gives each simulated daemon its own connection."""

    def __init__(self, config: Config, server: MariaDbServer | None) -> None:
        self.config, self.server = config, server
        self.opened: list[TaskDb] = []
        self.db = self.open()
        migrate(self.db)

    def open(self) -> TaskDb:
        db = open_db(self.config, self.server)
        self.opened.append(db)
        return db


@pytest.fixture(params=["sqlite", "mysql"])
def handles(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Handles]:
    if request.param == "sqlite":
        h = Handles(sqlite_config(tmp_path), None)
    else:
        server = request.getfixturevalue("mariadb")
        h = Handles(mysql_config(server, scratch_database(server), tmp_path), server)
    yield h
    for db in h.opened:
        db.close()


def claim(db: TaskDb, daemon: str, ids: list[int], room: int = 100, lease_ms: int = 60_000) -> list[int]:
    with db.transaction():
        return leases.claim(db, KIND, daemon, ids, room, lease_ms)


def test_racing_daemons_each_task_won_by_exactly_one(handles: Handles) -> None:
    ids = list(range(1, 41))
    won: dict[str, list[int]] = {}
    start = threading.Barrier(5)

    def daemon(name: str) -> None:
        db = handles.open()
        mine: list[int] = []
        start.wait()
        while len(set(mine)) < len(ids):  # retry after a collision, as the fetcher does
            try:
                mine += claim(db, name, [i for i in ids if i not in mine])
                break
            except TaskDbContention:
                time.sleep(0.05)
        won[name] = mine

    threads = [threading.Thread(target=daemon, args=(f"d{n}",)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [i for mine in won.values() for i in mine]
    assert sorted(every) == ids  # each won once, none lost
    assert {lease.task_id: lease.daemon_id for lease in leases.leases(handles.db, KIND)} == \
        {i: name for name, mine in won.items() for i in mine}


def test_claim_respects_room_and_the_callers_order(handles: Handles) -> None:
    assert claim(handles.db, "d1", [5, 3, 9, 1], room=2) == [5, 3]
    assert claim(handles.db, "d2", [5, 3, 9, 1], room=5) == [9, 1]


def test_live_lease_is_never_taken_lapsed_one_is(handles: Handles) -> None:
    first, second = handles.db, handles.open()
    assert claim(first, "d1", [1, 2], lease_ms=1500) == [1, 2]
    assert claim(second, "d2", [1, 2]) == []
    with first.transaction():
        assert leases.renew(first, KIND, "d1", 60_000) == {1, 2}
    with first.transaction():
        leases.release(first, KIND, "d1", [2])  # 1 stays renewed, 2 is free now
    assert claim(second, "d2", [1, 2]) == [2]
    first.execute("UPDATE TASK_LEASES SET EXPIRES_MS = {now_ms} + 300 WHERE TASK_ID = 1")
    assert claim(second, "d2", [1]) == []
    assert eventually(lambda: claim(second, "d2", [1]), timeout=5) == [1]
    with first.transaction():
        assert leases.renew(first, KIND, "d1", 60_000) == set()  # taken over: gone from d1


def test_renew_keeps_an_own_lapsed_lease_nobody_took(handles: Handles) -> None:
    assert claim(handles.db, "d1", [4], lease_ms=1) == [4]
    eventually(lambda: handles.db.query("SELECT 1 FROM TASK_LEASES WHERE EXPIRES_MS <= {now_ms}"))
    with handles.db.transaction():
        assert leases.renew(handles.db, KIND, "d1", 60_000) == {4}
    assert claim(handles.open(), "d2", [4]) == []


def test_lease_times_are_the_database_clock(handles: Handles) -> None:
    before = handles.db.now_ms()
    claim(handles.db, "d1", [1], lease_ms=12_345)
    after = handles.db.now_ms()
    (lease,) = leases.leases(handles.db, KIND)
    assert before <= lease.claimed_ms <= after
    assert lease.expires_ms - lease.claimed_ms == 12_345


def test_kinds_are_leased_independently(handles: Handles) -> None:
    assert claim(handles.db, "d1", [1]) == [1]
    with handles.db.transaction():
        assert leases.claim(handles.db, leases.TRADE, "d2", [1], 1, 60_000) == [1]
    assert leases.held(handles.db, leases.TRADE, "d2") == {1}
    assert leases.held(handles.db, KIND, "d1") == {1}


def test_release_all_frees_one_kind_or_every_kind_of_one_daemon(handles: Handles) -> None:
    claim(handles.db, "d1", [1, 2])
    claim(handles.db, "d2", [3])
    with handles.db.transaction():
        leases.claim(handles.db, leases.TRADE, "d1", [7], 1, 60_000)
    assert leases.release_all(handles.db, "d1", KIND) == 2
    assert [(lease.kind, lease.task_id) for lease in leases.leases(handles.db)] == [(KIND, 3), ("TRADE", 7)]
    assert leases.release_all(handles.db, "d1") == 1
    assert [(lease.task_id, lease.daemon_id) for lease in leases.leases(handles.db)] == [(3, "d2")]


def test_long_lapsed_leases_are_forgotten(handles: Handles) -> None:
    claim(handles.db, "gone", [1], lease_ms=1000)
    claim(handles.db, "alive", [2])
    handles.db.execute("UPDATE TASK_LEASES SET EXPIRES_MS = {now_ms} - 100000 WHERE TASK_ID = 1")
    assert leases.forget_lapsed(handles.db, KIND, lease_ms=1000) == 1
    assert [lease.task_id for lease in leases.leases(handles.db, KIND)] == [2]


def test_heartbeat_inserts_then_updates_one_row(handles: Handles) -> None:
    leases.heartbeat(handles.db, "d1", 10)
    leases.heartbeat(handles.db, "d1", 12)
    claim(handles.db, "d1", [1, 2])
    (row,) = leases.daemons(handles.db)
    assert (row["daemon_id"], row["capacity"], row["live_leases"]) == ("d1", 12, 2)

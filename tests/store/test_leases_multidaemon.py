"""Three daemons on one MariaDB, as real processes (``python -m
engine.store.taskrunner``): every enabled task runs on exactly one of them;
SIGKILL one and its tasks run elsewhere within the lease time, not before
its lease lapsed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.store import leases, tasktables
from engine.store.migrations import migrate
from engine.store.taskdb import TaskDb
from tests.store.test_taskdb_fixtures import PASSWORD_ENV, mysql_config, open_db, scratch_database
from tests.support.eventually import eventually
from tests.support.servers import MariaDbServer

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 3.0
POLL_S = 0.3  # cycle = min(poll, lease / 3) = 0.3 s
CAPACITY = 5  # 9 tasks: any two survivors can hold them all
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT", "DOGE/USDT", "BNB/USDT",
         "LTC/USDT", "DOT/USDT"]


class Daemon:
    def __init__(self, name: str, config_path: Path, report: Path, env: dict[str, str]) -> None:
        self.name, self.report = name, report
        self.log = report.with_suffix(".log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "engine.store.taskrunner", "--config", str(config_path),
             "--daemon-id", name, "--report", str(report), "--lease-s", str(LEASE_S),
             "--capacity", str(CAPACITY)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def state(self) -> dict[str, Any]:
        assert self.process.poll() is None, f"{self.name} exited with {self.process.returncode}"
        return json.loads(self.report.read_text())

    def tasks(self) -> set[int]:
        return set(self.state()["task_ids"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()


@pytest.fixture
def cluster(mariadb: MariaDbServer, tmp_path: Path) -> Iterator[tuple[list[Daemon], set[int], TaskDb]]:
    database = scratch_database(mariadb, "cluster")
    config = mysql_config(mariadb, database, tmp_path, poll_s=POLL_S)
    db = open_db(config, mariadb)
    migrate(db)
    enabled = {tasktables.add_monitoring(db, "binance", pair, priority=n % 3) for n, pair in enumerate(PAIRS)}
    tasktables.add_monitoring(db, "okx", "BTC/USDT", enabled=False)
    db.execute("INSERT INTO MONITORING (EXCHANGE_ID, TRADE_PAIR) VALUES ('okx', 'not a pair')")
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump({
        "daemon": {"data_dir": str(tmp_path / "data"), "log_level": "WARNING"},
        "storage": {"tasks": {"backend": "mysql", "host": mariadb.host, "port": mariadb.port,
                              "user": mariadb.user, "database": database, "password_env": PASSWORD_ENV,
                              "poll_s": POLL_S}}}))
    env = {**os.environ, PASSWORD_ENV: mariadb.password}
    daemons = [Daemon(f"host{n}", config_path, tmp_path / f"host{n}.json", env) for n in range(3)]
    try:
        yield daemons, enabled, db
    finally:
        for daemon in daemons:
            daemon.stop()
        db.close()


def exactly_once(daemons: list[Daemon], enabled: set[int]) -> bool:
    held = [daemon.tasks() for daemon in daemons]
    every = [task for tasks in held for task in tasks]
    assert len(every) == len(set(every)), f"a task runs twice: {held}"
    return set(every) == enabled


def test_three_daemons_run_each_task_once_and_survive_a_sigkill(
        cluster: tuple[list[Daemon], set[int], TaskDb]) -> None:
    daemons, enabled, db = cluster
    eventually(lambda: exactly_once(daemons, enabled), timeout=30, ignoring=(AssertionError, OSError, ValueError))
    # Stable: a few more cycles change nothing and never double-run a task.
    deadline = time.monotonic() + 3 * POLL_S
    while time.monotonic() < deadline:
        assert exactly_once(daemons, enabled)
        time.sleep(0.05)
    for daemon in daemons:
        state = daemon.state()
        assert state["status"]["task_ids"] == state["task_ids"]  # what /status will show
        bad = {(b["table"], b["id"]) for b in state["status"]["bad_rows"]}
        assert len(bad) == 1 and all(h["ok"] for h in state["health"])

    victim = max(daemons, key=lambda d: len(d.tasks()))
    orphaned = victim.tasks()
    survivors = [d for d in daemons if d is not victim]
    # Its leases' expiry by the database clock, read just before the kill (a
    # renewal in between only moves the real expiry later).
    expiry = {lease.task_id: lease.expires_ms for lease in leases.leases(db, leases.MONITORING)
              if lease.daemon_id == victim.name}
    assert set(expiry) == orphaned
    victim.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    victim.process.wait(5)

    def taken_over() -> bool:
        return exactly_once(survivors, enabled)

    eventually(taken_over, timeout=LEASE_S + 10, interval=0.05, ignoring=(OSError, ValueError))
    took = time.monotonic() - killed_at
    assert took <= LEASE_S + 3.0, took  # soon after the lapse ...
    claimed = {lease.task_id: lease for lease in leases.leases(db, leases.MONITORING)}
    for task_id in orphaned:  # ... and never before it, by the one clock all daemons share
        assert claimed[task_id].daemon_id != victim.name
        assert claimed[task_id].claimed_ms >= expiry[task_id], (task_id, claimed[task_id], expiry[task_id])
    for _ in range(int(2 * LEASE_S / 0.1)):  # and it stays that way
        assert exactly_once(survivors, enabled)
        time.sleep(0.1)

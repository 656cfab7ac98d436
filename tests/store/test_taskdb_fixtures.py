"""Helpers shared by the task-database tests (no tests here): scratch MariaDB
databases, configs for either backend, and a sink that records what the
fetcher asked it to run. Each test gets its own database or SQLite file."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import mysql.connector

from engine import config as config_mod
from engine.config import Config
from engine.store.taskdb import TaskDb
from engine.store.taskrows import MonitorTask
from tests.support.servers import MariaDbServer

PASSWORD_ENV = "ENGINE_TEST_TASKDB_PASSWORD"


def scratch_database(server: MariaDbServer, prefix: str = "tasks") -> str:
    """A new empty database on ``server``; its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    connection = mysql.connector.connect(**server.connect_kwargs())
    try:
        connection.cursor().execute(f"CREATE DATABASE `{name}`")
    finally:
        connection.close()
    return name


def mysql_config(server: MariaDbServer, database: str, data_dir: Path, **tasks: Any) -> Config:
    return config_mod.parse({
        "daemon": {"data_dir": str(data_dir)},
        "storage": {"tasks": {"backend": "mysql", "host": server.host, "port": server.port,
                              "user": server.user, "database": database, "password_env": PASSWORD_ENV,
                              "poll_s": 0.2, **tasks}},
    })


def sqlite_config(data_dir: Path, **tasks: Any) -> Config:
    return config_mod.parse({"daemon": {"data_dir": str(data_dir)},
                             "storage": {"tasks": {"backend": "sqlite", "poll_s": 0.2, **tasks}}})


def open_db(config: Config, server: MariaDbServer | None = None) -> TaskDb:
    """A TaskDb for ``config`` with the test server's password (no env needed)."""
    password = server.password if server is not None else ""
    return TaskDb(config.storage.tasks, config.daemon.data_dir, password=password, timeout_s=3.0)


class RecordingSink:
    """A TaskSink that keeps what runs and every call it got, thread-safely."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: dict[int, MonitorTask] = {}
        self.calls: list[tuple[list[int], list[int], list[int]]] = []

    def apply_tasks(self, added: list[MonitorTask], removed: list[MonitorTask],
                    changed: list[MonitorTask]) -> None:
        with self.lock:
            for task in removed:
                assert task.id in self.running, f"removed task {task.id} that never ran"
                del self.running[task.id]
            for task in added:
                assert task.id not in self.running, f"added task {task.id} twice"
                self.running[task.id] = task
            for task in changed:
                assert task.id in self.running, f"changed task {task.id} that never ran"
                self.running[task.id] = task
            self.calls.append(([t.id for t in added], [t.id for t in removed], [t.id for t in changed]))

    def ids(self) -> set[int]:
        with self.lock:
            return set(self.running)

    def depth(self, task_id: int) -> int:
        with self.lock:
            return self.running[task_id].depth

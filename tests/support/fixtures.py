"""Pytest plugin: private database servers for the tests. Load it with
``pytest_plugins = ["tests.support.fixtures"]`` in the top conftest.py (or
``-p tests.support.fixtures``). Starts servers only when a test asks for one.

Fixtures:
- ``mariadb`` (session): a started ``MariaDbServer``; ``.connect_kwargs()``
  for mysql.connector. Shared by the tests of one session (one per xdist
  worker), so tests use their own tables or scratch databases.
- ``clickhouse`` (session): a started ``ClickHouseServer``; ``.connect_kwargs()``
  for clickhouse_driver.Client. A test that stops or kills it must
  ``start()`` it again (start is a no-op when running).
- ``mariadb_factory`` / ``clickhouse_factory`` (function): call to get another
  started private server in the test's tmp dir, stopped at teardown; for
  tests that kill or restart a server, so the shared one stays intact.
- ``prometheus_factory`` (function): call with ``targets=[...]`` (and
  ``rule_files=[...]``) to get a started private Prometheus scraping them.
- ``chdb_session`` (function): a ``chdb.session.Session`` on the test's tmp
  dir, closed at teardown (chdb allows one open data path per process).

A missing server binary (or chdb) skips the test with the binary and the
Debian package to install; with ``CI=true`` in the environment it fails it
instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import pytest

from tests.support.process import ServerBinaryMissing, ServerProcess
from tests.support.prometheus import PrometheusServer
from tests.support.servers import ClickHouseServer, MariaDbServer

ServerT = TypeVar("ServerT", bound=ServerProcess)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test for a missing prerequisite, or fail it under CI=true."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing prerequisite fails the run)", pytrace=False)
    pytest.skip(reason)


def create_server(server_class: type[ServerT], base_dir: Path) -> ServerT:
    """An unstarted server, or a skip (a failure under CI) if its binary is missing."""
    try:
        return server_class(base_dir)
    except ServerBinaryMissing as missing:
        reason = str(missing)
    unavailable(reason)  # outside the except: no chained traceback in the report


def _started(server_class: type[ServerT], base_dir: Path) -> Iterator[ServerT]:
    server = create_server(server_class, base_dir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDbServer]:
    yield from _started(MariaDbServer, tmp_path_factory.mktemp("mariadb"))


@pytest.fixture(scope="session")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    yield from _started(ClickHouseServer, tmp_path_factory.mktemp("clickhouse"))


def _factory(server_class: type[ServerT], base_dir: Path) -> Iterator[Callable[[], ServerT]]:
    servers: list[ServerT] = []

    def make() -> ServerT:
        server = create_server(server_class, base_dir / f"{server_class.name}{len(servers)}")
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def mariadb_factory(tmp_path: Path) -> Iterator[Callable[[], MariaDbServer]]:
    yield from _factory(MariaDbServer, tmp_path)


@pytest.fixture
def clickhouse_factory(tmp_path: Path) -> Iterator[Callable[[], ClickHouseServer]]:
    yield from _factory(ClickHouseServer, tmp_path)


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[Callable[..., PrometheusServer]]:
    servers: list[PrometheusServer] = []

    def make(**options: Any) -> PrometheusServer:
        base = tmp_path / f"prometheus{len(servers)}"
        try:
            server = PrometheusServer(base, **options)
        except ServerBinaryMissing as missing:
            unavailable(str(missing))
        servers.append(server)
        server.start()
        return server

    try:
        yield make
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def chdb_session(tmp_path: Path) -> Iterator[Any]:
    try:
        from chdb.session import Session
    except ImportError:
        unavailable("Python package chdb is not installed: pip install -e '.[test]'")
    session = Session(str(tmp_path / "chdb"))
    try:
        yield session
    finally:
        session.close()

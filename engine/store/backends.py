"""The two ways to reach ClickHouse: chdb (embedded, in this process) and a
server over the native protocol (clickhouse-driver, columnar inserts). Both
run one SQL text and insert columns; neither knows the history schema.

chdb allows one data path per process: the backend owns the only Session and
serializes every call on it. The server backend keeps one connection for the
writer thread and one for queries (a clickhouse-driver Client is not
thread-safe); a failed call drops the connection and the next call reconnects.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson
from loguru import logger


class StoreUnavailable(RuntimeError):
    """The store cannot be reached (down, refusing, timed out); retry later."""


class StoreError(RuntimeError):
    """The store answered with an error (bad SQL, schema mismatch): a bug or a
    misconfiguration, not an outage. Retrying may not help."""


Rows = list[tuple[Any, ...]]


class Backend(Protocol):
    description: str

    def connect(self) -> None:
        """Make sure a connection exists (raises StoreUnavailable)."""

    def execute(self, sql: str, *, writer: bool = False) -> Rows: ...

    def insert(self, table: str, columns: Sequence[str], data: list[list]) -> None:
        """One INSERT of ``data`` (columns, in ``columns`` order) into ``table``."""

    def trim_memory(self) -> None: ...

    def close(self) -> None: ...


class ChdbBackend:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.description = f"chdb:{path}"
        self._session: Any = None
        self._lock = threading.Lock()  # one Session per process, one call at a time
        self._purge_failed = False

    def connect(self) -> None:
        with self._lock:
            if self._session is None:
                from chdb.session import Session  # heavy; only this backend needs it

                self.path.mkdir(parents=True, exist_ok=True)
                self._session = Session(str(self.path))

    def execute(self, sql: str, *, writer: bool = False) -> Rows:
        self.connect()
        with self._lock:
            try:
                result = self._session.query(sql, "JSONCompact")
            except Exception as exc:  # chdb raises plain RuntimeErrors
                raise StoreError(f"chdb: {exc}") from exc
            raw = result.bytes()
        return _rows(raw)

    def insert(self, table: str, columns: Sequence[str], data: list[list]) -> None:
        self.connect()
        payload = orjson.dumps(data)
        with self._lock:
            try:
                with self._session.send_insert(f"INSERT INTO {table} ({', '.join(columns)})",
                                               "JSONCompactColumns") as inserter:
                    inserter.append(payload)
                    inserter.finish()
            except Exception as exc:
                raise StoreError(f"chdb insert into {table}: {exc}") from exc

    def trim_memory(self) -> None:
        """Hands memory the embedded engine freed back to the OS (its allocator
        keeps it otherwise: ~60 MB after a few minutes of inserts)."""
        try:
            self.execute("SYSTEM JEMALLOC PURGE")
        except StoreError as exc:  # an older chdb without the command: harmless, said once
            if not self._purge_failed:
                self._purge_failed = True
                logger.bind(component="history").info("chdb memory purge unavailable: {}", exc)

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None


def _rows(raw: bytes) -> Rows:
    """JSONCompact output as tuples; 64-bit integers arrive quoted."""
    if not raw.strip():
        return []
    result = orjson.loads(raw)
    kinds = []
    for column in result["meta"]:
        name = column["type"].removeprefix("Nullable(").lstrip("U")
        kinds.append(int if name.startswith("Int") else float if name.startswith("Float") else None)
    return [tuple(value if kind is None or value is None else kind(value)
                  for value, kind in zip(row, kinds)) for row in result["data"]]


class ServerBackend:
    def __init__(self, host: str, port: int, user: str, password: str, *,
                 connect_timeout_s: float, timeout_s: float) -> None:
        self.description = f"clickhouse://{user}@{host}:{port}"
        self._kwargs = {"host": host, "port": port, "user": user, "password": password,
                        "database": "default", "connect_timeout": connect_timeout_s,
                        "send_receive_timeout": timeout_s, "sync_request_timeout": timeout_s}
        # Writer and reader each get a connection and a lock: inserts never
        # wait behind an API query, and the reverse.
        self._clients: dict[bool, Any] = {}
        self._locks = {True: threading.Lock(), False: threading.Lock()}

    def _client(self, writer: bool) -> Any:
        client = self._clients.get(writer)
        if client is None:
            from clickhouse_driver import Client  # only this backend needs it

            client = self._clients[writer] = Client(**self._kwargs)
        return client

    def connect(self) -> None:
        with self._locks[True]:
            self._call(True, lambda c: c.execute("SELECT 1"))

    def execute(self, sql: str, *, writer: bool = False) -> Rows:
        with self._locks[writer]:
            return list(self._call(writer, lambda c: c.execute(sql)))

    def insert(self, table: str, columns: Sequence[str], data: list[list]) -> None:
        query = f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
        with self._locks[True]:
            self._call(True, lambda c: c.execute(query, data, columnar=True))

    def _call(self, writer: bool, action: Any) -> Any:
        from clickhouse_driver.errors import Error, NetworkError, ServerException

        client = self._client(writer)
        try:
            return action(client)
        except ServerException as exc:
            client.disconnect()
            raise StoreError(f"{self.description}: {exc.message.splitlines()[0]}") from exc
        except (Error, NetworkError, OSError, EOFError) as exc:
            client.disconnect()
            raise StoreUnavailable(f"{self.description}: {type(exc).__name__}: {exc}") from exc

    def trim_memory(self) -> None:
        """Nothing to trim: the server's memory is not ours."""

    def close(self) -> None:
        for writer, client in list(self._clients.items()):
            with self._locks[writer]:
                client.disconnect()
        self._clients.clear()

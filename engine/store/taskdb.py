"""The task database connection: one SQLite file or one MySQL/MariaDB server
behind the same small interface (execute, query, transaction), with the two
dialects' differences named in one place. Knows no table; never retries."""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.config import Config, Secret
from engine.config_storage import TaskDbConfig

# Connect, read and write timeout for MySQL, busy wait for SQLite. Short: a
# poll that hangs on a dead server delays the outage report by this much;
# long enough for a loaded server to answer a handful of small queries.
DEFAULT_TIMEOUT_S = 10.0
# How long a claim waits on a row another daemon has locked before giving up
# with a contention error (it retries next cycle). InnoDB's default is 50 s.
LOCK_WAIT_S = 5
# MySQL error numbers that mean "another transaction was in the way": the
# statement failed, the connection is fine.
_MYSQL_CONTENTION = {1205, 1213}  # lock wait timeout, deadlock
# MySQL error numbers that leave the connection usable (bad SQL or data).
_MYSQL_STATEMENT_ERRORS = range(1000, 2000)


class TaskDbError(RuntimeError):
    """Talking to the task database failed: unreachable, connection lost, or a
    statement rejected. The message names the database (never the password)."""


class TaskDbContention(TaskDbError):
    """A transaction collided with another daemon's (deadlock, lock wait,
    SQLite busy). Nothing is wrong; try again later."""


@dataclass(frozen=True)
class Dialect:
    name: str
    param: str  # placeholder that replaces "?" in our SQL
    now_ms: str  # the database server's clock as epoch milliseconds
    insert_ignore: str  # INSERT that skips a row whose key exists


SQLITE = Dialect("sqlite", "?", "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
                 "INSERT OR IGNORE")
MYSQL = Dialect("mysql", "%s", "CAST(UNIX_TIMESTAMP(CURRENT_TIMESTAMP(3)) * 1000 AS SIGNED)",
                "INSERT IGNORE")


class TaskDb:
    """One connection, opened lazily and dropped after a connection error so
    the next call reconnects. Not thread-safe: one owner thread at a time.

    SQL is written once with ``?`` placeholders and ``{now_ms}`` for the
    server clock; ``_sql`` turns it into the connected dialect."""

    def __init__(self, settings: TaskDbConfig, data_dir: str | Path = ".", *,
                 password: str = "", timeout_s: float | None = None) -> None:
        self.settings = settings
        self.dialect = SQLITE if settings.backend == "sqlite" else MYSQL
        self.path = Path(data_dir) / settings.path
        self.password = password
        self.timeout_s = float(timeout_s if timeout_s else getattr(settings, "timeout_s", DEFAULT_TIMEOUT_S))
        self._conn: Any = None

    def sibling(self) -> TaskDb:
        """A second, unconnected handle on the same database (for another thread)."""
        clone = copy.copy(self)
        clone._conn = None
        return clone

    @classmethod
    def from_config(cls, config: Config) -> TaskDb:
        settings = config.storage.tasks
        password = Secret(settings.password_env).get() if settings.backend == "mysql" else ""
        return cls(settings, config.daemon.data_dir, password=password)

    @property
    def where(self) -> str:
        """The database for messages: ``sqlite:PATH`` or ``mysql://user@host:port/db``."""
        s = self.settings
        if self.dialect is SQLITE:
            return f"sqlite:{self.path}"
        return f"mysql://{s.user}@{s.host}:{s.port}/{s.database}"

    @property
    def connected(self) -> bool:
        return self._conn is not None

    # ----------------------------------------------------------- connection

    def connect(self) -> None:
        if self._conn is not None:
            return
        try:
            self._conn = self._open_sqlite() if self.dialect is SQLITE else self._open_mysql()
        except (sqlite3.Error, OSError) as e:
            raise TaskDbError(f"cannot open task database {self.where}: {e}") from e
        except Exception as e:
            if not _is_mysql_error(e):
                raise
            raise TaskDbError(f"cannot connect to task database {self.where}: {e}") from e

    def _open_sqlite(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a writer
        # takes the lock up front instead of failing on a lock upgrade.
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")  # readers (tools/tasks.py) never block the daemon
        conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
        return conn

    def _open_mysql(self) -> Any:
        import mysql.connector  # only the mysql backend needs it

        s = self.settings
        timeout = max(1, int(self.timeout_s))
        conn = mysql.connector.connect(
            host=s.host, port=s.port, user=s.user, password=self.password, database=s.database,
            autocommit=True, connection_timeout=timeout, read_timeout=timeout,
            write_timeout=timeout, use_pure=True)
        cursor = conn.cursor()
        # READ COMMITTED: no gap locks, so daemons claiming different rows do
        # not block each other; UTC so TIMESTAMP columns read the same everywhere.
        cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {LOCK_WAIT_S}")
        cursor.execute("SET SESSION time_zone = '+00:00'")
        cursor.close()
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - closing a dead connection may fail; it is gone either way
                pass

    # ----------------------------------------------------------- statements

    def _sql(self, sql: str) -> str:
        sql = sql.replace("{now_ms}", self.dialect.now_ms).replace("{insert_ignore}",
                                                                  self.dialect.insert_ignore)
        return sql.replace("?", self.dialect.param) if self.dialect.param != "?" else sql

    def _run(self, sql: str, params: Sequence[Any]) -> tuple[int, int, list[tuple]]:
        self.connect()
        cursor = None
        try:
            cursor = self._conn.cursor()
            cursor.execute(self._sql(sql), tuple(params))
            rows = cursor.fetchall() if cursor.description else []
            return cursor.rowcount, cursor.lastrowid or 0, [tuple(r) for r in rows]
        except Exception as e:
            raise self._translate(e, sql) from e
        finally:
            try:
                if cursor is not None:
                    cursor.close()
            except Exception:  # noqa: BLE001, S110 - a cursor on a lost connection
                pass

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; the number of rows it changed."""
        return self._run(sql, params)[0]

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one INSERT; the new row's AUTO_INCREMENT id."""
        return self._run(sql, params)[1]

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self._run(sql, params)[2]

    def now_ms(self) -> int:
        """The database server's clock (SQLite: this host's), epoch ms."""
        return int(self.query("SELECT {now_ms}")[0][0])

    @contextmanager
    def transaction(self) -> Iterator[TaskDb]:
        """Commit on success, roll back on any exception (and re-raise it)."""
        self.execute("BEGIN IMMEDIATE" if self.dialect is SQLITE else "START TRANSACTION")
        try:
            yield self
        except BaseException:
            self._rollback()
            raise
        self.execute("COMMIT")

    def _rollback(self) -> None:
        if self._conn is None:
            return
        try:
            self._conn.rollback() if self.dialect is MYSQL else self._conn.execute("ROLLBACK")
        except Exception:  # noqa: BLE001 - rollback after a lost connection: drop it instead
            self.close()

    def table_exists(self, table: str) -> bool:
        if self.dialect is SQLITE:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?"
        else:
            sql = ("SELECT TABLE_NAME FROM information_schema.TABLES"
                   " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?")
        return bool(self.query(sql, (table,)))

    @contextmanager
    def exclusive(self, name: str, wait_s: float = 60.0) -> Iterator[TaskDb]:
        """Hold a database-wide lock (for migrations). SQLite: one write
        transaction (its DDL is transactional). MySQL: a named lock, since its
        DDL commits as it goes."""
        if self.dialect is SQLITE:
            with self.transaction():
                yield self
            return
        lock = f"{self.settings.database}.{name}"[:64]
        got = self.query("SELECT GET_LOCK(?, ?)", (lock, int(wait_s)))
        if not got or got[0][0] != 1:
            raise TaskDbContention(f"{self.where}: lock {lock!r} held by another daemon for {wait_s:.0f}s")
        try:
            yield self
        finally:
            try:
                self.query("SELECT RELEASE_LOCK(?)", (lock,))
            except TaskDbError:
                pass  # a lost connection releases the lock itself

    def _translate(self, error: Exception, sql: str) -> TaskDbError:
        statement = " ".join(sql.split())[:120]
        if isinstance(error, sqlite3.Error):
            text = str(error)
            if "locked" in text or "busy" in text:
                return TaskDbContention(f"{self.where}: {text} ({statement})")
            return TaskDbError(f"{self.where}: {text} ({statement})")
        if not _is_mysql_error(error):
            return TaskDbError(f"{self.where}: {type(error).__name__}: {error} ({statement})")
        errno = getattr(error, "errno", None) or 0
        if errno in _MYSQL_CONTENTION:
            self._rollback()
            return TaskDbContention(f"{self.where}: {error}")
        if errno not in _MYSQL_STATEMENT_ERRORS:
            self.close()  # 2xxx client errors: the connection is gone or unusable
        return TaskDbError(f"{self.where}: {error} ({statement})")


def _is_mysql_error(error: BaseException) -> bool:
    try:
        import mysql.connector
    except ImportError:
        return False
    return isinstance(error, mysql.connector.Error)

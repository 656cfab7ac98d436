"""Private MariaDB and ClickHouse servers for the tests: each in its own temp
dir, on free 127.0.0.1 ports, with a user ``engine`` (password) and a database
``engine``. Never touches a system instance, /etc or /var.

Started by ``tests/support/fixtures.py``; the process lifecycle (ports, wait,
stop, kill, restart) is in ``tests/support/process.py``.

# ClickHouse SQL that works on BOTH the server (Debian's 18.16.1) and chdb (26.x)

Checked against both engines on this machine (``tests/store/test_servers.py``
runs the shared subset on both and compares results).

Works on both:
- DDL: ``CREATE DATABASE IF NOT EXISTS db``;
  ``CREATE TABLE IF NOT EXISTS db.t (venue String, pair String, recv_ns Int64,
  exch_ns Int64, px Float64, qty Float64, side Int8) ENGINE = MergeTree()
  PARTITION BY intDiv(recv_ns, 86400000000000) ORDER BY (venue, pair, recv_ns)``
  (``MergeTree`` with or without ``()``; optional ``PRIMARY KEY`` prefix of the
  ORDER BY; ``SETTINGS index_granularity = 8192``; expressions in ORDER BY).
  ``ReplacingMergeTree(ver)`` (+ ``FINAL``), ``AggregatingMergeTree`` with
  ``-State`` columns via a MATERIALIZED VIEW, ``Memory``, ``Buffer``.
  Column ``DEFAULT``/``MATERIALIZED`` expressions and ``COMMENT``.
  ``DROP TABLE|DATABASE IF EXISTS``, ``TRUNCATE TABLE``, ``RENAME TABLE``,
  ``ALTER TABLE .. ADD COLUMN``, ``.. DROP PARTITION <id>``, ``EXISTS TABLE``,
  ``system.tables``/``system.columns``/``system.parts``.
- Types: Int8..Int64, UInt8..UInt64, Float64, String, Date, DateTime('UTC'),
  Enum8, Decimal64(S), Nullable (not in a sorting key), Array(Float64),
  Tuple, Nested, UUID.
- Timestamps as Int64 nanoseconds (``recv_ns``); day partitions as
  ``intDiv(recv_ns, 86400000000000)`` (partition id = days since epoch) or
  ``toYYYYMMDD(toDateTime(intDiv(recv_ns, 1000000000)))``; seconds to a date:
  ``toDate(toDateTime(intDiv(recv_ns, 1000000000), 'UTC'))``.
- Inserts: ``INSERT INTO t (cols) SELECT ...`` (also ``UNION ALL`` of SELECTs
  and ``FROM numbers(n)``). With clickhouse-driver: ``INSERT INTO t (cols)
  VALUES`` plus rows or ``columnar=True`` data as the second argument.
- Queries: time buckets ``intDiv(recv_ns, 60000000000) * 60000000000 AS
  bucket_ns`` (or ``recv_ns - recv_ns % N``) with ``GROUP BY`` the alias;
  ``argMin(px, recv_ns)`` / ``argMax(px, recv_ns)`` (open/close), ``min``,
  ``max``, ``sum``, ``count()``, ``sumIf``/``countIf``, ``any``/``anyLast``,
  ``quantileExact(q)(x)``, ``uniqExact``, ``groupArray``, ``argMax((a, b), t)``,
  ``count(DISTINCT x)``, ``HAVING``, ``LIMIT n BY k``, ``LIMIT n OFFSET m``,
  ``WITH <scalar> AS name`` (scalar only), ``FROM (subquery)``, ``IN
  (subquery)``, ``JOIN .. ON`` with table aliases, ``UNION ALL``,
  ``WITH TOTALS``, ``NULLS LAST``, ``SELECT .. SETTINGS max_threads = 1``,
  ``OPTIMIZE TABLE t FINAL``, ``toDateTime(sec, 'UTC')``, ``toStartOfMinute``/
  ``Hour``/``Day``, ``toUnixTimestamp``, ``if``/``multiIf``, ``greatest``/``least``.

Only on chdb (18.16 rejects them): ``LowCardinality``, ``DateTime64``,
``CODEC(..)``, ``TTL``, ``SimpleAggregateFunction``, ``Map``, ``Bool``,
``IPv4``, ``fromUnixTimestamp64Nano``, ``toStartOfInterval``, ``now64``, CTEs
``WITH x AS (SELECT ..)``, window functions, ``UNION DISTINCT``,
``DISTINCT ON``, ``ORDER BY .. WITH FILL``, ``ADD COLUMN IF NOT EXISTS``,
``DELETE FROM`` and ``SETTINGS mutations_sync``, query parameters
``{x:Int64}``, several statements in one query.
Only on 18.16 (chdb rejects it): old ``MergeTree(date, (key), 8192)``.

Same syntax, different behaviour:
- clickhouse-driver + 18.16: an INSERT with literal ``VALUES (..)`` in the
  query text HANGS (the old server waits for a data block); pass the rows as
  data, or use INSERT .. SELECT. chdb parses literal VALUES fine.
- ``ALTER TABLE .. DELETE WHERE``: a mutation on both, asynchronous on 18.16
  (rows still visible right after), effectively synchronous on chdb; poll
  ``system.mutations`` (``is_done``) or count with ``eventually()``.
- ``formatDateTime`` ``%M`` is minutes on 18.16 and the month name on modern
  ClickHouse: format time in Python instead.
- ``SHOW CREATE TABLE`` / ``DESCRIBE`` text and column counts differ.
- ``ANY LEFT JOIN (subquery) USING k``: chdb wants an alias for the subquery,
  18.16 fails differently; use ``JOIN .. ON`` with aliases.
- argMin/argMax among equal keys pick an unspecified row on both.
- chdb: one data path per process. While a ``chdb.session.Session(path)`` is
  open, ``chdb.query()`` without that same path fails ("EmbeddedServer
  already initialized with path"); close the session first. Reopening the
  same path later (or another path after close) works, and data persists.

Startup on this machine (2 CPUs, median of 5): MariaDB first start 1.9 s
(mariadb-install-db 0.9-1.4 s, then 0.15-0.2 s to ready), restart 0.2 s,
stop 0.1 s; ClickHouse 18.16 first start 0.12 s, restart (after stop or
SIGKILL) 0.11 s, graceful stop 0.9 s.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from tests.support.process import HOST, ServerProcess, ServerStartError, find_binary, free_port

DEFAULT_USER = "engine"
DEFAULT_PASSWORD = "engine-test-password"
DEFAULT_DATABASE = "engine"
_UNIX_SOCKET_MAX = 100  # sun_path is 108 bytes; keep a margin


def _root_user_option() -> list[str]:
    # mariadbd refuses to run as root unless told to; as any other user it
    # runs as that user and needs no option.
    return ["--user=root"] if os.geteuid() == 0 else []


class MariaDbServer(ServerProcess):
    """mariadbd on a private datadir; ``engine``@127.0.0.1/localhost owns ``engine``."""

    name = "mariadb"
    port_clash_markers = ("Address already in use", "Bind on TCP/IP port")
    # Small redo log and buffer pool: start fast, fit many xdist workers.
    # flush_log_at_trx_commit=2 writes the redo log at each commit without
    # fsync: a killed server loses nothing (the OS keeps the pages), a power
    # cut would; tests kill processes, never the machine.
    _INNODB_OPTIONS = ("--innodb-buffer-pool-size=64M", "--innodb-log-file-size=16M")

    def __init__(self, base_dir: Path, *, user: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD,
                 database: str = DEFAULT_DATABASE, **timeouts: float) -> None:
        self.server_binary = find_binary("mariadbd", "mysqld", package="mariadb-server")
        self.install_binary = find_binary("mariadb-install-db", "mysql_install_db", package="mariadb-server")
        super().__init__(base_dir, **timeouts)
        self.user, self.password, self.database = user, password, database
        self.port = 0
        self.data_dir = self.base_dir / "data"
        self.error_log = self.base_dir / "error.log"
        self.init_file = self.base_dir / "init.sql"
        # Private tmpdir: a starting mariadbd deletes the "#sql*" temp files it
        # finds in its tmpdir, including those of a concurrent bootstrap (a
        # shared /tmp made parallel xdist workers' installs fail at random).
        self.tmp_dir = self.base_dir / "tmp"
        self.socket_path = self.base_dir / "mysqld.sock"
        if len(str(self.socket_path)) > _UNIX_SOCKET_MAX:
            self.socket_path = Path(tempfile.mkdtemp(prefix="mariadb-")) / "mysqld.sock"

    def connect_kwargs(self) -> dict[str, Any]:
        """Arguments for ``mysql.connector.connect(**...)`` over TCP."""
        return {"host": self.host, "port": self.port, "user": self.user,
                "password": self.password, "database": self.database}

    @property
    def url(self) -> str:
        return f"mysql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def _assign_ports(self) -> None:
        self.port = free_port()

    def _log_files(self) -> list[Path]:
        return [self.console_log, self.error_log]

    def _prepare(self) -> None:
        # The init file runs at every server start (so it is idempotent), with
        # the grant tables loaded: mariadb-install-db's bootstrap cannot CREATE USER.
        quoted = self.password.replace("\\", "\\\\").replace("'", "\\'")
        statements = [f"CREATE DATABASE IF NOT EXISTS `{self.database}`"]
        for host in ("127.0.0.1", "localhost"):
            account = f"'{self.user}'@'{host}'"
            statements += [f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{quoted}'",
                           f"ALTER USER {account} IDENTIFIED BY '{quoted}'",
                           # every database, so a test can make its own scratch one
                           f"GRANT ALL PRIVILEGES ON *.* TO {account}"]
        self.init_file.write_text(";\n".join(statements) + ";\n")
        self.tmp_dir.mkdir(exist_ok=True)
        if (self.data_dir / "mysql").is_dir():
            return  # initialized by an earlier start
        command = [self.install_binary, "--no-defaults", f"--datadir={self.data_dir}",
                   f"--tmpdir={self.tmp_dir}",
                   "--skip-test-db", "--skip-name-resolve",
                   "--auth-root-authentication-method=socket", *_root_user_option(),
                   *self._INNODB_OPTIONS]
        try:
            done = subprocess.run(command, cwd=self.base_dir, stdin=subprocess.DEVNULL,
                                  capture_output=True, text=True, timeout=self.startup_timeout_s * 4)
        except subprocess.TimeoutExpired as exc:
            raise ServerStartError(f"mariadb-install-db timed out: {' '.join(command)}") from exc
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
            raise ServerStartError(
                f"mariadb-install-db failed with code {done.returncode}: {' '.join(command)}\n{output}")

    def _command(self) -> list[str]:
        return [
            self.server_binary, "--no-defaults", f"--datadir={self.data_dir}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.socket_path}",
            f"--pid-file={self.base_dir / 'mysqld.pid'}", f"--log-error={self.error_log}",
            f"--tmpdir={self.tmp_dir}", f"--init-file={self.init_file}", "--skip-name-resolve",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--default-time-zone=+00:00", "--max-connections=500",
            "--innodb-flush-log-at-trx-commit=2", *self._INNODB_OPTIONS, *_root_user_option(),
        ]

    def _ready(self) -> bool:
        import mysql.connector  # the project's driver; imported late so a skip needs none

        try:
            connection = mysql.connector.connect(**self.connect_kwargs(), connection_timeout=2)
        except mysql.connector.Error:
            return False
        connection.close()
        return True


class ClickHouseServer(ServerProcess):
    """clickhouse-server with its config, data and logs in ``base_dir``.

    ``port`` is the native (TCP) port for clickhouse-driver; ``http_port`` the
    HTTP one. No interserver port is configured, so none is opened.
    """

    name = "clickhouse"

    def __init__(self, base_dir: Path, *, user: str = DEFAULT_USER, password: str = DEFAULT_PASSWORD,
                 database: str = DEFAULT_DATABASE, **timeouts: float) -> None:
        binary = find_binary("clickhouse-server", "clickhouse", package="clickhouse-server")
        # Upstream ships one multi-tool binary: ``clickhouse server``.
        self.server_command = [binary, "server"] if Path(binary).name == "clickhouse" else [binary]
        super().__init__(base_dir, **timeouts)
        self.user, self.password, self.database = user, password, database
        self.port = 0
        self.http_port = 0
        self.data_dir = self.base_dir / "data"
        self.log_dir = self.base_dir / "log"
        self.config_path = self.base_dir / "config.xml"
        self.users_path = self.base_dir / "users.xml"

    def connect_kwargs(self) -> dict[str, Any]:
        """Arguments for ``clickhouse_driver.Client(**...)`` (native protocol)."""
        return {"host": self.host, "port": self.port, "user": self.user,
                "password": self.password, "database": self.database}

    @property
    def url(self) -> str:
        return f"clickhouse://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def http_query(self, sql: str, timeout_s: float = 10.0) -> str:
        """Run one statement over HTTP (no driver needed); returns the body text."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            f"http://{self.host}:{self.http_port}/", data=sql.encode(), method="POST",
            headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return str(response.read().decode())

    def _assign_ports(self) -> None:
        self.port = free_port()
        self.http_port = free_port()
        while self.http_port == self.port:
            self.http_port = free_port()

    def _log_files(self) -> list[Path]:
        return [self.console_log, self.log_dir / "server.err.log"]

    def _command(self) -> list[str]:
        self._write_config()
        return [*self.server_command, f"--config-file={self.config_path}"]

    def _ready(self) -> bool:
        try:
            if self.http_query("SELECT 1", timeout_s=2).strip() != "1":
                return False
            socket.create_connection((self.host, self.port), timeout=2).close()
        except (OSError, urllib.error.URLError):
            return False
        return True

    def _after_ready(self) -> None:
        self.http_query(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    def _write_config(self) -> None:
        data, logs = self.data_dir, self.log_dir
        # <yandex> is the root 18.16 needs; modern servers still accept it.
        # Caches are small (defaults are GBs) so many workers fit in memory.
        self.config_path.write_text(f"""<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{logs}/server.log</log>
        <errorlog>{logs}/server.err.log</errorlog>
        <size>10M</size>
        <count>2</count>
    </logger>
    <listen_host>{HOST}</listen_host>
    <tcp_port>{self.port}</tcp_port>
    <http_port>{self.http_port}</http_port>
    <path>{data}/</path>
    <tmp_path>{data}/tmp/</tmp_path>
    <user_files_path>{data}/user_files/</user_files_path>
    <format_schema_path>{data}/format_schemas/</format_schema_path>
    <users_config>{self.users_path}</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>100</max_concurrent_queries>
    <mlock_executable>false</mlock_executable>
</yandex>
""")
        self.users_path.write_text(f"""<?xml version="1.0"?>
<yandex>
    <profiles><default>
        <max_memory_usage>4000000000</max_memory_usage>
        <!-- An idle native connection checks for shutdown every poll_interval
             seconds (default 10, which makes a graceful stop take 10 s while a
             client is connected); 1 s costs one wake-up per idle connection. -->
        <poll_interval>1</poll_interval>
    </default></profiles>
    <users>
        <{self.user}>
            <password>{escape(self.password)}</password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{self.user}>
    </users>
    <quotas><default><interval>
        <duration>3600</duration><queries>0</queries><errors>0</errors>
        <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time>
    </interval></default></quotas>
</yandex>
""")

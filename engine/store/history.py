"""The history store: one object per process that owns the ClickHouse
connection (chdb Session or server client), applies sql/clickhouse/ at
connect, writes recorder batches exactly once, and answers market-data
queries (engine/store/queries.py) for the API. Never buffers or retries:
the recorder (engine/store/delivery.py) decides what to do with a failure.

Exactly once, on ClickHouse 18.16 and chdb alike (no insert deduplication
for plain MergeTree on 18.16, no transactions on either):

  * every row carries its batch_id; a batch is inserted table by table and
    day by day, each (table, day) as ONE insert of at most one block, which
    the server writes as one part: it appears whole or not at all, also when
    the server is killed mid-insert;
  * after each such insert a marker (batch_id, table, day, rows) is due in
    history_batches; markers are written together every MARKER_FLUSH_S (a
    marker insert is a part of its own, as costly as a small batch);
  * a batch that may have reached the store before (``maybe_sent``: a retry,
    or the spilled batch a killed process was writing) first reads its
    markers, and for a (table, day) without one counts its rows in that day's
    partition: all there, write only the marker; none, insert. A marker not
    written yet (or lost with the process) only costs that count. Fresh
    batches skip both checks: the common path is one insert per table.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from loguru import logger

from engine.config import Config
from engine.lifecycle import Health
from engine.store import queries
from engine.store.backends import (
    Backend,
    ChdbBackend,
    Rows,
    ServerBackend,
    StoreError,
    StoreUnavailable,
)
from engine.store.batch import DAY_NS, TABLES, TIME_COLUMN, Batch
from engine.store.batch_ids import TAG_BITS, writer_tag

log = logger.bind(component="history")

# sql/ of the checkout, or the copy an installed wheel carries (setup.py)
SQL_DIR = next(p for p in (Path(__file__).resolve().parents[1] / "_bundled" / "sql",
                           Path(__file__).resolve().parents[2] / "sql") if p.is_dir()) / "clickhouse"
SCHEMA_FILES = ("history.sql",)
# Native-protocol timeouts. A dead server is noticed within CONNECT_TIMEOUT_S;
# an insert or query that takes longer than QUERY_TIMEOUT_S is abandoned (the
# recorder spills meanwhile). Longer tolerates a loaded server; shorter frees
# the writer thread sooner when the server hangs.
CONNECT_TIMEOUT_S = 3.0
QUERY_TIMEOUT_S = 30.0
# Markers wait at most this long and go in one insert. Longer saves inserts;
# a marker not yet stored only makes a retry of its batch count rows instead.
MARKER_FLUSH_S = 2.0
MARKER_COLUMNS = ("batch_id", "table_name", "day", "rows", "writer", "written_ns")


class PartialBatch(StoreError):
    """Some but not all rows of one (batch, table, day) are stored: cannot
    happen with one-part inserts; reported, never repaired by guessing."""


def schema_statements(database: str) -> list[str]:
    statements = []
    for name in SCHEMA_FILES:
        text = (SQL_DIR / name).read_text()
        lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
        for statement in "\n".join(lines).split(";"):
            if statement.strip():
                statements.append(statement.strip().replace("{database}", database))
    return statements


def writer_name(config: Config) -> str:
    return config.daemon.id or "engine"


class HistoryStore:
    """Component "history". Construct, ``start()`` (opens chdb; a server is
    reached lazily, so a daemon starts while its ClickHouse is down), then
    ``write_batch``/``query`` from any thread."""

    name = "history"

    def __init__(self, config: Config, backend: Backend | None = None) -> None:
        self.config = config
        h = config.storage.history
        self.database = h.database
        self.writer = writer_name(config)
        if backend is None:
            backend = (ChdbBackend(Path(config.daemon.data_dir) / h.path) if h.backend == "chdb"
                       else ServerBackend(h.host, h.port, h.user, config.secret(h.password_env).get(),
                                          connect_timeout_s=CONNECT_TIMEOUT_S, timeout_s=QUERY_TIMEOUT_S))
        self.backend = backend
        self._schema_ready = False
        self._last_error = ""
        self._last_ok_ns = 0
        self._markers: list[tuple[int, str, int, int]] = []  # (batch_id, table, day, rows) due
        self._markers_lock = threading.Lock()
        self._markers_written = 0.0  # monotonic
        # (batch, table, day) -> rows found stored by a check (its marker's count)
        self._stored_counts: dict[tuple[int, str, int], int] = {}

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if isinstance(self.backend, ChdbBackend):
            self.ensure_schema()  # embedded: a failure here is a real start-up error

    def stop(self, timeout_s: float) -> None:
        try:
            self.flush_markers()
        except (StoreUnavailable, StoreError) as exc:  # a retry counts rows instead
            log.info("history markers not written at stop: {}", exc)
        self.backend.close()
        self._schema_ready = False

    def health(self) -> list[Health]:
        if self._last_error:
            return [Health(self.name, False, f"{self.backend.description}: {self._last_error}")]
        return [Health(self.name, True, "")]

    def status(self) -> dict:
        return {"backend": self.backend.description, "database": self.database,
                "schema_ready": self._schema_ready, "last_error": self._last_error,
                "last_ok_ns": self._last_ok_ns}

    # ---------------------------------------------------------------- SQL

    def ensure_schema(self) -> None:
        if self._schema_ready:
            return
        self.backend.connect()
        for statement in schema_statements(self.database):
            self.backend.execute(statement, writer=True)
        self._schema_ready = True

    def query(self, sql: str) -> Rows:
        """Rows of one SELECT (``{db}`` in ``sql`` names the database)."""
        try:
            self.ensure_schema()
            rows = self.backend.execute(sql.replace("{db}", self.database))
        except StoreUnavailable as exc:
            self._schema_ready = False
            self._note_error(exc)
            raise
        return rows

    def table(self, name: str) -> str:
        return f"{self.database}.{name}"

    # -------------------------------------------------------------- writes

    def write_batch(self, batch: Batch) -> int:
        """Store every row of ``batch`` exactly once; returns rows inserted now
        (0 when a retry finds it all there). Raises StoreUnavailable/StoreError;
        sets ``batch.maybe_sent`` before anything could reach the store."""
        try:
            self.ensure_schema()
            done = self._stored_units(batch) if batch.maybe_sent else {}
            inserted = 0
            markers: list[tuple[str, int, int]] = []
            for table in TABLES:
                if table not in batch.tables:
                    continue
                for day, columns in batch.days(table):
                    rows = len(columns[0])
                    if (table, day) in done:
                        if done[(table, day)] is None:  # rows there, marker missing
                            markers.append((table, day, self._stored_counts.pop(
                                (batch.batch_id, table, day), rows)))
                        continue
                    batch.maybe_sent = True
                    self.backend.insert(self.table(table), TABLES[table], columns)
                    inserted += rows
                    markers.append((table, day, rows))
            if markers:
                with self._markers_lock:
                    self._markers += [(batch.batch_id, *marker) for marker in markers]
                self.flush_markers(force=False)
        except StoreUnavailable as exc:
            self._schema_ready = False
            self._note_error(exc)
            raise
        except StoreError as exc:
            self._note_error(exc)
            raise
        self._last_error = ""
        self._last_ok_ns = time.time_ns()
        return inserted

    def _stored_units(self, batch: Batch) -> dict[tuple[str, int], int | None]:
        """(table, day) units of a maybe-sent batch already stored: value = marker
        rows, or None when the rows are there but the marker is not."""
        found: dict[tuple[str, int], int | None] = {
            (table, day): rows for table, day, rows in self.backend.execute(
                f"SELECT table_name, day, rows FROM {self.table('history_batches')} "
                f"WHERE batch_id = {int(batch.batch_id)}", writer=True)}
        with self._markers_lock:
            found |= {(table, day): rows for batch_id, table, day, rows in self._markers
                      if batch_id == batch.batch_id}
        for table in batch.tables:
            for day, columns in batch.days(table):
                if (table, day) in found:
                    continue
                time_column = TIME_COLUMN[table]
                (count,), = self.backend.execute(
                    f"SELECT count() FROM {self.table(table)} WHERE batch_id = {int(batch.batch_id)} "
                    f"AND {time_column} >= {day * DAY_NS} AND {time_column} < {(day + 1) * DAY_NS}",
                    writer=True)
                if count == len(columns[0]) or (count and batch.rebuilt):
                    # A rebuilt batch's whole books may differ in number from the
                    # first build; one-part inserts mean any rows = all stored.
                    found[(table, day)] = None
                    self._stored_counts[(batch.batch_id, table, day)] = count
                elif count:
                    raise PartialBatch(f"batch {batch.batch_id} {table} day {day}: {count} of "
                                       f"{len(columns[0])} rows stored")
        return found

    def flush_markers(self, force: bool = True) -> None:
        """Write the markers due (all, or only when MARKER_FLUSH_S has passed)."""
        with self._markers_lock:
            if not self._markers or (
                    not force and time.monotonic() - self._markers_written < MARKER_FLUSH_S):
                return
            due = list(self._markers)
            now = time.time_ns()
            columns: list[list[Any]] = [[m[0] for m in due], [m[1] for m in due], [m[2] for m in due],
                                        [m[3] for m in due], [self.writer] * len(due), [now] * len(due)]
            self.backend.insert(self.table("history_batches"), MARKER_COLUMNS, columns)
            del self._markers[:len(due)]
            self._markers_written = time.monotonic()

    def max_batch_id(self) -> int:
        """Highest batch id this writer stored (0 if none); for id continuity."""
        tag = writer_tag(self.writer)
        rows = self.query(f"SELECT max(batch_id) FROM {{db}}.history_batches "
                          f"WHERE batch_id % {1 << TAG_BITS} = {tag}")
        return int(rows[0][0]) if rows and rows[0][0] else 0

    def _note_error(self, exc: Exception) -> None:
        self._last_error = str(exc)[:300]
        log.debug("history store error backend={} error={}", self.backend.description, exc)

    # --------------------------------------------------- market-data queries

    def pairs(self) -> list[dict[str, Any]]:
        return queries.pairs(self.query)

    def candles(self, venue: str, market: str, pair: str, interval: str,
                start_ns: int, end_ns: int) -> list[dict[str, Any]]:
        return queries.candles(self.query, venue, market, pair, interval, start_ns, end_ns)

    def trades(self, venue: str, market: str, pair: str, start_ns: int, end_ns: int,
               limit: int, cursor: str = "") -> dict[str, Any]:
        return queries.trades(self.query, venue, market, pair, start_ns, end_ns, limit, cursor)

    def stats_24h(self, venue: str, market: str, pair: str, at_ns: int) -> dict[str, Any]:
        return queries.stats_24h(self.query, venue, market, pair, at_ns)

    def book_at(self, venue: str, market: str, pair: str, at_ns: int, depth: int) -> dict[str, Any] | None:
        return queries.book_at(self.query, venue, market, pair, at_ns, depth)

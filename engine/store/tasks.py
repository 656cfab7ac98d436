"""The task fetcher: polls MONITORING (and TRADE) every few seconds, claims
and renews leases, and hands the difference from what runs to a TaskSink
(the feed pool). Owns the poll thread and the running set; never touches a
feed itself, and never stops running tasks because the database is away.

  every cycle_s:  read MONITORING ─► validate (bad rows reported, skipped)
     ─► tx: heartbeat, renew own leases, release stale ones
     ─► tx: claim free / lapsed tasks, highest priority first, up to capacity
     ─► diff(held tasks, running) ─► sink.apply_tasks(added, removed, changed)
  database error: keep running, health degraded, retry with backoff + jitter
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection
from typing import Any, Protocol

from loguru import logger

from engine.clock import SYSTEM, Clock
from engine.config import Config
from engine.lifecycle import Health
from engine.store import leases, tasktables
from engine.store.migrations import MigrationResult, SchemaTooNew, migrate
from engine.store.taskdb import TaskDb, TaskDbContention, TaskDbError
from engine.store.taskrows import (
    KNOWN_EXCHANGES,
    BadRow,
    MonitorTask,
    TradeTask,
    runnable_monitoring,
    runnable_trade,
)

log = logger.bind(component="task-db")

# Defaults for keys proposed for storage.tasks (read with getattr until
# config.py has them). A shorter lease moves a dead daemon's tasks sooner but
# renews more often and loses leases over shorter database hiccups.
DEFAULT_LEASE_S = 30.0
# Longest wait between attempts while the database is down: shorter notices
# the return sooner, longer spares a struggling server from many daemons.
DEFAULT_RETRY_MAX_S = 30.0
# Leases are renewed at least this many times per lease length, so one or
# two failed polls never cost a lease.
RENEWALS_PER_LEASE = 3
# Wait after losing a claim race (deadlock, lock wait): short and jittered so
# the daemons that collided do not collide again in step.
CONTENTION_RETRY_S = 0.5
# Floor of the cycle, so a tiny poll_s cannot turn the loop into a busy spin.
MIN_CYCLE_S = 0.05
NS_PER_S = 1_000_000_000


class TaskSink(Protocol):
    """Whatever runs the monitoring tasks (the feed pool, via an adapter)."""

    def apply_tasks(self, added: list[MonitorTask], removed: list[MonitorTask],
                    changed: list[MonitorTask]) -> None:
        """Start ``added``, stop ``removed``, re-subscribe ``changed`` (same
        book, new depth). If it raises, the fetcher offers the same diff again
        next cycle, so it must tolerate a task it already runs."""


def diff(running: dict[int, MonitorTask], wanted: dict[int, MonitorTask],
         ) -> tuple[list[MonitorTask], list[MonitorTask], list[MonitorTask]]:
    """(added, removed, changed) turning ``running`` into ``wanted``. A task
    whose book changed (exchange, market or pair edited) is removed and added;
    one whose depth changed is ``changed``; a priority edit alone is no change."""
    added, removed, changed = [], [], []
    for task_id, task in wanted.items():
        old = running.get(task_id)
        if old is None:
            added.append(task)
        elif old.book != task.book:
            removed.append(old)
            added.append(task)
        elif old.depth != task.depth:
            changed.append(task)
    removed += [task for task_id, task in running.items() if task_id not in wanted]
    return added, removed, changed


class TaskFetcher:
    """The task-db Component. ``lease_s`` and ``capacity`` override the config
    (tests, and until config.py has the keys); capacity 0 = books.capacity."""

    name = "task-db"

    def __init__(self, config: Config, daemon_id: str, sink: TaskSink, *, clock: Clock = SYSTEM,
                 exchanges: Collection[str] = KNOWN_EXCHANGES, db: TaskDb | None = None,
                 lease_s: float | None = None, capacity: int | None = None,
                 rng: random.Random | None = None) -> None:
        settings = config.storage.tasks
        self.daemon_id = daemon_id
        self.sink = sink
        self.clock = clock
        self.exchanges = frozenset(exchanges)
        self.db = db or TaskDb.from_config(config)
        self.poll_s = settings.poll_s
        self.lease_s = lease_s or float(getattr(settings, "lease_s", DEFAULT_LEASE_S))
        self.capacity = capacity or int(getattr(settings, "capacity", 0)) or config.books.capacity
        self.retry_max_s = float(getattr(settings, "retry_max_s", DEFAULT_RETRY_MAX_S))
        self.cycle_s = max(MIN_CYCLE_S, min(self.poll_s, self.lease_s / RENEWALS_PER_LEASE))
        self._rng = rng or random.Random()
        self._lock = threading.Lock()  # guards the fields below, read by status()/health()
        self._running: dict[int, MonitorTask] = {}
        self._trade: list[TradeTask] = []
        self._bad: list[BadRow] = []
        self._schema: MigrationResult | None = None
        self._error = ""  # the last failure, "" after a good cycle
        self._failing_since_ns: int | None = None
        self._failures = 0
        self._last_ok_ns: int | None = None
        self._cycles = 0
        self._next_retry_s = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Migrate now so a too-new schema fails the start; an unreachable
        database does not: the thread keeps trying and health says why."""
        try:
            self._ensure_schema()
        except SchemaTooNew:
            self.db.close()
            raise
        except TaskDbError as e:
            self._record_failure(e)
            log.warning("task db unreachable at start, retrying in the background error={}", e)
        self._thread = threading.Thread(target=self._run, name="task-db", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop polling and free this daemon's MONITORING leases (others take
        the tasks at once); the sink keeps what runs until it is stopped itself."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(max(0.1, timeout_s - 1.0))
            if self._thread.is_alive():
                log.error("poll thread did not stop in time timeout_s={:.1f}", timeout_s)
                return  # the thread still owns the connection
        try:
            if self.db.connected:
                leases.release_all(self.db, self.daemon_id, leases.MONITORING)
        except TaskDbError as e:
            log.warning("leases not released at stop, they lapse lease_s={} error={}", self.lease_s, e)
        self.db.close()

    # ---------------------------------------------------------------- views

    def tasks(self) -> list[MonitorTask]:
        with self._lock:
            return sorted(self._running.values(), key=lambda t: t.id)

    def trade_tasks(self) -> list[TradeTask]:
        """Valid enabled TRADE rows as of the last good poll (not leased yet:
        the trader claims them with leases.claim(kind=TRADE))."""
        with self._lock:
            return list(self._trade)

    def bad_rows(self) -> list[BadRow]:
        with self._lock:
            return list(self._bad)

    def health(self) -> list[Health]:
        now = self.clock.monotonic_ns()
        with self._lock:
            if self._schema is None and not self._error:
                return [Health(self.name, False, "not started")]
            out = [Health(self.name, not self._error, self._degraded_reason(now) if self._error else
                          f"{len(self._running)} tasks from {self.db.where}")]
            if self._bad:
                shown = "; ".join(str(b) for b in self._bad[:5])
                more = f" (+{len(self._bad) - 5} more)" if len(self._bad) > 5 else ""
                out.append(Health(f"{self.name}.rows", True, f"{len(self._bad)} bad rows skipped: {shown}{more}"))
        return out

    def _degraded_reason(self, now_ns: int) -> str:
        since = (now_ns - (self._failing_since_ns or now_ns)) / NS_PER_S
        what = "task db" if self._error.startswith(("TaskDb", "SchemaTooNew")) else "task cycle"
        return (f"{what} failing for {since:.0f}s ({self._failures} attempts): {self._error}; "
                f"keeping {len(self._running)} tasks running; next retry in {self._next_retry_s:.1f}s")

    def status(self) -> dict[str, Any]:
        now = self.clock.monotonic_ns()
        with self._lock:
            return {
                "state": "degraded" if self._error else ("running" if self._thread else "stopped"),
                "backend": self.db.dialect.name, "database": self.db.where, "daemon_id": self.daemon_id,
                "schema_version": self._schema.after if self._schema else None,
                "poll_s": self.poll_s, "lease_s": self.lease_s, "capacity": self.capacity,
                "task_ids": sorted(self._running),
                "tasks": [task_as_dict(t) for t in sorted(self._running.values(), key=lambda t: t.id)],
                "trade_task_ids": [t.id for t in self._trade],
                "bad_rows": [{"table": b.table, "id": b.id, "reason": b.reason} for b in self._bad],
                "error": self._error or None,
                "last_ok_s_ago": None if self._last_ok_ns is None else
                round((now - self._last_ok_ns) / NS_PER_S, 3),
                "cycles": self._cycles,
            }

    # ----------------------------------------------------------------- loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._cycle()
                wait = self.cycle_s
            except TaskDbContention as e:
                log.debug("claim collided with another daemon, retrying error={}", e)
                wait = CONTENTION_RETRY_S * (0.5 + self._rng.random())
            except Exception as e:  # noqa: BLE001 - the loop outlives any one failure
                wait = self._record_failure(e)
            self._wake.wait(wait)
            self._wake.clear()

    def _record_failure(self, error: Exception) -> float:
        """Note the failure for health; the jittered, capped backoff to wait."""
        if not isinstance(error, TaskDbError):
            log.opt(exception=error).error("task cycle failed error={}", error)
        elif not self._error:
            log.warning("task db failing, tasks keep running tasks={} error={}", len(self._running), error)
        ceiling = min(self.retry_max_s, self.cycle_s * 2.0 ** min(self._failures, 30))
        wait = ceiling * (0.5 + 0.5 * self._rng.random())
        with self._lock:
            self._error = f"{type(error).__name__}: {error}"
            if self._failing_since_ns is None:
                self._failing_since_ns = self.clock.monotonic_ns()
            self._failures += 1
            self._next_retry_s = wait
        return wait

    def _ensure_schema(self) -> None:
        if self._schema is None:
            result = migrate(self.db)
            if result.applied:
                log.info("task db migrated database={} from_version={} to_version={}", self.db.where,
                         result.before, result.after)
            self._schema = result

    def _cycle(self) -> None:
        assert threading.current_thread() is self._thread, "only the poll thread uses the connection"
        self._ensure_schema()
        monitoring, bad = runnable_monitoring(tasktables.read(self.db, "MONITORING"), self.exchanges)
        trade, bad_trade = runnable_trade(tasktables.read(self.db, "TRADE"), self.exchanges)
        by_id = {t.id: t for t in monitoring}
        lease_ms = int(self.lease_s * 1000)
        kind = leases.MONITORING
        with self.db.transaction():
            leases.heartbeat(self.db, self.daemon_id, self.capacity)
            mine = leases.renew(self.db, kind, self.daemon_id, lease_ms)
            # Keep the best `capacity` of what we hold; free the rest and the stale.
            keep = sorted((by_id[i] for i in mine if i in by_id), key=lambda t: (-t.priority, t.id))
            keep = keep[:self.capacity]
            leases.release(self.db, kind, self.daemon_id, mine - {t.id for t in keep})
            leases.forget_lapsed(self.db, kind, lease_ms)
        held = {t.id for t in keep}
        room = self.capacity - len(held)
        if room > 0:
            candidates = [t.id for t in monitoring if t.id not in held]
            with self.db.transaction():
                held.update(leases.claim(self.db, kind, self.daemon_id, candidates, room, lease_ms))
        wanted = {i: by_id[i] for i in held}
        self._apply(wanted, bad + bad_trade, trade)

    def _apply(self, wanted: dict[int, MonitorTask], bad: list[BadRow], trade: list[TradeTask]) -> None:
        added, removed, changed = diff(self._running, wanted)
        if bad != self._bad:
            for row in bad:
                if row not in self._bad:
                    log.warning("skipping bad task row table={} id={} reason={}", row.table, row.id, row.reason)
        if added or removed or changed:
            log.info("tasks applied added={} removed={} changed={}", [t.id for t in added],
                     [t.id for t in removed], [t.id for t in changed])
            self.sink.apply_tasks(added, removed, changed)
        if self._error:
            log.info("task db back failed_attempts={}", self._failures)
        with self._lock:
            self._running = dict(wanted)
            self._trade = trade
            self._bad = bad
            self._error = ""
            self._failing_since_ns = None
            self._failures = 0
            self._last_ok_ns = self.clock.monotonic_ns()
            self._cycles += 1


def task_as_dict(task: MonitorTask) -> dict[str, Any]:
    return {"id": task.id, "exchange": task.exchange, "market": task.market, "pair": task.pair,
            "depth": task.depth, "priority": task.priority}

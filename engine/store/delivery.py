"""Delivery: moves the recorder's batches into the history store, in batch-id
order, on its own thread, so a slow or dead store never makes the recorder
(and so the feed) wait. Owns the in-memory batch queue, the spill and the
retry loop; the store owns exactly-once.

  recorder thread ── submit(batch) ──► memory (≤ memory_batches, spill empty)
                                   └─► spill (memory full, or spilling)
  start-up ── recover(batches) ──► recovered (rebuilt from the journal; oldest)
  delivery thread: recovered head, else memory head, else spill head ──► store.write_batch
       ok: drop it (spill: commit)       failed: memory → front of the spill,
                                                 back off, retry the spill head
  on_durable(batch_id) once a batch is stored or spilled: its journal file goes

The thread never dies: an unexpected error (a bug, a full disk) is logged,
counted (engine_recorder_errors_total{where="delivery"}) and retried with
backoff; health says degraded while errors are recent.

Order: memory only holds batches older than every spilled one (the recorder
uses memory only while the spill is empty), and the thread writes memory
first, then the spill in id order. A graceful stop writes what memory holds
while time allows and spills the rest; the next start replays the spill.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loguru import logger

from engine.store.backends import StoreError, StoreUnavailable
from engine.store.batch import Batch, decode, encode
from engine.store.errors import SwallowedErrors
from engine.store.history import HistoryStore
from engine.store.history_metrics import HistoryMetrics
from engine.store.spill import Spill

log = logger.bind(component="history.delivery")

# Spill writes near the stop deadline would be cut short; keep this much of it.
STOP_MARGIN_S = 0.5
# How often an idle delivery thread asks the store to return freed memory
# (chdb keeps it in its allocator). More often costs a cheap call; less often
# lets the daemon's RSS float higher between calls.
TRIM_INTERVAL_S = 30.0
# A batch that fails with an error that is not the store's (a bug) this many
# times in a row is quarantined instead of blocking every later batch.
POISON_TRIES = 3


class Delivery:
    def __init__(self, store: HistoryStore, spill: Spill, metrics: HistoryMetrics, *,
                 memory_batches: int, retry_min_s: float, retry_max_s: float,
                 on_dropped: Callable[[Batch, str], None],
                 on_store_max_batch_id: Callable[[int], None] | None = None,
                 on_durable: Callable[[int], None] | None = None,
                 errors: SwallowedErrors | None = None, quarantine_dir: Path | None = None) -> None:
        self.store = store
        self.spill = spill
        self.metrics = metrics
        self.memory_batches = memory_batches
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.on_dropped = on_dropped  # a batch neither memory nor spill could take
        self._memory: deque[Batch] = deque()
        # Batches rebuilt from the journal at start-up: older than anything in
        # memory or the spill, written first; their journal files keep them
        # until then (never moved to the spill).
        self._recovered: deque[Batch] = deque()
        self.on_durable = on_durable
        self.errors = errors or SwallowedErrors(metrics.errors)
        self.quarantine_dir = quarantine_dir  # batches no store call can take (see _poisoned)
        self._poison_tries = (0, 0)  # (batch id, failed attempts) of the head batch
        self._cond = threading.Condition()
        self._spilling = not spill.empty()
        self._draining = False  # stopping: write memory only
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Told the store's highest batch id of this writer once reachable, so a
        # clock set back on a fresh data_dir cannot reuse ids.
        self.on_store_max_batch_id = on_store_max_batch_id
        self.failing_since_ns = 0  # first failure of the current outage; 0 when writing
        self._trimmed = time.monotonic()
        self.last_error = ""
        metrics.spill_limit.set(spill.max_bytes)

    # ---------------------------------------------------- recorder thread side

    def submit(self, batch: Batch) -> bool:
        """Queue a cut batch; never waits for the store. False when it was
        dropped (spill full): ``on_dropped`` has been told."""
        with self._cond:
            if not self._spilling and len(self._memory) < self.memory_batches:
                self._memory.append(batch)
                self._cond.notify()
                return True
            self._spilling = True
            # Under the lock: the delivery thread must not see the spill empty
            # (and go back to memory) while this older batch is on its way in.
            try:
                stored = self.spill.append(batch.batch_id, encode(batch), batch.maybe_sent)
                reason = "spill_full"
            except Exception as exc:  # noqa: BLE001 - a full disk, a bug: the batch is lost, counted
                self.note_error("spill", exc)
                stored, reason = False, "spill_error"
            self._cond.notify()
        self._durable(batch.batch_id)  # spilled, or dropped (its loss rows go on): no replay
        if not stored:
            self.on_dropped(batch, reason)
        return stored

    def recover(self, batches: list[Batch]) -> None:
        """Batches rebuilt from the journal (before ``start``), oldest first."""
        with self._cond:
            self._recovered.extend(batches)

    def pending(self) -> int:
        return len(self._memory) + len(self._recovered)

    def recovered_pending(self) -> int:
        """Journal batches of a killed process not yet written (a stop leaves
        them in the journal: the next start writes them)."""
        return len(self._recovered)

    def note_error(self, where: str, exc: BaseException) -> None:
        """An unexpected error this module swallowed: counted, logged, shown in health."""
        self.errors.note(where, exc)

    def _durable(self, batch_id: int) -> None:
        if self.on_durable is not None:
            try:
                self.on_durable(batch_id)
            except Exception as exc:  # noqa: BLE001 - a journal file left over is only replayed (checked)
                self.note_error("journal", exc)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="history-delivery", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, deadline: float) -> None:
        """Write memory until ``deadline`` (monotonic) nears, spill the rest."""
        with self._cond:
            self._draining = True
            self._cond.notify()
        # Memory is written while time allows, unless the store is failing:
        # then it goes to the spill at once rather than burn the budget.
        while (self._memory and time.monotonic() < deadline - STOP_MARGIN_S and self.alive()
               and not self.failing_since_ns):
            time.sleep(0.01)
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - STOP_MARGIN_S - time.monotonic()))
        with self._cond:
            if self.alive() and self._memory:
                # The thread is still inside a write of the head batch.
                self._memory[0].maybe_sent = True
            self._to_spill()
            if self._recovered:  # durable in the journal; not lost, not written yet
                log.info("history: {} journal batches of a killed run left for the next start",
                         len(self._recovered))
        self.spill.close()

    # -------------------------------------------------------- delivery thread

    def _run(self) -> None:
        state: dict[str, Any] = {"backoff": self.retry_min_s, "seeded": False}
        error_backoff = self.retry_min_s
        while not self._stop.is_set():
            try:
                self._step(state)
                error_backoff = self.retry_min_s
            except Exception as exc:  # noqa: BLE001 - never die: count, log, back off, go on
                self.note_error("delivery", exc)
                self._stop.wait(error_backoff)
                error_backoff = min(error_backoff * 2, self.retry_max_s)

    def _step(self, state: dict[str, Any]) -> None:
        if not state["seeded"]:
            state["seeded"] = self._seed_batch_ids()  # again after a write while the store was down
        batch, source = self._next()
        if batch is None:
            self._idle()
            return
        started = time.monotonic()
        checked = batch.maybe_sent
        try:
            inserted = self.store.write_batch(batch)
        except Exception as exc:  # noqa: BLE001 - any failure: keep the batch, back off
            if not isinstance(exc, (StoreUnavailable, StoreError)) and self._poisoned(batch, source, exc):
                return
            backoff = state["backoff"]
            state["backoff"] = min(backoff * 2, self.retry_max_s)
            self._failed(batch, source, exc, backoff)
            self._stop.wait(backoff)
            return
        state["backoff"] = self.retry_min_s
        self._poison_tries = (0, 0)
        if checked:
            self.metrics.checked.inc()
        self._written(batch, source, inserted, time.monotonic() - started)

    def _poisoned(self, batch: Batch, source: str, exc: Exception) -> bool:
        """A batch the store cannot even be handed (a bug: admission lets no
        unfit value through) would block every later one forever: after
        POISON_TRIES it goes to ``quarantine_dir`` as JSON and delivery goes on."""
        batch_id, tries = self._poison_tries
        tries = tries + 1 if batch_id == batch.batch_id else 1
        self._poison_tries = (batch.batch_id, tries)
        self.note_error("write", exc)
        if tries < POISON_TRIES or self.quarantine_dir is None:
            return False
        path = self.quarantine_dir / f"batch-{batch.batch_id}.json"
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"batch_id": batch.batch_id, "error": repr(exc), "tables": batch.tables},
                                   default=repr))
        log.error("history batch {} cannot be written ({}): quarantined in {} ({} rows)", batch.batch_id,
                  exc, path, batch.rows())
        self.metrics.errors.labels("quarantined").inc()
        if source == "spill":
            self.spill.commit(batch.batch_id)
        else:
            with self._cond:
                queue = self._recovered if source == "recovered" else self._memory
                if queue and queue[0] is batch:
                    queue.popleft()
            self._durable(batch.batch_id)
        self._poison_tries = (0, 0)
        return True

    def _idle(self) -> None:
        """Nothing to write: store the exactly-once markers now rather than at
        the next batch, and now and then let the store trim its memory."""
        try:
            self.store.flush_markers()
            if time.monotonic() - self._trimmed >= TRIM_INTERVAL_S:
                self._trimmed = time.monotonic()
                self.store.backend.trim_memory()
        except StoreUnavailable as exc:  # an outage: markers stay due; a retry counts rows meanwhile
            log.debug("history markers not written yet: {}", exc)
        except Exception as exc:  # noqa: BLE001 - markers stay due; counted and logged
            self.note_error("markers", exc)

    def _seed_batch_ids(self) -> bool:
        if self.on_store_max_batch_id is None:
            return True
        try:
            highest = self.store.max_batch_id()
        except StoreUnavailable as exc:  # store down: ids continue from clock and file
            log.debug("store's highest batch id not known yet: {}", exc)
            return False
        except Exception as exc:  # noqa: BLE001 - counted and logged; asked again later
            self.note_error("batch_ids", exc)
            return False
        if self.on_store_max_batch_id is not None:
            self.on_store_max_batch_id(highest)
        return True

    def _next(self) -> tuple[Batch | None, str]:
        with self._cond:
            if self._recovered and not self._draining:
                return self._recovered[0], "recovered"
            if self._memory:
                return self._memory[0], "memory"
            if self.spill.empty():
                self._spilling = False
            if self._draining or self.spill.empty():
                self._cond.wait(0.2)
                return None, ""
        record = self.spill.head()  # only this thread reads and commits the spill
        if record is None:
            return None, ""
        try:
            return decode(record.payload, record.maybe_sent), "spill"
        except ValueError as exc:
            self.note_error("spill_decode", exc)
            log.error("spilled batch {} cannot be read ({}): dropped", record.batch_id, exc)
            self.spill.commit(record.batch_id)
            return None, ""

    def _written(self, batch: Batch, source: str, inserted: int, seconds: float) -> None:
        if source == "spill":
            self.spill.commit(batch.batch_id)
        else:
            with self._cond:
                queue = self._recovered if source == "recovered" else self._memory
                if queue and queue[0] is batch:
                    queue.popleft()
            self._durable(batch.batch_id)
        m = self.metrics
        m.write_seconds.observe(seconds)
        m.store_up.set(1)
        m.batches.labels("inserted" if inserted else "already_stored").inc()
        if inserted:
            for table, columns in batch.tables.items():
                m.rows.labels(table).inc(len(columns[0]))
        if self.failing_since_ns:
            log.info("history store writes again after {:.1f}s; spill holds {} batches",
                     (time.time_ns() - self.failing_since_ns) / 1e9, self.spill.batches)
        self.failing_since_ns = 0
        self.last_error = ""

    def _failed(self, batch: Batch, source: str, exc: Exception, backoff: float) -> None:
        self.metrics.failures.inc()
        self.metrics.store_up.set(0)
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if not self.failing_since_ns:
            self.failing_since_ns = time.time_ns()
            level = "ERROR" if isinstance(exc, StoreError) else "WARNING"
            log.log(level, "history write failed batch={} error={}; spilling, retry in {:.1f}s",
                    batch.batch_id, self.last_error, backoff)
        if source == "memory":
            with self._cond:
                self._to_spill()

    def _to_spill(self) -> None:
        """Memory (older than anything spilled) to the front of the spill.
        Caller holds the condition."""
        if not self._memory:
            return
        self.spill.prepend([(b.batch_id, encode(b), b.maybe_sent) for b in self._memory])
        ids = [b.batch_id for b in self._memory]
        self._memory.clear()
        self._spilling = True
        for batch_id in ids:
            self._durable(batch_id)

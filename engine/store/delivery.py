"""Delivery: moves the recorder's batches into the history store, in batch-id
order, on its own thread, so a slow or dead store never makes the recorder
(and so the feed) wait. Owns the in-memory batch queue, the spill and the
retry loop; the store owns exactly-once.

  recorder thread ── submit(batch) ──► memory (≤ memory_batches, spill empty)
                                   └─► spill (memory full, or spilling)
  delivery thread: memory head, else spill head ──► store.write_batch
       ok: drop it (spill: commit)       failed: memory → front of the spill,
                                                 back off, retry the spill head

Order: memory only holds batches older than every spilled one (the recorder
uses memory only while the spill is empty), and the thread writes memory
first, then the spill in id order. A graceful stop writes what memory holds
while time allows and spills the rest; the next start replays the spill.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from loguru import logger

from engine.store.backends import StoreError
from engine.store.batch import Batch, decode, encode
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


class Delivery:
    def __init__(self, store: HistoryStore, spill: Spill, metrics: HistoryMetrics, *,
                 memory_batches: int, retry_min_s: float, retry_max_s: float,
                 on_dropped: Callable[[Batch, str], None],
                 on_store_max_batch_id: Callable[[int], None] | None = None) -> None:
        self.store = store
        self.spill = spill
        self.metrics = metrics
        self.memory_batches = memory_batches
        self.retry_min_s = retry_min_s
        self.retry_max_s = retry_max_s
        self.on_dropped = on_dropped  # a batch neither memory nor spill could take
        self._memory: deque[Batch] = deque()
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
            stored = self.spill.append(batch.batch_id, encode(batch), batch.maybe_sent)
            self._cond.notify()
        if not stored:
            self.on_dropped(batch, "spill_full")
        return stored

    def pending(self) -> int:
        return len(self._memory)

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
        while self._memory and time.monotonic() < deadline - STOP_MARGIN_S and self.alive():
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
        self.spill.close()

    # -------------------------------------------------------- delivery thread

    def _run(self) -> None:
        backoff = self.retry_min_s
        seeded = self._seed_batch_ids()  # again after the first write if the store is down
        while not self._stop.is_set():
            batch, from_spill = self._next()
            if batch is None:
                self._idle()
                continue
            started = time.monotonic()
            checked = batch.maybe_sent
            try:
                inserted = self.store.write_batch(batch)
            except Exception as exc:  # noqa: BLE001 - any failure: keep the batch, back off
                self._failed(batch, from_spill, exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.retry_max_s)
                continue
            backoff = self.retry_min_s
            if checked:
                self.metrics.checked.inc()
            if not seeded:
                seeded = self._seed_batch_ids()
            self._written(batch, from_spill, inserted, time.monotonic() - started)

    def _idle(self) -> None:
        """Nothing to write: store the exactly-once markers now rather than at
        the next batch, and now and then let the store trim its memory."""
        try:
            self.store.flush_markers()
            if time.monotonic() - self._trimmed >= TRIM_INTERVAL_S:
                self._trimmed = time.monotonic()
                self.store.backend.trim_memory()
        except Exception as exc:  # noqa: BLE001 - markers stay due; a retry counts rows meanwhile
            log.debug("history markers not written yet: {}", exc)

    def _seed_batch_ids(self) -> bool:
        if self.on_store_max_batch_id is None:
            return True
        try:
            highest = self.store.max_batch_id()
        except Exception as exc:  # noqa: BLE001 - store down: ids continue from clock and file
            log.debug("store's highest batch id not known yet: {}", exc)
            return False
        if self.on_store_max_batch_id is not None:
            self.on_store_max_batch_id(highest)
        return True

    def _next(self) -> tuple[Batch | None, bool]:
        with self._cond:
            if self._memory:
                return self._memory[0], False
            if self.spill.empty():
                self._spilling = False
            if self._draining or self.spill.empty():
                self._cond.wait(0.2)
                return None, False
        record = self.spill.head()  # only this thread reads and commits the spill
        if record is None:
            return None, False
        try:
            return decode(record.payload, record.maybe_sent), True
        except ValueError as exc:
            log.error("spilled batch {} cannot be read ({}): dropped", record.batch_id, exc)
            self.spill.commit(record.batch_id)
            return None, False

    def _written(self, batch: Batch, from_spill: bool, inserted: int, seconds: float) -> None:
        if from_spill:
            self.spill.commit(batch.batch_id)
        else:
            with self._cond:
                if self._memory and self._memory[0] is batch:
                    self._memory.popleft()
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

    def _failed(self, batch: Batch, from_spill: bool, exc: Exception, backoff: float) -> None:
        self.metrics.failures.inc()
        self.metrics.store_up.set(0)
        self.last_error = f"{type(exc).__name__}: {exc}"[:300]
        if not self.failing_since_ns:
            self.failing_since_ns = time.time_ns()
            level = "ERROR" if isinstance(exc, StoreError) else "WARNING"
            log.log(level, "history write failed batch={} error={}; spilling, retry in {:.1f}s",
                    batch.batch_id, self.last_error, backoff)
        if not from_spill:
            with self._cond:
                self._to_spill()

    def _to_spill(self) -> None:
        """Memory (older than anything spilled) to the front of the spill.
        Caller holds the condition."""
        if not self._memory:
            return
        self.spill.prepend([(b.batch_id, encode(b), b.maybe_sent) for b in self._memory])
        self._memory.clear()
        self._spilling = True

"""The recorder: takes every trade, book delta and book snapshot from the feed
threads without ever blocking them, turns them into batches on its own
thread, and hands the batches to delivery (store, or spill when the store is
down or slow). Owns the event queue, batching, whole-book snapshots and loss
accounting; never touches the live books.

  feed threads ── record(event) ── admission.check ──► bounded deque ──► recorder thread
      (unfit: dead-letter file,       (full: count the loss     ──► journal (write-ahead)
       counted per venue and field)    per book, keep it in     ──► BatchBuilder rows + BookTracker
                                       order as a marker)       ──► cut by rows or interval ──► Delivery

A full queue drops the event, never blocks: the feed keeps its books right,
the drop is counted (engine_recorder_dropped_events), health turns degraded
for DROP_ALERT_S, and a history_losses row tells queries the span is missing.
Nothing here dies on bad input: what does not fit the tables never enters,
and an unexpected error is counted, logged and survived (engine/store/errors.py).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry

from engine.config import Config
from engine.lifecycle import Health
from engine.store.admission import Unfit, check
from engine.store.batch import Batch, BatchBuilder
from engine.store.batch_ids import BatchIds
from engine.store.deadletter import DeadLetters
from engine.store.delivery import Delivery
from engine.store.errors import SwallowedErrors
from engine.store.history import HistoryStore
from engine.store.history_metrics import HistoryMetrics
from engine.store.journal import Journal
from engine.store.losses import KIND, Loss, LossLedger
from engine.store.rows import add_event, rebuild, rows_of
from engine.store.spill import Spill
from engine.store.tracker import BookTracker

log = logger.bind(component="recorder")

# Health stays degraded this long after the last dropped event: long enough
# for a scrape or a human to see it, short enough to clear after a burst.
DROP_ALERT_S = 300.0
# Events handled between checks of the cut interval and the loss markers.
DRAIN_CHUNK = 4096
# Sleep when the queue is empty. Longer saves wake-ups; history latency is
# seconds anyway (the batch interval), so 10 ms costs nothing.
IDLE_SLEEP_S = 0.01
# Health stays degraded this long after a swallowed internal error.
ERROR_ALERT_S = 60.0


@dataclass(frozen=True)
class RecorderSettings:
    """Tunables, read from ``storage.history`` (defaults when a key is absent)."""

    # Events between the feed threads and the recorder thread. Larger rides out
    # longer bursts (about 1 KB per event), smaller caps memory.
    queue_events: int = 100_000
    # A batch is cut at this many rows or this long after its first event.
    # Bigger batches insert faster (ClickHouse likes few large parts) but wait
    # longer and weigh more in memory; at most ~1M rows (one insert block).
    batch_rows: int = 50_000
    batch_interval_s: float = 1.0
    # A whole book per book at least this often (receive time; 0: only at
    # resyncs). Shorter makes book-at-time queries scan fewer deltas; each
    # costs one row of up to 2 x depth levels.
    snapshot_interval_s: float = 60.0
    spill_dir: str = "spill"  # relative to daemon.data_dir
    spill_max_mb: int = 1024  # spill beyond this drops batches (counted, alerted)
    spill_alert_fraction: float = 0.8  # health degraded from this fill level
    # Batches waiting in memory for the store before new ones go to the
    # spill: more absorbs slow inserts without disk I/O, fewer bounds memory.
    memory_batches: int = 4
    # Retry of a failed write: exponential backoff between these.
    retry_min_s: float = 0.5
    retry_max_s: float = 10.0
    # Write-ahead journal (engine/store/journal.py): a killed process loses only
    # the events still queued. Off: it loses the batch being built and those
    # waiting in memory too (up to batch_interval_s x (memory_batches + 1)).
    journal: bool = True
    # fsync of the journal: the window a power cut may take (a killed process
    # loses nothing written). 0 = at every write (every drained chunk): the
    # safest and the slowest on disks with a slow flush.
    journal_fsync_s: float = 1.0

    @classmethod
    def from_config(cls, config: Config) -> RecorderSettings:
        history = config.storage.history
        values: dict[str, Any] = {f.name: getattr(history, f.name, f.default) for f in fields(cls)}
        return cls(**values)


class Recorder:
    name = "recorder"

    def __init__(self, config: Config, registry: CollectorRegistry, store: HistoryStore,
                 settings: RecorderSettings | None = None) -> None:
        self.settings = s = settings or RecorderSettings.from_config(config)
        assert 1 <= s.batch_rows <= 1_000_000, "a batch must fit one insert block"
        self.store = store
        self.metrics = HistoryMetrics(registry)
        self.errors = SwallowedErrors(self.metrics.errors)
        data_dir = Path(config.daemon.data_dir)
        spill_dir = data_dir / s.spill_dir
        self.spill = Spill(spill_dir, s.spill_max_mb << 20)
        self.batch_ids = BatchIds(store.writer, spill_dir / "last_batch_id", floor=self.spill.max_batch_id())
        self.dead_letters = DeadLetters(data_dir / "dead_letter", self.metrics.rejected, self.metrics.errors)
        self.journal = Journal(data_dir / "journal", s.journal_fsync_s) if s.journal else None
        self.delivery = Delivery(store, self.spill, self.metrics, memory_batches=s.memory_batches,
                                 retry_min_s=s.retry_min_s, retry_max_s=s.retry_max_s,
                                 on_dropped=self._batch_dropped,
                                 on_store_max_batch_id=self.batch_ids.raise_to,
                                 on_durable=self.journal.done if self.journal else None,
                                 errors=self.errors, quarantine_dir=data_dir / "dead_letter")
        self.tracker = BookTracker(int(s.snapshot_interval_s * 1e9))
        self._queue: deque[Any] = deque()
        self._capacity = s.queue_events
        self._accepting = True
        self.losses = LossLedger(self.metrics)
        self._builder = BatchBuilder()
        self._batch_started = 0.0
        self._counts: dict[str, int] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.recovered_batches = self._recover()
        self.metrics.queue_capacity.set(self._capacity)
        self.metrics.watch(lambda: len(self._queue), self.delivery.pending,
                           lambda: self.spill.bytes_used, lambda: self.spill.batches)
        if self.journal is not None:
            self.metrics.journal_files.set_function(self.journal.files)

    def _recover(self) -> int:
        """Batches the journal kept from a killed process go first to delivery."""
        if self.journal is None:
            return 0
        sealed, pending = self.journal.recover()
        interval_ns = int(self.settings.snapshot_interval_s * 1e9)
        batches = []
        for batch_id, events in sealed:
            self.batch_ids.raise_to(batch_id)
            if batch_id in self.spill.recovered_ids:  # spilled just before the kill: the spill has it
                self.journal.done(batch_id)
            elif events:
                batches.append(rebuild(batch_id, events, interval_ns, maybe_sent=True))
            else:
                self.journal.done(batch_id)
        if pending:  # never cut, so never sent: a fresh id
            batch_id = self.batch_ids.next()
            self.journal.adopt_open(batch_id)
            batches.append(rebuild(batch_id, pending, interval_ns, maybe_sent=False))
        self.delivery.recover(batches)
        return len(batches)

    # ------------------------------------------------------ feed thread side

    def record(self, event: Any) -> None:
        """Queue one event. Any thread; never blocks, never raises."""
        try:
            if event.__class__ not in KIND:
                return
            try:
                check(event)
            except Unfit as unfit:
                self.dead_letters.reject(event, unfit)
                return
            if self.losses.pending:
                self._record_after_loss(event)
                return
            queue = self._queue
            if len(queue) < self._capacity:
                queue.append(event)
            else:
                self.losses.lose(event, "queue_full" if self._accepting else "stopped")
        except Exception as exc:  # noqa: BLE001 - a feed thread must never see an error from here
            self.errors.note("record", exc)

    def _record_after_loss(self, event: Any) -> None:
        """Slow path while some book has unmarked losses: its next accepted
        event is preceded by the loss marker, so the loss sits in order."""
        with self.losses.lock:
            queue = self._queue
            admitted = len(queue) < self._capacity and self._accepting
            if admitted:
                loss = self.losses.pending.pop((event.venue, event.market.value, event.pair), None)
                if loss is not None:
                    queue.append(loss)
                queue.append(event)
        if not admitted:
            self.losses.lose(event, "queue_full" if self._accepting else "stopped")

    def _mark_losses(self) -> None:
        """Recorder thread, queue below half: marks every pending loss now
        (a book that never sends again must not keep everyone on the slow path)."""
        with self.losses.lock:
            if self._accepting:
                self._queue.extend(self.losses.pending.values())
                self.losses.pending.clear()

    # ------------------------------------------------------ recorder thread

    def _run(self) -> None:
        failures = 0
        while True:
            try:
                if self._step():
                    break
                failures = 0
            except Exception as exc:  # noqa: BLE001 - never die: count, log, back off, go on
                self.errors.note("recorder", exc)
                failures += 1
                if self._stopping.is_set() and failures > 3:
                    break
                time.sleep(min(1.0, IDLE_SLEEP_S * 2 ** min(failures, 7)))
        try:
            if self._builder.events:
                self._cut()
        except Exception as exc:  # noqa: BLE001 - the batch stays in the journal for the next start
            self.errors.note("recorder", exc)

    def _step(self) -> bool:
        """One drain cycle; True when stopping and everything is batched."""
        stopping = self._stopping.is_set()
        chunk, full = self._take()
        if chunk:
            self._journal(chunk)
            handle = self._handle
            for event in chunk:
                handle(event)
        if full:
            self._cut()
        if self.losses.pending and len(self._queue) < self._capacity // 2:
            self._mark_losses()
        if self._builder.events and time.monotonic() - self._batch_started >= self.settings.batch_interval_s:
            self._cut()
        if stopping and not self._queue:
            return True
        if not chunk:
            time.sleep(IDLE_SLEEP_S)
        return False

    def _take(self) -> tuple[list[Any], bool]:
        """Up to DRAIN_CHUNK events that fit the batch being built (so a cut
        falls between chunks: a journal file holds whole batches); ``full``
        when the next one would pass batch_rows."""
        queue = self._queue
        limit = self.settings.batch_rows
        rows = self._builder.rows
        chunk: list[Any] = []
        while queue and len(chunk) < DRAIN_CHUNK:
            n = rows_of(queue[0])
            if rows + n > limit and (chunk or self._builder.events):
                return chunk, True
            chunk.append(queue.popleft())
            rows += n
        return chunk, rows >= limit

    def _journal(self, chunk: list[Any]) -> None:
        if self.journal is None:
            return
        try:
            self.journal.append(chunk)
        except Exception as exc:  # noqa: BLE001 - recording goes on; a kill now loses these (counted)
            self.errors.note("journal", exc)

    def _handle(self, event: Any) -> None:
        builder = self._builder
        if not builder.events:
            self._batch_started = time.monotonic()
        try:
            counted = add_event(builder, self.tracker, event)
        except Exception as exc:  # noqa: BLE001 - one bad event must not stop recording
            self.errors.note("handle", exc)
            self._count("bad")
            return
        if counted == ("loss",):
            self._log_loss(event)
            return
        for kind in counted:
            self._count(kind)

    @staticmethod
    def _log_loss(loss: Loss) -> None:
        log.warning("recorder lost events venue={} market={} pair={} events={} reason={}",
                    loss.venue, loss.market, loss.pair,
                    {kind: entry[0] for kind, entry in loss.kinds.items()}, loss.reason)

    def _count(self, kind: str) -> None:
        self._counts[kind] = self._counts.get(kind, 0) + 1

    def _cut(self) -> None:
        batch_id = self.batch_ids.next()
        if self.journal is not None:
            try:
                self.journal.seal(batch_id)
            except Exception as exc:  # noqa: BLE001 - counted; the batch itself goes on
                self.errors.note("journal", exc)
        batch = self._builder.cut(batch_id)
        for kind, n in self._counts.items():
            if kind in ("periodic", "resync"):
                self.metrics.snapshots.labels(kind).inc(n)
            else:
                self.metrics.events.labels(kind).inc(n)
        self._counts.clear()
        self.delivery.submit(batch)

    def _batch_dropped(self, batch: Batch, reason: str) -> None:
        """Delivery could not keep a batch (spill full; recorder thread): its
        losses go into the batch being built, which carries them on (or, if
        dropped too, brings them back here)."""
        log.error("history batch {} dropped ({}): {} rows lost", batch.batch_id, reason, batch.rows())
        rows = self.losses.dropped_batch(batch, reason)
        if not self._builder.events:
            self._batch_started = time.monotonic()
        now_ns = time.time_ns()
        for (venue, market, pair, kind, why), (events, first, last) in rows.items():
            self._builder.add_loss(venue, market, pair, kind, why, events, first, last, now_ns)

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.delivery.start()
        self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        """Stop taking events, batch what is queued, write what time allows and
        spill the rest (replayed at the next start). Raises RecorderStopError
        when something could not be kept or errors happened on the way, so the
        daemon does not report a clean stop."""
        deadline = time.monotonic() + timeout_s
        errors_before = self.errors.count
        with self.losses.lock:
            self._accepting = False
            self._capacity = 0
        self._stopping.set()
        problems = []
        if self._thread is not None:
            self._thread.join(max(0.0, (deadline - time.monotonic()) / 2))
            if self._thread.is_alive():
                problems.append(f"recorder thread did not drain its queue in time: "
                                f"{len(self._queue)} events left")
                log.error(problems[-1])
        try:
            self.delivery.stop(deadline)
        except Exception as exc:  # noqa: BLE001 - reported below, with the rest
            self.errors.note("stop", exc)
        if self.journal is not None and not (self._thread is not None and self._thread.is_alive()):
            self.journal.close()
        self.dead_letters.close()
        if self.errors.count > errors_before:
            problems.append(f"{self.errors.count - errors_before} errors while stopping "
                            f"(last: {self.errors.last})")
        if problems:
            raise RecorderStopError("; ".join(problems))

    def idle(self) -> bool:
        """Nothing queued, batched, in memory or spilled (tests, benchmarks)."""
        return (not self._queue and not self._builder.events and not self.delivery.pending()
                and self.spill.empty())

    def health(self) -> list[Health]:
        if self._thread is None:
            return [Health(self.name, False, "not started")]
        reasons = []
        if not self._thread.is_alive() and not self._stopping.is_set():
            reasons.append("recorder thread died")
        if not self.delivery.alive() and not self._stopping.is_set():
            reasons.append("delivery thread died")
        errors = self.errors.recent(ERROR_ALERT_S)
        if errors:
            reasons.append(errors)
        dropped = self.losses.alert(DROP_ALERT_S)
        if dropped:
            reasons.append(dropped)
        fill = self.spill.bytes_used / max(1, self.spill.max_bytes)
        if fill >= self.settings.spill_alert_fraction:
            reasons.append(f"spill {fill:.0%} full ({self.spill.bytes_used >> 20} of "
                           f"{self.spill.max_bytes >> 20} MB)")
        if self.delivery.failing_since_ns:
            down_s = (time.time_ns() - self.delivery.failing_since_ns) / 1e9
            reasons.append(f"history store not writable for {down_s:.0f}s ({self.delivery.last_error}); "
                           f"{self.spill.batches} batches spilled")
        return [Health(self.name, not reasons, "; ".join(reasons))]

    def status(self) -> dict:
        return {
            "state": "running" if self._thread is not None and self._thread.is_alive() else "stopped",
            "queue_events": len(self._queue), "queue_capacity": self.settings.queue_events,
            "dropped": dict(self.losses.dropped), "memory_batches": self.delivery.pending(),
            "spill_batches": self.spill.batches, "spill_bytes": self.spill.bytes_used,
            "spill_limit_bytes": self.spill.max_bytes, "books_tracked": len(self.tracker.books),
            "store_failing_since_ns": self.delivery.failing_since_ns,
            "last_error": self.delivery.last_error,
            "rejected": {f"{venue}:{field}": n for (venue, field), n in self.dead_letters.counts.items()},
            "errors": self.errors.count, "last_internal_error": self.errors.last,
            "journal": self.journal is not None, "recovered_batches": self.recovered_batches,
            "recovered_pending": self.delivery.recovered_pending(),
        }


class RecorderStopError(RuntimeError):
    """The recorder stopped but could not keep everything, or hit errors on the way."""

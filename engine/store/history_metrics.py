"""Prometheus metrics of the recorder and the history writes, registered once
per daemon registry. Owns names and help texts only; the recorder and the
delivery thread update them."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class HistoryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.events = Counter("engine_recorder_events", "Events the recorder took from its queue",
                              ["kind"], registry=r)
        self.dropped = Counter(
            "engine_recorder_dropped_events",
            "Events not recorded: queue_full (feed faster than the recorder), stopped, "
            "spill_full (store down and the spill at its limit)", ["kind", "reason"], registry=r)
        for kind in ("trade", "delta", "snapshot"):  # 0 until the first loss: alerts see a series
            for reason in ("queue_full", "stopped", "spill_full"):
                self.dropped.labels(kind, reason)
        self.queue = Gauge("engine_recorder_queue_events", "Events waiting in the recorder queue",
                           registry=r)
        self.queue_capacity = Gauge("engine_recorder_queue_capacity",
                                    "Events the recorder queue holds before it drops", registry=r)
        self.snapshots = Counter("engine_recorder_snapshots", "Whole books stored, by reason",
                                 ["reason"], registry=r)
        self.rows = Counter("engine_history_rows_written", "Rows inserted into the history store",
                            ["table"], registry=r)
        self.batches = Counter("engine_history_batches_written",
                               "Batches stored (result=inserted, or already_stored for a retry "
                               "that found its rows there)", ["result"], registry=r)
        self.checked = Counter("engine_history_checked_batches",
                               "Batch writes that first checked what an earlier attempt stored",
                               registry=r)
        self.failures = Counter("engine_history_write_failures",
                                "Batch writes that failed (the batch is kept and retried)", registry=r)
        self.write_seconds = Histogram("engine_history_write_seconds", "Time to store one batch",
                                       buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
                                       registry=r)
        self.store_up = Gauge("engine_history_store_up",
                              "1 when the last write to the history store succeeded", registry=r)
        self.memory_batches = Gauge("engine_history_memory_batches",
                                    "Batches waiting in memory for the store", registry=r)
        self.spill_bytes = Gauge("engine_history_spill_bytes", "Bytes of batches spilled to disk",
                                 registry=r)
        self.spill_batches = Gauge("engine_history_spill_batches", "Batches spilled to disk",
                                   registry=r)
        self.rejected = Counter(
            "engine_recorder_rejected_events",
            "Events refused because a value does not fit the history tables (kept in the "
            "dead-letter file), by venue and field", ["venue", "field"], registry=r)
        self.errors = Counter(
            "engine_recorder_errors",
            "Unexpected errors the recorder swallowed to keep recording (logged), by where: "
            "record, recorder, delivery, spill, journal, dead_letter_*", ["where"], registry=r)
        self.journal_files = Gauge("engine_recorder_journal_files",
                                   "Journal files of batches not yet stored or spilled", registry=r)
        self.spill_limit = Gauge("engine_history_spill_limit_bytes", "Spill size limit",
                                 registry=r)

    def watch(self, queue: Callable[[], int], memory: Callable[[], int],
              spill_bytes: Callable[[], int], spill_batches: Callable[[], int]) -> None:
        """Gauges read at scrape time."""
        self.queue.set_function(queue)
        self.memory_batches.set_function(memory)
        self.spill_bytes.set_function(spill_bytes)
        self.spill_batches.set_function(spill_batches)

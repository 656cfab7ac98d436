"""Loss accounting of the recorder: events it could not keep (queue full,
stopped, spill full), counted per kind for metrics and health, and per book
and kind for the history_losses rows queries use to say a span is missing.
Owns the counts only; the recorder decides where the rows go.

  feed threads ── lose(event, reason) ──► Loss per book, until the recorder
                                           queues it as a marker (in order)
  recorder ── dropped_batch(batch) ──► loss rows per book and kind, merged with
                                        the loss rows the dropped batch carried
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from engine.model import BookDelta, BookSnapshot, Trade
from engine.store.batch import TABLES, Batch
from engine.store.history_metrics import HistoryMetrics

KIND = {BookDelta: "delta", Trade: "trade", BookSnapshot: "snapshot"}
BookKey = tuple[str, str, str]  # venue, market, pair
# (venue, market, pair, kind, reason) -> [events, first recv_ns, last recv_ns]
LossRows = dict[tuple[str, str, str, str, str], list[int]]


@dataclass
class Loss:
    """Events of one book that did not fit; queued after them as a marker."""

    venue: str
    market: str
    pair: str
    reason: str
    kinds: dict[str, list[int]] = field(default_factory=dict)  # kind -> [events, first, last recv_ns]


def _merge(rows: LossRows, key: tuple[str, str, str, str, str], events: int, first: int,
           last: int) -> None:
    entry = rows.get(key)
    if entry is None:
        rows[key] = [events, first, last]
    else:
        entry[0] += events
        entry[1] = min(entry[1], first)
        entry[2] = max(entry[2], last)


class LossLedger:
    def __init__(self, metrics: HistoryMetrics) -> None:
        self.metrics = metrics
        self.lock = threading.Lock()  # feed threads and the recorder thread
        self.pending: dict[BookKey, Loss] = {}  # books with losses not yet queued as markers
        self.dropped: dict[str, int] = {}  # events by kind, since start
        self.last_drop = 0.0  # monotonic

    def lose(self, event: Any, reason: str) -> None:
        """An event not queued (any thread)."""
        kind = KIND[event.__class__]
        with self.lock:
            key = (event.venue, event.market.value, event.pair)
            loss = self.pending.get(key)
            if loss is None:
                loss = self.pending[key] = Loss(*key, reason)
            entry = loss.kinds.get(kind)
            if entry is None:
                loss.kinds[kind] = [1, event.recv_ns, event.recv_ns]
            else:
                entry[0] += 1
                entry[1] = min(entry[1], event.recv_ns)
                entry[2] = max(entry[2], event.recv_ns)
            self._count(kind, 1)
        self.metrics.dropped.labels(kind, reason).inc()

    def _count(self, kind: str, events: int) -> None:
        self.dropped[kind] = self.dropped.get(kind, 0) + events
        self.last_drop = time.monotonic()

    def dropped_batch(self, batch: Batch, reason: str) -> LossRows:
        """Loss rows for a batch nobody could keep, with those it carried."""
        rows: LossRows = {}
        for table, kind in (("trades", "trade"), ("book_deltas", "delta"), ("book_snapshots", "snapshot")):
            columns = batch.tables.get(table)
            if not columns:
                continue
            names = TABLES[table]
            venue, market, pair, recv = (columns[names.index(n)] for n in ("venue", "market", "pair",
                                                                            "recv_ns"))
            # A delta's levels are consecutive rows sharing last_seq and recv_ns: one event.
            seq = columns[names.index("last_seq")] if kind == "delta" else None
            events = 0
            for i in range(len(recv)):
                if seq is not None and i and seq[i] == seq[i - 1] and recv[i] == recv[i - 1] \
                        and pair[i] == pair[i - 1]:
                    continue
                events += 1
                _merge(rows, (venue[i], market[i], pair[i], kind, reason), 1, recv[i], recv[i])
            self.metrics.dropped.labels(kind, reason).inc(events)
            with self.lock:
                self._count(kind, events)
        carried = batch.tables.get("history_losses")
        if carried:
            for v, m, p, k, r, n, first, last in zip(*carried[:8]):
                _merge(rows, (v, m, p, k, r), n, first, last)
        return rows

    def alert(self, window_s: float) -> str:
        """What to say in health while the last drop is younger than ``window_s``."""
        if not self.last_drop or time.monotonic() - self.last_drop >= window_s:
            return ""
        dropped = ", ".join(f"{n} {kind}" for kind, n in sorted(self.dropped.items()))
        return f"events dropped ({dropped}), last {time.monotonic() - self.last_drop:.0f}s ago"

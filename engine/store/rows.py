"""Events into batch rows: the one place that turns a normalized event into
rows of a BatchBuilder, with the whole books the BookTracker decides to
store. Used by the live recorder thread and by the journal replay at
start-up, so both build the same rows from the same events. No I/O."""

from __future__ import annotations

import time
from typing import Any

from engine.model import BookDelta, BookSnapshot, Trade
from engine.store.batch import Batch, BatchBuilder
from engine.store.losses import Loss
from engine.store.tracker import BookTracker


def add_event(builder: BatchBuilder, tracker: BookTracker, event: Any) -> tuple[str, ...]:
    """Rows of one event; returns what to count ("trade", "delta", "snapshot",
    "periodic", "resync"; "loss" for a loss marker)."""
    kind = event.__class__
    if kind is BookDelta:
        builder.add_delta(event)
        stored = tracker.on_delta(event)
        if stored is None:
            return ("delta",)
        builder.add_snapshot(event.venue, event.market.value, event.pair, "periodic", stored.seq,
                             event.exch_ns, stored.recv_ns, stored.bids, stored.asks)
        return ("delta", "periodic")
    if kind is Trade:
        builder.add_trade(event)
        return ("trade",)
    if kind is BookSnapshot:
        stored = tracker.on_snapshot(event)
        builder.add_snapshot(event.venue, event.market.value, event.pair, "resync", stored.seq,
                             event.exch_ns, stored.recv_ns, stored.bids, stored.asks)
        return ("snapshot", "resync")
    if kind is Loss:
        add_loss(builder, tracker, event)
        return ("loss",)
    raise TypeError(f"not a recorded event: {kind.__name__}")


def add_loss(builder: BatchBuilder, tracker: BookTracker, loss: Loss) -> None:
    if "delta" in loss.kinds or "snapshot" in loss.kinds:
        tracker.invalidate((loss.venue, loss.market, loss.pair))
    for kind, (events, first, last) in loss.kinds.items():
        builder.add_loss(loss.venue, loss.market, loss.pair, kind, loss.reason, events, first, last,
                         time.time_ns())


def rows_of(event: Any) -> int:
    """Rows ``event`` may add at most (a delta may bring a periodic book)."""
    kind = event.__class__
    if kind is BookDelta:
        return len(event.bids) + len(event.asks) + 1
    if kind is Loss:
        return len(event.kinds)
    return 1


def rebuild(batch_id: int, events: list[Any], snapshot_interval_ns: int, maybe_sent: bool) -> Batch:
    """The batch a journal file held, under its own id. Its whole books may
    differ from the first build (the replica starts empty), so the store
    treats a unit with any rows of it as stored (``Batch.rebuilt``)."""
    builder = BatchBuilder()
    tracker = BookTracker(snapshot_interval_ns)
    for event in events:
        add_event(builder, tracker, event)
    batch = builder.cut(batch_id)
    batch.maybe_sent = maybe_sent
    batch.rebuilt = True
    return batch

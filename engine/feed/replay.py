"""Offline replay of a capture file through the live code path: the venue
driver, FeedRouter/BookSync and a real shared-memory BookWriter. Never touches
the network: a recorded REST snapshot is fed to the router exactly as the live
connection layer feeds a response. Owns the replay loop and its report only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from pathlib import Path

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.capture import CaptureReader, CaptureRecord
from engine.feed.sync import FeedRouter
from engine.model import Market, SyncState
from engine.venues import make_driver
from engine.venues.base import Driver

# Books one replay can hold. A capture rarely holds more than a few hundred
# pairs; shared memory costs capacity x (64 + 32 x depth) bytes (3 MB here).
REPLAY_CAPACITY = 4096
# The report reads levels from the writer's full-depth book, so the shared
# mirror only needs to be as deep as a live reader would look.
STORE_DEPTH = 20


def book_report(router: FeedRouter, pair: str, depth: int, shared_errors: int) -> dict:
    """The replay CLI's JSON object for one book (tools/replay.py documents it)."""
    driver = router.driver
    book = router.books.get(pair)
    if book is None:
        return {"exchange": driver.venue, "market": driver.market.value, "pair": pair,
                "synced": False, "seq": 0, "bids": [], "asks": [], "messages": 0,
                "deltas_applied": 0, "resyncs": 0, "gaps": 0, "errors": shared_errors}
    with book.lock:
        bids, asks = router.writer.levels(book.index, depth)
        return {"exchange": driver.venue, "market": driver.market.value, "pair": pair,
                "synced": book.state is SyncState.SYNCED, "seq": book.last_seq,
                "bids": [[p, s] for p, s in bids], "asks": [[p, s] for p, s in asks],
                "messages": book.messages, "deltas_applied": book.deltas_applied,
                "resyncs": book.resyncs, "gaps": book.gaps,
                "errors": book.errors + shared_errors}


def feed_records(router: FeedRouter, records: Iterable[CaptureRecord]) -> int:
    """Feed records to ``router`` as the live feed would; returns records that
    could not be used (a REST record whose URL names no pair of this driver's
    market is another market's and is skipped, not counted)."""
    driver: Driver = router.driver
    unusable = 0
    for rec in records:
        if rec.src == "ws":
            router.on_frame(rec.conn, rec.data, rec.t)
            continue
        try:
            pair = driver.snapshot_pair(rec.url)
        except ValueError:
            unusable += 1
            continue
        if pair is not None:
            router.on_snapshot_response(pair, rec.data, rec.t, rec.url)
    return unusable


def replay_book(exchange: str, market: Market | str, path: str | os.PathLike,
                pair: str | None = None, depth: int = 20, symbols: dict[str, str] | None = None,
                ) -> list[dict]:
    """Replay ``path`` and report every book (or only ``pair``), sorted by pair."""
    driver = make_driver(exchange, market, symbols=symbols)
    store = BookStore.create(f"replay-{os.getpid()}-{uuid.uuid4().hex[:8]}", REPLAY_CAPACITY,
                             STORE_DEPTH)
    try:
        router = FeedRouter(driver, BookWriter(store))
        reader = CaptureReader(Path(path))
        unusable = feed_records(router, reader)
        shared = router.errors + reader.bad_lines + unusable + (1 if reader.truncated else 0)
        pairs = [pair] if pair is not None else sorted(router.books)
        return [book_report(router, p, depth, shared) for p in pairs]
    finally:
        store.close()

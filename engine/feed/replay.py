"""Offline replay of a capture file through the live code path: the venue
driver, FeedRouter/BookSync and a real shared-memory BookWriter. Never touches
the network: a recorded REST snapshot is fed to the router exactly as the live
connection layer feeds a response. Owns the replay loop and its report only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
# Records between progress callbacks: often enough for a bar, rare enough to cost nothing.
PROGRESS_EVERY = 10_000


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


@dataclass
class ReplayResult:
    """What one replay read and decided: the books' reports plus the counts a
    user needs to tell "nothing usable here" from "an empty market"."""

    reports: list[dict]
    records: int = 0  # capture records read (ws frames + rest records)
    frames: int = 0  # ws frames among them
    rest: int = 0  # rest records among them
    bad_lines: int = 0  # lines that are not capture records
    truncated: bool = False  # a compressed tail ended mid-frame
    unusable: int = 0  # rest records whose URL this driver cannot read
    parse_errors: int = 0  # frames or events the driver or router rejected
    book_messages: int = 0  # snapshots and deltas that reached a book, all books
    books: list[str] = field(default_factory=list)  # every pair the capture held

    def problem(self, exchange: str, market: str, pair: str | None) -> str | None:
        """Why this replay produced nothing usable for ``pair`` (or any pair), else None."""
        if self.records == 0:
            what = f"{self.bad_lines} line(s) are not capture records" if self.bad_lines \
                else "the file holds no capture record (empty?)"
            return f"no capture record read: {what}" + (
                "; convert other recorders' files with tools/import_capture.py" if self.bad_lines else "")
        if self.book_messages == 0:
            return (f"read {self.records} record(s) ({self.frames} ws, {self.rest} rest) but none is "
                    f"a book message of {exchange} {market} ({self.parse_errors} rejected): is this a "
                    f"capture of another venue or market?")
        if pair is not None and pair not in self.books:
            hint = "" if "/" in pair else "; pairs are written BASE/QUOTE, e.g. BTC/USDT"
            seen = ", ".join(self.books[:10]) + (" ..." if len(self.books) > 10 else "")
            return f"no book for pair {pair!r} in this capture (books: {seen}){hint}"
        return None

    def summary(self) -> str:
        resyncs = sum(r["resyncs"] for r in self.reports)
        return (f"records={self.records} ws={self.frames} rest={self.rest} "
                f"bad_lines={self.bad_lines} truncated={self.truncated} books={len(self.books)} "
                f"book_messages={self.book_messages} resyncs={resyncs} "
                f"errors={self.parse_errors + self.unusable}")


def feed_records(router: FeedRouter, records: Iterable[CaptureRecord],
                 result: ReplayResult | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
    """Feed records to ``router`` as the live feed would; returns records that
    could not be used (a REST record whose URL names no pair of this driver's
    market is another market's and is skipped, not counted). ``result`` (if
    given) counts what was read; ``progress`` is called every PROGRESS_EVERY
    records with the count so far."""
    driver: Driver = router.driver
    unusable = frames = rest = 0
    for rec in records:
        if progress is not None and (frames + rest) % PROGRESS_EVERY == 0:
            progress(frames + rest)
        if rec.src == "ws":
            frames += 1
            router.on_frame(rec.conn, rec.data, rec.t)
            continue
        rest += 1
        try:
            pair = driver.snapshot_pair(rec.url)
        except ValueError:
            unusable += 1
            continue
        if pair is not None:
            router.on_snapshot_response(pair, rec.data, rec.t, rec.url)
    if result is not None:
        result.frames, result.rest, result.records = frames, rest, frames + rest
    return unusable


def replay_book(exchange: str, market: Market | str, path: str | os.PathLike,
                pair: str | None = None, depth: int = 20, symbols: dict[str, str] | None = None,
                progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Replay ``path`` and report every book (or only ``pair``), sorted by pair."""
    driver = make_driver(exchange, market, symbols=symbols)
    store = BookStore.create(f"replay-{os.getpid()}-{uuid.uuid4().hex[:8]}", REPLAY_CAPACITY,
                             STORE_DEPTH)
    try:
        router = FeedRouter(driver, BookWriter(store))
        reader = CaptureReader(Path(path))
        result = ReplayResult([])
        unusable = feed_records(router, reader, result, progress)
        shared = router.errors + reader.bad_lines + unusable + (1 if reader.truncated else 0)
        result.bad_lines, result.truncated, result.unusable = (reader.bad_lines, reader.truncated,
                                                               unusable)
        result.parse_errors = router.errors + sum(b.errors for b in router.books.values())
        result.book_messages = sum(b.messages for b in router.books.values())
        result.books = sorted(router.books)
        pairs = [pair] if pair is not None else result.books
        result.reports = [book_report(router, p, depth, shared) for p in pairs
                          if p in router.books or pair is not None]
        return result
    finally:
        store.close()

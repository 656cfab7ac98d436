"""Per-venue feed throughput: each venue's recorded capture through the live
path (driver parse -> FeedRouter/BookSync -> shared-memory BookWriter), one
thread, REST snapshot records fed untimed. Yields ``<venue>_frames_per_s``
(frames per CPU second of the feed thread).

A venue takes part by shipping ``tests/data/<venue>/BENCH``: one line per
capture, ``<market> <capture file>`` (the file relative to that folder).
  python tools/bench.py feed        (with the Binance pipeline figures)
  python tools/bench_venues.py      (standalone)
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.book.core import make_writer
from engine.book.store import BookStore
from engine.feed.capture import CaptureReader
from engine.feed.sync import FeedRouter
from engine.venues import make_driver

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# Best of this many full passes: captures are short, so take the least
# disturbed pass on a noisy machine rather than an average.
ROUNDS = 5
# Each pass runs the capture at least this many frames' worth (whole passes).
MIN_FRAMES = 20_000
# This thread's CPU time: on the shared host wall time mostly measures others.
CLOCK = time.thread_time
# Book core (config books.core); ENGINE_BENCH_CORE=python measures the reference.
CORE = os.environ.get("ENGINE_BENCH_CORE", "compiled")


def bench_captures() -> list[tuple[str, str, Path]]:
    out = []
    for bench in sorted(DATA.glob("*/BENCH")):
        for line in bench.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                market, name = line.split(None, 1)
                out.append((bench.parent.name, market, bench.parent / name))
    return out


def frames_per_s(venue: str, market: str, path: Path) -> tuple[float, int, int]:
    """(best frames/s, ws frames per pass, resyncs+gaps seen in the last pass)."""
    records = list(CaptureReader(path))
    ws = sum(1 for r in records if r.src == "ws")
    if ws == 0:
        raise ValueError(f"{path}: no WebSocket frames")
    passes = max(1, MIN_FRAMES // ws)
    best = 0.0
    trouble = 0
    for _ in range(ROUNDS):
        elapsed = 0.0
        for _ in range(passes):
            store = BookStore.create(f"bv-{os.getpid()}-{uuid.uuid4().hex[:8]}", 4096, 50)
            try:
                driver = make_driver(venue, market)
                router = FeedRouter(driver, make_writer(store, CORE))
                on_frame = router.on_frame
                i = 0
                while i < len(records):
                    rec = records[i]
                    if rec.src != "ws":  # REST snapshots seed books, untimed
                        pair = driver.snapshot_pair(rec.url)
                        if pair is not None:
                            router.on_snapshot_response(pair, rec.data, rec.t, rec.url)
                        i += 1
                        continue
                    j = i
                    while j < len(records) and records[j].src == "ws":
                        j += 1
                    run = records[i:j]
                    t0 = CLOCK()
                    for r in run:
                        on_frame(r.conn, r.data, r.t)
                    elapsed += CLOCK() - t0
                    i = j
                trouble = sum(b.stats()["resyncs"] + b.stats()["gaps"] for b in router.books.values())
            finally:
                store.close()
        best = max(best, passes * ws / elapsed)
    return best, ws, trouble


def run(args: list[str]) -> Iterator[dict]:
    for venue, market, path in bench_captures():
        rate, ws, trouble = frames_per_s(venue, market, path)
        # Binance's headline binance_frames_per_s is bench_feed's (diff frames only).
        metric = f"binance_{market}_capture_frames_per_s" if venue == "binance" else \
            f"{venue}_frames_per_s"
        yield {"bench": "feed", "metric": metric, "value": round(rate, 1), "unit": "frames/s",
               "capture": f"{path.parent.name}/{path.name}", "market": market,
               "frames": ws, "resyncs_and_gaps": trouble, "core": CORE}


if __name__ == "__main__":
    from loguru import logger

    logger.remove()
    for r in run(sys.argv[1:]):
        print(orjson.dumps(r).decode(), flush=True)

#!/usr/bin/env python3
"""Feed benchmark: recorded Binance spot depth frames through the live path
(orjson decode -> BinanceDriver.parse -> FeedRouter/BookSync -> BookWriter in a
shared-memory BookStore) on one thread, against the floor of a bare
orjson.loads of the same frames.

  python tools/bench.py feed [--input CAPTURE] [--repeat N] [--depth D]
  python tools/bench_feed.py [same options]          # standalone

Frames come from a real capture (default: tests/data/binance/spot_NKNUSDT,
REST snapshot + 149 diffs). To get a stable figure the capture is replayed
``--repeat`` times; each pass shifts every update id past the previous pass
and starts by re-seeding each book from its recorded REST snapshot (untimed),
so every timed frame is a real frame checked against a synced, uncrossed book.
Metrics: binance_frames_per_s, parse_floor_ratio (pipeline time per frame /
orjson.loads time per frame), and the per-frame microseconds behind them, each
part timed alone on the same frames: driver_parse (BinanceDriver.parse),
sync (FeedRouter + BookSync with parsing and book writes taken out) and
book_writer (BookWriter.apply_delta). The parts add up to roughly the pipeline.
Loops are timed in this thread's CPU time (time.thread_time): on the shared
host wall time mostly measures other processes. --core picks the book core.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.book.core import make_writer
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.capture import read_capture
from engine.feed.sync import FeedRouter
from engine.model import Level, Market
from engine.venues import make_driver
from engine.venues.base import Driver, Parsed

DEFAULT_INPUT = Path(__file__).resolve().parent.parent / "tests/data/binance/spot_NKNUSDT.capture.jsonl"
# 200 passes of the default capture = ~30,000 timed frames: a few tenths of a
# second, long enough that timer and warm-up noise stay under a few percent.
DEFAULT_REPEAT = 200
LOADS_ROUNDS = 5  # the floor is the best of these; the pipeline runs once
PART_ROUNDS = 3  # driver parse and sync alone: best of these (each is a short loop)


def row(metric: str, value: float, unit: str) -> dict:
    return {"bench": "feed", "metric": metric, "value": round(value, 3), "unit": unit}


def build_passes(path: Path, repeat: int) -> list[list[tuple[str, str, str]]]:
    """[(src, url, payload)] per pass; update ids shifted so passes chain."""
    base = [(r.src, r.url, r.data if isinstance(r.data, str) else r.data.decode())
            for r in read_capture(path)]
    lo: dict[str, int] = {}
    hi: dict[str, int] = {}
    for src, _, data in base:
        if src != "ws":
            continue
        ev = orjson.loads(data).get("data", {})
        if ev.get("e") == "depthUpdate":
            lo[ev["s"]] = min(lo.get(ev["s"], ev["U"]), ev["U"])
            hi[ev["s"]] = max(hi.get(ev["s"], ev["u"]), ev["u"])
    span = {s: hi[s] - lo[s] + 2 for s in lo}
    passes = []
    for k in range(repeat):
        out = []
        for src, url, data in base:
            obj = orjson.loads(data)
            if src == "rest":
                symbol = url.split("symbol=")[1].split("&")[0]
                obj["lastUpdateId"] += k * span.get(symbol, 0)
            else:
                ev = obj.get("data", obj)
                if ev.get("e") != "depthUpdate":
                    continue  # trades and tickers: not what this bench measures
                shift = k * span[ev["s"]]
                ev["U"] += shift
                ev["u"] += shift
                if "pu" in ev:
                    ev["pu"] += shift
            out.append((src, url, orjson.dumps(obj).decode()))
        # Snapshots first: frames recorded before them are older (dropped by the
        # rule), and the previous pass's book must not see this pass's ids as a gap.
        passes.append(sorted(out, key=lambda rec: rec[0] != "rest"))
    return passes


def bench_pipeline(passes: list, market: str, depth: int, core: str = "compiled") -> tuple[float, int, dict]:
    store = BookStore.create(f"bench-feed-{uuid.uuid4().hex[:8]}", 256, depth)
    try:
        router = FeedRouter(make_driver("binance", market), make_writer(store, core))
        elapsed, frames = _run_router(router, passes)
        stats = {pair: book.stats() for pair, book in router.books.items()}
        return elapsed, frames, stats
    finally:
        store.close()


def bench_floor(frames: list[str]) -> float:
    loads = orjson.loads
    best = float("inf")
    for _ in range(LOADS_ROUNDS):
        start = time.thread_time()
        for frame in frames:
            loads(frame)
        best = min(best, time.thread_time() - start)
    return best


def bench_parse(frames: list[str], market: str) -> float:
    parse = make_driver("binance", market).parse
    best = float("inf")
    for _ in range(PART_ROUNDS):
        start = time.thread_time()
        for frame in frames:
            parse(frame, 0)
        best = min(best, time.thread_time() - start)
    return best


class _NoDeltaWrites(BookWriter):
    """A real BookWriter (snapshots, states) whose apply_delta only accepts:
    what is left of the pipeline is the router and the per-book sync."""

    def apply_delta(self, index: int, bids: Iterable[Level], asks: Iterable[Level],
                    seq: int = 0, exch_ns: int = 0, recv_ns: int = 0) -> bool:
        return True


def _preparsed_driver(market: str) -> Driver:
    """The Binance driver, except that a "frame" is already its Parsed result."""

    class Preparsed(type(make_driver("binance", market))):  # type: ignore[misc]
        def parse(self, frame: Parsed, recv_ns: int) -> Parsed:  # type: ignore[override]
            return frame

    return Preparsed(Market(market))


def bench_sync(passes: list, market: str, depth: int) -> tuple[float, int]:
    """FeedRouter.on_frame + BookSync.on_delta alone: frames parsed untimed,
    deltas accepted without touching a book. The two calls into the driver and
    the writer (~0.15 us together) are counted here as well as in their parts."""
    parser = make_driver("binance", market)
    timed = [[(src, url, data if src == "rest" else parser.parse(data, 0)) for src, url, data in records]
             for records in passes]
    best = float("inf")
    for _ in range(PART_ROUNDS):
        store = BookStore.create(f"bench-sync-{uuid.uuid4().hex[:8]}", 256, depth)
        try:
            router = FeedRouter(_preparsed_driver(market), _NoDeltaWrites(store))
            elapsed, frames = _run_router(router, timed)
            stats = [book.stats() for book in router.books.values()]
            if any(s["state"] != "synced" or s["gaps"] for s in stats):
                raise RuntimeError(f"sync bench books did not stay synced: {stats}")
            best = min(best, elapsed)
        finally:
            store.close()
    return best, frames


def _run_router(router: FeedRouter, passes: list, clock=time.thread_time) -> tuple[float, int]:
    """Time ``router.on_frame`` over every run of WS records; REST records
    re-seed books untimed. Returns (seconds, frames)."""
    driver = router.driver
    on_frame = router.on_frame
    elapsed, frames = 0.0, 0
    for records in passes:
        i = 0
        while i < len(records):
            src, url, data = records[i]
            if src == "rest":  # untimed: the snapshot re-seed is not per-frame work
                router.on_snapshot_response(driver.snapshot_pair(url), data, 0, url)
                i += 1
                continue
            j = i
            while j < len(records) and records[j][0] == "ws":
                j += 1
            run = [records[n][2] for n in range(i, j)]
            start = clock()
            for frame in run:
                on_frame("bench", frame, 0)
            elapsed += clock() - start
            frames += len(run)
            i = j
    return elapsed, frames


def bench_writer(passes: list, market: str, depth: int, core: str = "compiled") -> tuple[float, int]:
    """BookWriter.apply_delta alone on the same deltas (parsed untimed): the
    share of the pipeline that is the shared-memory book, not the feed."""
    driver = make_driver("binance", market)
    store = BookStore.create(f"bench-writer-{uuid.uuid4().hex[:8]}", 256, depth)
    try:
        writer = make_writer(store, core)
        index: dict[str, int] = {}
        last: dict[str, int] = {}
        elapsed, count = 0.0, 0
        clock = time.perf_counter
        for records in passes:
            for src, url, data in records:
                if src == "rest":
                    pair = driver.snapshot_pair(url)
                    snap = driver.parse_snapshot(pair, data, 0)
                    index.setdefault(pair, store.register(pair))
                    writer.apply_snapshot(index[pair], snap.bids, snap.asks, snap.seq)
                    last[pair] = snap.seq
                    continue
                (delta,) = driver.parse(data, 0).events
                if delta.last_seq <= last.get(delta.pair, 1 << 62):
                    continue
                start = clock()
                writer.apply_delta(index[delta.pair], delta.bids, delta.asks, delta.last_seq)
                elapsed += clock() - start
                count += 1
        return elapsed, count
    finally:
        store.close()


def run(args: list[str]) -> Iterator[dict]:
    p = argparse.ArgumentParser(prog="bench.py feed")
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT, help="Binance capture (our format)")
    p.add_argument("--market", default="spot", choices=["spot", "futures"])
    p.add_argument("--repeat", type=int, default=DEFAULT_REPEAT)
    p.add_argument("--depth", type=int, default=50, help="BookStore mirror depth (config default 50)")
    p.add_argument("--core", default="compiled", choices=["compiled", "python"],
                   help="book core (config books.core)")
    opts = p.parse_args(args)
    passes = build_passes(opts.input, opts.repeat)
    ws_frames = [data for records in passes for src, _, data in records if src == "ws"]
    elapsed, frames, stats = bench_pipeline(passes, opts.market, opts.depth, opts.core)
    if any(s["state"] != "synced" or s["gaps"] or s["resyncs"] for s in stats.values()):
        raise RuntimeError(f"bench books did not stay synced: {stats}")
    floor = bench_floor(ws_frames)
    parse_only = bench_parse(ws_frames, opts.market)
    yield row("binance_frames_per_s", frames / elapsed, "frames/s")
    yield row("parse_floor_ratio", (elapsed / frames) / (floor / len(ws_frames)), "ratio")
    yield row("pipeline_us_per_frame", elapsed / frames * 1e6, "us")
    yield row("driver_parse_us_per_frame", parse_only / len(ws_frames) * 1e6, "us")
    sync_s, sync_frames = bench_sync(passes, opts.market, opts.depth)
    yield row("sync_us_per_frame", sync_s / sync_frames * 1e6, "us")
    yield row("orjson_loads_us_per_frame", floor / len(ws_frames) * 1e6, "us")
    writer_s, applied = bench_writer(passes, opts.market, opts.depth, opts.core)
    yield row("book_writer_us_per_delta", writer_s / applied * 1e6, "us")


if __name__ == "__main__":
    from loguru import logger

    logger.remove()
    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

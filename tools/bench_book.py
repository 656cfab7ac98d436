"""Book benchmark: apply rate of the BookStore writer (compiled core and the
pure-Python reference), consistent-read rate from another process, and
write-to-visible latency across processes.
Run: python tools/bench.py book [--seconds S] [--frames N]

Apply figures, per core:
  apply_frames_per_s_real_mix_<core>   synthetic Binance frames with the live mix
      (30-40 changes, 40 % inserts, 40 % deletes, top few hundred levels of
      1,500-level books; bench_frames.py), decoded untimed
  apply_frames_per_s_capture_<core>    the real 2021 spot capture's frames (2.4
      changes a frame), decoded untimed
  apply_msgs_per_s_synthetic10_<core>  the old synthetic messages (10 changes,
      15 % inserts, 15 % deletes), kept for comparison with earlier figures
Times are this thread's CPU time (the host is shared; wall time there mostly
measures other processes); the read rate is reads per CPU second of the reader.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import threading
import time
import uuid
from collections.abc import Iterator

import bench_frames

from engine.book.core import make_writer
from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter

LEVELS = 1000  # per side
DEPTH = 20  # mirrored
CHANGES = 10  # level changes per message
TICK = 0.01


def row(metric: str, value: float, unit: str) -> dict:
    return {"bench": "book", "metric": metric, "value": round(value, 3), "unit": unit}


def make_messages(n: int, top_heavy: bool, seed: int = 7) -> list[tuple[list, list]]:
    """Messages of CHANGES level changes around a 1,000-level book. Level
    positions follow an exponential decay from the top (mean 30 levels), as
    real diff streams do; ``top_heavy`` puts every change in the top 20."""
    rng = random.Random(seed)
    mid = 10_000.0
    msgs = []
    for _ in range(n):
        bids, asks = [], []
        for c in range(CHANGES):
            pos = rng.randrange(DEPTH) if top_heavy else min(int(rng.expovariate(1 / 30)), LEVELS - 1)
            r = rng.random()
            size = 0.0 if r < 0.15 else round(rng.uniform(0.1, 5.0), 3)
            # Inserts between existing ticks keep the book near 1,000 levels.
            offset = 0.5 if r > 0.85 else 0.0
            if c % 2:
                bids.append((round(mid - (pos + offset) * TICK, 4), size))
            else:
                asks.append((round(mid + TICK + (pos + offset) * TICK, 4), size))
        msgs.append((bids, asks))
    return msgs


def seeded_book(writer: BookWriter, index: int) -> None:
    mid = 10_000.0
    writer.apply_snapshot(index, [(round(mid - k * TICK, 4), 1.0) for k in range(LEVELS)],
                          [(round(mid + TICK + k * TICK, 4), 1.0) for k in range(LEVELS)], seq=1)


def bench_apply(top_heavy: bool, n: int = 100_000, core: str = "compiled") -> float:
    store = BookStore.create(f"bench_{uuid.uuid4().hex[:10]}", capacity=4, depth=DEPTH)
    try:
        writer = make_writer(store, core)
        i = store.register("bench:spot:BTC/USDT")
        seeded_book(writer, i)
        msgs = make_messages(n, top_heavy)
        apply = writer.apply_delta
        t0 = time.thread_time()
        for seq, (bids, asks) in enumerate(msgs, 2):
            if not apply(i, bids, asks, seq, seq, seq):
                seeded_book(writer, i)  # a crossed random delta: reseed, as a resync would
        return n / (time.thread_time() - t0)
    finally:
        store.close()


def bench_apply_frames(updates: list, core: str, rounds: int = 3) -> float:
    """Frames per CPU second applying bench_peers.parsed_updates (snapshots untimed)."""
    from bench_peers import apply_ours

    best = 0.0
    for _ in range(rounds):
        seconds, frames, _ = apply_ours(updates, core)
        best = max(best, frames / seconds)
    return best


def _reader_rate(name: str, seconds: float, arrays: bool, out, compiled: bool | None = None) -> None:
    """Consistent top-20 reads; each touches the top of book, and with
    ``arrays`` also builds the numpy level arrays (what a strategy scanning
    the levels pays)."""
    r = BookReader(BookStore.attach(name), compiled=compiled)
    i = r.index("bench:spot:BTC/USDT")
    n = 0
    end = time.perf_counter() + seconds
    cpu = time.thread_time()
    while True:
        for _ in range(1000):
            view = r.read(i, DEPTH)
            if view.best_bid != view.best_bid:
                raise AssertionError("empty book")
            if arrays:
                view.bid_sz.sum()
        n += 1000
        if time.perf_counter() > end:
            break
    out.put((n / (time.thread_time() - cpu), r.retries))
    r.close()


def _reader_latency(name: str, writes: int, out) -> None:
    r = BookReader.attach(name)
    i = r.index("bench:spot:BTC/USDT")
    seen: list[tuple[int, int]] = []
    last = r.version(i)
    out.put("ready")
    deadline = time.monotonic() + 60
    while len(seen) < writes and time.monotonic() < deadline:
        v = r.version(i)
        if v != last and not v & 1:
            t = time.monotonic_ns()
            view = r.read(i, 1)
            seen.append((view.seq, t))
            last = view.version
    out.put(seen)
    r.close()


def bench_reads(seconds: float, arrays: bool = False, core: str = "compiled",
                compiled_reader: bool | None = None) -> tuple[float, int]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    store = BookStore.create(name, capacity=4, depth=DEPTH)
    writer = make_writer(store, core)
    i = store.register("bench:spot:BTC/USDT")
    seeded_book(writer, i)
    msgs = make_messages(20_000, top_heavy=False)
    stop = threading.Event()

    def write() -> None:  # keep the writer busy, paced so both get a core
        seq = 2
        while not stop.is_set():
            for bids, asks in msgs[:200]:
                if not writer.apply_delta(i, bids, asks, seq):
                    seeded_book(writer, i)
                seq += 1
            time.sleep(0.001)

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    t = threading.Thread(target=write)
    t.start()
    p = ctx.Process(target=_reader_rate, args=(name, seconds, arrays, out, compiled_reader))
    p.start()
    rate, retries = out.get(timeout=seconds + 60)
    stop.set()
    t.join()
    p.join()
    store.close()
    return rate, retries


def bench_visible(writes: int = 5000, core: str = "compiled") -> float:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    store = BookStore.create(name, capacity=4, depth=DEPTH)
    writer = make_writer(store, core)
    i = store.register("bench:spot:BTC/USDT")
    seeded_book(writer, i)
    msgs = make_messages(writes, top_heavy=False, seed=3)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    p = ctx.Process(target=_reader_latency, args=(name, writes, out))
    p.start()
    assert out.get(timeout=60) == "ready"
    ends: dict[int, int] = {}
    for seq, (bids, asks) in enumerate(msgs, 2):
        if not writer.apply_delta(i, bids, asks, seq):
            seeded_book(writer, i)
        ends[seq] = time.monotonic_ns()
        time.sleep(0.0002)  # a write every ~0.3 ms, so each is seen on its own
    seen = out.get(timeout=60)
    p.join()
    store.close()
    lat = sorted((t - ends[s]) / 1000 for s, t in seen if s in ends)
    return lat[int(len(lat) * 0.99) - 1] if lat else float("nan")


def run(args: list[str]) -> Iterator[dict]:
    p = argparse.ArgumentParser(prog="bench.py book")
    p.add_argument("--seconds", type=float, default=3.0, help="duration of the read test")
    p.add_argument("--frames", type=int, default=10_000, help="synthetic real-mix frames")
    p.add_argument("--repeat", type=int, default=50, help="passes over the real capture")
    opts = p.parse_args(args)
    from bench_peers import parsed_updates

    mix = parsed_updates(bench_frames.cached_synthetic_passes(opts.frames))
    capture = parsed_updates(bench_frames.real_passes(opts.repeat))
    for core in ("compiled", "python"):
        yield row(f"apply_frames_per_s_real_mix_{core}", bench_apply_frames(mix, core), "frames/s")
        yield row(f"apply_frames_per_s_capture_{core}", bench_apply_frames(capture, core), "frames/s")
        yield row(f"apply_msgs_per_s_synthetic10_{core}", bench_apply(False, core=core), "msg/s")
        yield row(f"apply_msgs_per_s_synthetic10_top_heavy_{core}", bench_apply(True, core=core),
                  "msg/s")
    rate, retries = bench_reads(opts.seconds)
    yield row("reads_per_s", rate, "reads/s")
    yield row("read_retries", retries, "count")
    rate, _ = bench_reads(opts.seconds, arrays=True)
    yield row("reads_with_arrays_per_s", rate, "reads/s")
    rate, _ = bench_reads(opts.seconds, compiled_reader=False)
    yield row("reads_per_s_python_reader", rate, "reads/s")
    yield row("visible_p99_us", bench_visible(), "us")


if __name__ == "__main__":
    import sys

    import orjson

    for r in run(sys.argv[1:]):
        print(orjson.dumps(r).decode())

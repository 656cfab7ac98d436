"""Peer benchmark: our Binance feed path against cryptofeed's and the
``order-book`` C extension, in one process and one run, rounds alternating.

  python tools/bench.py peers [--repeat N] [--frames N] [--rounds N]

On the same frames (real 2021 spot captures, and synthetic frames with the
live mix; see bench_frames.py), each seeded from the same REST snapshot:
  ours        FeedRouter.on_frame: BinanceDriver parse, BookSync, compiled
              BookWriter with its shared-memory mirror (books.core)
  cryptofeed  Binance.message_handler (yapic json + Decimal, its OrderBook),
              driven in-process: no network, no event loop (the coroutine
              never awaits when the book is seeded)
  order_book  the C extension cryptofeed uses, applying the same float level
              changes in a Python loop, as cryptofeed does; against our
              writer's apply_delta on the same lists (publish included)
  orjson / msgspec  bare decoding of the same frames (floors)
Every candidate must end with the same top-20 book before a ratio is printed.
Times are this thread's CPU time (time.thread_time), best of the rounds: on a
shared, loaded host wall time mostly measures the other processes.
cryptofeed and order-book are bench-only (pip install cryptofeed order-book);
without them their rows are left out and a note says so.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import msgspec
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_frames
from bench_feed import _run_router

from engine.book.core import make_writer
from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.feed.sync import FeedRouter
from engine.venues import make_driver

TOP = 20
DEPTH = 50
CLOCK = time.thread_time

try:
    import order_book  # type: ignore[import-not-found]
except ImportError:
    order_book = None
try:
    from cryptofeed.defines import BINANCE, L2_BOOK  # type: ignore[import-not-found]
    from cryptofeed.exchanges import Binance  # type: ignore[import-not-found]
    from cryptofeed.symbols import Symbols  # type: ignore[import-not-found]
    from cryptofeed.types import OrderBook as CfOrderBook  # type: ignore[import-not-found]
except ImportError:
    Binance = None


def row(dataset: str, metric: str, value: float, unit: str) -> dict:
    return {"bench": "peers", "dataset": dataset, "metric": metric, "value": round(value, 3),
            "unit": unit}


def _symbol(url: str) -> str:
    return url.split("symbol=")[1].split("&")[0]


# ----------------------------------------------------------------- ours


def run_ours(passes: list, core: str) -> tuple[float, dict]:
    store = BookStore.create(f"bench-peers-{uuid.uuid4().hex[:8]}", 64, DEPTH)
    try:
        router = FeedRouter(make_driver("binance", "spot"), make_writer(store, core))
        elapsed, _ = _run_router(router, passes, CLOCK)
        stats = {pair: b.stats() for pair, b in router.books.items()}
        if any(s["state"] != "synced" or s["gaps"] or s["resyncs"] for s in stats.values()):
            raise RuntimeError(f"our books did not stay synced: {stats}")
        reader = BookReader(store)
        tops = {}
        for pair, b in router.books.items():
            view = reader.read(b.index, TOP)
            tops[pair.replace("/", "")] = (view.bids.tolist(), view.asks.tolist())
        return elapsed, tops
    finally:
        store.close()


# ----------------------------------------------------------- cryptofeed


def _cf_feed(passes: list):
    symbols = {_symbol(url) for records in passes for src, url, _ in records if src == "rest"}
    driver = make_driver("binance", "spot")
    mapping = {driver.pair(s).replace("/", "-"): s for s in symbols}
    Symbols.set(BINANCE, mapping, {})
    return Binance(symbols=sorted(mapping), channels=[L2_BOOK]), {v: k for k, v in mapping.items()}


def run_cryptofeed(passes: list) -> tuple[float, dict]:
    feed, std_of = _cf_feed(passes)
    handler = feed.message_handler
    clock = CLOCK
    elapsed = 0.0
    for records in passes:
        for src, url, data in records:
            if src == "rest":  # what Binance._snapshot does after its HTTP read (untimed)
                resp = orjson.loads(data)
                std = std_of[_symbol(url)]
                feed.last_update_id[std] = resp["lastUpdateId"]
                feed._l2_book[std] = CfOrderBook(
                    feed.id, std, max_depth=feed.max_depth,
                    bids={Decimal(p): Decimal(q) for p, q in resp["bids"]},
                    asks={Decimal(p): Decimal(q) for p, q in resp["asks"]})
                continue
        start = clock()
        for src, _, data in records:
            if src == "ws":
                coro = handler(data, None, 0.0)
                try:
                    coro.send(None)
                except StopIteration:
                    pass
                else:
                    raise RuntimeError("cryptofeed awaited I/O: the book was not seeded")
        elapsed += clock() - start
    tops = {}
    for exch, std in std_of.items():
        book = feed._l2_book[std].book
        tops[exch] = ([[float(p), float(q)] for p, q in list(book.bids.to_dict().items())[:TOP]],
                      [[float(p), float(q)] for p, q in list(book.asks.to_dict().items())[:TOP]])
    return elapsed, tops


# ---------------------------------------------------- level application


def parsed_updates(passes: list) -> list[list[tuple]]:
    """Per pass: ("snap", symbol, bids, asks, id) and ("delta", symbol, bids, asks, u) for
    each frame the Binance rule applies (float levels, parsed untimed)."""
    out = []
    for records in passes:
        last: dict[str, int] = {}
        ops: list[tuple] = []
        for src, url, data in records:
            if src == "rest":
                resp = orjson.loads(data)
                sym = _symbol(url)
                last[sym] = resp["lastUpdateId"]
                ops.append(("snap", sym, [(float(p), float(q)) for p, q in resp["bids"]],
                            [(float(p), float(q)) for p, q in resp["asks"]], last[sym]))
                continue
            ev = orjson.loads(data)["data"]
            if ev["u"] <= last.get(ev["s"], 1 << 62):
                continue
            last[ev["s"]] = ev["u"]
            ops.append(("delta", ev["s"], [(float(p), float(q)) for p, q in ev["b"]],
                        [(float(p), float(q)) for p, q in ev["a"]], ev["u"]))
        out.append(ops)
    return out


def apply_ours(updates: list, core: str) -> tuple[float, int, dict]:
    store = BookStore.create(f"bench-apply-{uuid.uuid4().hex[:8]}", 64, DEPTH)
    try:
        writer = make_writer(store, core)
        index: dict[str, int] = {}
        apply = writer.apply_delta
        clock = CLOCK
        elapsed, n = 0.0, 0
        for ops in updates:
            run: list[tuple] = []
            for op in ops + [("end",)]:
                if op[0] == "delta":
                    run.append(op)
                    continue
                start = clock()
                for _, sym, bids, asks, seq in run:
                    apply(index[sym], bids, asks, seq)
                elapsed += clock() - start
                n += len(run)
                run = []
                if op[0] == "snap":
                    i = index.setdefault(op[1], store.register(op[1]))
                    writer.apply_snapshot(i, op[2], op[3], op[4])
        reader = BookReader(store)
        tops = {sym: (reader.read(i, TOP).bids.tolist(), reader.read(i, TOP).asks.tolist())
                for sym, i in index.items()}
        return elapsed, n, tops
    finally:
        store.close()


def apply_order_book(updates: list) -> tuple[float, dict]:
    books: dict = {}
    clock = CLOCK
    elapsed = 0.0
    for ops in updates:
        run: list[tuple] = []
        for op in ops + [("end",)]:
            if op[0] == "delta":
                run.append(op)
                continue
            start = clock()
            for _, sym, bids, asks, _seq in run:  # cryptofeed's _book loop, float levels
                ob = books[sym]
                for side, levels in ((ob.bids, bids), (ob.asks, asks)):
                    for px, sz in levels:
                        if sz == 0:
                            if px in side:
                                del side[px]
                        else:
                            side[px] = sz
            elapsed += clock() - start
            run = []
            if op[0] == "snap":
                ob = books[op[1]] = order_book.OrderBook()
                for px, sz in op[2]:
                    ob.bids[px] = sz
                for px, sz in op[3]:
                    ob.asks[px] = sz
    tops = {sym: ([[p, q] for p, q in list(ob.bids.to_dict().items())[:TOP]],
                  [[p, q] for p, q in list(ob.asks.to_dict().items())[:TOP]])
            for sym, ob in books.items()}
    return elapsed, tops


# --------------------------------------------------------------- floors


def floor(frames: list[str], decode) -> float:
    start = CLOCK()
    for f in frames:
        decode(f)
    return CLOCK() - start


def same_tops(name: str, ours: dict, theirs: dict) -> None:
    for sym, (bids, asks) in ours.items():
        other = theirs.get(sym)
        if other is None or [bids, asks] != [list(other[0]), list(other[1])]:
            raise RuntimeError(f"{name} ends with a different top-{TOP} book for {sym}: "
                               f"ours {bids[:3]}/{asks[:3]}, theirs {other and other[0][:3]}")


def bench_dataset(name: str, passes: list, rounds: int, core: str) -> Iterator[dict]:
    frames = [data for records in passes for src, _, data in records if src == "ws"]
    updates = parsed_updates(passes)
    best: dict[str, float] = {}

    def keep(key: str, seconds: float) -> None:
        best[key] = min(best.get(key, float("inf")), seconds)

    msgspec_decode = msgspec.json.decode
    for _ in range(rounds):  # alternate, keep each candidate's best round
        t, ours_top = run_ours(passes, core)
        keep("ours", t)
        if Binance is not None:
            t, cf_top = run_cryptofeed(passes)
            same_tops("cryptofeed", ours_top, cf_top)
            keep("cryptofeed", t)
        t, applied, apply_top = apply_ours(updates, core)
        same_tops("our apply", ours_top, apply_top)
        keep("apply", t)
        if order_book is not None:
            t, ob_top = apply_order_book(updates)
            same_tops("order_book", ours_top, ob_top)
            keep("order_book", t)
        keep("orjson", floor(frames, orjson.loads))
        keep("msgspec", floor(frames, msgspec_decode))
    n = len(frames)
    yield row(name, "frames", n, "frames")
    yield row(name, "level_changes_per_frame", bench_frames.mix(passes)["changes_per_frame"], "levels")
    yield row(name, "ours_frames_per_s", n / best["ours"], "frames/s")
    if "cryptofeed" in best:
        yield row(name, "cryptofeed_frames_per_s", n / best["cryptofeed"], "frames/s")
        yield row(name, "feed_vs_cryptofeed", best["cryptofeed"] / best["ours"], "ratio")
    yield row(name, "feed_vs_orjson_floor", best["ours"] / best["orjson"], "ratio")
    yield row(name, "feed_vs_msgspec_floor", best["ours"] / best["msgspec"], "ratio")
    yield row(name, "apply_us_per_frame", best["apply"] / applied * 1e6, "us")
    if "order_book" in best:
        yield row(name, "order_book_c_us_per_frame", best["order_book"] / applied * 1e6, "us")
        yield row(name, "apply_vs_order_book_c", best["order_book"] / best["apply"], "ratio")


def run(args: list[str]) -> Iterator[dict]:
    p = argparse.ArgumentParser(prog="bench.py peers")
    p.add_argument("--repeat", type=int, default=100, help="passes over the real capture")
    p.add_argument("--frames", type=int, default=10_000, help="synthetic frames")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds; best kept")
    p.add_argument("--core", default="compiled", choices=["compiled", "python"])
    opts = p.parse_args(args)
    missing = [n for n, m in (("cryptofeed", Binance), ("order-book", order_book)) if m is None]
    if missing:
        print(f"bench peers: {', '.join(missing)} not installed; their rows are left out "
              f"(pip install cryptofeed order-book)", file=sys.stderr)
    yield from bench_dataset("binance_spot_real", bench_frames.real_passes(opts.repeat),
                             opts.rounds, opts.core)
    yield from bench_dataset("binance_spot_synthetic_mix",
                             bench_frames.cached_synthetic_passes(opts.frames), opts.rounds, opts.core)


if __name__ == "__main__":
    from loguru import logger

    logger.remove()
    for r in run(sys.argv[1:]):
        print(orjson.dumps(r).decode(), flush=True)

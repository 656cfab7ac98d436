"""History-store benchmark: python tools/bench.py store [options]. JSON lines.

  clickhouse_rows_per_s   book-delta rows/s through HistoryStore.write_batch (the
                          recorder's path: one columnar insert + marker per batch)
                          into a ClickHouse server; a private 18.16 is started here
                          unless --clickhouse HOST:PORT. Target >= 500,000.
  chdb_rows_per_s         the same into chdb (embedded)
  record_us               one Recorder.record() call (admission check + queue append)
  recorder_events_per_s   book-delta events/s one recorder thread turns into rows,
                          batches and chdb inserts (its ceiling; the feed sends ~5,000)
  pipeline_backlog_growth the feed (FeedPool, Binance driver, BookStore) and the
  pipeline_rss_mb         recorder (chdb) in this process, 500 pairs at 5,000 frames/s
                          from the synthetic local venue of bench_feed_socket.py:
                          recorder queue depth at the end minus at the start, and RSS
  monitor_backlog_growth  the same through ``run.py --role monitor`` (a real daemon,
  monitor_rss_mb          read over /status); reported as not measured while the
                          monitor role does not run the recorder yet
Figures, not tests: on a 2-CPU machine the server and this process share cores.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.path.insert(0, str(Path(__file__).resolve().parent))

ROOT = Path(__file__).resolve().parents[1]
LEVELS_PER_DELTA = 10  # level changes per delta event (Binance 100 ms diffs: ~5-20)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.py store", description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000, help="delta rows per insert figure")
    p.add_argument("--batch-rows", type=int, default=50_000, help="rows per batch (recorder default)")
    p.add_argument("--clickhouse", default="", help="HOST:PORT of a server (user/password from "
                   "ENGINE_BENCH_CLICKHOUSE_USER/_PASSWORD); default: start a private one")
    p.add_argument("--pairs", type=int, default=500)
    p.add_argument("--rate", type=float, default=5000.0, help="frames/s, all pairs together")
    p.add_argument("--seconds", type=float, default=60.0, help="measured pipeline/monitor run")
    p.add_argument("--warmup-timeout", type=float, default=180.0)
    p.add_argument("--pipeline-backend", default="chdb", choices=["chdb", "clickhouse"],
                   help="history store of the in-process pipeline run (clickhouse: a private server)")
    p.add_argument("--pipeline-here", action="store_true", help=argparse.SUPPRESS)  # child run
    p.add_argument("--monitor-backend", default="chdb", choices=["chdb", "none"],
                   help="history backend of the run.py --role monitor figure")
    p.add_argument("--skip", default="", help="comma list of: inserts,recorder,pipeline,monitor")
    return p.parse_args(argv)


def row(metric: str, value: float | None, unit: str, note: str = "") -> dict:
    out: dict[str, Any] = {"bench": "store", "metric": metric,
                           "value": None if value is None else round(value, 3), "unit": unit}
    if note:
        out["note"] = note
    return out


# ------------------------------------------------------------------ inserts

def delta_batches(total_rows: int, batch_rows: int, pairs: int) -> list[Any]:
    from engine.model import BookDelta, Market
    from engine.store.batch import BatchBuilder

    t0 = 1_700_000_000 * 10**9
    batches, builder, seq, n = [], BatchBuilder(), 0, 0
    while n < total_rows:
        seq += 1
        pair = f"B{seq % pairs:03d}/USDT"
        half = LEVELS_PER_DELTA // 2
        builder.add_delta(BookDelta("binance", Market.SPOT, pair,
                                    [(100.0 - k * 0.01, float(seq % 7)) for k in range(half)],
                                    [(100.01 + k * 0.01, float(seq % 5)) for k in range(half)],
                                    seq, seq, -1, t0 + seq * 100_000, t0 + seq * 100_000 + 7))
        n += LEVELS_PER_DELTA
        if builder.rows >= batch_rows:
            batches.append(builder.cut(len(batches) + 1))
    if builder.rows:
        batches.append(builder.cut(len(batches) + 1))
    return batches


def insert_rate(store: Any, batches: list[Any]) -> float:
    store.ensure_schema()
    store.write_batch(batches[0])  # warm-up: connection, first parts
    rows = sum(b.rows() for b in batches[1:])
    started = time.perf_counter()
    for batch in batches[1:]:
        store.write_batch(batch)
    return rows / (time.perf_counter() - started)


def history_config(tmp: Path, backend: str, host: str = "", port: int = 9000, user: str = "default",
                   password_env: str = "") -> Any:
    from engine import config as cfg

    history: dict[str, Any] = {"backend": backend, "database": "bench_store"}
    if backend == "clickhouse":
        history |= {"host": host, "port": port, "user": user, "password_env": password_env}
    return cfg.parse({"daemon": {"data_dir": str(tmp), "id": "bench-store"},
                      "storage": {"history": history}})


def bench_inserts(args: argparse.Namespace, tmp: Path) -> Iterator[dict]:
    from engine.store.history import HistoryStore

    batches = delta_batches(args.rows, args.batch_rows, args.pairs)
    server = None
    try:
        if args.clickhouse:
            host, port = args.clickhouse.rsplit(":", 1)
            user = os.environ.get("ENGINE_BENCH_CLICKHOUSE_USER", "default")
            config = history_config(tmp / "server", "clickhouse", host, int(port), user,
                                    "ENGINE_BENCH_CLICKHOUSE_PASSWORD")
        else:
            from tests.support.process import ServerBinaryMissing
            from tests.support.servers import ClickHouseServer

            try:
                server = ClickHouseServer(tmp / "clickhouse")
            except ServerBinaryMissing as exc:
                yield row("clickhouse_rows_per_s", None, "rows/s", f"not measured: {exc}")
                config = None
            else:
                server.start()
                os.environ["ENGINE_BENCH_CLICKHOUSE_PASSWORD"] = server.password
                config = history_config(tmp / "server", "clickhouse", server.host, server.port,
                                        server.user, "ENGINE_BENCH_CLICKHOUSE_PASSWORD")
        if config is not None:
            store = HistoryStore(config)
            try:
                yield row("clickhouse_rows_per_s", insert_rate(store, batches), "rows/s")
            finally:
                store.stop(2.0)
    finally:
        if server is not None:
            server.stop()
    store = HistoryStore(history_config(tmp / "chdb", "chdb"))
    store.start()
    try:
        yield row("chdb_rows_per_s", insert_rate(store, batches), "rows/s")
    finally:
        store.stop(2.0)


# ------------------------------------------------------------------ recorder

def bench_recorder(args: argparse.Namespace, tmp: Path) -> Iterator[dict]:
    from prometheus_client import CollectorRegistry

    from engine.model import BookDelta, Market
    from engine.store.history import HistoryStore
    from engine.store.recorder import Recorder, RecorderSettings

    n = 200_000
    half = LEVELS_PER_DELTA // 2
    t0 = 1_700_000_000 * 10**9
    events = [BookDelta("binance", Market.SPOT, f"B{i % args.pairs:03d}/USDT",
                        [(100.0 - k * 0.01, float(i % 7)) for k in range(half)],
                        [(100.01 + k * 0.01, float(i % 5)) for k in range(half)],
                        i, i, -1, t0 + i * 100_000, t0 + i * 100_000) for i in range(n)]
    # Journal on (the default) and off, in one run so the ratio is fair;
    # record_us: one record() call (the admission check and the queue append).
    for journal in (True, False):
        config = history_config(tmp / f"recorder-{journal}", "chdb")
        store = HistoryStore(config)
        store.start()
        recorder = Recorder(config, CollectorRegistry(), store,
                            RecorderSettings(queue_events=n + 1, journal=journal))
        try:
            started = time.perf_counter()
            for event in events:
                recorder.record(event)
            if journal:
                yield row("record_us", (time.perf_counter() - started) / n * 1e6, "us/event",
                          f"{LEVELS_PER_DELTA}-level deltas, admission check included")
            started = time.perf_counter()
            recorder.start()
            while not recorder.idle():
                time.sleep(0.01)
            yield row("recorder_events_per_s" if journal else "recorder_events_per_s_no_journal",
                      n / (time.perf_counter() - started), "events/s")
        finally:
            recorder.stop(10.0)
            store.stop(2.0)


# ------------------------------------------------------- feed + recorder in-process

def _start_venue(args: argparse.Namespace) -> tuple[Any, Any, int, int]:
    from bench_feed_socket import _venue_main

    ctx = mp.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    venue = ctx.Process(target=_venue_main, args=(args.pairs, args.rate, ports, stop), daemon=True)
    venue.start()
    ws_port, rest_port = ports.get(timeout=30)
    return venue, stop, ws_port, rest_port


def bench_pipeline(args: argparse.Namespace, tmp: Path) -> Iterator[dict]:
    import dataclasses
    import uuid

    import psutil
    from bench_feed_socket import _symbol
    from loguru import logger
    from prometheus_client import CollectorRegistry

    from engine.book.store import BookStore
    from engine.book.writer import BookWriter
    from engine.config import FeedConfig
    from engine.feed.pool import FeedPool
    from engine.model import Market
    from engine.store.history import HistoryStore
    from engine.store.recorder import Recorder
    from engine.venues.base import Subscription
    from engine.venues.binance import BinanceDriver

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    server = None
    if args.pipeline_backend == "clickhouse":
        from tests.support.servers import ClickHouseServer

        server = ClickHouseServer(tmp / "pipeline-clickhouse")
        server.start()
        os.environ["ENGINE_BENCH_CLICKHOUSE_PASSWORD"] = server.password
        config = history_config(tmp / "pipeline", "clickhouse", server.host, server.port, server.user,
                                "ENGINE_BENCH_CLICKHOUSE_PASSWORD")
    else:
        config = history_config(tmp / "pipeline", "chdb")
    venue, stop, ws_port, rest_port = _start_venue(args)
    store = HistoryStore(config)
    store.start()
    recorder = Recorder(config, CollectorRegistry(), store)
    books = BookStore.create(f"benchst{uuid.uuid4().hex[:10]}", args.pairs + 16, 50)
    pool = FeedPool(FeedConfig(max_connections=20, stall_timeout_s=10.0), BookWriter(books),
                    on_event=recorder.record)
    driver = BinanceDriver(Market.SPOT, f"http://127.0.0.1:{rest_port}", f"ws://127.0.0.1:{ws_port}/stream")
    driver.limits = dataclasses.replace(driver.limits, max_streams_per_connection=-(-args.pairs // 20),
                                        rest_weight_per_minute=10**9)
    router = pool.add_feed(driver)
    pairs = [f"{_symbol(i)[:-4]}/USDT" for i in range(args.pairs)]
    pool.subscribe("binance", Market.SPOT, [Subscription(p, trades=False) for p in pairs])
    try:
        recorder.start()
        pool.start()
        deadline = time.monotonic() + args.warmup_timeout
        while time.monotonic() < deadline:
            if len(router.books) == len(pairs) and all(
                    router.stats(p)["state"] == "synced" for p in pairs):
                break
            time.sleep(0.2)
        rss_start_mb = psutil.Process().memory_info().rss / 2**20
        recorded0 = sum(_events(recorder).values())
        started = time.monotonic()
        start_depth = _depth(lambda: recorder.status()["queue_events"])
        time.sleep(max(0.0, args.seconds - 2 * DEPTH_WINDOW_S))
        end_depth = _depth(lambda: recorder.status()["queue_events"])
        elapsed = time.monotonic() - started
        status = recorder.status()
        rss_mb = psutil.Process().memory_info().rss / 2**20
        recorded = sum(_events(recorder).values()) - recorded0
    finally:
        pool.stop(5.0)
        recorder.stop(10.0)
        store.stop(2.0)
        books.close()
        stop.set()
        venue.join(5.0)
        if server is not None:
            server.stop()
    yield row("pipeline_backlog_growth", end_depth - start_depth, "events")
    yield row("pipeline_rss_mb", rss_mb, "MB", f"backend={args.pipeline_backend}; "
              f"{rss_start_mb:.0f} MB once synced")
    yield row("pipeline_recorded_events_per_s", recorded / elapsed, "events/s")
    yield row("pipeline_dropped_events", sum(status["dropped"].values()), "events")


# Queue depth is sampled for this long at the start and at the end, and the
# median taken: one sample swings by the events of one 10 ms drain cycle.
DEPTH_WINDOW_S = 1.0


def _depth(read: Any) -> float:
    samples = []
    until = time.monotonic() + DEPTH_WINDOW_S
    while time.monotonic() < until:
        samples.append(read())
        time.sleep(DEPTH_WINDOW_S / 20)
    return sorted(samples)[len(samples) // 2]


def _events(recorder: Any) -> dict[str, float]:
    return {s.labels["kind"]: s.value for metric in recorder.metrics.events.collect()
            for s in metric.samples if s.name.endswith("_total")}


def pipeline_in_child(args: argparse.Namespace) -> Iterator[dict]:
    """The pipeline run in a fresh process: its RSS must not include what the
    insert benchmarks left in this one."""
    command = [sys.executable, str(Path(__file__).resolve()), "--pipeline-here",
               "--skip", "inserts,recorder,monitor", "--pairs", str(args.pairs), "--rate", str(args.rate),
               "--seconds", str(args.seconds), "--warmup-timeout", str(args.warmup_timeout),
               "--pipeline-backend", args.pipeline_backend]
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          timeout=args.seconds + args.warmup_timeout + 120)
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            yield json.loads(line)


# ------------------------------------------------------------ run.py --role monitor

def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def bench_monitor(args: argparse.Namespace, tmp: Path) -> Iterator[dict]:
    import psutil
    import yaml
    from bench_feed_socket import _symbol

    from tests.support.process import free_port

    venue, stop, ws_port, rest_port = _start_venue(args)
    http_port = free_port()
    config = {
        "daemon": {"data_dir": str(tmp / "monitor"), "id": "bench-monitor", "log_level": "WARNING"},
        "http": {"port": http_port},
        "books": {"capacity": args.pairs + 16, "depth": 50},
        "exchanges": {"binance": {"spot": {"rest": f"http://127.0.0.1:{rest_port}",
                                           "ws": f"ws://127.0.0.1:{ws_port}/stream"},
                                  "max_pairs_per_connection": -(-args.pairs // 20)}},
        "feed": {"max_connections": 20, "subscriptions": [
            {"exchange": "binance", "pair": f"{_symbol(i)[:-4]}/USDT", "trades": False}
            for i in range(args.pairs)]},
        "storage": {"history": {"backend": args.monitor_backend}},
    }
    path = tmp / "monitor.yaml"
    path.write_text(yaml.safe_dump(config))
    daemon = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--role", "monitor", "--config",
                               str(path)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{http_port}"
    try:
        status = None
        for _ in range(300):
            try:
                status = _get_json(url + "/status")
                break
            except OSError:
                if daemon.poll() is not None:
                    break
                time.sleep(0.1)
        if status is None or "recorder" not in status.get("components", {}):
            reason = ("run.py --role monitor does not run the recorder yet (engine/app.py: "
                      "not_built_yet=" + ",".join((status or {}).get("not_built_yet", ["?"])) + ")"
                      if status is not None else "run.py --role monitor did not start")
            yield row("monitor_backlog_growth", None, "events", f"not measured: {reason}")
            yield row("monitor_rss_mb", None, "MB", f"not measured: {reason}")
            return
        deadline = time.monotonic() + args.warmup_timeout
        while time.monotonic() < deadline:
            books = _get_json(url + "/books")["books"]
            if len(books) >= args.pairs and all(b["state"] == "synced" for b in books):
                break
            time.sleep(1.0)
        def depth() -> int:
            return int(_get_json(url + "/status")["components"]["recorder"]["queue_events"])

        start_depth = _depth(depth)
        time.sleep(max(0.0, args.seconds - 2 * DEPTH_WINDOW_S))
        end_depth = _depth(depth)
        end = _get_json(url + "/status")["components"]["recorder"]
        rss_mb = psutil.Process(daemon.pid).memory_info().rss / 2**20
        yield row("monitor_backlog_growth", end_depth - start_depth, "events")
        yield row("monitor_rss_mb", rss_mb, "MB")
        yield row("monitor_dropped_events", sum(end["dropped"].values()), "events")
    finally:
        daemon.terminate()
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        stop.set()
        venue.join(5.0)


def run(argv: list[str] | argparse.Namespace | None = None) -> Iterator[dict]:
    args = argv if isinstance(argv, argparse.Namespace) else parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        if "inserts" not in skip:
            yield from bench_inserts(args, tmp)
        if "recorder" not in skip:
            yield from bench_recorder(args, tmp)
        if args.pipeline_here:
            yield from bench_pipeline(args, tmp)
        elif "pipeline" not in skip:
            yield from pipeline_in_child(args)
        if "monitor" not in skip:
            yield from bench_monitor(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    for line in run(parse_args()):
        print(json.dumps(line), flush=True)

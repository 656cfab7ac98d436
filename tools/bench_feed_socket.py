"""Feed socket benchmark: 500 pairs over at most 20 local WebSocket connections
at 5,000 depth frames/s aggregate, through the real connection threads, pool,
Binance driver, router and shared-memory BookStore. Prints JSON lines.

  venue process (spawned): synthetic Binance spot diff-depth streams + REST /depth
      │ ws://127.0.0.1  (E = send time, ms)
  this process: FeedPool ─► Connection threads ─► FeedRouter ─► BookWriter (shm)

Metrics: ``socket_p99_ms`` = p99 of receive -> book written (visible to readers),
measured by each connection thread around router.on_frame; ``socket_wire_p99_ms``
= p99 of venue send -> book written (ms-resolution send stamp, so an upper
bound; it includes time the frame waited for the venue process and for our
thread to be scheduled, so it depends on how busy the host is);
``socket_backlog_*`` = unread bytes in our sockets (non-zero: we fall behind);
``socket_rss_mb`` = this process's RSS at the end. Targets: p99 < 5 ms,
RSS < 300 MB. Usage: ``python tools/bench_feed_socket.py [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repo importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

LEVELS = 40  # per side in the synthetic books; Binance diffs touch a few at a time
TICK = 0.01


# ------------------------------------------------------------------ venue process

class _Book:
    """One synthetic pair: a fixed mid, levels whose sizes change, ids that advance."""

    def __init__(self, symbol: str, rng: random.Random) -> None:
        self.symbol = symbol
        self.rng = rng
        self.mid = 100.0 + rng.random() * 50
        self.bids = {round(self.mid - TICK * (i + 1), 2): rng.randint(1, 500) for i in range(LEVELS)}
        self.asks = {round(self.mid + TICK * (i + 1), 2): rng.randint(1, 500) for i in range(LEVELS)}
        self.last_id = rng.randint(1_000, 1_000_000)
        self.lock = threading.Lock()

    def delta(self) -> str:
        rng = self.rng
        with self.lock:
            first = self.last_id + 1
            self.last_id += rng.randint(1, 3)
            changes: dict[str, list] = {"b": [], "a": []}
            for _ in range(rng.randint(1, 3)):
                side = "b" if rng.random() < 0.5 else "a"
                i = rng.randint(0, LEVELS - 1)
                px = round(self.mid - TICK * (i + 1), 2) if side == "b" else round(
                    self.mid + TICK * (i + 1), 2)
                size = 0 if rng.random() < 0.1 else rng.randint(1, 500)
                book = self.bids if side == "b" else self.asks
                if size:
                    book[px] = size
                else:
                    book.pop(px, None)
                changes[side].append([f"{px:.2f}", f"{size}.00000000"])
            return ('{"stream":"%s@depth@100ms","data":{"e":"depthUpdate","E":%d,"s":"%s",'
                    '"U":%d,"u":%d,"b":%s,"a":%s}}' % (
                        self.symbol.lower(), time.time_ns() // 1_000_000, self.symbol, first,
                        self.last_id, json.dumps(changes["b"]), json.dumps(changes["a"])))

    def snapshot(self) -> str:
        with self.lock:
            return json.dumps({
                "lastUpdateId": self.last_id,
                "bids": [[f"{p:.2f}", f"{s}"] for p, s in sorted(self.bids.items(), reverse=True)],
                "asks": [[f"{p:.2f}", f"{s}"] for p, s in sorted(self.asks.items())]})


def _venue_main(pairs: int, rate: float, ports: Any, stop: Any) -> None:
    """The synthetic venue; runs in its own process so it does not share our GIL."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.server import serve

    rng = random.Random(1)
    books = {s: _Book(s, rng) for s in (_symbol(i) for i in range(pairs))}
    per_pair_interval = pairs / rate  # each pair sends every this many seconds

    def handle(ws) -> None:
        mine: list[_Book] = []
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                while True:
                    try:
                        msg = json.loads(ws.recv(timeout=0))
                    except TimeoutError:
                        break
                    if msg.get("method") == "SUBSCRIBE":
                        mine += [books[p.split("@")[0].upper()] for p in msg["params"]
                                 if p.endswith("@depth@100ms")]
                        ws.send(json.dumps({"result": None, "id": msg.get("id")}))
                if not mine:
                    time.sleep(0.01)
                    next_at = time.monotonic()
                    continue
                # Frames of this socket are spread evenly over each pair's interval.
                step = per_pair_interval / len(mine)
                for book in mine:
                    now = time.monotonic()
                    if next_at > now:
                        time.sleep(next_at - now)
                    ws.send(book.delta())
                    next_at += step
                    if next_at < time.monotonic() - 1.0:  # fell far behind: do not burst
                        next_at = time.monotonic()
        except ConnectionClosed:
            pass

    class Rest(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            symbol = self.path.split("symbol=")[1].split("&")[0]
            body = books[symbol].snapshot().encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    ws_server = serve(handle, "127.0.0.1", 0, compression=None, ping_interval=None)
    http = ThreadingHTTPServer(("127.0.0.1", 0), Rest)
    http.daemon_threads = True
    threading.Thread(target=ws_server.serve_forever, daemon=True).start()
    threading.Thread(target=http.serve_forever, daemon=True).start()
    ports.put((ws_server.socket.getsockname()[1], http.server_address[1]))
    stop.wait()
    ws_server.shutdown()
    http.shutdown()


def _symbol(i: int) -> str:
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    return "B" + letters[i // 676 % 26] + letters[i // 26 % 26] + letters[i % 26] + "USDT"


# ------------------------------------------------------------------ the feed side

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pairs", type=int, default=500)
    p.add_argument("--connections", type=int, default=20, help="cap (feed.max_connections)")
    p.add_argument("--rate", type=float, default=5000.0, help="frames/s, all pairs together")
    p.add_argument("--seconds", type=float, default=60.0, help="measured run after warm-up")
    p.add_argument("--warmup-timeout", type=float, default=60.0)
    p.add_argument("--switch-interval-ms", type=float, default=0.0,
                   help="sys.setswitchinterval for this run (0: leave Python's 5 ms)")
    return p.parse_args(argv)


def run(args: argparse.Namespace | list[str] | None = None) -> Iterator[dict]:
    if not isinstance(args, argparse.Namespace):
        args = parse_args(args)
    import psutil
    from loguru import logger

    from engine.book.store import BookStore
    from engine.book.writer import BookWriter
    from engine.config import FeedConfig
    from engine.feed.health import LatencyHistogram
    from engine.feed.pool import FeedPool
    from engine.model import BookDelta, Market
    from engine.venues.base import Subscription
    from engine.venues.binance import BinanceDriver

    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    if args.switch_interval_ms > 0:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    ctx = mp.get_context("spawn")
    ports, stop = ctx.Queue(), ctx.Event()
    venue = ctx.Process(target=_venue_main, args=(args.pairs, args.rate, ports, stop), daemon=True)
    venue.start()
    ws_port, rest_port = ports.get(timeout=30)

    per_conn = -(-args.pairs // args.connections)
    store = BookStore.create(f"bench{uuid.uuid4().hex[:10]}", args.pairs + 16, 50)
    wire: dict[int, LatencyHistogram] = {}
    measuring = threading.Event()

    def on_event(event: object) -> None:  # runs on the connection threads
        if measuring.is_set() and type(event) is BookDelta:
            hist = wire.get(threading.get_ident())
            if hist is None:
                hist = wire.setdefault(threading.get_ident(), LatencyHistogram())
            hist.observe_ns(time.time_ns() - event.exch_ns)  # type: ignore[attr-defined]

    config = FeedConfig(max_connections=args.connections, stall_timeout_s=10.0)
    pool = FeedPool(config, BookWriter(store), on_event=on_event)
    driver = BinanceDriver(Market.SPOT, f"http://127.0.0.1:{rest_port}",
                           f"ws://127.0.0.1:{ws_port}/stream")
    # The local venue's limits, not Binance's: the budget is not under test here.
    driver.limits = dataclasses.replace(driver.limits, max_streams_per_connection=per_conn,
                                        rest_weight_per_minute=10**9)
    router = pool.add_feed(driver)
    pairs = [f"{_symbol(i)[:-4]}/USDT" for i in range(args.pairs)]
    pool.subscribe("binance", Market.SPOT, [Subscription(p, trades=False) for p in pairs])
    proc = psutil.Process()
    try:
        pool.start()
        t0 = time.monotonic()
        while time.monotonic() - t0 < args.warmup_timeout:
            if all(router.stats(p)["state"] == "synced" for p in pairs if p in router.books) \
                    and len(router.books) == len(pairs):
                break
            time.sleep(0.2)
        warmup_s = time.monotonic() - t0
        synced = sum(1 for p in pairs if router.stats(p)["state"] == "synced")
        conns = pool.connections()
        for c in conns:
            c.stats.latency.reset()
        messages0 = sum(c.stats.messages for c in conns)
        cpu0 = proc.cpu_times()
        measuring.set()
        started = time.monotonic()
        backlog: list[int] = []  # unread kernel bytes over all sockets, sampled
        while time.monotonic() - started < args.seconds:
            backlog.append(sum(c.backlog_bytes() for c in conns))
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        measuring.clear()
        cpu1 = proc.cpu_times()
        received = sum(c.stats.messages for c in conns) - messages0
        merged = LatencyHistogram()
        for c in conns:
            merged.merge(c.stats.latency)
        wire_all = LatencyHistogram()
        for h in list(wire.values()):
            wire_all.merge(h)
        stats = [router.stats(p) for p in pairs]
        rss_mb = proc.memory_info().rss / 2**20
    finally:
        pool.stop(5.0)
        stop.set()
        venue.join(5.0)
        store.close()

    def m(metric: str, value: float, unit: str) -> dict:
        return {"bench": "feed", "metric": metric, "value": round(value, 4), "unit": unit}

    yield m("socket_p99_ms", merged.quantile_s(0.99) * 1e3, "ms")
    yield m("socket_p50_ms", merged.quantile_s(0.50) * 1e3, "ms")
    yield m("socket_p999_ms", merged.quantile_s(0.999) * 1e3, "ms")
    yield m("socket_wire_p99_ms", wire_all.quantile_s(0.99) * 1e3, "ms")
    yield m("socket_rss_mb", rss_mb, "MB")
    # Falling behind shows here: bytes the kernel holds that our threads have not read.
    yield m("socket_backlog_max_kb", max(backlog, default=0) / 1024, "KB")
    yield m("socket_backlog_mean_kb", sum(backlog) / max(1, len(backlog)) / 1024, "KB")
    yield m("host_load_1m", os.getloadavg()[0], "load")
    yield m("socket_frames_per_s", received / elapsed, "frames/s")
    yield m("socket_cpu_percent", 100 * (cpu1.user + cpu1.system - cpu0.user - cpu0.system)
            / elapsed, "%")
    yield m("socket_connections", len(conns), "connections")
    yield m("socket_books_synced", synced, "books")
    yield m("socket_warmup_s", warmup_s, "s")
    yield m("socket_resyncs", sum(s["resyncs"] for s in stats), "resyncs")
    yield m("socket_gaps", sum(s["gaps"] for s in stats), "gaps")
    yield m("socket_seconds", elapsed, "s")


if __name__ == "__main__":
    for row in run(parse_args()):
        print(json.dumps(row), flush=True)

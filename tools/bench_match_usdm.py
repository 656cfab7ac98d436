"""USD-M dialect benchmark: the same order flow (resting limits, cancels,
marketable limits) on a perpetual, measured in one run at three depths:

  core_perp_orders_per_s   MatchingEngine.submit/cancel with the derivatives
                           settlement (margin, positions, fees), no I/O
  usdm_wire_orders_per_s   the USD-M dialect's wire path in process: signed
                           HTTP requests (pre-built) through RestApi.handle -
                           params, HMAC check, limiter, exchange lock, engine,
                           state rows, user-event rendering, JSON answer
  exchange_perp_orders_per_s  Exchange.place/cancel: the plumbing all dialects
                           share (lock, engine, market data, state rows, listeners)
  usdm_wire_vs_core        wire / core, and usdm_wire_vs_exchange: wire / shared
next to the spot core's own rate (bench_match's orders_per_s).

Run: python tools/bench.py match  (or python tools/bench_match_usdm.py [--orders N])
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.sim import orders as o
from engine.sim.http_wire import HttpRequest
from engine.sim.orders import OrderRequest, Rejected
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config

PERP = "BTCUSDT-PERP"
MID = 3_000_000  # 30000.00 at tick 0.01
ACCOUNTS = ("alice", "bob")


def row(metric: str, value: float, unit: str) -> dict:
    return {"bench": "match", "metric": metric, "value": round(value, 3), "unit": unit}


def _flow(count: int, seed: int) -> list[tuple]:
    """(kind, account, side, qty units, price units, tif, client id, cancel target)."""
    rng = random.Random(seed)
    ops: list[tuple] = []
    placed: list[tuple[str, str]] = []
    for i in range(count):
        roll = rng.random()
        side = o.BUY if rng.random() < 0.5 else o.SELL
        qty = rng.randint(1, 50) * 100  # 0.001 .. 0.05 at step 0.00001
        if roll < 0.80 or not placed:
            taking = roll >= 0.55
            offset = rng.randint(0, 60) if taking else rng.randint(1, 200)
            price = MID + (offset if (side == o.BUY) == taking else -offset)
            account = ACCOUNTS[i & 1]
            client_id = f"b{i}"
            tif = (o.IOC if rng.random() < 0.5 else o.GTC) if taking else o.GTC
            ops.append(("new", account, side, qty, price, tif, client_id, None))
            if not taking:
                placed.append((account, client_id))
        else:
            target = placed.pop(rng.randrange(len(placed)))
            ops.append(("cancel", target[0], None, 0, 0, None, None, target[1]))
    return ops


def _venue(data_dir: str) -> LocalVenue:
    unlimited = Limits(weight_per_minute=10**9, orders_per_10s=10**9, orders_per_day=10**9)
    venue = LocalVenue(venue_config(usdm=True), Path(data_dir), limits=unlimited)
    venue.start()
    assert venue.usdm is not None
    venue.usdm.ctx.limiter.limits = unlimited  # type: ignore[misc]
    return venue


def bench_exchange(count: int, seed: int) -> float:
    """The venue plumbing every dialect shares: Exchange.place/cancel (lock,
    engine, market data, state rows, listeners) without any wire format."""
    with tempfile.TemporaryDirectory() as data_dir:
        venue = _venue(data_dir)
        try:
            exchange = venue.exchange
            assert exchange is not None
            ops = _flow(count, seed)
            started = time.perf_counter()
            for kind, account, side, qty, price, tif, client_id, target in ops:
                try:
                    if kind == "new":
                        exchange.place(account, OrderRequest(
                            PERP, side, o.LIMIT, tif, qty, None, price,
                            client_order_id=client_id))
                    else:
                        exchange.cancel(account, PERP, None, target)
                except Rejected:
                    pass
            return count / (time.perf_counter() - started)
        finally:
            venue.stop()


def bench_core(count: int, seed: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        venue = _venue(data_dir)
        try:
            assert venue.exchange is not None
            engine = venue.exchange.engine
            ops = _flow(count, seed)
            now = int(time.time() * 1000)
            with venue.exchange.lock:  # the engine alone: nothing else may run
                started, cpu_started = time.perf_counter(), time.thread_time()
                for kind, account, side, qty, price, tif, client_id, target in ops:
                    try:
                        if kind == "new":
                            engine.submit(account, OrderRequest(
                                PERP, side, o.LIMIT, tif, qty, None, price,
                                client_order_id=client_id), now)
                        else:
                            engine.cancel(account, PERP, now, None, target)
                    except Rejected:
                        pass
                return (count / (time.perf_counter() - started),
                        count / (time.thread_time() - cpu_started))
        finally:
            venue.stop()


def _requests(count: int, seed: int) -> list[HttpRequest]:
    now = int(time.time() * 1000)
    built = []
    for kind, account, side, qty, price, tif, client_id, target in _flow(count, seed):
        if kind == "new":
            params = {"symbol": "BTCUSDT", "side": side, "type": "LIMIT", "timeInForce": tif,
                      "quantity": f"{qty / 10**5:.5f}", "price": f"{price / 100:.2f}",
                      "newClientOrderId": client_id}
            method = "POST"
        else:
            params = {"symbol": "BTCUSDT", "origClientOrderId": target}
            method = "DELETE"
        params.update({"recvWindow": 60000, "timestamp": now})
        query = urlencode(params)
        signature = hmac.new(f"{account}-secret".encode(), query.encode(),
                             hashlib.sha256).hexdigest()
        target_url = f"/fapi/v1/order?{query}&signature={signature}"
        headers = {"x-mbx-apikey": f"{account}-key", "host": "127.0.0.1"}
        built.append(HttpRequest(method, target_url, "HTTP/1.1", headers, b"", b""))
    return built


def bench_wire(count: int, seed: int) -> tuple[float, int, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        venue = _venue(data_dir)
        try:
            assert venue.usdm is not None
            handle = venue.usdm.rest.handle
            requests = _requests(count, seed)
            errors = 0
            started, cpu_started = time.perf_counter(), time.thread_time()
            for request in requests:
                response = handle(request, "127.0.0.1")
                if response.status != 200:
                    errors += 1  # cancels of orders that filled meanwhile (-2011)
            return (count / (time.perf_counter() - started), errors,
                    count / (time.thread_time() - cpu_started))
        finally:
            venue.stop()


def run(args: list[str]) -> Iterator[dict]:
    parser = argparse.ArgumentParser(prog="bench.py match (usdm)")
    parser.add_argument("--usdm-orders", type=int, default=20_000)
    parser.add_argument("--usdm-rounds", type=int, default=3)
    options, _ = parser.parse_known_args(args)
    cores = [bench_core(options.usdm_orders, seed) for seed in range(options.usdm_rounds)]
    core = max(c[0] for c in cores)
    shared = max(bench_exchange(options.usdm_orders, seed)
                 for seed in range(options.usdm_rounds))
    wires = [bench_wire(options.usdm_orders, seed) for seed in range(options.usdm_rounds)]
    wire = max(w[0] for w in wires)
    yield row("core_perp_orders_per_s", core, "orders/s")
    yield row("exchange_perp_orders_per_s", shared, "orders/s")
    yield row("usdm_wire_orders_per_s", wire, "orders/s")
    yield row("usdm_wire_vs_core", wire / core, "ratio")
    yield row("usdm_wire_vs_exchange", wire / shared, "ratio")
    yield row("usdm_wire_rejected", wires[0][1], "requests")
    # per CPU second of the calling thread (the venue's other threads excluded):
    # what one core does when it gets the core, less sensitive to a busy host
    core_cpu, wire_cpu = max(c[1] for c in cores), max(w[2] for w in wires)
    yield row("core_perp_orders_per_cpu_s", core_cpu, "orders/s")
    yield row("usdm_wire_orders_per_cpu_s", wire_cpu, "orders/s")
    yield row("usdm_wire_vs_core_cpu", wire_cpu / core_cpu, "ratio")


if __name__ == "__main__":
    import orjson

    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

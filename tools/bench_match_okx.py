"""OKX dialect benchmark: the same order flow (resting limits, cancels,
marketable limits and IOCs) measured in one run on SPOT and SWAP:

  core_orders_per_s         MatchingEngine.submit/cancel on the spot symbol, no I/O
  exchange_orders_per_s     Exchange.place/cancel: the plumbing every dialect shares
  okx_wire_orders_per_s     the OKX dialect's REST path in process: pre-signed HTTP
                            requests through OkxRest.handle - JSON body, OK-ACCESS-*
                            HMAC check, limiter, order parsing, exchange lock,
                            engine, state rows, listener, envelope
  okx_swap_wire_orders_per_s  the same on BTC-USDT-SWAP (derivatives settlement)
  okx_wire_vs_core, okx_wire_vs_exchange  the ratios (issue 11: >= 0.7 of the core)

Run: python tools/bench.py match  (or python tools/bench_match_okx.py [--okx-orders N])
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.config import OkxVenueConfig
from engine.sim import orders as o
from engine.sim.http_wire import HttpRequest
from engine.sim.okx.rest import LIMITS
from engine.sim.orders import OrderRequest, Rejected
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config

MID = 3_000_000  # 30000.00 at tick 0.01
ACCOUNTS = ("alice", "bob")
UNLIMITED = {name: (10**9, 2000) for name in LIMITS}


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
    big = {"USDT": "100000000", "BTC": "100000"}
    config = dataclasses.replace(venue_config(accounts=[
        dataclasses.replace(a, balances=big) for a in venue_config().accounts]),
        okx=OkxVenueConfig(enabled=True))
    venue = LocalVenue(config, Path(data_dir), limits=unlimited)
    venue.start()
    assert venue.okx is not None
    venue.okx.rest.window.limits.update(UNLIMITED)
    return venue


def bench_core(count: int, seed: int) -> float:
    with tempfile.TemporaryDirectory() as data_dir:
        venue = _venue(data_dir)
        try:
            assert venue.exchange is not None
            engine = venue.exchange.engine
            ops = _flow(count, seed)
            now = int(time.time() * 1000)
            with venue.exchange.lock:  # the engine alone: nothing else may run
                started = time.perf_counter()
                for kind, account, side, qty, price, tif, client_id, target in ops:
                    try:
                        if kind == "new":
                            engine.submit(account, OrderRequest(
                                "BTCUSDT", side, o.LIMIT, tif, qty, None, price,
                                client_order_id=client_id), now)
                        else:
                            engine.cancel(account, "BTCUSDT", now, None, target)
                    except Rejected:
                        pass
                return count / (time.perf_counter() - started)
        finally:
            venue.stop()


def bench_exchange(count: int, seed: int) -> float:
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
                            "BTCUSDT", side, o.LIMIT, tif, qty, None, price,
                            client_order_id=client_id))
                    else:
                        exchange.cancel(account, "BTCUSDT", None, target)
                except Rejected:
                    pass
            return count / (time.perf_counter() - started)
        finally:
            venue.stop()


CHUNK = 2000  # requests signed at a time: every timestamp stays inside OKX's 30 s window


def _sign_chunk(venue: LocalVenue, ops: list[tuple], inst_id: str) -> list[HttpRequest]:
    assert venue.okx is not None
    keys = {k.account: k for k in venue.okx.keys.values()}
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    mode = "cross" if inst_id.endswith("-SWAP") else "cash"
    built = []
    for kind, account, side, qty, price, tif, client_id, target in ops:
        if kind == "new":
            body = {"instId": inst_id, "tdMode": mode, "side": side.lower(),
                    "ordType": "ioc" if tif == o.IOC else "limit",
                    "sz": f"{qty / 10**5:.5f}", "px": f"{price / 100:.2f}", "clOrdId": client_id}
            path = "/api/v5/trade/order"
        else:
            body = {"instId": inst_id, "clOrdId": target}
            path = "/api/v5/trade/cancel-order"
        text = orjson.dumps(body)
        key = keys[account]
        sign = base64.b64encode(hmac.new(key.secret_key.encode(), (
            stamp + "POST" + path).encode() + text, hashlib.sha256).digest()).decode()
        headers = {"ok-access-key": key.api_key, "ok-access-sign": sign,
                   "ok-access-timestamp": stamp, "ok-access-passphrase": key.passphrase,
                   "content-type": "application/json", "host": "127.0.0.1"}
        built.append(HttpRequest("POST", path, "HTTP/1.1", headers, text, b""))
    return built


def bench_wire(count: int, seed: int, inst_id: str) -> tuple[float, int, int]:
    """(orders/s over the handling time only, failed answers, of which auth refusals)."""
    with tempfile.TemporaryDirectory() as data_dir:
        venue = _venue(data_dir)
        try:
            assert venue.okx is not None
            handle = venue.okx.rest.handle
            ops = _flow(count, seed)
            failed = refused = 0
            spent = 0.0
            for first in range(0, count, CHUNK):
                requests = _sign_chunk(venue, ops[first:first + CHUNK], inst_id)
                started = time.perf_counter()
                for request in requests:
                    response = handle(request, "127.0.0.1")
                    if response.status == 401:
                        refused += 1  # a stale timestamp would make the figure meaningless
                    if response.status != 200 or b'"code":"0"' not in response.body:
                        failed += 1  # cancels of orders that filled meanwhile (51400)
                spent += time.perf_counter() - started
            return count / spent, failed, refused
        finally:
            venue.stop()


def run(args: list[str]) -> Iterator[dict]:
    parser = argparse.ArgumentParser(prog="bench.py match (okx)")
    parser.add_argument("--okx-orders", type=int, default=20_000)
    parser.add_argument("--okx-rounds", type=int, default=3)
    options, _ = parser.parse_known_args(args)
    count, rounds = options.okx_orders, range(options.okx_rounds)
    core = max(bench_core(count, seed) for seed in rounds)
    shared = max(bench_exchange(count, seed) for seed in rounds)
    wires = [bench_wire(count, seed, "BTC-USDT") for seed in rounds]
    wire = max(w[0] for w in wires)
    swap = max(bench_wire(count, seed, "BTC-USDT-SWAP")[0] for seed in rounds)
    yield row("core_orders_per_s", core, "orders/s")
    yield row("exchange_orders_per_s", shared, "orders/s")
    yield row("okx_wire_orders_per_s", wire, "orders/s")
    yield row("okx_swap_wire_orders_per_s", swap, "orders/s")
    yield row("okx_wire_vs_core", wire / core, "ratio")
    yield row("okx_wire_vs_exchange", wire / shared, "ratio")
    yield row("okx_wire_failed", wires[0][1], "requests")
    yield row("okx_wire_auth_refused", sum(w[2] for w in wires), "requests")  # must be 0


if __name__ == "__main__":
    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

"""Local venue benchmark: matching rate in-process, WebSocket fan-out of one
depth stream to many clients, and signed REST order round trips.

Run: python tools/bench.py match [--orders N] [--rounds N] [--clients N]
     [--seconds S] [--rest-orders N] [--ws-api-orders N]
     (or python tools/bench_match.py ...)

Metrics: orders_per_s (a mixed flow of resting limits, cancels and
marketable limits on one MatchingEngine, one core, no I/O); ws_clients and
ws_delivery_p99_ms (clients in a separate process on one @depth@100ms
stream, latency = receive time - the event's "E" time; both clocks are this
host's wall clock, so the figure has 1 ms resolution); rest_orders_per_s
(one requests.Session placing signed LIMIT orders back to back);
ws_api_orders_per_s and ws_api_order_rtt_p50/p99_ms (signed order.place round
trips on one /ws-api/v3 connection, back to back) and their rate over REST's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import queue
import random
import selectors
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine.config import VenueSymbolConfig
from engine.sim import orders as o
from engine.sim.filters import SymbolSpec, amount_decimals_for
from engine.sim.ledger import Ledger
from engine.sim.matching import MatchingEngine
from engine.sim.orders import OrderRequest, Rejected
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config

MID = 3_000_000  # price units (30000.00 at tick 0.01)


def row(metric: str, value: float, unit: str) -> dict:
    return {"bench": "match", "metric": metric, "value": round(value, 3), "unit": unit}


# ---------------------------------------------------------------- matching


def _flow(count: int, seed: int) -> list[tuple]:
    """Pre-drawn operations so the timed loop measures the engine, not random."""
    rng = random.Random(seed)
    ops: list[tuple] = []
    for _ in range(count):
        roll = rng.random()
        side = o.BUY if rng.random() < 0.5 else o.SELL
        qty = rng.randint(1, 50) * 100  # 0.001 .. 0.05 BTC at step 0.00001
        if roll < 0.55:  # resting limit, behind the touch
            offset = rng.randint(1, 200)
            price = MID - offset if side == o.BUY else MID + offset
            ops.append(("rest", side, qty, price))
        elif roll < 0.80:
            ops.append(("cancel", rng.random()))
        else:  # marketable: crosses a few levels, the remainder rests (GTC) or expires
            offset = rng.randint(0, 60)
            price = MID + offset if side == o.BUY else MID - offset
            ops.append(("take", side, qty, price, o.IOC if rng.random() < 0.5 else o.GTC))
    return ops


def bench_orders(count: int, seed: int = 1) -> tuple[float, float, int]:
    """(orders per wall second, per CPU second of this thread, trades)."""
    symbol = VenueSymbolConfig("BTCUSDT", "BTC", "USDT")
    decimals = amount_decimals_for([symbol])
    spec = SymbolSpec.from_config(symbol, decimals)
    ledger = Ledger()
    accounts = ("maker-a", "maker-b", "taker-a", "taker-b")
    for name in accounts:
        ledger.open_account(name, {"BTC": 10**9 * 10**decimals, "USDT": 10**13 * 10**decimals})
    engine = MatchingEngine([spec], ledger)
    ops = _flow(count, seed)
    resting: list[tuple[str, int]] = []
    trades = 0
    now = 1_700_000_000_000
    submit, cancel = engine.submit, engine.cancel
    started, cpu_started = time.perf_counter(), time.thread_time()
    for i, op in enumerate(ops):
        kind = op[0]
        if kind == "cancel":
            if not resting:
                continue
            index = int(op[1] * len(resting))
            resting[index], resting[-1] = resting[-1], resting[index]
            account, order_id = resting.pop()
            try:
                cancel(account, "BTCUSDT", now, order_id)
            except Rejected:  # filled meanwhile
                pass
            continue
        account = accounts[i & 1] if kind == "rest" else accounts[2 + (i & 1)]
        tif = o.GTC if kind == "rest" else op[4]
        result = submit(account, OrderRequest("BTCUSDT", op[1], o.LIMIT, tif, op[2], None,
                                              op[3]), now)
        trades += len(result.trades)
        order = result.order
        if order is not None and order.in_book:
            resting.append((account, order.order_id))
    elapsed, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
    return count / elapsed, count / cpu, trades


# --------------------------------------------------------------- WebSocket


def _frames(buffer: bytearray) -> Iterator[tuple[int, bytes]]:
    """Complete (opcode, payload) frames off the front of ``buffer``.

    Server frames are unmasked (RFC 6455 5.1), so parsing is a length header
    away; a lean client keeps the measurement about the server."""
    while len(buffer) >= 2:
        length = buffer[1] & 0x7F
        start = 2
        if length == 126:
            if len(buffer) < 4:
                return
            length, start = int.from_bytes(buffer[2:4], "big"), 4
        elif length == 127:
            if len(buffer) < 10:
                return
            length, start = int.from_bytes(buffer[2:10], "big"), 10
        if len(buffer) < start + length:
            return
        opcode = buffer[0] & 0x0F
        payload = bytes(buffer[start:start + length])
        del buffer[:start + length]
        yield opcode, payload


def _event_ms(payload: bytes) -> int:
    at = payload.find(b'"E":') + 4
    end = payload.find(b",", at)
    return int(payload[at:end])


def _ws_clients(host: str, port: int, path: str, clients: int, seconds: float,
                ready: mp.Event, results: mp.Queue) -> None:
    """Many raw WebSocket clients on one selector (a separate process)."""
    selector = selectors.DefaultSelector()
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"Sec-WebSocket-Version: 13\r\n\r\n").encode()
    buffers: dict[socket.socket, bytearray] = {}
    for _ in range(clients):
        sock = socket.create_connection((host, port))
        sock.sendall(request)
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head[:80]
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
        buffers[sock] = bytearray(head.split(b"\r\n\r\n", 1)[1])
    ready.set()
    # Events sent while the later clients were still connecting wait unread in
    # the earlier clients' sockets; they measure the set-up, so skip them.
    measure_from_ms = time.time() * 1000 + 500
    latencies: list[float] = []
    deadline = time.monotonic() + seconds + 0.5
    while time.monotonic() < deadline:
        for key, _ in selector.select(0.2):
            sock = key.fileobj  # type: ignore[assignment]
            try:
                data = sock.recv(65536)
            except BlockingIOError:
                continue
            received_ms = time.time() * 1000
            buffer = buffers[sock]
            buffer += data
            for opcode, payload in _frames(buffer):
                if opcode == 0x1:
                    event_ms = _event_ms(payload)
                    if event_ms >= measure_from_ms:
                        latencies.append(received_ms - event_ms)
    for sock in buffers:
        sock.close()
    results.put(latencies)


def bench_websocket(clients: int, seconds: float) -> tuple[int, float, float, int]:
    """(clients, p50 ms, p99 ms, messages) on one synthetic-market depth stream."""
    with tempfile.TemporaryDirectory() as data_dir:
        venue = LocalVenue(venue_config(market="synthetic", tick_ms=100), Path(data_dir))
        venue.start()
        try:
            ctx = mp.get_context("spawn")
            ready, results = ctx.Event(), ctx.Queue()
            port = int(venue.rest_url.rsplit(":", 1)[1])
            worker = ctx.Process(target=_ws_clients, args=(
                "127.0.0.1", port, "/ws/btcusdt@depth@100ms", clients, seconds, ready, results))
            worker.start()
            latencies = None
            deadline = time.monotonic() + seconds + 120
            while latencies is None and time.monotonic() < deadline:
                try:
                    latencies = results.get(timeout=1)
                except queue.Empty:
                    if worker.exitcode not in (None, 0):
                        raise RuntimeError(f"client process failed: {worker.exitcode}") from None
            worker.join(30)
        finally:
            venue.stop()
    if not latencies:
        return clients, float("nan"), float("nan"), 0
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]
    return clients, pick(0.50), pick(0.99), len(latencies)


# -------------------------------------------------------------------- REST


def bench_rest(count: int) -> float:
    import hashlib
    import hmac
    from urllib.parse import urlencode

    import requests

    with tempfile.TemporaryDirectory() as data_dir:
        unlimited = Limits(weight_per_minute=10**9, orders_per_10s=10**9, orders_per_day=10**9)
        venue = LocalVenue(venue_config(), Path(data_dir), limits=unlimited)
        venue.start()
        try:
            session = requests.Session()
            url = venue.rest_url + "/api/v3/order"
            started = time.perf_counter()
            for i in range(count):
                side, price = ("BUY", 20000 + i % 500) if i % 2 else ("SELL", 40000 + i % 500)
                query = urlencode({"symbol": "BTCUSDT", "side": side, "type": "LIMIT",
                                   "timeInForce": "GTC", "quantity": "0.001",
                                   "price": str(price), "newOrderRespType": "RESULT",
                                   "timestamp": int(time.time() * 1000)})
                signature = hmac.new(b"alice-secret", query.encode(), hashlib.sha256).hexdigest()
                reply = session.post(f"{url}?{query}&signature={signature}",
                                     headers={"X-MBX-APIKEY": "alice-key"}, timeout=10)
                assert reply.status_code == 200, reply.text
            return count / (time.perf_counter() - started)
        finally:
            venue.stop()


# ------------------------------------------------------------ WebSocket API


def bench_ws_api(count: int) -> tuple[float, float, float]:
    """Signed order.place round trips on one /ws-api/v3 connection, back to back
    (websocket-client, HMAC signing as web-socket-api.md): orders/s, p50, p99 ms."""
    import hashlib
    import hmac
    import json

    import websocket

    with tempfile.TemporaryDirectory() as data_dir:
        unlimited = Limits(weight_per_minute=10**9, orders_per_10s=10**9, orders_per_day=10**9)
        venue = LocalVenue(venue_config(), Path(data_dir), limits=unlimited)
        venue.start()
        try:
            ws = websocket.create_connection(venue.ws_url + "/ws-api/v3?returnRateLimits=false",
                                             timeout=10)
            ws.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rtts = []
            started = time.perf_counter()
            for i in range(count):
                side, price = ("BUY", 20000 + i % 500) if i % 2 else ("SELL", 40000 + i % 500)
                params = {"apiKey": "alice-key", "newOrderRespType": "RESULT",
                          "price": str(price), "quantity": "0.001", "side": side,
                          "symbol": "BTCUSDT", "timeInForce": "GTC",
                          "timestamp": int(time.time() * 1000), "type": "LIMIT"}
                payload = "&".join(f"{k}={v}" for k, v in sorted(params.items()))
                params["signature"] = hmac.new(b"alice-secret", payload.encode(),
                                               hashlib.sha256).hexdigest()
                sent = time.perf_counter()
                ws.send(json.dumps({"id": i, "method": "order.place", "params": params}))
                reply = json.loads(ws.recv())
                rtts.append(time.perf_counter() - sent)
                assert reply.get("status") == 200, reply
            elapsed = time.perf_counter() - started
            ws.close()
        finally:
            venue.stop()
    rtts.sort()
    return (count / elapsed, rtts[len(rtts) // 2] * 1000,
            rtts[min(len(rtts) - 1, int(len(rtts) * 0.99))] * 1000)


def run(args: list[str]) -> Iterator[dict]:
    parser = argparse.ArgumentParser(prog="bench.py match")
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rest-orders", type=int, default=2000)
    parser.add_argument("--ws-api-orders", type=int, default=2000)
    options = parser.parse_args(args)
    # Best of a few rounds: on a shared machine the slowest rounds measure the
    # neighbours. CPU-time rate: what one core does when it gets the core.
    rounds = [bench_orders(options.orders, seed) for seed in range(options.rounds)]
    yield row("orders_per_s", max(r[0] for r in rounds), "orders/s")
    yield row("orders_per_cpu_s", max(r[1] for r in rounds), "orders/s")
    yield row("match_trades", rounds[0][2], "trades")
    clients, p50, p99, messages = bench_websocket(options.clients, options.seconds)
    yield row("ws_clients", clients, "clients")
    yield row("ws_delivery_p50_ms", p50, "ms")
    yield row("ws_delivery_p99_ms", p99, "ms")
    yield row("ws_messages", messages, "messages")
    rest_rate = bench_rest(options.rest_orders)
    yield row("rest_orders_per_s", rest_rate, "orders/s")
    ws_rate, ws_p50, ws_p99 = bench_ws_api(options.ws_api_orders)
    yield row("ws_api_orders_per_s", ws_rate, "orders/s")
    yield row("ws_api_order_rtt_p50_ms", ws_p50, "ms")
    yield row("ws_api_order_rtt_p99_ms", ws_p99, "ms")
    yield row("ws_api_vs_rest_order_rate", ws_rate / rest_rate, "ratio")


if __name__ == "__main__":
    import orjson

    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

"""The daemon's front door under load: GET /books requests per second and p99
latency, and /ws book pushes (rate and p99 from the book write to the
client's receipt), at 200 concurrent clients, with TLS off and on, in one run.

    python tools/bench.py api [--clients 200] [--seconds 5] [--procs 4]

The server is a real monitor daemon (engine.app.Daemon) in its own process
with one book written 100 times a second; clients run in --procs processes of
threads, so the client's GIL is not the server's. Figures, not a test."""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BOOK = "bench:spot:BTC/USDT"
WRITES_PER_S = 100  # book writes in the server: the source the /ws pushes coalesce


# ------------------------------------------------------------------ server

def serve(port: int, cert: str, key: str, interval_ms: int) -> None:
    sys.path.insert(0, str(ROOT))
    from engine import config as cfg
    from engine.app import Daemon

    data = tempfile.mkdtemp(prefix="bench-api-")
    http = {"port": port, "rate_limit_per_s": 0, "max_connections": 4096,
            "ws_interval_ms": interval_ms}
    if cert:
        http |= {"tls_cert": cert, "tls_key": key}
    config = cfg.parse({"daemon": {"data_dir": data, "id": f"bench-{uuid.uuid4().hex[:6]}",
                                   "log_level": "WARNING"},
                        "http": http, "books": {"capacity": 8, "depth": 20},
                        "storage": {"history": {"backend": "none"}},
                        "feed": {"subscriptions": []}})
    daemon = Daemon(config, "monitor")
    daemon.start()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop() below unlinks the segment
    store, writer = daemon.books.store, daemon.books.writer
    index = store.register(BOOK)
    print("ready", flush=True)
    seq, price = 0, 60000.0
    try:
        while True:
            seq += 1
            price += 0.5 if seq % 7 < 4 else -0.5
            bids = [(price - 0.5 - i, 1.0 + i) for i in range(20)]
            asks = [(price + 0.5 + i, 1.0 + i) for i in range(20)]
            writer.apply_snapshot(index, bids, asks, seq=seq, recv_ns=time.time_ns())
            time.sleep(1 / WRITES_PER_S)
    finally:
        daemon.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificate(where: Path) -> tuple[str, str]:
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def _start_server(cert: str, key: str, interval_ms: int) -> tuple[subprocess.Popen, int]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, __file__, "serve", str(port), cert, key,
                             str(interval_ms)], stdout=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    if "ready" not in line:
        raise RuntimeError(f"bench server did not start: {line!r}")
    return proc, port


# ----------------------------------------------------------------- clients

def _wait(start_at: float) -> None:
    time.sleep(max(0.0, start_at - time.monotonic()))


def _http_client(port: int, ca: str, start_at: float, until: float, out: list[float]) -> None:
    ctx = ssl.create_default_context(cafile=ca) if ca else None
    conn: http.client.HTTPConnection = http.client.HTTPSConnection(
        "127.0.0.1", port, context=ctx, timeout=30) if ctx else \
        http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()  # TCP and TLS handshakes before the clock starts
    _wait(start_at)
    while time.monotonic() < until:
        started = time.perf_counter()
        conn.request("GET", "/books")
        r = conn.getresponse()
        r.read()
        if r.status != 200:
            raise RuntimeError(f"/books answered {r.status}")
        out.append(time.perf_counter() - started)
    conn.close()


def _ws_client(port: int, ca: str, start_at: float, until: float, out: list[float]) -> None:
    import websocket

    scheme = "wss" if ca else "ws"
    ws = websocket.create_connection(f"{scheme}://127.0.0.1:{port}/ws", timeout=30,
                                     sslopt={"ca_certs": ca} if ca else None)
    ws.send(json.dumps({"op": "subscribe", "topics": [f"book:{BOOK}"]}))
    while time.monotonic() < until:
        msg = json.loads(ws.recv())
        if msg.get("type") == "book" and time.monotonic() >= start_at:
            out.append((time.time_ns() - msg["recv_ns"]) / 1e9)
    ws.close()


def _client_process(args: tuple[str, int, str, int, float, float]) -> list[float]:
    kind, port, ca, threads, start_at, seconds = args
    target = _http_client if kind == "http" else _ws_client
    results: list[list[float]] = [[] for _ in range(threads)]
    # Everyone connects, then the clock starts: connection setup is not measured.
    workers = [threading.Thread(target=target, args=(port, ca, start_at, start_at + seconds,
                                                     results[i]))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return [x for r in results for x in r]


def _measure(kind: str, port: int, ca: str, clients: int, procs: int,
             seconds: float) -> dict[str, float]:
    start_at = time.monotonic() + 5.0  # room for 200 connects (and TLS handshakes)
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(_client_process, [(kind, port, ca, n, start_at, seconds) for n in per])
    samples = sorted(x for part in parts for x in part)
    if not samples:
        raise RuntimeError(f"{kind}: no samples")
    return {"per_s": len(samples) / seconds,
            "p50_ms": statistics.median(samples) * 1000,
            "p99_ms": samples[int(len(samples) * 0.99) - 1] * 1000}


def run(argv: list[str]) -> Iterator[dict[str, Any]]:
    p = argparse.ArgumentParser(prog="bench.py api")
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--procs", type=int, default=4)
    p.add_argument("--interval-ms", type=int, default=100, help="http.ws_interval_ms")
    args = p.parse_args(argv)
    where = Path(tempfile.mkdtemp(prefix="bench-api-tls-"))
    cert, key = _certificate(where)
    for tls in (False, True):
        proc, port = _start_server(cert if tls else "", key if tls else "", args.interval_ms)
        label = "tls" if tls else "plain"
        try:
            for kind, name in (("http", "books"), ("ws", "ws_book_push")):
                figures = _measure(kind, port, cert if tls else "", args.clients, args.procs,
                                   args.seconds)
                unit = "requests/s" if kind == "http" else "messages/s"
                yield {"bench": f"api_{name}_{label}", "metric": "rate",
                       "value": round(figures["per_s"], 1), "unit": unit,
                       "clients": args.clients}
                for q in ("p50_ms", "p99_ms"):
                    yield {"bench": f"api_{name}_{label}", "metric": q,
                           "value": round(figures[q], 2), "unit": "ms", "clients": args.clients}
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    else:
        for row in run(sys.argv[1:]):
            print(json.dumps(row), flush=True)

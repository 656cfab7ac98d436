"""A `run.py --role both --demo` daemon in a subprocess (local venue with its
synthetic market, feed, recorder into chdb, a grid trading on it), with a
read key and an admin key, for the API and console tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.support.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
GRID = {"order_size": "0.01", "interval": "20", "window": 4, "max_inventory": "1",
        "rearm_s": 1.0, "idle_alert_s": 600}


@dataclass
class Demo:
    url: str
    read_key: str
    admin_key: str
    log: Path
    process: subprocess.Popen
    config: Path

    def get(self, path: str, key: str | None = "read", **params) -> requests.Response:
        key_value = {"read": self.read_key, "admin": self.admin_key}.get(key or "", key)
        headers = {"X-API-Key": key_value} if key_value else {}
        return requests.get(self.url + path, headers=headers, params=params, timeout=15)

    def json(self, path: str, **params) -> dict:
        r = self.get(path, **params)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        return r.json()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def demo_daemon(tmp_path: Path, **http) -> Iterator[Demo]:
    port = _free_port()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "daemon": {"data_dir": str(tmp_path / "data"), "id": f"demo-{uuid.uuid4().hex[:6]}"},
        "http": {"port": port, "read_keys_env": "T_DEMO_READ", "admin_key_env": "T_DEMO_ADMIN",
                 "ws_interval_ms": 100, **http},
        "exchanges": {"binance": {}},
        "storage": {"history": {"batch_interval_s": 0.2}},
        "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT", "depth": 20,
                                    "trades": True}]},
        "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "binance",
                                   "pair": "BTC/USDT", "params": GRID}]}}))
    read, admin = "r-" + uuid.uuid4().hex, "a-" + uuid.uuid4().hex
    env = {**os.environ, "T_DEMO_READ": read, "T_DEMO_ADMIN": admin}
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "run.py", "--role", "both", "--demo",
                                    "--config", str(config)], cwd=ROOT, stdout=out,
                                   stderr=subprocess.STDOUT, env=env)
    demo = Demo(f"http://127.0.0.1:{port}", read, admin, log, process, config)

    def trading() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"demo daemon exited {process.returncode}: {demo.tail()}")
        return len(demo.json("/orders")["orders"]) >= 2

    try:
        eventually(trading, timeout=120, interval=0.5,
                   ignoring=(AssertionError, OSError, requests.RequestException),
                   message="demo daemon up with open grid orders")
        yield demo
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

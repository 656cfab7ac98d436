"""A ``run.py --role both --demo`` daemon as an operator starts it: a real
process with the local venue, feed, recorder (chdb) and a grid strategy, for
tests that need real series (metrics, Prometheus, soak)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.eventually import eventually
from tests.support.process import free_port

ROOT = Path(__file__).resolve().parents[2]
# The grid of tests/trade/test_grid_e2e.py: small steps on the synthetic
# market, so cycles (and fills, fees, PnL series) come within a minute.
GRID = {"order_size": "0.01", "interval": "30", "window": 4, "max_inventory": "1",
        "rearm_s": 1.0, "idle_alert_s": 600}


class DemoDaemon:
    def __init__(self, tmp_path: Path, history: str = "chdb") -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "daemon.log"
        self.config_path = tmp_path / "config.yaml"
        self.config_path.write_text(json.dumps({  # JSON is YAML
            "daemon": {"data_dir": str(tmp_path / "data"), "id": f"demo-{self.port}"},
            "http": {"port": self.port},
            "storage": {"history": {"backend": history}},
            "exchanges": {"binance": {}},
            "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT", "depth": 20}]},
            "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "binance",
                                       "pair": "BTC/USDT", "params": GRID}]}}))
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> DemoDaemon:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "run.py", "--role", "both", "--demo", "--config",
                 str(self.config_path)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        eventually(lambda: self.get("/health").status_code in (200, 503), timeout=120,
                   interval=0.5, ignoring=(OSError, AssertionError))
        return self

    def alive(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"demo daemon exited: {self.log_tail()}")
        return True

    def get(self, path: str) -> requests.Response:
        self.alive()
        return requests.get(self.url + path, timeout=10)

    def metrics(self) -> str:
        return self.get("/metrics").text

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> int:
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)

"""``run.py --role both --demo`` with grids on Bybit spot and on the Bybit
linear perpetual in one daemon: the demo venue starts its Bybit v5 dialect, the
feed keeps both books from the dialect's public streams, and the trader trades
``bybit`` and ``bybit_futures`` on the venue's first account with its
Bybit-shaped keys (private streams up, position mode set, grids attached)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.eventually import eventually
from tests.trade.test_grid_e2e import free_port

ROOT = Path(__file__).resolve().parents[2]
GRID = {"order_size": "0.01", "interval": "30"}


def test_demo_runs_grids_on_bybit_spot_and_linear(tmp_path: Path):
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "daemon": {"data_dir": str(tmp_path / "data"), "id": "demo-bybit"},
        "http": {"port": port},
        "storage": {"history": {"backend": "none"}},
        "exchanges": {"bybit": {}},
        "trader": {"strategies": [
            {"id": "bspot", "strategy": "grid", "exchange": "bybit", "pair": "BTC/USDT",
             "params": GRID},
            {"id": "bperp", "strategy": "grid", "exchange": "bybit", "market": "futures",
             "pair": "BTC/USDT", "params": {**GRID, "direction": "neutral"}}]}}))
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen([sys.executable, "run.py", "--role", "both", "--demo", "--config",
                               str(config)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        def trader() -> dict:
            if daemon.poll() is not None:
                raise RuntimeError(f"daemon exited {daemon.returncode}: "
                                   f"{(tmp_path / 'daemon.log').read_text()[-2000:]}")
            status = requests.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
            t = status["components"]["trader"]
            for venue in ("bybit", "bybit_futures"):
                stream = t["user_streams"][f"userstream:{venue}"]
                assert stream["connected"] and stream["kind"] == "private_ws", stream
                assert venue in t["live_orders"], t["live_orders"]
            assert sorted(status["components"]["strategy-tasks"]["running"]) == \
                ["bperp", "bspot"], status
            return t
        t = eventually(trader, timeout=180, interval=1.0,
                       ignoring=(AssertionError, OSError, KeyError, ValueError))
        futures = t["futures"]["bybit_futures"]
        assert futures["position_mode"] == "one_way" and futures["position_drift"] == []
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]

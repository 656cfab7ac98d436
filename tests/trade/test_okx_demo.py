"""``python run.py --role both --demo`` with a grid on OKX: the daemon starts
the local venue with its OKX dialect, points exchange ``okx`` at it with the
demo account's OKX key, secret and passphrase, and the grid completes cycles
through our OKX driver (feed on the dialect's public socket, orders on its
private socket)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import requests

from tests.support.eventually import eventually
from tests.trade.test_grid_e2e import GRID, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_role_both_demo_trades_a_grid_on_the_okx_dialect(tmp_path: Path):
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "daemon": {"data_dir": str(tmp_path / "data"), "id": "okx-demo"},
        "http": {"port": port},
        "storage": {"history": {"backend": "none"}},
        "exchanges": {"okx": {}},
        "feed": {"subscriptions": [{"exchange": "okx", "pair": "BTC/USDT", "depth": 20}]},
        "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "okx",
                                   "pair": "BTC/USDT", "params": GRID}]}}))
    log = (tmp_path / "daemon.log").open("wb")
    daemon = subprocess.Popen([sys.executable, "run.py", "--role", "both", "--demo", "--config",
                               str(config)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        def cycles() -> int:
            if daemon.poll() is not None:
                raise RuntimeError(f"daemon exited {daemon.returncode}: "
                                   f"{(tmp_path / 'daemon.log').read_text()[-2000:]}")
            status = requests.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
            trader = status["components"]["trader"]
            assert "okx" in trader["executor"]["venues"], trader["executor"]["venues"]
            return sum(s["cycles"] for s in status["components"]["slots"].values())
        eventually(lambda: cycles() >= 5, timeout=240, interval=1.0,
                   ignoring=(AssertionError, OSError, KeyError, ValueError))
        status = requests.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
        okx = status["components"]["trader"]["executor"]["venues"]["okx"]
        assert okx["calls_by_transport"]["ws"] > 0 and okx["ws_api_up"], okx
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]

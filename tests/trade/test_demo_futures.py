"""``run.py --role both --demo`` with a grid on the perpetual: the demo venue
starts its Binance USD-M dialect, the feed keeps the futures book, and the
trader trades ``binance_futures`` on the venue's first account (position mode
set, positions reconciled, user stream up, the grid attached)."""

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


def test_demo_runs_a_neutral_grid_on_the_usdm_perpetual(tmp_path: Path):
    port = free_port()
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "daemon": {"data_dir": str(tmp_path / "data"), "id": "demo-usdm"},
        "http": {"port": port},
        "storage": {"history": {"backend": "none"}},
        "exchanges": {"binance": {}},
        "trader": {"strategies": [{
            "id": "perp1", "strategy": "grid", "exchange": "binance", "market": "futures",
            "pair": "BTC/USDT", "params": {"order_size": "0.01", "interval": "30",
                                           "direction": "neutral"}}]}}))
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
            assert t["user_streams"]["userstream:binance_futures"]["connected"], t
            assert status["components"]["strategy-tasks"]["running"] == ["perp1"], status
            return t
        t = eventually(trader, timeout=120, interval=1.0,
                       ignoring=(AssertionError, OSError, KeyError, ValueError))
        futures = t["futures"]["binance_futures"]
        assert futures["position_mode"] == "one_way" and futures["position_drift"] == []
        assert "binance_futures" in t["live_orders"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
    assert code == 0, (tmp_path / "daemon.log").read_text()[-3000:]

"""`python run.py --role venue` serves both dialects and its start-up summary
lists the USD-M URLs (REST, the routed stream paths, the WebSocket API)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import requests
import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_venue_role_serves_spot_and_usdm_and_lists_both(tmp_path: Path) -> None:
    conf = {"daemon": {"data_dir": str(tmp_path / "data"), "id": f"t_usdm_{uuid.uuid4().hex[:8]}"},
            "http": {"port": 0},
            "venue": {"port": 0, "market": "none", "usdm": {"enabled": True},
                      "symbols": [{"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT"}],
                      "accounts": [{"name": "demo", "api_key": "k", "api_secret": "s",
                                    "balances": {"USDT": "1000"}}]}}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--role", "venue", "--config",
                             str(path), "--fresh"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        spot = usdm = None
        assert proc.stdout is not None
        for _ in range(200):
            line = proc.stdout.readline()
            if not line:
                break
            found = re.search(r"venue:\s+REST (http://127\.0\.0\.1:\d+)", line)
            spot = found.group(1) if found else spot
            found = re.search(r"usd-m:\s+REST (http://127\.0\.0\.1:\d+)/fapi\s+streams "
                              r"(ws://\S+)/public \S+/market \S+/private\s+WS API \S+/ws-fapi/v1",
                              line)
            usdm = found.group(1) if found else usdm
            if re.search(r"http:\s+http://", line):
                break
        assert spot and usdm and spot != usdm
        assert requests.get(spot + "/api/v3/ping", timeout=5).json() == {}
        info = requests.get(usdm + "/fapi/v1/exchangeInfo", timeout=5).json()
        assert [(s["symbol"], s["contractType"]) for s in info["symbols"]] == [
            ("BTCUSDT", "PERPETUAL")]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()

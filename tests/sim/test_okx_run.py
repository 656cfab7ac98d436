"""``run.py --role venue`` with venue.okx enabled: the start-up summary lists
the OKX dialect's URLs and the demo account's OKX-shaped key and passphrase,
and the dialect answers a signed request made with them."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import requests
import yaml

from engine.sim.okx.auth import OkxKey
from tests.sim.okx_client import OkxClient

ROOT = Path(__file__).resolve().parents[2]
KEY = {"account": "demo", "api_key": "5b2c1d3e-8f4a-4c6b-9d7e-0a1b2c3d4e5f",
       "secret_key": "9F3A6C1E2B7D4F8A0C5E1B3D7F9A2C4E", "passphrase": "Demo-Passphrase-1"}


def test_run_venue_role_serves_the_okx_dialect(tmp_path: Path) -> None:
    venue = {"port": 0, "http_port": 0, "market": "synthetic",
             "synthetic": {"start_prices": {"BTCUSDT": "60000"}, "tick_ms": 50},
             "symbols": [{"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT"}],
             "accounts": [{"name": "demo", "api_key": "k", "api_secret": "s",
                           "balances": {"USDT": "1000"}}],
             "okx": {"enabled": True, "port": 0, "keys": [KEY]}}
    conf = {"daemon": {"data_dir": str(tmp_path / "data"), "id": f"t_okx_{uuid.uuid4().hex[:8]}"},
            "http": {"port": 0}, "venue": venue}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--role", "venue", "--config",
                             str(path), "--fresh"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        okx_url = key_line = None
        for _ in range(200):
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                break
            m = re.search(r"okx:\s+REST (http://127\.0\.0\.1:\d+)/api/v5\s+WebSocket "
                          r"ws://127\.0\.0\.1:\d+/ws/v5/public ws://\S+/ws/v5/private", line)
            if m:
                okx_url = m.group(1)
            if "okx key:" in line:
                key_line = line
            if re.search(r"http:\s+http://", line):
                break
        assert okx_url and key_line, "summary has no okx lines"
        assert KEY["api_key"] in key_line and KEY["passphrase"] in key_line
        assert KEY["secret_key"] not in key_line
        assert requests.get(okx_url + "/api/v5/public/time", timeout=5).json()["code"] == "0"
        client = OkxClient(okx_url, OkxKey(**KEY))
        balance = client.get("/api/v5/account/balance", ccy="USDT").json()
        assert balance["data"][0]["details"][0]["availBal"] == "1000"
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

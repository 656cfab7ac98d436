"""A real `run.py --role trader` whose API key and secret come from the
environment (as a user's would) and are used: it signs orders on the local
venue. Neither value may appear in /status, /health, /metrics, the trade
routes, /openapi.json, nor anywhere in the daemon's log (start-up summary,
reconcile report, order logs, shutdown)."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from tests.support.eventually import eventually
from tests.support.process import free_port

ROOT = Path(__file__).resolve().parents[2]
GRID = {"order_size": "0.01", "interval": "20", "window": 3, "max_inventory": "1",
        "rearm_s": 1.0, "idle_alert_s": 600}
KEY = "k" + secrets.token_hex(16)
SECRET = "s" + secrets.token_hex(24)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[LocalVenue]:
    account = account_config("carol")
    account = type(account)(name="carol", api_key=KEY, api_secret=SECRET, balances=account.balances)
    v = LocalVenue(venue_config(market="synthetic", accounts=[account]), tmp_path / "venue", fresh=True)
    v.start()
    yield v
    v.stop()


def test_trader_status_health_metrics_and_log_never_show_the_secrets(tmp_path: Path,
                                                                    venue: LocalVenue) -> None:
    port, read = free_port(), "r-" + secrets.token_hex(8)
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({  # JSON is YAML
        "daemon": {"data_dir": str(tmp_path / "data"), "id": f"sec-{secrets.token_hex(3)}"},
        "http": {"port": port, "read_keys_env": "T_SEC_READ"},
        "storage": {"history": {"backend": "none"}},
        "exchanges": {"binance": {"spot": {"rest": venue.rest_url, "ws": venue.ws_url},
                                  "api_key_env": "T_SEC_KEY", "api_secret_env": "T_SEC_SECRET"}},
        "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT", "depth": 20}]},
        "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "binance",
                                   "pair": "BTC/USDT", "params": GRID}]}}))
    env = {**os.environ, "T_SEC_KEY": KEY, "T_SEC_SECRET": SECRET, "T_SEC_READ": read,
           "PYTHONPATH": str(ROOT)}
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = subprocess.Popen([sys.executable, "run.py", "--role", "both", "--config", str(config)],
                                  cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url, headers = f"http://127.0.0.1:{port}", {"X-API-Key": read}
    try:
        def orders() -> list:
            assert daemon.poll() is None, log.read_text()[-3000:]
            return requests.get(url + "/orders", headers=headers, timeout=10).json()["orders"]
        eventually(lambda: len(orders()) >= 2, timeout=180, interval=0.5,
                   ignoring=(requests.RequestException, ValueError, KeyError),
                   message="the trader signs and places grid orders with the key and secret")
        pages = {path: requests.get(url + path, headers=headers, timeout=15)
                 for path in ("/status", "/health", "/metrics", "/orders", "/fills", "/positions",
                              "/balances", "/strategies", "/openapi.json")}
        for path, page in pages.items():
            assert page.status_code in (200, 503), (path, page.status_code, page.text[:300])
            assert SECRET not in page.text and KEY not in page.text, path
        status = pages["/status"].json()
        assert "T_SEC_SECRET" in json.dumps(status), "the status names where the secret comes from"
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    text = log.read_text()
    assert "stopped cleanly" in text, text[-2000:]
    assert SECRET not in text and KEY not in text, "a credential in the daemon's log"

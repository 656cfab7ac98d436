"""--role venue serves the Bybit dialect: the start-up summary names its
URLs and each account's Bybit-shaped API key, never the secret, and the
URLs it names answer."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import requests

from engine import config as cfg
from engine.app import Daemon


def test_venue_role_summary_lists_bybit_urls_and_keys_not_secrets(tmp_path: Path) -> None:
    config = cfg.parse({
        "daemon": {"data_dir": str(tmp_path / "d"), "id": f"t-{uuid.uuid4().hex[:8]}"},
        "http": {"port": 0},
        "venue": {"port": 0, "http_port": 0, "market": "none",
                  "symbols": [{"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT"}],
                  "accounts": [{"name": "demo", "api_key": "k", "api_secret": "s"}],
                  "bybit": {"enabled": True, "port": 0}}})
    daemon = Daemon(config, "venue")
    daemon.start()
    try:
        summary = daemon.summary()
        venue = daemon.components[-1].venue  # type: ignore[attr-defined]
        key, secret = venue.bybit.keys["demo"]
        url = re.search(r"bybit:\s+REST (http://127\.0\.0\.1:\d+)/v5", summary)
        assert url is not None, summary
        assert f"account demo key={key}" in summary and secret not in summary
        assert "/v5/private" in summary and "/v5/trade" in summary
        answer = requests.get(url.group(1) + "/v5/market/time", timeout=5).json()
        assert answer["retCode"] == 0
    finally:
        daemon.stop()

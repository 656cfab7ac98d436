"""The local venues a daemon runs itself (--demo, paper) hand their keys to the
trader directly: nothing is put in the process environment, and /status names
no env var for them."""

from __future__ import annotations

import os
from pathlib import Path

from engine import config as config_mod
from engine.app import Daemon

GRID = {"order_size": "0.0002", "interval_pct": 0.5}


def daemon(tmp_path: Path, exchange: dict, demo: bool = False) -> Daemon:
    config = config_mod.parse({
        "daemon": {"data_dir": str(tmp_path / "data"), "id": f"creds-{tmp_path.name}"[:40]},
        "http": {"port": 0}, "storage": {"history": {"backend": "none"}},
        "exchanges": {"binance": exchange},
        "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "binance",
                                   "pair": "BTC/USDT", "params": GRID}]}})
    return Daemon(config, "both", demo=demo)


def test_demo_and_paper_keys_reach_the_trader_without_the_environment(tmp_path: Path) -> None:
    before = dict(os.environ)
    built = [daemon(tmp_path / "demo", {}, demo=True), daemon(tmp_path / "paper", {"paper": True})]
    assert dict(os.environ) == before, "a daemon put credentials in os.environ"
    for d in built:
        assert d.trader is not None
        # Raises "api_key_env ... must name set environment variables" without them.
        session = d.trader._session("binance")
        assert session.driver.venue == "binance"
        exchange = d.trader.config.exchanges["binance"]
        assert (exchange.api_key_env, exchange.api_secret_env) == ("", "")
        for c in d.components:
            c.stop(1.0)

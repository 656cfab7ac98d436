"""The start-up summary says what trades where: each configured strategy and
whether its orders are paper (matched locally against the live book), go to
the local venue, or are LIVE."""

from __future__ import annotations

from pathlib import Path

from engine import config as config_mod
from engine.app import Daemon

GRID = {"order_size": "0.0002", "interval_pct": 0.5}


def daemon(tmp_path: Path, exchange: dict, demo: bool = False) -> Daemon:
    config = config_mod.parse({
        "daemon": {"data_dir": str(tmp_path / "data"), "id": f"summary-{tmp_path.name}"[:40]},
        "http": {"port": 0}, "storage": {"history": {"backend": "none"}},
        "exchanges": {"binance": exchange},
        "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "binance",
                                   "pair": "BTC/USDT", "params": GRID}]}})
    return Daemon(config, "both", demo=demo)


def test_summary_names_the_paper_grid(tmp_path: Path) -> None:
    summary = daemon(tmp_path, {"paper": True}).summary()
    assert "trading:  grid1 grid binance BTC/USDT (PAPER: matched locally" in summary


def test_summary_names_the_demo_venue_and_live_trading(tmp_path: Path) -> None:
    assert "grid1 grid binance BTC/USDT (local venue)" in daemon(tmp_path, {}, demo=True).summary()
    live = daemon(tmp_path, {"paper": False, "api_key_env": "K", "api_secret_env": "S"}).summary()
    assert "grid1 grid binance BTC/USDT (LIVE: real orders)" in live

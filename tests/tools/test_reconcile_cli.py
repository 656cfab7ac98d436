"""tools/reconcile.py as a user runs it (subprocess) against a real local
venue: a pair given as a venue symbol, a wrong secret, the report printed
once, and the shipped paper setup reconciled from the paper account's saved
state."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.model import Side
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, symbol_config, venue_config
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.trade.rig import KEY_ENV, PAIR, SECRET_ENV, Orders, make_service, trader_config
from tests.trade.test_reconcile import cancel_by_hand
from tests.trade.test_userstream import place_all

ROOT = Path(__file__).resolve().parents[2]
BTC = symbol_config("BTCUSDT")


def run_tool(config: Path, *args: str, secret: str = "alice-secret") -> subprocess.CompletedProcess:
    env = {**os.environ, KEY_ENV: "alice-key", SECRET_ENV: secret}
    return subprocess.run([sys.executable, "tools/reconcile.py", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)


def write_yaml(path: Path, data_dir: Path, exchange: dict, **extra: object) -> Path:
    path.write_text(yaml.safe_dump({
        "daemon": {"data_dir": str(data_dir), "id": "trader-test"},
        "exchanges": {"binance": exchange},
        "storage": {"tasks": {"backend": "sqlite", "path": "tasks.sqlite"}}, **extra}))
    return path


def trade_some(data_dir: Path, venue: LocalVenue, key: str, secret: str, count: int,
               ) -> tuple[TraderService, list]:
    os.environ[KEY_ENV], os.environ[SECRET_ENV] = key, secret
    trader = make_service(trader_config(data_dir, venue.rest_url, venue.ws_url))
    trader.start()
    orders = Orders()
    grid = [orders.place(Side.BUY, str(29000 - i), "0.01") for i in range(count)]
    place_all(trader, grid)
    trader.stop(3.0)
    return trader, grid


@pytest.fixture
def live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, LocalVenue]]:
    """A local venue (alice trades), a DB with 3 of our open orders, and the
    config a user would point the tool at."""
    monkeypatch.setenv(KEY_ENV, "alice-key")
    monkeypatch.setenv(SECRET_ENV, "alice-secret")
    venue = LocalVenue(venue_config(accounts=[account_config("alice")]), tmp_path / "venue")
    venue.start()
    data_dir = tmp_path / "trader"
    trade_some(data_dir, venue, "alice-key", "alice-secret", 3)
    config = write_yaml(tmp_path / "live.yaml", data_dir, {
        "spot": {"rest": venue.rest_url, "ws": venue.ws_url}, "api_key_env": KEY_ENV,
        "api_secret_env": SECRET_ENV})
    yield config, venue
    venue.stop()


def test_reconcile_cli_in_step_prints_the_report_once_and_exits_0(live):
    config, _ = live
    done = run_tool(config)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("reconcile binance: OK") == 1
    assert "reconcile binance" not in done.stderr  # not repeated through the logger
    verbose = run_tool(config, "--verbose")
    assert verbose.stdout.count("reconcile binance: OK") == 1 and verbose.returncode == 0


def test_reconcile_cli_venue_symbol_as_pair_is_a_usage_error_not_a_traceback(live):
    config, _ = live
    done = run_tool(config, "--pair", "BTCUSDT")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--pair 'BTCUSDT'" in done.stderr and "BASE/QUOTE" in done.stderr


def test_reconcile_cli_wrong_secret_is_an_authentication_error_not_drift(live):
    config, _ = live
    done = run_tool(config, secret="not-alices-secret")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "authentication failed" in done.stderr and SECRET_ENV not in done.stdout
    assert "HALT" not in done.stdout and "drift" not in done.stdout
    assert "not-alices-secret" not in done.stdout + done.stderr


def test_reconcile_cli_paper_config_reconciles_the_saved_paper_account(tmp_path, monkeypatch):
    """The shipped shape: paper: true, live endpoint, no API keys. The paper
    venue saved its account in data_dir/paper_binance.sqlite; one of our
    orders was canceled there behind the trader's back."""
    data_dir = tmp_path / "trader"
    paper = LocalVenue(venue_config(symbols=[BTC], accounts=[account_config("paper")],
                                    state_path="paper_binance.sqlite"), data_dir)
    paper.start()
    try:
        _, grid = trade_some(data_dir, paper, "paper-key", "paper-secret", 4)
        cancel_by_hand(BinanceClient(paper.rest_url, "paper-key", "paper-secret"),
                       grid[0].client_order_id)
    finally:
        paper.stop()
    monkeypatch.delenv(KEY_ENV)
    monkeypatch.delenv(SECRET_ENV)
    config = write_yaml(tmp_path / "paper.yaml", data_dir, {
        "paper": True, "spot": {"rest": "http://binance.invalid", "ws": "ws://binance.invalid"}},
        venue={"symbols": [{"symbol": BTC.symbol, "base": BTC.base, "quote": BTC.quote,
                            "tick_size": BTC.tick_size, "step_size": BTC.step_size,
                            "min_notional": BTC.min_notional}]},
        trader={"venues": ["binance"], "pairs": [f"binance:{PAIR}"]})
    env = {k: v for k, v in os.environ.items() if k not in (KEY_ENV, SECRET_ENV)}
    done = subprocess.run([sys.executable, "tools/reconcile.py", "--config", str(config)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "set in the environment" not in done.stderr
    assert done.stdout.count("reconcile binance: HALT") == 1
    assert "canceled_elsewhere" in done.stdout and grid[0].client_order_id in done.stdout

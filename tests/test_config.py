"""Config loading: the shipped file is valid, typos and bad values are named
by key path, secrets come only from the environment and are never shown."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine import config as cfg
from engine.config_convert import to_public_dict

ROOT = Path(__file__).resolve().parents[1]


def test_config_shipped_file_loads_with_demo_venue():
    c = cfg.load(ROOT / "config.yaml")
    assert c.http.host == "127.0.0.1"
    assert [s.symbol for s in c.venue.symbols] == ["BTCUSDT", "ETHUSDT"]
    assert c.venue.accounts[0].api_key == "demo-key"
    assert c.venue.accounts[0].balances == {"USDT": "100000", "BTC": "10", "ETH": "100"}
    assert {s.pair for s in c.feed.subscriptions} == {"BTC/USDT", "ETH/USDT"}


def test_config_every_shipped_key_has_a_comment():
    # Each non-list key line of config.yaml carries a comment on it or just above it.
    lines = (ROOT / "config.yaml").read_text().splitlines()
    undocumented = []
    for n, line in enumerate(lines):
        s = line.strip()
        if not s or s.startswith("#") or s.startswith("-") or ":" not in s:
            continue
        if s.endswith(":"):  # a section header: documented by the comment above or its keys
            continue
        prev = lines[n - 1].strip() if n else ""
        if "#" not in line and not prev.startswith("#") and s.split(":")[0] not in (
                "enabled", "rest", "ws", "host", "port", "user", "database", "name"):
            undocumented.append(s)
    assert not undocumented, undocumented


@pytest.mark.parametrize("data, message", [
    ({"http": {"prot": 80}}, "http.prot: unknown key"),
    ({"htp": {}}, "htp: unknown key"),
    ({"http": {"port": "eighty"}}, "http.port: 'eighty' is not an integer"),
    ({"http": {"port": 70000}}, "http.port: 70000 is not a port"),
    ({"daemon": {"log_level": "LOUD"}}, "daemon.log_level: 'LOUD' is not one of"),
    ({"books": {"depth": 0}}, "books.depth: 0 is not 1..5000"),
    ({"exchanges": {"binance": {"spot": {"wss": "x"}}}}, "exchanges.binance.spot.wss: unknown key"),
    ({"exchanges": {"binance": {}}, "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTCUSDT"}]}},
     "feed.subscriptions[0].pair: 'BTCUSDT' is not BASE/QUOTE"),
    ({"feed": {"subscriptions": [{"exchange": "nope", "pair": "A/B"}]}},
     "feed.subscriptions[0].exchange: 'nope' is not configured"),
    ({"feed": {"subscriptions": [{"pair": "A/B"}]}}, "feed.subscriptions[0].exchange: missing"),
    ({"storage": {"tasks": {"backend": "postgres"}}}, "storage.tasks.backend: 'postgres' is not one of"),
    ({"feed": {"stall_timeout_s": True}}, "feed.stall_timeout_s: True is not a number"),
    ([1, 2], "top level: expected a mapping"),
])
def test_config_bad_values_name_key_path(data, message):
    with pytest.raises(cfg.ConfigError) as e:
        cfg.parse(data)
    assert message in str(e.value)


def test_config_secret_reads_env_and_never_prints_value(monkeypatch):
    monkeypatch.setenv("T_SECRET_X", "hunter2")
    s = cfg.Secret("T_SECRET_X")
    assert s.get() == "hunter2" and bool(s)
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "T_SECRET_X" in repr(s)
    assert not cfg.Secret("T_SECRET_UNSET_Y")


def test_config_public_dict_masks_venue_credentials():
    c = cfg.load(ROOT / "config.yaml")
    public = to_public_dict(c)
    account = public["venue"]["accounts"][0]
    assert account["api_secret"] == "***" and account["api_key"] == "***"
    assert public["exchanges"]["binance"]["api_secret_env"] == "BINANCE_API_SECRET"


def test_run_bad_config_exits_2_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"http": {"port": 8080, "hots": "x"}}))
    p = subprocess.run([sys.executable, str(ROOT / "run.py"), "--role", "monitor", "--config", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "http.hots: unknown key" in p.stderr
    assert "Traceback" not in p.stderr


def test_run_missing_config_file_is_named(tmp_path):
    p = subprocess.run([sys.executable, str(ROOT / "run.py"), "--role", "monitor", "--config",
                        str(tmp_path / "nope.yaml")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "nope.yaml" in p.stderr and "Traceback" not in p.stderr


def test_run_broken_yaml_is_reported(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("http: {port: [\n")
    p = subprocess.run([sys.executable, str(ROOT / "run.py"), "--role", "monitor", "--config", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "not valid YAML" in p.stderr

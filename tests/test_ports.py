"""Ports a user starts with: the venue role's API does not take the daemon's
default port, and a port already in use stops start-up with the address and
the config key that sets it (not a bare ``[Errno 98]``)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine.config import HttpConfig, LocalVenueConfig

ROOT = Path(__file__).resolve().parents[1]
VENUE = {"market": "none", "symbols": [{"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT"}],
         "accounts": [{"name": "demo", "api_key": "k", "api_secret": "s", "balances": {}}]}


@pytest.fixture
def taken() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def run(tmp_path: Path, role: str, config: dict) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"daemon": {"data_dir": str(tmp_path / "data")}, **config}))
    return subprocess.run([sys.executable, "run.py", "--role", role, "--config", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def test_venue_role_api_port_differs_from_the_daemon_default_and_the_venue_port():
    assert LocalVenueConfig().http_port not in (HttpConfig().port, LocalVenueConfig().port)
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text())
    assert shipped["venue"]["http_port"] != shipped["http"]["port"]
    # nor the shipped venue's own ports (spot dialect, USD-M dialect)
    assert shipped["venue"]["http_port"] not in (shipped["venue"]["port"],
                                                 shipped["venue"]["usdm"]["port"])


def test_daemon_http_port_in_use_names_address_and_key(tmp_path, taken):
    done = run(tmp_path, "monitor", {"http": {"port": taken},
                                     "storage": {"history": {"backend": "none"}}})
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{taken} (set by http.port)" in out, out[-2000:]
    assert "Traceback" not in out


def test_venue_role_api_port_in_use_names_venue_http_port(tmp_path, taken):
    done = run(tmp_path, "venue", {"venue": {**VENUE, "port": 0, "http_port": taken}})
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{taken} (set by venue.http_port)" in out, out[-2000:]


def test_venue_port_in_use_names_venue_port(tmp_path, taken):
    done = run(tmp_path, "venue", {"venue": {**VENUE, "port": taken, "http_port": 0}})
    assert done.returncode == 1
    out = done.stdout + done.stderr
    assert f"cannot listen on 127.0.0.1:{taken} (set by venue.host/venue.port)" in out, out[-2000:]

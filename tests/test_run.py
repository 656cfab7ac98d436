"""run.py as a user runs it: a real process, real HTTP, real signals."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
import yaml

ROOT = Path(__file__).resolve().parents[1]


def start(tmp_path, role: str, extra: dict | None = None):
    seg = f"t_run_{uuid.uuid4().hex[:8]}"
    conf = {"daemon": {"data_dir": str(tmp_path / "data"), "id": seg, "shutdown_timeout_s": 5},
            "http": {"port": 0}, "books": {"segment_name": seg, "capacity": 16, "depth": 10}}
    conf.update(extra or {})
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--role", role, "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    lines = []
    deadline = time.monotonic() + 30
    url = None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        m = re.search(r"http:\s+(http://127\.0\.0\.1:\d+)", line)
        if m:
            url = m.group(1)
            break
    assert url, "no HTTP URL in start-up summary:\n" + "".join(lines)
    return proc, url, seg, lines


@pytest.mark.parametrize("role", ["monitor", "both", "trader"])
def test_run_role_serves_health_and_stops_cleanly_on_sigint(tmp_path, role):
    proc, url, seg, lines = start(tmp_path, role)
    try:
        text = "".join(lines)
        assert f"role={role}" in text
        assert "core=compiled" in text  # the summary names the book core (books.core)
        # Every role is complete: nothing is reported missing.
        assert "NOT BUILT YET" not in text
        assert requests.get(url + "/health", timeout=5).status_code == 200
        assert "process_resident_memory_bytes" in requests.get(url + "/metrics", timeout=5).text
        assert os.path.exists(f"/dev/shm/{seg}")
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=15)
        assert proc.returncode == 0, out
        assert time.monotonic() - t0 < 10
        assert "stopped cleanly" in out
        assert not os.path.exists(f"/dev/shm/{seg}")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_sigterm_also_stops_cleanly(tmp_path):
    proc, url, seg, _ = start(tmp_path, "monitor")
    try:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=15)
        assert proc.returncode == 0
        assert not os.path.exists(f"/dev/shm/{seg}")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_run_json_logs_name_component(tmp_path):
    proc, url, seg, lines = start(tmp_path, "monitor", {})
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=15)
    conf = yaml.safe_load((tmp_path / "config.yaml").read_text())
    conf["daemon"]["log_json"] = True
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(conf))
    p = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--role", "monitor", "--config",
                          str(tmp_path / "config.yaml")], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    import json
    first = json.loads(p.stdout.readline())
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=15)
    assert first["record"]["extra"]["component"] in ("books", "app")
    assert p.returncode == 0


def test_run_help_explains_roles():
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "--help"], capture_output=True,
                         text=True, timeout=30).stdout
    for role in ("monitor", "trader", "both", "venue"):
        assert re.search(rf"^\s+{role}\s+\S", out, re.M), role


def test_run_venue_role_serves_binance_api_and_stops(tmp_path):
    extra = {"venue": {"port": 0, "http_port": 0, "market": "synthetic",
                       "synthetic": {"start_prices": {"BTCUSDT": "60000"}, "tick_ms": 50},
                       "symbols": [{"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT"}],
                       "accounts": [{"name": "demo", "api_key": "k", "api_secret": "s",
                                     "balances": {"USDT": "1000"}}]}}
    seg = f"t_run_{uuid.uuid4().hex[:8]}"
    conf = {"daemon": {"data_dir": str(tmp_path / "data"), "id": seg}, "http": {"port": 0}, **extra}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), "--role", "venue", "--config", str(path),
                             "--fresh"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        venue_url = http_url = None
        for _ in range(200):
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"venue:\s+REST (http://127\.0\.0\.1:\d+)\s+WebSocket (ws://\S+)", line)
            if m:
                venue_url = m.group(1)
            m = re.search(r"http:\s+(http://127\.0\.0\.1:\d+)", line)
            if m:
                http_url = m.group(1)
                break
        assert venue_url and http_url
        assert requests.get(venue_url + "/api/v3/ping", timeout=5).json() == {}
        info = requests.get(venue_url + "/api/v3/exchangeInfo", timeout=5).json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]
        assert requests.get(http_url + "/health", timeout=5).status_code == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert (tmp_path / "data" / "venue.sqlite").exists()  # state kept for the next start
    finally:
        if proc.poll() is None:
            proc.kill()

"""The daemon's HTTP face over a real socket: /health, /status, /metrics and
book views, with the Daemon started in-process on a free port."""

import dataclasses
import uuid

import pytest
import requests

from engine import config as cfg
from engine.app import Daemon
from engine.lifecycle import Health


def make_config(tmp_path, **daemon):
    c = cfg.parse({"daemon": {"data_dir": str(tmp_path), "id": f"t-{uuid.uuid4().hex[:8]}", **daemon},
                   "http": {"port": 0}, "books": {"capacity": 8, "depth": 5},
                   "exchanges": {"binance": {"api_secret_env": "T_BINANCE_SECRET"}}})
    return c


@pytest.fixture
def daemon(tmp_path, monkeypatch):
    monkeypatch.setenv("T_BINANCE_SECRET", "very-secret-value")
    d = Daemon(make_config(tmp_path), "monitor")
    d.start()
    yield d
    d.stop()


def test_http_health_ok_when_components_healthy(daemon):
    r = requests.get(daemon.http.url + "/health", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["components"]["books"]["ok"] is True


def test_http_health_503_names_unhealthy_component(daemon):
    class Broken:
        name = "broken"

        def health(self):
            return [Health("broken", False, "database unreachable")]

        def stop(self, timeout_s):
            pass

        def status(self):
            return {}

    daemon.components.append(Broken())
    r = requests.get(daemon.http.url + "/health", timeout=5)
    assert r.status_code == 503
    assert "broken: database unreachable" in r.json()["reasons"]


def test_http_status_reports_role_components_and_redacts(daemon):
    r = requests.get(daemon.http.url + "/status", timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["role"] == "monitor" and body["components"]["books"]["capacity"] == 8
    assert body["not_built_yet"] == []  # the monitor role is complete
    assert {"books", "feed", "task-db", "history", "recorder"} <= set(body["components"])
    assert "very-secret-value" not in r.text
    assert body["config"]["exchanges"]["binance"]["api_secret_env"] == "T_BINANCE_SECRET"


def test_http_metrics_prometheus_text_with_process_figures(daemon):
    r = requests.get(daemon.http.url + "/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    # prometheus-client's standard process collector: the names stock dashboards know
    rss = [line for line in r.text.splitlines() if line.startswith("process_resident_memory_bytes ")]
    assert rss and float(rss[0].split()[1]) > 10e6
    assert 'engine_http_events_total{event="accepted"}' in r.text
    assert "engine_http_connections 1.0" in r.text  # this request's
    assert "engine_uptime_seconds" in r.text and "process_cpu_seconds_total" in r.text
    assert "python_info{" in r.text and "engine_process_threads" in r.text


def test_http_books_lists_and_reads_book(daemon):
    store, writer = daemon.books.store, daemon.books.writer
    i = store.register("binance:spot:BTC/USDT")
    writer.apply_snapshot(i, [(100.0, 1.0), (99.0, 2.0)], [(101.0, 3.0)], seq=77)
    r = requests.get(daemon.http.url + "/books", timeout=5)
    assert r.json()["books"][0]["book"] == "binance:spot:BTC/USDT"
    r = requests.get(daemon.http.url + "/books/binance:spot:BTC/USDT?depth=1", timeout=5)
    body = r.json()
    assert body["seq"] == 77 and body["bids"] == [[100.0, 1.0]] and body["asks"] == [[101.0, 3.0]]
    assert body["synced"] is True


@pytest.mark.parametrize("path, status", [("/books/nope:spot:A/B", 404), ("/books/x?depth=zz", 400),
                                          ("/nope", 404)])
def test_http_bad_requests_get_clear_errors(daemon, path, status):
    r = requests.get(daemon.http.url + path, timeout=5)
    assert r.status_code == status and r.json()["error"]


def test_http_wrong_method_is_405(daemon):
    r = requests.post(daemon.http.url + "/health", timeout=5)
    assert r.status_code == 405


def test_daemon_stop_unlinks_book_segment(tmp_path):
    import os

    d = Daemon(make_config(tmp_path), "both")
    d.start()
    seg = d.books.store.name
    assert os.path.exists(f"/dev/shm/{seg}")
    assert d.stop() is True
    assert not os.path.exists(f"/dev/shm/{seg}")


def test_daemon_summary_says_what_is_missing(tmp_path):
    # Every role is built now: nothing is listed, and a part that were missing
    # would be named in the summary (never a role that pretends).
    for role in ("monitor", "trader", "both"):
        d = Daemon(make_config(tmp_path / role), role)
        assert d.missing == [], (role, d.missing)
        assert "NOT BUILT YET" not in d.summary()
        d.missing = ["executor"]
        assert "NOT BUILT YET (this role runs without them): executor" in d.summary()


def test_http_trader_halt_needs_trader_role_and_admin_key(daemon, tmp_path, monkeypatch):
    # The key is checked first (no key: 401 on any role); a monitor does not trade.
    assert requests.post(daemon.http.url + "/trader/halt", timeout=5).status_code == 401
    monkeypatch.setenv("ENGINE_ADMIN_KEY", "right-key")
    m = Daemon(dataclasses.replace(make_config(tmp_path / "m"), storage=cfg.parse(
        {"storage": {"history": {"backend": "none"}}}).storage), "monitor")  # one chdb per process
    m.start()
    try:
        r = requests.post(m.http.url + "/trader/halt", headers={"X-Admin-Key": "right-key"},
                          timeout=5)
        assert r.status_code == 404 and "does not trade" in r.json()["error"]
    finally:
        m.stop()
    t = Daemon(make_config(tmp_path / "t"), "trader")
    t.start()
    try:
        url = t.http.url + "/trader/halt"
        assert requests.post(url, timeout=5).status_code == 401
        assert requests.post(url, headers={"X-Admin-Key": "wrong"}, timeout=5).status_code == 401
        r = requests.post(url + "?reason=test", headers={"x-admin-key": "right-key"}, timeout=10)
        assert r.status_code == 200, r.text
        health = requests.get(t.http.url + "/health", timeout=5)
        assert health.status_code == 503 and "test" in health.text
        r = requests.post(t.http.url + "/trader/resume", headers={"X-Admin-Key": "right-key"}, timeout=10)
        assert r.status_code == 200
    finally:
        t.stop()

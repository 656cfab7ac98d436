"""Keys, TLS and Origin on a real daemon: no key, a read key and an admin key
on every route; HTTPS with a certificate made here (trusted: works; not
trusted: refused); plain HTTP refused off loopback; a hostile WebSocket Origin
refused by the daemon and by the local venue."""

from __future__ import annotations

import dataclasses
import ssl
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket

from engine import config as cfg
from engine.api.front import FrontDoorError, server_settings
from engine.app import Daemon
from engine.config import HttpConfig
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config

READ, ADMIN = "read-key-" + uuid.uuid4().hex, "admin-key-" + uuid.uuid4().hex
SAMPLE = {"key": "binance:spot:BTC/USDT", "file": "app.js"}


def daemon_config(tmp_path: Path, **http) -> cfg.Config:
    return cfg.parse({
        "daemon": {"data_dir": str(tmp_path), "id": f"s-{uuid.uuid4().hex[:8]}"},
        "http": {"port": 0, "read_keys_env": "T_READ_KEYS", "admin_key_env": "T_ADMIN_KEY",
                 "rate_limit_per_s": 0, **http},
        "books": {"capacity": 8, "depth": 5}, "storage": {"history": {"backend": "none"}},
        "feed": {"subscriptions": []}})


@pytest.fixture
def keyed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    monkeypatch.setenv("T_READ_KEYS", f"other-read-key, {READ}")
    monkeypatch.setenv("T_ADMIN_KEY", ADMIN)
    d = Daemon(daemon_config(tmp_path), "both")
    d.start()
    yield d
    d.stop()


def _call(d: Daemon, method: str, path: str, key: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.request(method, d.http.url + path, headers=headers, timeout=15)


def test_keys_on_every_route(keyed: Daemon) -> None:
    routes = keyed.http.router.routes
    assert len(routes) >= 20
    seen = []
    for route in sorted(routes, key=lambda r: r.method == "POST"):  # halt/resume last
        path = route.path
        for name, value in SAMPLE.items():
            path = path.replace("{" + name + "}", value)
        codes = {who: _call(keyed, route.method, path, key).status_code
                 for who, key in (("none", None), ("wrong", "nope"), ("read", READ),
                                  ("admin", ADMIN))}
        seen.append((route.method, route.path, route.scope, codes))
        if route.scope == "open":
            assert all(c not in (401, 403) for c in codes.values()), (route.path, codes)
            continue
        assert codes["none"] == 401 and codes["wrong"] == 401, (route.path, codes)
        assert codes["admin"] not in (401, 403), (route.path, codes)
        if route.scope == "read":
            assert codes["read"] not in (401, 403), (route.path, codes)
        else:
            assert codes["read"] == 403, (route.path, codes)
    scopes = {(m, p): s for m, p, s, _ in seen}
    assert scopes[("GET", "/health")] == scopes[("GET", "/metrics")] == "open"
    assert scopes[("GET", "/orders")] == scopes[("GET", "/status")] == "read"
    assert scopes[("POST", "/trader/halt")] == "admin"


def test_keys_never_in_status_or_logs(keyed: Daemon, capfd: pytest.CaptureFixture) -> None:
    r = _call(keyed, "GET", "/status", READ)
    assert r.status_code == 200 and READ not in r.text and ADMIN not in r.text
    _call(keyed, "POST", "/trader/halt", "wrong-" + ADMIN)
    out = capfd.readouterr()
    assert ADMIN not in out.out + out.err and READ not in out.out + out.err


def test_open_paths_configurable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_READ_KEYS", READ)
    d = Daemon(daemon_config(tmp_path, open_paths=["/health"]), "monitor")
    d.start()
    try:
        assert _call(d, "GET", "/metrics", None).status_code == 401
        assert _call(d, "GET", "/metrics", READ).status_code == 200
        assert _call(d, "GET", "/health", None).status_code in (200, 503)
    finally:
        d.stop()


def test_reads_open_on_loopback_only_without_read_key(tmp_path: Path) -> None:
    d = Daemon(daemon_config(tmp_path), "monitor")  # T_READ_KEYS unset
    d.start()
    try:
        assert _call(d, "GET", "/status", None).status_code == 200
        assert _call(d, "POST", "/trader/halt", None).status_code == 401  # admin never open
    finally:
        d.stop()
    with pytest.raises(FrontDoorError, match="read key"):
        server_settings(HttpConfig(host="0.0.0.0", allow_plain_remote=True,
                                   read_keys_env="T_READ_KEYS_UNSET"))
    with pytest.raises(FrontDoorError, match="not loopback"):
        server_settings(HttpConfig(host="0.0.0.0"))


# ------------------------------------------------------------------- TLS

@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return str(cert), str(key)


def test_tls_trusted_client_works_untrusting_client_fails(tmp_path: Path, certificate,
                                                          monkeypatch) -> None:
    cert, key = certificate
    monkeypatch.setenv("T_READ_KEYS", READ)
    d = Daemon(daemon_config(tmp_path, tls_cert=cert, tls_key=key), "monitor")
    d.start()
    try:
        url = d.http.url
        assert url.startswith("https://")
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(url + "/health", timeout=10)  # the system store does not know it
        r = requests.get(url + "/status", headers={"X-API-Key": READ}, verify=cert, timeout=10)
        assert r.status_code == 200 and r.json()["http"]["tls"] is True
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(url.replace("https", "http") + "/health", timeout=10)
        ws = websocket.create_connection(url.replace("https", "wss") + f"/ws?key={READ}",
                                         sslopt={"ca_certs": cert}, timeout=10)
        try:
            assert '"hello"' in ws.recv()
        finally:
            ws.close()
        with pytest.raises(ssl.SSLError):
            websocket.create_connection(url.replace("https", "wss") + f"/ws?key={READ}",
                                        timeout=10)
    finally:
        d.stop()


def test_tls_config_errors_are_clear(certificate) -> None:
    cert, _ = certificate
    with pytest.raises(FrontDoorError, match="set both or neither"):
        server_settings(HttpConfig(tls_cert=cert))
    with pytest.raises(FrontDoorError, match="cannot load"):
        server_settings(HttpConfig(tls_cert=cert, tls_key=cert))


# ---------------------------------------------------------------- Origin

def _ws_status(url: str, origin: str | None) -> int:
    try:
        ws = websocket.create_connection(url, origin=origin, timeout=10,
                                         suppress_origin=origin is None)
    except websocket.WebSocketBadStatusException as e:
        return e.status_code
    ws.close()
    return 101


def test_origin_hostile_refused_on_daemon(keyed: Daemon) -> None:
    url = keyed.http.url.replace("http", "ws") + f"/ws?key={READ}"
    own = keyed.http.url
    assert _ws_status(url, "http://evil.example") == 403
    assert _ws_status(url, own) == 101
    assert _ws_status(url, None) == 101
    assert _ws_status(keyed.http.url.replace("http", "ws") + "/ws", None) == 401  # no key


def test_origin_listed_allowed_on_daemon(tmp_path: Path) -> None:
    d = Daemon(daemon_config(tmp_path, ws_origins=["https://desk.example"]), "monitor")
    d.start()
    try:
        url = d.http.url.replace("http", "ws") + "/ws"
        assert _ws_status(url, "https://desk.example") == 101
        assert _ws_status(url, "https://desk.example.evil") == 403
    finally:
        d.stop()


def test_origin_hostile_refused_on_venue(tmp_path: Path) -> None:
    venue = LocalVenue(venue_config(market="none"), tmp_path, limits=Limits())
    venue.start()
    try:
        url = venue.ws_url + "/ws/btcusdt@trade"
        assert _ws_status(url, "http://evil.example") == 403
        assert _ws_status(url, venue.rest_url) == 101
        assert _ws_status(url, None) == 101
    finally:
        venue.stop(2.0)


def test_config_http_keys_parse() -> None:
    c = daemon_config(Path("/tmp"), ws_origins=["https://a"], workers=3)
    assert c.http.ws_origins == ("https://a",) and c.http.workers == 3
    with pytest.raises(cfg.ConfigError, match="http.workers"):
        cfg.parse({"http": {"workers": 0}})
    assert dataclasses.asdict(c.http)["open_paths"] == ("/health", "/metrics")


def test_origin_listed_in_venue_config_allowed_on_both_dialects(tmp_path: Path) -> None:
    config = dataclasses.replace(venue_config(market="none", usdm=True),
                                 ws_origins=("https://desk.example",))
    venue = LocalVenue(config, tmp_path, limits=Limits())
    venue.start()
    try:
        spot = venue.ws_url + "/ws/btcusdt@trade"
        assert _ws_status(spot, "https://desk.example") == 101
        assert _ws_status(spot, "https://desk.example.evil") == 403
        assert venue.usdm is not None
        futures = venue.usdm.ws_url + "/market/ws/btcusdt@aggTrade"
        assert _ws_status(futures, "https://desk.example") == 101
        assert _ws_status(futures, "http://evil.example") == 403
    finally:
        venue.stop(2.0)

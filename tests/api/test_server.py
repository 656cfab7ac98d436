"""The hardened HTTP server over real sockets (the probe suite of issue 14):
500 simultaneous connections, slowloris clients, idle and unfinished
requests, malformed lengths and chunking, oversized numbers, size limits,
rate limits with Retry-After, handler errors logged without local values."""

from __future__ import annotations

import socket
import statistics
import threading
import time
from collections.abc import Iterator

import pytest
import requests
from loguru import logger

from engine.api.http import HttpServer, Request, Response, Router, ServerSettings
from engine.api.params import BadRequest, int_param
from engine.api.security import TokenBuckets
from engine.api.server import text_frame
from tests.support.eventually import eventually


def _router() -> Router:
    router = Router()
    router.add("GET", "/health", lambda _: Response.json({"ok": True}), scope="open")

    def echo(req: Request) -> Response:
        return Response.json({"length": len(req.body)})

    def number(req: Request) -> Response:
        try:
            return Response.json({"n": int_param(req, "n", 0)})
        except BadRequest as e:
            return Response.error(400, str(e))

    def broken(req: Request) -> Response:
        signed_request = "signature=SECRET-SIGNATURE-VALUE"  # noqa: F841 - must not be logged
        raise RuntimeError("handler bug")

    router.add("POST", "/echo", echo, scope="open")
    router.add("GET", "/number", number, scope="open")
    router.add("GET", "/broken", broken, scope="open")
    return router


def _server(**settings) -> HttpServer:
    server = HttpServer("127.0.0.1", 0, _router(), ServerSettings(**settings))
    server.start()
    return server


@pytest.fixture
def server() -> Iterator[HttpServer]:
    s = _server(request_timeout_s=2.0, idle_timeout_s=2.0, max_body_bytes=1000,
                max_header_bytes=4096, workers=4)
    yield s
    s.stop()


def _raw(server: HttpServer, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data``, read until the server closes (or a whole response with
    Content-Length arrives)."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as s:
        s.sendall(data)
        return _read_response(s)


def _read_response(s: socket.socket) -> bytes:
    got = b""
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                return got
        chunk = s.recv(65536)
        if not chunk:
            return got
        got += chunk


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_server_500_simultaneous_connections_all_answered() -> None:
    server = _server(backlog=1024)
    try:
        socks = [socket.create_connection((server.host, server.port), timeout=30)
                 for _ in range(500)]  # all open at once: the backlog holds them
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        statuses = [_status(_read_response(s)) for s in socks]
        for s in socks:
            s.close()
    finally:
        server.stop()
    assert statuses == [200] * 500
    assert server.counts["accepted"] == 500 and server.counts["refused_full"] == 0


def test_server_300_slow_clients_health_answers_and_threads_bounded() -> None:
    server = _server(request_timeout_s=5.0, workers=4)
    try:
        requests.get(server.url + "/health", timeout=5)  # the pool's first worker exists
        threads_before = threading.active_count()
        slow = []
        for _ in range(300):  # slowloris: a request head that never ends
            s = socket.create_connection((server.host, server.port), timeout=30)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1")
            slow.append(s)
        eventually(lambda: server.status()["connections"] >= 300, message="300 slow clients in")
        latencies = []
        with requests.Session() as session:
            for _ in range(20):
                started = time.perf_counter()
                assert session.get(server.url + "/health", timeout=5).status_code == 200
                latencies.append(time.perf_counter() - started)
        threads_during = threading.active_count()
        # Each slow client is answered 408 and closed once its request is overdue.
        answers = [_status(_read_response(s)) for s in slow]
        for s in slow:
            s.close()
    finally:
        server.stop()
    print(f"/health median {statistics.median(latencies) * 1000:.1f} ms with 300 slow clients; "
          f"threads {threads_before} -> {threads_during}")
    assert statistics.median(latencies) < 0.1
    assert threads_during <= threads_before + 4  # at most the pool's workers more
    assert answers == [408] * 300


def test_server_idle_connection_closed(server: HttpServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=30) as s:
        assert s.recv(100) == b""  # closed by the server after idle_timeout_s
    assert server.counts["timeouts"] >= 1


def test_server_keep_alive_and_pipelining(server: HttpServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
        got = b""
        while got.count(b"HTTP/1.1 200") < 3:
            got += s.recv(65536)
    assert got.count(b'{"ok":true}') == 3


@pytest.mark.parametrize("headers, body, status", [
    (b"Content-Length: -1\r\n", b"", 400),
    (b"Content-Length: abc\r\n", b"", 400),
    (b"Content-Length: 5\r\nContent-Length: 6\r\n", b"hello!", 400),
    (b"Transfer-Encoding: chunked\r\n", b"zz\r\nhello\r\n0\r\n\r\n", 400),
    (b"Transfer-Encoding: gzip\r\n", b"", 501),
    (b"Content-Length: 5000\r\n", b"", 413),
    (b"X-Big: " + b"a" * 8000 + b"\r\n", b"", 431),
], ids=["length-negative", "length-text", "length-twice", "chunk-size-text", "coding-unknown",
        "body-too-big", "head-too-big"])
def test_server_malformed_requests_answered_not_dropped(server: HttpServer, headers: bytes,
                                                        body: bytes, status: int) -> None:
    response = _raw(server, b"POST /echo HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n" + body)
    assert _status(response) == status, response[:200]
    assert b'"error"' in response


def test_server_chunked_body_accepted_and_bounded(server: HttpServer) -> None:
    ok = _raw(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"5\r\nhello\r\n0\r\n\r\n")
    assert _status(ok) == 200 and b'"length":5' in ok
    big = b"".join(b"100\r\n" + b"x" * 256 + b"\r\n" for _ in range(5)) + b"0\r\n\r\n"
    too_big = _raw(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                   + big)
    assert _status(too_big) == 413


@pytest.mark.parametrize("value", ["9999999999999999999", "-9999999999999999999",
                                   "1" * 400, "1e5", "0x10", "nan"])
def test_server_oversized_numbers_are_400_naming_the_parameter(server: HttpServer,
                                                               value: str) -> None:
    r = requests.get(server.url + "/number", params={"n": value}, timeout=5)
    assert r.status_code == 400 and r.json()["error"].startswith("n: ")


def test_server_int64_bounds_accepted(server: HttpServer) -> None:
    for value in (str((1 << 63) - 1), str(-(1 << 63))):
        assert requests.get(server.url + "/number", params={"n": value}, timeout=5).json() == \
            {"n": int(value)}


def test_server_unfinished_body_gets_408(server: HttpServer) -> None:
    response = _raw(server, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert _status(response) == 408


def test_server_handler_error_logged_once_without_locals(server: HttpServer) -> None:
    lines: list[str] = []
    sink = logger.add(lines.append, level="ERROR", diagnose=True, backtrace=True)
    try:
        r = requests.get(server.url + "/broken", timeout=5)
    finally:
        logger.remove(sink)
    assert r.status_code == 500 and "RuntimeError" in r.json()["error"]
    text = "".join(lines)
    assert text.count("handler failed path=/broken") == 1
    assert "Traceback" in text and "handler bug" in text
    assert "SECRET-SIGNATURE-VALUE" not in text


def test_server_rate_limit_429_with_retry_after() -> None:
    server = _server(buckets=TokenBuckets(rate=0.5, burst=3))
    try:
        with requests.Session() as s:
            codes = [s.get(server.url + "/health", timeout=5) for _ in range(5)]
    finally:
        server.stop()
    assert [r.status_code for r in codes] == [200, 200, 200, 429, 429]
    assert int(codes[3].headers["Retry-After"]) >= 1
    assert server.counts["rate_limited"] == 2


def test_server_rate_limit_per_key_across_addresses() -> None:
    """Per address and per key: a key's bucket empties even when its calls
    come from different addresses (127.0.0.2 is loopback too)."""
    server = _server(buckets=TokenBuckets(rate=0.01, burst=2))
    try:
        def get(source: str, key: str) -> requests.Response:
            with socket.create_connection((server.host, server.port), timeout=5,
                                          source_address=(source, 0)) as sock:
                sock.sendall(f"GET /health HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n\r\n"
                             .encode())
                return _status(_read_response(sock))
        assert [get("127.0.0.1", "k1"), get("127.0.0.2", "k1")] == [200, 200]
        assert get("127.0.0.3", "k1") == 429  # fresh address, spent key
        assert get("127.0.0.4", "k2") == 200  # another key, another address
    finally:
        server.stop()


def test_server_connections_over_max_get_503() -> None:
    server = _server(max_connections=3)
    try:
        held = [socket.create_connection((server.host, server.port), timeout=5) for _ in range(3)]
        eventually(lambda: server.status()["connections"] == 3)
        refused = _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in held:
            s.close()
    finally:
        server.stop()
    assert _status(refused) == 503


class _Flood:
    """A WsHandler that pushes 16 KiB frames at a client until the server
    refuses one (the client reads nothing)."""

    def __init__(self) -> None:
        self.pushed = 0
        self.refused = threading.Event()

    def opened(self, session) -> None:
        pass

    def message(self, session, text: str) -> None:
        def flood() -> None:
            frame = text_frame("x" * 16384)
            while self.pushed < 20_000:  # 320 MiB: far past any socket buffer
                if not session.send_frame(frame):
                    self.refused.set()
                    return
                self.pushed += 1
        threading.Thread(target=flood, daemon=True).start()

    def closed(self, session) -> None:
        pass


def test_server_slow_websocket_consumer_dropped() -> None:
    import websocket

    handler = _Flood()
    router = _router()
    router.add("GET", "/ws", lambda _: Response.error(426, "upgrade"), scope="open")
    server = HttpServer("127.0.0.1", 0, router, ServerSettings(ws_buffer_bytes=256 * 1024),
                        ws_handler=handler)
    server.start()
    try:
        ws = websocket.create_connection(server.url.replace("http", "ws") + "/ws", timeout=10)
        ws.send("go")  # and read nothing
        assert handler.refused.wait(60), handler.pushed
        eventually(lambda: server.counts["ws_dropped_slow"] == 1 and
                   server.status()["connections"] == 0)
        ws.close()
    finally:
        server.stop()
    assert handler.pushed < 20_000  # dropped long before the flood ended


SERVE_WITH_FEW_FDS = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, (48, 48))
from engine.api.http import HttpServer, Response, Router
router = Router()
router.add("GET", "/health", lambda _: Response.json({"ok": True}), scope="open")
server = HttpServer("127.0.0.1", 0, router)
server.start()
print(server.port, flush=True)
sys.stdin.read()
print(server.counts["refused_full"], flush=True)
"""


def test_server_out_of_descriptors_pauses_accepts_and_recovers() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", SERVE_WITH_FEW_FDS], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdin is not None
        port = int(proc.stdout.readline())
        held = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(80)]
        # The connects complete in the backlog; accepting them runs the server out of fds
        # (48 allowed), whether or not the clients are still there.
        for s in held:
            s.close()
        ok = eventually(lambda: requests.get(f"http://127.0.0.1:{port}/health", timeout=2).ok,
                        timeout=30, ignoring=(AssertionError, OSError))
        assert ok
        proc.stdin.close()
        refused = int(proc.stdout.readline())
    finally:
        proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
    assert refused >= 1, stderr[-2000:]
    assert "pausing accepts" in stderr

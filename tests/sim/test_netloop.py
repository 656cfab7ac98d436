"""One port, one thread: keep-alive HTTP, pipelining, WebSocket upgrade on
/ws and /stream only, and slow clients that never read."""

from __future__ import annotations

import socket
import time

import websocket

from engine.sim.exchange import Published
from engine.sim.matching import OpResult
from engine.sim.netloop import MAX_OUTPUT_BYTES
from engine.sim.orders import Trade
from engine.sim.server import LocalVenue
from tests.support.eventually import eventually


def address(venue: LocalVenue) -> tuple[str, int]:
    host, port = venue.rest_url.removeprefix("http://").split(":")
    return host, int(port)


def read_responses(sock: socket.socket, count: int) -> bytes:
    data = b""
    deadline = time.monotonic() + 5
    while data.count(b"HTTP/1.1 ") < count or not data.endswith(b"}"):
        assert time.monotonic() < deadline, data
        data += sock.recv(65536)
    return data


def test_pipelined_requests_on_one_connection_answer_in_order(venue: LocalVenue) -> None:
    with socket.create_connection(address(venue)) as sock:
        sock.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"GET /api/v3/time HTTP/1.1\r\nHost: x\r\n\r\n")
        data = read_responses(sock, 2)
    first, second = data.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200") and first.endswith(b"{}")
    assert b"serverTime" in second


def test_connection_close_is_honoured(venue: LocalVenue) -> None:
    with socket.create_connection(address(venue)) as sock:
        sock.sendall(b"GET /api/v3/ping HTTP/1.1\r\nConnection: close\r\n\r\n")
        sock.settimeout(5)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert b"Connection: close" in data and data.endswith(b"{}")


def test_plain_get_on_a_websocket_path_is_not_upgraded(venue: LocalVenue) -> None:
    with socket.create_connection(address(venue)) as sock:
        sock.sendall(b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        assert sock.recv(65536).startswith(b"HTTP/1.1 404")


def test_websocket_and_rest_share_the_port(venue: LocalVenue) -> None:
    ws = websocket.create_connection(venue.ws_url + "/stream?streams=btcusdt@trade", timeout=5)
    try:
        assert venue.rest_url.split(":")[-1] == venue.ws_url.split(":")[-1]
        eventually(lambda: len(venue.network.ws_connections) == 1)
    finally:
        ws.close()
    eventually(lambda: not venue.network.ws_connections)


def test_client_that_never_reads_is_dropped_not_waited_for(venue: LocalVenue) -> None:
    sock = socket.create_connection(address(venue))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(b"GET /ws/btcusdt@trade HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                 b"Sec-WebSocket-Version: 13\r\n\r\n")
    eventually(lambda: venue.network.ws_connections)
    conn = next(iter(venue.network.ws_connections))
    # one operation with more trades than the output bound holds, through the
    # exchange's listener like any real operation
    flood = OpResult(symbol="BTCUSDT")
    flood.trades = [Trade("BTCUSDT", i, 3_000_000, 1000, 3 * 10**9, 0, 1, 2, "a", "b", False,
                          0, 0, 1) for i in range(3 * MAX_OUTPUT_BYTES // 100)]
    hub = venue.exchange.listeners[0]
    hub(Published("BTCUSDT", flood, [], None, {}, 0))
    eventually(lambda: conn.closed)
    assert venue.health()[0]
    sock.close()

"""The HTTP/1.1 request parser: split reads, pipelining, bodies, limits."""

from __future__ import annotations

import pytest

from engine.sim.http_wire import MAX_HEAD_BYTES, HttpError, HttpResponse, RequestParser

GET = b"GET /api/v3/depth?symbol=BTCUSDT HTTP/1.1\r\nHost: x\r\n\r\n"
POST = (b"POST /api/v3/order HTTP/1.1\r\nX-MBX-APIKEY: k\r\nContent-Length: 7\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n\r\nside=BU")


def test_request_split_across_reads_and_pipelined() -> None:
    parser = RequestParser()
    data = GET + POST
    for i in range(0, len(data), 5):
        parser.feed(data[i:i + 5])
    first, second = parser.next_request(), parser.next_request()
    assert (first.method, first.path, first.query) == ("GET", "/api/v3/depth", "symbol=BTCUSDT")
    assert (second.method, second.body, second.headers["x-mbx-apikey"]) == ("POST", b"side=BU",
                                                                            "k")
    assert parser.next_request() is None


def test_keep_alive_rules() -> None:
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert not parser.next_request().keep_alive
    assert not parser.next_request().keep_alive


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
    (b"POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
])
def test_bad_requests_raise_http_errors(raw: bytes, status: int) -> None:
    parser = RequestParser()
    parser.feed(raw)
    with pytest.raises(HttpError) as err:
        parser.next_request()
    assert err.value.status == status


def test_endless_head_is_refused() -> None:
    parser = RequestParser()
    parser.feed(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * (MAX_HEAD_BYTES // 6))
    with pytest.raises(HttpError) as err:
        parser.next_request()
    assert err.value.status == 431


def test_response_serializes_status_headers_and_body() -> None:
    raw = HttpResponse(429, b"{}", [("Retry-After", "7")]).serialize(keep_alive=True)
    assert raw.startswith(b"HTTP/1.1 429 Too Many Requests\r\n")
    assert b"Retry-After: 7\r\n" in raw and raw.endswith(b"\r\n\r\n{}")

"""Replay mode: a capture file (docs/architecture.md format) of Binance depth
drives the venue's book through a foreign liquidity account."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
import zstandard

from engine.sim.server import LocalVenue
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually

SNAPSHOT = {"lastUpdateId": 100, "bids": [["29990.00", "1.5"], ["29980.00", "2"]],
            "asks": [["30010.00", "1"], ["30020.00", "3"]]}
DIFF_RAW = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 101, "u": 103,
            "b": [["29990.00", "0"], ["29995.004", "0.5"]], "a": [["30010.00", "0.25"]]}
DIFF_COMBINED = {"stream": "btcusdt@depth@100ms", "data": {
    "e": "depthUpdate", "E": 2, "s": "BTCUSDT", "U": 104, "u": 104, "b": [],
    "a": [["30030.001", "2"]]}}


def capture_lines() -> list[bytes]:
    base = 1_700_000_000_000_000_000
    records = [
        {"t": base, "src": "rest", "conn": "r1",
         "url": "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000",
         "data": orjson.dumps(SNAPSHOT).decode()},
        {"t": base + 1_000_000, "src": "ws", "conn": "c1",
         "url": "wss://stream.binance.com:9443/ws/btcusdt@depth@100ms",
         "data": orjson.dumps(DIFF_RAW).decode()},
        {"t": base + 2_000_000, "src": "ws", "conn": "c2",
         "url": "wss://stream.binance.com:9443/stream?streams=btcusdt@depth@100ms",
         "data": orjson.dumps(DIFF_COMBINED).decode()},
        {"t": base + 3_000_000, "src": "ws", "conn": "c2", "url": "wss://x/ws/btcusdt@trade",
         "data": '{"e":"trade","s":"BTCUSDT","p":"1","q":"1"}'},
    ]
    return [orjson.dumps(r) + b"\n" for r in records]


def compress(data: bytes, suffix: str) -> bytes:
    if suffix.endswith(".gz"):
        return gzip.compress(data)
    if suffix.endswith(".zst"):
        return zstandard.ZstdCompressor().compress(data)
    return data


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_replay_builds_the_captured_book(start_venue: Callable[..., LocalVenue], tmp_path: Path,
                                         suffix: str) -> None:
    path = tmp_path / f"capture{suffix}"
    data = b"".join(capture_lines())
    path.write_bytes(compress(data, suffix))
    venue = start_venue(market="replay", replay_file=str(path), replay_speed=0)
    eventually(lambda: venue.market.finished.is_set())
    assert venue.health()[0] and venue.market.frames == 3
    depth = BinanceClient(venue.rest_url).public("GET", "/api/v3/depth",
                                                 symbol="BTCUSDT").json()
    # 29995.004 is off the 0.01 tick: a bid rounds down; 30030.001 an ask rounds up
    assert depth["bids"] == [["29995.00000000", "0.50000000"], ["29980.00000000", "2.00000000"]]
    assert depth["asks"] == [["30010.00000000", "0.25000000"], ["30020.00000000", "3.00000000"],
                             ["30030.01000000", "2.00000000"]]


def test_users_trade_against_replayed_liquidity(start_venue: Callable[..., LocalVenue],
                                                tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    path.write_bytes(b"".join(capture_lines()))
    venue = start_venue(market="replay", replay_file=str(path), replay_speed=0)
    eventually(lambda: venue.market.finished.is_set())
    alice = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    bought = alice.order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.5").json()
    assert [(f["price"], f["qty"]) for f in bought["fills"]] == [
        ("30010.00000000", "0.25000000"), ("30020.00000000", "0.25000000")]


def test_replay_of_a_missing_file_reports_unhealthy(start_venue: Callable[..., LocalVenue],
                                                    tmp_path: Path) -> None:
    venue = start_venue(market="replay", replay_file=str(tmp_path / "absent.jsonl"),
                        replay_speed=0)
    eventually(lambda: venue.market.finished.is_set())
    healthy, reason = venue.health()
    assert not healthy and "replay failed" in reason

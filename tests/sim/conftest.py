"""Shared fixtures for the local venue's tests: real venues on free ports, a
docs-only Binance client per account, and WebSocket helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websocket

from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config
from tests.sim.binance_client import BinanceClient


def recv_json(ws: websocket.WebSocket, match: Callable[[Any], bool] = lambda m: True,
              timeout_s: float = 15.0) -> Any:
    """The next message on ``ws`` that satisfies ``match``."""
    deadline = time.monotonic() + timeout_s
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError("no matching WebSocket message in time")
        ws.settimeout(remaining)
        try:
            message = orjson.loads(ws.recv())
        except websocket.WebSocketTimeoutException:
            raise AssertionError(f"no matching WebSocket message in {timeout_s}s") from None
        if match(message):
            return message


@pytest.fixture
def start_venue(tmp_path: Path) -> Iterator[Callable[..., LocalVenue]]:
    started: list[LocalVenue] = []

    def start(**config_args: Any) -> LocalVenue:
        options = {k: config_args.pop(k) for k in ("limits", "replay_speed", "fresh", "clock",
                                                    "legacy_listen_keys") if k in config_args}
        venue = LocalVenue(venue_config(**config_args), tmp_path / f"venue{len(started)}",
                           **options)
        venue.start()
        started.append(venue)
        return venue

    yield start
    for venue in started:
        venue.stop()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "legacy_listen_keys: the test's venue still serves the "
                                       "spot listenKey endpoints Binance retired on 2026-02-20")


@pytest.fixture
def venue(start_venue: Callable[..., LocalVenue], request: pytest.FixtureRequest) -> LocalVenue:
    if request.node.get_closest_marker("legacy_listen_keys"):
        return start_venue(legacy_listen_keys=True)
    return start_venue()


@pytest.fixture
def alice(venue: LocalVenue) -> BinanceClient:
    return BinanceClient(venue.rest_url, "alice-key", "alice-secret")


@pytest.fixture
def bob(venue: LocalVenue) -> BinanceClient:
    return BinanceClient(venue.rest_url, "bob-key", "bob-secret")


@pytest.fixture
def public(venue: LocalVenue) -> BinanceClient:
    return BinanceClient(venue.rest_url)


@pytest.fixture
def ws_connect() -> Iterator[Callable[[str], websocket.WebSocket]]:
    opened: list[websocket.WebSocket] = []

    def connect(url: str) -> websocket.WebSocket:
        ws = websocket.create_connection(url, timeout=5)
        opened.append(ws)
        return ws

    yield connect
    for ws in opened:
        try:
            ws.close()
        except Exception:  # noqa: BLE001, S110 - already closed by the server
            pass

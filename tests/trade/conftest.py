"""Fixtures for the trader's tests: a real local venue on a free port, the
fault proxy in front of it, API credentials in the environment, and trader
services that are always stopped at teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.sim.server import LocalVenue
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.trade.fault_proxy import FaultProxy
from tests.trade.rig import KEY_ENV, SECRET_ENV, make_service, start_venue, trader_config


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[LocalVenue]:
    venue = start_venue(tmp_path / "venue")
    yield venue
    venue.stop()


@pytest.fixture
def proxy(venue: LocalVenue) -> Iterator[FaultProxy]:
    proxy = FaultProxy(venue.rest_url)
    yield proxy
    proxy.stop()


@pytest.fixture
def alice(venue: LocalVenue) -> BinanceClient:
    """The trader's own account, used directly (as a human would) by tests."""
    return BinanceClient(venue.rest_url, "alice-key", "alice-secret")


@pytest.fixture
def bob(venue: LocalVenue) -> BinanceClient:
    """Another account: the counterparty that fills our orders."""
    return BinanceClient(venue.rest_url, "bob-key", "bob-secret")


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "alice-key")
    monkeypatch.setenv(SECRET_ENV, "alice-secret")
    monkeypatch.setenv("ENGINE_TEST_ADMIN_KEY", "let-me-halt")


@pytest.fixture(params=["rest", "ws_api"])
def transport(request: pytest.FixtureRequest) -> str:
    """Run a test over REST and over the WebSocket API (trader.order_transport)."""
    return str(request.param)


@pytest.fixture
def start_trader(tmp_path: Path, proxy: FaultProxy) -> Iterator[Callable[..., TraderService]]:
    """Start a TraderService against the venue through the proxy (``direct=True``:
    no proxy). Keyword arguments change the FAST settings."""
    started: list[TraderService] = []

    def start(direct: bool = False, data_dir: Path | None = None, db: Any = None,
              tasks: dict | None = None, **changes: Any) -> TraderService:
        venue_url = proxy.upstream
        rest = f"http://{venue_url[0]}:{venue_url[1]}" if direct else proxy.url
        ws = f"ws://{venue_url[0]}:{venue_url[1]}" if direct else proxy.ws_url
        config = trader_config(data_dir or tmp_path / "trader", rest, ws, tasks)
        service = make_service(config, db=db, **changes)
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop(3.0)

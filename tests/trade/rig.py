"""Helpers for the trader's tests (no tests here): a local venue with roomy
limits, a TraderService wired to it (directly or through the fault proxy) on a
real SQLite file or a scratch MariaDB database, and action builders."""

from __future__ import annotations

import dataclasses
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine import config as config_mod
from engine.config import Config
from engine.feed.limiter import RestLimiter
from engine.model import Market, Side
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.store.taskdb import TaskDb
from engine.trade.actions import CancelOrder, PlaceOrder, make_client_order_id
from engine.trade.service import TraderService
from engine.trade.settings import RiskConfig, TraderConfig
from engine.venues import make_trading_driver
from tests.sim.binance_client import BinanceClient

KEY_ENV, SECRET_ENV = "ENGINE_TEST_TRADER_KEY", "ENGINE_TEST_TRADER_SECRET"
PAIR = "BTC/USDT"

# Fast failure handling so fault tests finish in seconds; error_burst high so
# the breaker only trips where a test wants it.
FAST = TraderConfig(
    request_timeout_s=1.0, retry_attempts=5, retry_budget_s=20.0, backoff_min_s=0.05,
    backoff_max_s=0.3, venues=("binance",), pairs=(f"binance:{PAIR}",),
    risk=RiskConfig(error_burst=1000, max_order_notional="", max_open_orders=10_000))


def start_venue(data_dir: Path, **limits: Any) -> LocalVenue:
    accounts = [account_config("alice", {"USDT": "10000000", "BTC": "1000"}),
                account_config("bob", {"USDT": "10000000", "BTC": "1000"})]
    venue = LocalVenue(venue_config(accounts=accounts, market="none"), data_dir,
                       limits=Limits(**{"orders_per_10s": 100_000, "orders_per_day": 10_000_000,
                                        **limits}))
    venue.start()
    return venue


def trader_config(data_dir: Path, rest_url: str, ws_url: str, tasks: dict | None = None,
                  admin_key_env: str = "ENGINE_TEST_ADMIN_KEY") -> Config:
    return config_mod.parse({
        "daemon": {"data_dir": str(data_dir), "id": "trader-test"},
        "http": {"admin_key_env": admin_key_env},
        "exchanges": {"binance": {"spot": {"rest": rest_url, "ws": ws_url},
                                  "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}},
        "storage": {"tasks": tasks or {"backend": "sqlite", "path": "tasks.sqlite"}},
    })


def write_config(path: Path, data_dir: Path, rest_url: str, ws_url: str) -> None:
    """The YAML a daemon (or tools/reconcile.py) would read for this rig."""
    import yaml

    path.write_text(yaml.safe_dump({
        "daemon": {"data_dir": str(data_dir), "id": "trader-test"},
        "exchanges": {"binance": {"spot": {"rest": rest_url, "ws": ws_url},
                                  "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}},
        "storage": {"tasks": {"backend": "sqlite", "path": "tasks.sqlite"}}}))


def make_service(config: Config, settings: TraderConfig = FAST, db: TaskDb | None = None,
                 **changes: Any) -> TraderService:
    settings = dataclasses.replace(settings, **changes) if changes else settings
    return TraderService(config, "trader-test",
                         lambda venue, market, weight: RestLimiter(weight, 60.0, fraction=1.0),
                         make_trading_driver, settings=settings, db=db)


class Orders:
    """Builds actions with ids from the real scheme: strategy "t1", one slot each."""

    def __init__(self, strategy: str = "t1") -> None:
        self.strategy = strategy
        self._slots = itertools.count(1)

    def place(self, side: Side, price: str, quantity: str = "0.01", post_only: bool = False,
              slot: int | None = None, generation: int = 0, **extra: Any) -> PlaceOrder:
        slot = next(self._slots) if slot is None else slot
        return PlaceOrder(make_client_order_id(self.strategy, slot, generation), "binance",
                          Market.SPOT, PAIR, side, Decimal(price), Decimal(quantity),
                          post_only=post_only, strategy_id=self.strategy, slot_id=slot, **extra)

    @staticmethod
    def cancel(order: PlaceOrder) -> CancelOrder:
        return CancelOrder(order.client_order_id, order.venue, order.market, order.pair,
                           order.strategy_id, order.slot_id)


def venue_orders(client: BinanceClient, **params: Any) -> list[dict]:
    """Every order of the client's account on BTCUSDT (the venue's own record)."""
    reply = client.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT", limit=1000, **params)
    assert reply.status_code == 200, reply.text
    return reply.json()


def open_orders(client: BinanceClient) -> list[dict]:
    reply = client.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT")
    assert reply.status_code == 200, reply.text
    return reply.json()

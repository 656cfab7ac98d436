"""Helpers for the trader's futures tests (no tests here): the local venue with
its Binance USD-M dialect, a TraderService trading ``binance_futures`` on it,
and the venue's own record (userTrades, income, positionRisk) read by a plain
signed client."""

from __future__ import annotations

import dataclasses
import random
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine import config as config_mod
from engine.config import Config
from engine.model import Market, Side
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.trade.actions import PlaceOrder, make_client_order_id
from engine.trade.settings import TraderConfig
from tests.sim.binance_client import BinanceClient
from tests.trade.rig import FAST, KEY_ENV, SECRET_ENV

VENUE = "binance_futures"
PAIR = "BTC/USDT"
# REST orders (the fault proxy's faults are REST faults); WS_API: orders over ws-fapi.
FUTURES = dataclasses.replace(FAST, venues=(VENUE,), pairs=(f"{VENUE}:{PAIR}",),
                              order_transport="rest")
WS_API = dataclasses.replace(FUTURES, order_transport="ws_api")


def start_venue(data_dir: Path, funding_interval_s: int = 28800, alice_usdt: str = "10000000",
                **limits: Any) -> LocalVenue:
    accounts = [account_config("alice", {"USDT": alice_usdt, "BTC": "1000"}),
                account_config("bob", {"USDT": "10000000", "BTC": "1000"})]
    base = venue_config(accounts=accounts, market="none", usdm=True)
    config = dataclasses.replace(base, usdm=dataclasses.replace(
        base.usdm, enabled=True, port=0, funding_interval_s=funding_interval_s))
    venue = LocalVenue(config, data_dir, limits=Limits(**{
        "orders_per_10s": 100_000, "orders_per_day": 10_000_000, **limits}))
    venue.start()
    assert venue.usdm is not None, "the venue's USD-M dialect did not start"
    return venue


def trader_config(data_dir: Path, rest_url: str, ws_url: str, **trader: Any) -> Config:
    return config_mod.parse({
        "daemon": {"data_dir": str(data_dir), "id": "trader-test"},
        "exchanges": {"binance": {"futures": {"rest": rest_url, "ws": ws_url},
                                  "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}},
        "storage": {"tasks": {"backend": "sqlite", "path": "tasks.sqlite"}},
        **({"trader": trader} if trader else {}),
    })


def client(venue: LocalVenue, account: Any) -> BinanceClient:
    assert venue.usdm is not None
    return BinanceClient(venue.usdm.url, account.api_key, account.api_secret)


def place(slot: int, side: Side, price: str, quantity: str = "0.01", post_only: bool = False,
          strategy: str = "f1", generation: int = 0, **extra: Any) -> PlaceOrder:
    return PlaceOrder(make_client_order_id(strategy, slot, generation), VENUE, Market.FUTURES,
                      PAIR, side, Decimal(price), Decimal(quantity), post_only=post_only,
                      strategy_id=strategy, slot_id=slot, **extra)


def signed(c: BinanceClient, method: str, path: str, **params: Any) -> Any:
    reply = c.signed(method, path, **params)
    assert reply.status_code == 200, f"{path}: {reply.status_code} {reply.text}"
    return reply.json()


def venue_trades(c: BinanceClient) -> list[dict]:
    return signed(c, "GET", "/fapi/v1/userTrades", symbol="BTCUSDT", limit=1000)


def venue_position(c: BinanceClient) -> Decimal:
    rows = signed(c, "GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")
    return sum((Decimal(r["positionAmt"]) for r in rows), Decimal(0))


def venue_funding(c: BinanceClient) -> list[dict]:
    return signed(c, "GET", "/fapi/v1/income", incomeType="FUNDING_FEE", limit=1000)


class PerpMarket:
    """A counterparty making the perpetual's market through the venue's USD-M
    REST API (the venue's synthetic market trades spot symbols only): every
    ``period_s`` it moves a seeded random-walk mid, cancels its quotes and
    re-quotes ``levels`` a side around it. A move through resting orders of
    another account fills them, as a real taker would."""

    def __init__(self, c: BinanceClient, mid: str = "30000", step: str = "15",
                 spread: str = "2", levels: int = 5, size: str = "0.05",
                 period_s: float = 0.2, seed: int = 7,
                 moves: tuple[int, ...] = (-2, -1, -1, 0, 1, 1, 2)) -> None:
        self.c, self.mid, self.step = c, Decimal(mid), Decimal(step)
        self.spread, self.levels, self.size, self.period_s = Decimal(spread), levels, size, period_s
        self.rng = random.Random(seed)
        self.moves = moves  # steps the mid may take each period (a trend: all one sign)
        self.steps = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="perp-market", daemon=True)

    def start(self) -> PerpMarket:
        self.quote()
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.mid = max(self.step, self.mid + self.step * self.rng.choice(self.moves))
            try:
                self.quote()
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))
            self.steps += 1

    def quote(self) -> None:
        reply = self.c.signed("DELETE", "/fapi/v1/allOpenOrders", symbol="BTCUSDT")
        if reply.status_code != 200:
            self.errors.append(reply.text)
        for i in range(self.levels):
            for side, price in (("BUY", self.mid - self.spread / 2 - i * self.step),
                                ("SELL", self.mid + self.spread / 2 + i * self.step)):
                reply = self.c.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side=side,
                                      type="LIMIT", timeInForce="GTC", quantity=self.size,
                                      price=str(price))
                if reply.status_code != 200:
                    self.errors.append(reply.text)


__all__ = ["PerpMarket", "FUTURES", "PAIR", "VENUE", "TraderConfig", "client", "place", "signed",
           "start_venue", "trader_config", "venue_funding", "venue_position", "venue_trades"]


def futures_orders(c: BinanceClient, **params: Any) -> list[dict]:
    """Every order of the client's account on BTCUSDT (the venue's own record)."""
    return signed(c, "GET", "/fapi/v1/allOrders", symbol="BTCUSDT", limit=1000, **params)


def futures_open_orders(c: BinanceClient) -> list[dict]:
    return signed(c, "GET", "/fapi/v1/openOrders", symbol="BTCUSDT")


def market_order(c: BinanceClient, side: str, quantity: str) -> dict:
    return signed(c, "POST", "/fapi/v1/order", symbol="BTCUSDT", side=side, type="MARKET",
                  quantity=quantity)

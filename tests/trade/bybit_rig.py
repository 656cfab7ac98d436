"""Helpers for the trader's Bybit tests (no tests here): the local venue with
its Bybit v5 dialect, a trader config naming exchange ``bybit``, a plain signed
v5 client (independent of the driver under test) to read the venue's own
records, and a counterparty that makes a market through the dialect's REST."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import random
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import requests

from engine import config as config_mod
from engine.config import Config
from engine.model import Market, Side
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.trade.actions import PlaceOrder, make_client_order_id
from tests.trade.rig import FAST, KEY_ENV, SECRET_ENV

PAIR, SYMBOL = "BTC/USDT", "BTCUSDT"
SPOT_VENUE, LINEAR_VENUE = "bybit", "bybit_futures"
SPOT_REST = dataclasses.replace(FAST, venues=(SPOT_VENUE,), pairs=(f"{SPOT_VENUE}:{PAIR}",),
                                order_transport="rest")
SPOT_WS = dataclasses.replace(SPOT_REST, order_transport="ws_api")
LINEAR_REST = dataclasses.replace(FAST, venues=(LINEAR_VENUE,),
                                  pairs=(f"{LINEAR_VENUE}:{PAIR}",), order_transport="rest")
LINEAR_WS = dataclasses.replace(LINEAR_REST, order_transport="ws_api")


def start_venue(data_dir: Path, **bybit: Any) -> LocalVenue:
    accounts = [account_config("alice", {"USDT": "10000000", "BTC": "1000"}),
                account_config("bob", {"USDT": "10000000", "BTC": "1000"})]
    base = venue_config(accounts=accounts, market="none", bybit=True)
    config = dataclasses.replace(base, bybit=dataclasses.replace(base.bybit, enabled=True,
                                                                 port=0, **bybit))
    venue = LocalVenue(config, data_dir, limits=Limits(orders_per_10s=100_000,
                                                       orders_per_day=10_000_000))
    venue.start()
    assert venue.bybit is not None, "the venue's Bybit dialect did not start"
    return venue


def keys(venue: LocalVenue, account: str = "alice") -> tuple[str, str]:
    """The account's Bybit-shaped key pair, as the venue's start-up summary lists it."""
    assert venue.bybit is not None
    return venue.bybit.keys[account]


def use_keys(monkeypatch: Any, venue: LocalVenue, account: str = "alice") -> None:
    key, secret = keys(venue, account)
    monkeypatch.setenv(KEY_ENV, key)
    monkeypatch.setenv(SECRET_ENV, secret)


def trader_config(data_dir: Path, rest_url: str, ws_url: str, ws_api: str = "",
                  **sections: Any) -> Config:
    ends = {"rest": rest_url, "ws": ws_url, **({"ws_api": ws_api} if ws_api else {})}
    return config_mod.parse({
        "daemon": {"data_dir": str(data_dir), "id": "trader-test"},
        "exchanges": {"bybit": {"spot": ends, "futures": ends, "api_key_env": KEY_ENV,
                                "api_secret_env": SECRET_ENV}},
        "storage": {"tasks": {"backend": "sqlite", "path": "tasks.sqlite"}},
        **sections,
    })


def place(slot: int, side: Side, price: str, quantity: str = "0.01", post_only: bool = False,
          venue: str = SPOT_VENUE, strategy: str = "b1", generation: int = 0,
          **extra: Any) -> PlaceOrder:
    market = Market.SPOT if venue == SPOT_VENUE else Market.FUTURES
    return PlaceOrder(make_client_order_id(strategy, slot, generation), venue, market, PAIR,
                      side, Decimal(price), Decimal(quantity), post_only=post_only,
                      strategy_id=strategy, slot_id=slot, **extra)


class BybitClient:
    """A minimal v5 client: signs as Bybit's guide says, returns ``result``."""

    def __init__(self, base: str, key: str, secret: str) -> None:
        self.base, self.key, self.secret = base.rstrip("/"), key, secret
        self.http = requests.Session()

    def _headers(self, payload: str) -> dict[str, str]:
        stamp = str(int(time.time() * 1000))
        sign = hmac.new(self.secret.encode(), f"{stamp}{self.key}5000{payload}".encode(),
                        hashlib.sha256).hexdigest()
        return {"X-BAPI-API-KEY": self.key, "X-BAPI-TIMESTAMP": stamp,
                "X-BAPI-RECV-WINDOW": "5000", "X-BAPI-SIGN": sign,
                "Content-Type": "application/json"}

    def raw(self, method: str, path: str, **params: Any) -> dict:
        if method == "GET":
            query = urlencode(params)
            reply = self.http.get(f"{self.base}{path}?{query}", headers=self._headers(query),
                                  timeout=10)
        else:
            body = orjson.dumps(params).decode()
            reply = self.http.post(f"{self.base}{path}", data=body, headers=self._headers(body),
                                   timeout=10)
        assert reply.status_code == 200, f"{path}: {reply.status_code} {reply.text}"
        return reply.json()

    def call(self, method: str, path: str, **params: Any) -> Any:
        answer = self.raw(method, path, **params)
        assert answer["retCode"] == 0, f"{path}: {answer}"
        return answer["result"]

    def executions(self, category: str) -> list[dict]:
        return self.call("GET", "/v5/execution/list", category=category, symbol=SYMBOL,
                         limit=100)["list"]

    def orders(self, category: str, open_only: bool = False) -> list[dict]:
        path = "/v5/order/realtime" if open_only else "/v5/order/history"
        return self.call("GET", path, category=category, symbol=SYMBOL, limit=50)["list"]

    def position(self) -> Decimal:
        rows = self.call("GET", "/v5/position/list", category="linear", symbol=SYMBOL)["list"]
        return sum((Decimal(r["size"] or "0") * (-1 if r["side"] == "Sell" else 1)
                    for r in rows), Decimal(0))


def client(venue: LocalVenue, account: str = "alice") -> BybitClient:
    assert venue.bybit is not None
    return BybitClient(venue.bybit.url, *keys(venue, account))


class BybitMarket:
    """A counterparty quoting ``levels`` a side around a seeded random-walk mid
    every ``period_s`` through the dialect's REST (cancel-all, then re-quote);
    a move through another account's resting orders fills them."""

    def __init__(self, c: BybitClient, category: str, mid: str = "30000", step: str = "15",
                 spread: str = "2", levels: int = 4, size: str = "0.05",
                 period_s: float = 0.25, seed: int = 7) -> None:
        self.c, self.category = c, category
        self.mid, self.step, self.spread = Decimal(mid), Decimal(step), Decimal(spread)
        self.levels, self.size, self.period_s = levels, size, period_s
        self.rng = random.Random(seed)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bybit-market", daemon=True)

    def start(self) -> BybitMarket:
        self.quote()
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.mid = max(self.step, self.mid + self.step * self.rng.choice((-2, -1, 0, 1, 2)))
            try:
                self.quote()
            except Exception as exc:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(exc))

    def quote(self) -> None:
        self.c.raw("POST", "/v5/order/cancel-all", category=self.category, symbol=SYMBOL)
        for i in range(self.levels):
            for side, price in (("Buy", self.mid - self.spread / 2 - i * self.step),
                                ("Sell", self.mid + self.spread / 2 + i * self.step)):
                answer = self.c.raw("POST", "/v5/order/create", category=self.category,
                                    symbol=SYMBOL, side=side, orderType="Limit", qty=self.size,
                                    price=str(price), timeInForce="GTC")
                if answer["retCode"] != 0:
                    self.errors.append(str(answer))

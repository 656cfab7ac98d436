"""Helpers for the trader's OKX tests (no tests here): the local venue with
its OKX v5 dialect (and the synthetic market moving the shared book), OKX
keys of a venue account in the environment, and the grid stack of
test_grid_futures_e2e.FuturesStack pointed at ``okx`` / ``okx_futures``:
the feed reads the dialect's public socket, the trader its REST and private
socket."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from engine import config as config_mod
from engine.config import FuturesTradeConfig, OkxVenueConfig
from engine.model_trade import trading_venue
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.trade.settings import RiskConfig, TraderConfig
from engine.trade.sources import ConfiguredStrategy
from tests.sim.okx_client import okx_key
from tests.trade.test_grid_e2e import GRID
from tests.trade.test_grid_futures_e2e import FuturesStack

KEY_ENV, SECRET_ENV, PASSPHRASE_ENV = "ENGINE_TEST_OKX_KEY", "ENGINE_TEST_OKX_SECRET", \
    "ENGINE_TEST_OKX_PASSPHRASE"
PAIR = "BTC/USDT"


def okx_venue(data_dir: Path, market: str = "synthetic", usdm: bool = False,
              port: int = 0) -> LocalVenue:
    """alice (the trader, maker 0.01 %) and bob; the synthetic walk moves BTCUSDT,
    which the OKX dialect lists as BTC-USDT (and BTC-USDT-SWAP)."""
    alice = dataclasses.replace(account_config("alice"), maker_fee="0.0001", taker_fee="0.0005")
    base = venue_config(market=market, tick_ms=50, volatility_bps=4.0, levels=10, seed=7,
                        accounts=[alice, account_config("bob")], usdm=usdm, port=port)
    venue = LocalVenue(dataclasses.replace(base, okx=OkxVenueConfig(enabled=True)), data_dir)
    venue.start()
    assert venue.okx is not None, "the venue's OKX dialect did not start"
    return venue


def use_keys(venue: LocalVenue, account: str = "alice") -> None:
    """The account's OKX key, secret and passphrase into the environment."""
    key = okx_key(venue, account)
    os.environ[KEY_ENV], os.environ[SECRET_ENV], os.environ[PASSPHRASE_ENV] = \
        key.api_key, key.secret_key, key.passphrase


def settings(market: str = "spot", transport: str = "ws_api") -> TraderConfig:
    """SWAP: the account's position mode is left as it is (net): the local
    venue's OKX dialect does not serve /api/v5/account/set-position-mode."""
    venue = trading_venue("okx", market)
    return TraderConfig(venues=(venue,), pairs=(f"{venue}:{PAIR}",), request_timeout_s=2.0,
                        order_transport=transport,  # type: ignore[arg-type]
                        futures=FuturesTradeConfig(position_mode=""),
                        risk=RiskConfig(error_burst=1000, max_order_notional="",
                                        max_open_orders=1000))


class OkxStack(FuturesStack):
    """The grid stack on OKX: feed (okx ``books``) ─► TraderService(okx | okx_futures)
    ─► SlotManager ─► StrategyPool ─► StrategySource."""

    def __init__(self, data_dir: Path, rest: str, ws: str, market: str = "spot",
                 transport: str = "ws_api", params: dict | None = None,
                 daemon_id: str = "okx-grid") -> None:
        strategies = [ConfiguredStrategy("grid1", "grid", "okx", market, PAIR,
                                         params if params is not None else GRID)]
        super().__init__(data_dir, rest, ws, strategies, settings(market, transport))
        self.config = config_mod.parse({
            "daemon": {"data_dir": str(data_dir), "id": daemon_id},
            "books": {"capacity": 8, "depth": 20},
            "exchanges": {"okx": {market: {"rest": rest, "ws": f"{ws}/ws/v5/public"},
                                  "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV,
                                  "passphrase_env": PASSPHRASE_ENV}},
            "feed": {"subscriptions": [{"exchange": "okx", "pair": PAIR, "market": market,
                                        "depth": 20}]}})

"""The local venues a daemon runs inside itself: the venue role's exchange, the
--demo venue the feed and the trader are pointed at, and a paper venue per
live venue traded with ``paper: true``. Builds them from config and says where
they listen; app.py decides which a role gets. Credentials of these venues are
returned to the caller, never put in the environment."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.book.reader import BookReader
from engine.config import Config, EndpointConfig, ExchangeConfig
from engine.lifecycle import Health
from engine.model import Market
from engine.model_trade import TradingEndpoints
from engine.sim.paper import PaperVenue, live_pairs
from engine.venues import make_trading_driver

# --demo: the local venue's first account (config venue.accounts, else a
# throwaway "demo" one) is handed to the trader as its credentials.
DEMO_ACCOUNT = "demo"

Credentials = tuple[str, ...]  # API key, secret (and the passphrase, for OKX)


class VenueComponent:
    """Adapts the local venue (engine.sim) to the Component protocol."""

    name = "venue"

    def __init__(self, venue: Any) -> None:
        self.venue = venue

    def start(self) -> None:
        try:
            self.venue.start()
        except OSError as e:
            c = self.venue.config
            raise OSError(f"cannot listen on {c.host}:{c.port} (set by venue.host/venue.port): "
                          f"{e.strerror or e}") from e

    def stop(self, timeout_s: float) -> None:
        self.venue.stop(timeout_s)

    def health(self) -> list[Health]:
        ok, reason = self.venue.health()
        return [Health(self.name, ok, reason)]

    def status(self) -> dict:
        usdm = getattr(self.venue, "usdm", None)
        okx = getattr(self.venue, "okx", None)
        bybit = getattr(self.venue, "bybit", None)
        return {"rest": self.venue.rest_url, "ws": self.venue.ws_url,
                **({"usdm_rest": usdm.url, "usdm_ws": usdm.ws_url} if usdm else {}),
                **({"okx_rest": okx.url, "okx_ws": okx.ws_url} if okx else {}),
                **({"bybit_rest": bybit.url, "bybit_ws": bybit.ws_url} if bybit else {})}


def venue_role(config: Config, fresh: bool) -> VenueComponent:
    """--role venue: the local exchange as config ``venue:`` describes it."""
    from engine.sim.ratelimit import Limits
    from engine.sim.server import LocalVenue

    v = config.venue
    limits = Limits(weight_per_minute=v.weight_per_minute, orders_per_10s=v.orders_per_10s,
                    orders_per_day=v.orders_per_day)
    venue = LocalVenue(v, Path(config.daemon.data_dir), fresh=fresh, limits=limits)
    return VenueComponent(venue)


def demo_venue(config: Config, fresh: bool) -> tuple[VenueComponent, Config, dict[str, Credentials]]:
    """--demo: the local venue (config ``venue:``, forced to its synthetic
    market on a free port); returns it, the config with binance (and okx,
    bybit when a strategy or subscription names them) pointed at its dialects,
    and the credentials of its first account per exchange for the trader
    (throwaway local keys, in each venue's key shape)."""
    from engine.sim.ratelimit import Limits
    from engine.sim.server import LocalVenue
    from engine.sim.testkit import DEFAULT_PRICES, account_config, symbol_config

    cfg, v = config, config.venue
    demo_exchanges = ("binance", "okx", "bybit")  # one engine: the same books in every dialect
    pairs = {s.pair for s in cfg.feed.subscriptions if s.exchange in demo_exchanges} | \
        {s.pair for s in cfg.trader.strategies if s.exchange in demo_exchanges} or {"BTC/USDT"}

    def named(exchange: str) -> bool:  # a strategy or subscription on that exchange
        return any(s.exchange == exchange for s in cfg.trader.strategies) or \
            any(s.exchange == exchange for s in cfg.feed.subscriptions)

    symbols = v.symbols or tuple(symbol_config(p.replace("/", "")) for p in sorted(pairs))
    prices = {s.symbol: DEFAULT_PRICES.get(s.symbol, "100") for s in symbols}
    # A futures strategy (or venue.usdm.enabled): the USD-M dialect too, on its port.
    usdm = v.usdm.enabled or any(s.market == "futures" for s in cfg.trader.strategies)
    venue_config = dataclasses.replace(
        v, port=free_port(), market="synthetic", symbols=symbols,
        usdm=dataclasses.replace(v.usdm, enabled=usdm, port=free_port()),
        okx=dataclasses.replace(v.okx, enabled=v.okx.enabled or named("okx"), port=free_port()),
        bybit=dataclasses.replace(v.bybit, enabled=v.bybit.enabled or named("bybit"),
                                  port=free_port()),
        accounts=v.accounts or (account_config(DEMO_ACCOUNT),),
        synthetic=dataclasses.replace(v.synthetic, start_prices={
            **prices, **v.synthetic.start_prices}))
    limits = Limits(weight_per_minute=v.weight_per_minute, orders_per_10s=v.orders_per_10s,
                    orders_per_day=v.orders_per_day)
    venue = LocalVenue(venue_config, Path(cfg.daemon.data_dir), fresh=fresh, limits=limits)
    account = venue_config.accounts[0]
    local = EndpointConfig(f"http://127.0.0.1:{venue_config.port}",
                           f"ws://127.0.0.1:{venue_config.port}")
    futures = EndpointConfig(f"http://127.0.0.1:{venue_config.usdm.port}",
                             f"ws://127.0.0.1:{venue_config.usdm.port}") if usdm else \
        EndpointConfig()
    binance = dataclasses.replace(cfg.exchanges.get("binance", ExchangeConfig()), enabled=True,
                                  spot=local, futures=futures, api_key_env="", api_secret_env="")
    exchanges = {**cfg.exchanges, "binance": binance}
    credentials: dict[str, Credentials] = {"binance": (account.api_key, account.api_secret)}
    if venue_config.okx.enabled:  # the same account through the OKX dialect, OKX-shaped key
        from engine.sim.okx.auth import keys_for

        key = next(k for k in keys_for(venue_config).values() if k.account == account.name)
        credentials["okx"] = (key.api_key, key.secret_key, key.passphrase)
        ends = EndpointConfig(f"http://127.0.0.1:{venue_config.okx.port}",
                              f"ws://127.0.0.1:{venue_config.okx.port}/ws/v5/public")
        exchanges["okx"] = dataclasses.replace(
            cfg.exchanges.get("okx", ExchangeConfig()), enabled=True, spot=ends, futures=ends,
            api_key_env="", api_secret_env="", passphrase_env="")
    if venue_config.bybit.enabled:  # and through the Bybit dialect, Bybit-shaped key
        from engine.sim.bybit.context import bybit_credentials

        credentials["bybit"] = bybit_credentials(account.api_key, account.api_secret)
        rest, ws = f"http://127.0.0.1:{venue_config.bybit.port}", \
            f"ws://127.0.0.1:{venue_config.bybit.port}"
        exchanges["bybit"] = dataclasses.replace(
            cfg.exchanges.get("bybit", ExchangeConfig()), enabled=True,
            spot=EndpointConfig(rest, f"{ws}/v5/public/spot"),
            futures=EndpointConfig(rest, f"{ws}/v5/public/linear"),
            api_key_env="", api_secret_env="")
    demo_config = dataclasses.replace(cfg, exchanges=exchanges)
    return VenueComponent(venue), demo_config, credentials


def paper_venues(config: Config, venues: tuple[str, ...], pairs_of: Callable[[str], list[str]],
                 books: Callable[[], BookReader | None]) -> dict[str, PaperVenue]:
    """A paper venue per traded venue with ``paper: true`` whose endpoint is
    the live one: the live book and trades (from the feed) are mirrored into
    a local matching engine, and nothing reaches the real venue."""
    out = {}
    for venue in venues:
        ex = config.exchanges.get(venue)
        if ex is None or not ex.paper or is_local(ex.spot.rest):
            continue  # live trading, or already a local venue (--demo, tests)
        if venue != "binance":  # the paper venue speaks Binance spot's dialect only
            raise ValueError(f"exchanges.{venue}.paper: paper trading against the live book "
                             f"exists for binance only; point exchanges.{venue} at the local "
                             f"venue (--role venue) or set paper: false")
        p = config.trader.paper
        out[venue] = PaperVenue(
            venue, "spot", partial(live_pairs, make_trading_driver(
                venue, Market.SPOT, TradingEndpoints(ex.spot.rest), "", ""),
                pairs_of(venue), p.maker_fee, p.taker_fee, config.venue.symbols),
            books, Path(config.daemon.data_dir), dict(p.balances), port=free_port())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def is_local(url: str) -> bool:
    """An endpoint on this host: the local venue (demo, tests), never a live one."""
    return bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")

"""Venue drivers, one Sans-I/O module per exchange (see base.py). They build
frames and parse replies; they never open sockets. Adding a venue = one module
plus one line in DRIVERS (market data) and/or TRADING_DRIVERS (trading)."""

from __future__ import annotations

from engine.model import EXCHANGE_IDS, Market
from engine.model_trade import TradingDriver, TradingEndpoints
from engine.venues.base import Driver
from engine.venues.binance import BinanceDriver
from engine.venues.binance_trade import BinanceSpotTrade
from engine.venues.binance_usdm_trade import BinanceUsdmTrade
from engine.venues.bitget import BitgetDriver
from engine.venues.bybit import BybitDriver
from engine.venues.bybit_trade import BybitSpotTrade
from engine.venues.bybit_trade_linear import BybitLinearTrade
from engine.venues.coinbase import CoinbaseDriver
from engine.venues.coinex import CoinexDriver
from engine.venues.gate import GateDriver
from engine.venues.htx import HtxDriver
from engine.venues.hyperliquid import HyperliquidDriver
from engine.venues.kucoin import KucoinDriver
from engine.venues.mexc import MexcDriver
from engine.venues.okx import OkxDriver
from engine.venues.okx_trade import OkxSpotTrade
from engine.venues.okx_trade_swap import OkxSwapTrade

DRIVERS: dict[str, type[Driver]] = {
    "binance": BinanceDriver,
    "bitget": BitgetDriver,
    "bybit": BybitDriver,
    "coinbase": CoinbaseDriver,
    "coinex": CoinexDriver,
    "gate": GateDriver,
    "htx": HtxDriver,
    "hyperliquid": HyperliquidDriver,
    "kucoin": KucoinDriver,
    "mexc": MexcDriver,
    "okx": OkxDriver,
}


def make_driver(exchange: str, market: Market | str, rest_url: str = "", ws_url: str = "",
                symbols: dict[str, str] | None = None) -> Driver:
    """The driver for ``exchange`` and ``market``; endpoints empty = the venue default."""
    try:
        cls = DRIVERS[exchange]
    except KeyError:
        raise ValueError(f"unknown exchange {exchange!r}; known: {', '.join(sorted(DRIVERS))}") from None
    m = Market(market)
    if m not in cls.markets:
        raise ValueError(f"{exchange} has no {m.value} market (has: "
                         f"{', '.join(x.value for x in cls.markets)})")
    return cls(m, rest_url, ws_url, symbols)


# ------------------------------------------------------------------ trading
# Trading drivers (engine/model_trade.TradingDriver), one per (venue, market).
# engine/trade/ never imports them: app.py hands TRADING_DRIVERS to the trader,
# and the task DB learns its exchange ids from known_exchanges().
TRADING_DRIVERS: dict[tuple[str, Market], type[TradingDriver]] = {
    ("binance", Market.SPOT): BinanceSpotTrade,
    ("binance", Market.FUTURES): BinanceUsdmTrade,
    ("okx", Market.SPOT): OkxSpotTrade,
    ("okx", Market.FUTURES): OkxSwapTrade,
    ("bybit", Market.SPOT): BybitSpotTrade,
    ("bybit", Market.FUTURES): BybitLinearTrade,
}


def make_trading_driver(exchange: str, market: Market | str, endpoints: TradingEndpoints,
                        api_key: str, api_secret: str,
                        symbols: dict[str, str] | None = None,
                        passphrase: str = "") -> TradingDriver:
    """The trading driver for ``exchange`` and ``market`` (endpoints "" = live
    defaults); ``passphrase`` only for a venue whose keys have one (OKX)."""
    m = Market(market)
    cls = TRADING_DRIVERS.get((exchange, m))
    if cls is None:
        have = ", ".join(f"{v}:{k.value}" for v, k in sorted(TRADING_DRIVERS))
        raise ValueError(f"no trading driver for {exchange} {m.value} (have: {have})")
    if cls.needs_passphrase:
        if not passphrase:
            raise ValueError(f"{exchange} {m.value}: its API keys need a passphrase "
                             f"(exchanges.{exchange}.passphrase_env)")
        return cls(endpoints, api_key, api_secret, symbols, passphrase=passphrase)  # type: ignore[call-arg]
    return cls(endpoints, api_key, api_secret, symbols)


def known_exchanges() -> frozenset[str]:
    """Every exchange id a task row may name: market data or trading."""
    return frozenset(DRIVERS) | frozenset(venue for venue, _ in TRADING_DRIVERS)


def _check_exchange_ids() -> None:
    """engine.model.EXCHANGE_IDS (what the task DB accepts) is these registries' ids."""
    if known_exchanges() != EXCHANGE_IDS:
        raise RuntimeError(f"engine.model.EXCHANGE_IDS differs from the driver registries: "
                           f"missing {sorted(known_exchanges() - EXCHANGE_IDS)}, without a "
                           f"driver {sorted(EXCHANGE_IDS - known_exchanges())}")


_check_exchange_ids()

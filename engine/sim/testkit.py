"""A LocalVenueConfig with sensible defaults, for tests, tools and examples.

Only builds config values; starting the venue is LocalVenue's job. The
default accounts' keys are throwaway local credentials, never a real
venue's.
"""

from __future__ import annotations

from collections.abc import Iterable

from engine.config import (
    BybitVenueConfig,
    LocalVenueConfig,
    SyntheticMarketConfig,
    UsdmVenueConfig,
    VenueAccountConfig,
    VenueSymbolConfig,
)

QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "BTC", "ETH", "BNB", "EUR")
DEFAULT_PRICES = {"BTCUSDT": "30000", "ETHUSDT": "2000", "ETHBTC": "0.065"}


def account_config(name: str, balances: dict[str, str] | None = None) -> VenueAccountConfig:
    """An account whose key and secret derive from its name (alice -> alice-key)."""
    return VenueAccountConfig(name=name, api_key=f"{name}-key", api_secret=f"{name}-secret",
                              balances=balances if balances is not None else
                              {"USDT": "100000", "BTC": "10", "ETH": "100"})


def symbol_config(symbol: str, **overrides: str) -> VenueSymbolConfig:
    quote = next((q for q in QUOTES if symbol.endswith(q) and symbol != q), None)
    if quote is None:
        raise ValueError(f"cannot split {symbol!r}; pass a VenueSymbolConfig")
    defaults = {"ETHBTC": {"tick_size": "0.00001", "step_size": "0.0001",
                           "min_notional": "0.0001"}}
    values = {**defaults.get(symbol, {}), **overrides}
    return VenueSymbolConfig(symbol=symbol, base=symbol[:-len(quote)], quote=quote, **values)


def venue_config(symbols: Iterable[str | VenueSymbolConfig] = ("BTCUSDT",),
                 market: str = "none", port: int = 0,
                 accounts: Iterable[VenueAccountConfig] | None = None,
                 start_prices: dict[str, str] | None = None, tick_ms: int = 50,
                 levels: int = 10, volatility_bps: float = 5.0, seed: int = 1,
                 replay_file: str = "", state_path: str = "venue.sqlite",
                 host: str = "127.0.0.1", usdm: bool = False,
                 bybit: bool = False) -> LocalVenueConfig:
    """Defaults: BTCUSDT, no market makers, a free port, accounts alice and bob;
    ``usdm`` adds the Binance USD-M dialect (a perpetual per USDT symbol);
    ``bybit`` the Bybit v5 dialect (spot + linear on those perpetuals), free port."""
    chosen = tuple(s if isinstance(s, VenueSymbolConfig) else symbol_config(s) for s in symbols)
    prices = start_prices if start_prices is not None else {
        s.symbol: DEFAULT_PRICES.get(s.symbol, "100") for s in chosen}
    return LocalVenueConfig(
        host=host, port=port, state_path=state_path, market=market,  # type: ignore[arg-type]
        replay_file=replay_file,
        synthetic=SyntheticMarketConfig(start_prices=prices, volatility_bps=volatility_bps,
                                        tick_ms=tick_ms, levels=levels, seed=seed),
        symbols=chosen,
        accounts=tuple(accounts) if accounts is not None else (account_config("alice"),
                                                               account_config("bob")),
        usdm=UsdmVenueConfig(enabled=usdm),  # the Binance USD-M dialect on a free port
        bybit=BybitVenueConfig(enabled=bybit, port=0))

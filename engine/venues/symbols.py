"""Venue symbol <-> BASE/QUOTE pair naming, shared by the venue drivers.
Owns the split of concatenated symbols (BTCUSDT) by known quote suffixes and the
explicit-override map; knows nothing of any venue's wire format.

Pair convention (the one name a user writes in config and sees in output):
``BASE/QUOTE`` for spot and perpetuals, ``BASE/QUOTE-YYMMDD`` for dated futures.
"""

from __future__ import annotations

from collections.abc import Callable

# Quote assets seen on Binance and Bybit, matched longest first so "BTCUSDT"
# is BTC/USDT, not BTCUS/DT or BTCUSD/T. Adding a quote only affects symbols
# that end with it; an unknown quote needs an explicit map entry instead.
KNOWN_QUOTES: tuple[str, ...] = tuple(sorted((
    "USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USDP", "USDE", "DAI", "PAX", "UST", "USD1",
    "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "SOL", "DOT",
    "EUR", "EURI", "AEUR", "TRY", "BRL", "GBP", "AUD", "JPY", "RUB", "UAH", "ZAR", "IDR",
    "BIDR", "ARS", "PLN", "RON", "MXN", "COP", "CZK", "NGN", "BVND", "VAI", "USD",
), key=len, reverse=True))


class UnknownSymbol(ValueError):
    """A venue symbol no rule or explicit entry maps to BASE/QUOTE."""


def split_concatenated(symbol: str, quotes: tuple[str, ...] = KNOWN_QUOTES) -> tuple[str, str]:
    """("BTC", "USDT") for "BTCUSDT"; raises UnknownSymbol if no quote suffix fits."""
    upper = symbol.upper()
    for quote in quotes:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)], quote
    raise UnknownSymbol(f"cannot split symbol {symbol!r}: no known quote suffix; "
                        f"add it to the exchange's symbol map")


def split_pair(pair: str) -> tuple[str, str, str]:
    """("BTC", "USD", "220527") for "BTC/USD-220527"; expiry "" when absent."""
    base, sep, rest = pair.partition("/")
    if not sep or not base or not rest:
        raise UnknownSymbol(f"pair {pair!r} is not BASE/QUOTE")
    quote, _, expiry = rest.partition("-")
    return base.upper(), quote.upper(), expiry


class SymbolMap:
    """Two-way cache around a venue's naming rule plus explicit overrides.

    ``to_pair`` and ``to_symbol`` are the venue's rules; results are cached, so
    the hot path pays one dict lookup per frame. Thread-safe in CPython: a race
    only computes the same entry twice.
    """

    __slots__ = ("_pair_of", "_symbol_of", "_to_pair", "_to_symbol")

    def __init__(self, to_pair: Callable[[str], str], to_symbol: Callable[[str], str],
                 explicit: dict[str, str] | None = None) -> None:
        self._to_pair = to_pair
        self._to_symbol = to_symbol
        self._symbol_of: dict[str, str] = {}
        self._pair_of: dict[str, str] = {}
        for pair, symbol in (explicit or {}).items():
            self._symbol_of[pair] = symbol
            self._pair_of[symbol] = pair

    def pair(self, symbol: str) -> str:
        pair = self._pair_of.get(symbol)
        if pair is None:
            pair = self._to_pair(symbol)
            self._pair_of[symbol] = pair
        return pair

    def symbol(self, pair: str) -> str:
        symbol = self._symbol_of.get(pair)
        if symbol is None:
            symbol = self._to_symbol(pair)
            self._symbol_of[pair] = symbol
            self._pair_of.setdefault(symbol, pair)
        return symbol

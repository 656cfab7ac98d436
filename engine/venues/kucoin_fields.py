"""KuCoin's wire values and names: readers for sequence ids, prices, sizes and
level changes as the venue writes them, and its spot/futures symbol rules.
Pure functions used by engine/venues/kucoin.py; no frames, no venue state.
"""

from __future__ import annotations

from engine.model import Level, Side
from engine.venues.symbols import UnknownSymbol, split_pair

# ------------------------------------------------------------------ readers


def seq_id(value: object) -> int:
    """A sequence id or timestamp: a JSON integer or a string of ASCII digits
    (KuCoin sends both: REST ``"sequence":"1613277183892"``, WS ``1613277183874``)."""
    if type(value) is int:
        number = value
    elif type(value) is str and value.isascii() and value.isdigit():
        number = int(value)
    else:
        raise ValueError(f"not a sequence id: {value!r}")
    if number < 0:
        raise ValueError(f"negative sequence id: {value!r}")
    return number


def number(value: object) -> float:
    """A price or size: a JSON number or a numeric string (never a bool)."""
    if type(value) is bool:
        raise ValueError(f"not a number: {value!r}")
    return float(value)  # type: ignore[arg-type]


def parse_changes(rows: object) -> tuple[list[Level], list[int]]:
    """Spot ``[[price, size, sequence], ...]`` -> levels and their sequence ids.
    A change with price 0 (``["0","0","1613277183874"]``) only advances the
    sequence (docs: "If the price is 0, ignore the messages and update the
    sequence"), so it is left out of the levels."""
    if type(rows) is not list:
        raise ValueError(f"changes must be a list: {rows!r}")
    levels: list[Level] = []
    seqs: list[int] = []
    for row in rows:
        if type(row) is not list or len(row) < 3:
            raise ValueError(f"change must be [price, size, sequence]: {row!r}")
        price = number(row[0])
        size = number(row[1])
        seq = seq_id(row[2])
        if price == 0.0:
            continue
        levels.append((price, size))
        seqs.append(seq)
    return levels, seqs


def parse_change(change: object) -> tuple[Side, Level]:
    """Futures ``"90631.2,sell,2"`` (price, side, size) -> (side, level)."""
    if type(change) is not str:
        raise ValueError(f"change must be a string: {change!r}")
    parts = change.split(",")
    if len(parts) != 3:
        raise ValueError(f"change must be 'price,side,size': {change!r}")
    price, side, size = parts
    if side == "buy":
        return Side.BUY, (float(price), float(size))
    if side == "sell":
        return Side.SELL, (float(price), float(size))
    raise ValueError(f"unknown side in change {change!r}")


def parse_levels(rows: object) -> list[Level]:
    """REST ``[[price, size], ...]``: strings (spot) or numbers (futures)."""
    if type(rows) is not list:
        raise ValueError(f"levels must be a list: {rows!r}")
    levels: list[Level] = []
    for row in rows:
        if type(row) is not list or len(row) < 2:
            raise ValueError(f"level must be [price, size]: {row!r}")
        levels.append((number(row[0]), number(row[1])))
    return levels


# ------------------------------------------------------------------- names


def spot_pair(symbol: str) -> str:
    base, sep, quote = symbol.upper().partition("-")
    if not sep or not base or not quote or "-" in quote:
        raise UnknownSymbol(f"not a KuCoin spot symbol: {symbol!r}")
    return f"{base}/{quote}"


def spot_symbol(pair: str) -> str:
    base, quote, expiry = split_pair(pair)
    if expiry:
        raise UnknownSymbol(f"{pair}: spot pairs have no expiry")
    return f"{base}-{quote}"


# Perpetual contract suffixes (quote + "M"), longest first; BTC is "XBT".
FUTURES_QUOTES = ("USDTM", "USDCM", "USDM")


def futures_pair(symbol: str) -> str:
    """XBTUSDTM -> BTC/USDT, ETHUSDCM -> ETH/USDC, XBTUSDM -> BTC/USD (inverse)."""
    upper = symbol.upper()
    for suffix in FUTURES_QUOTES:
        if upper.endswith(suffix) and len(upper) > len(suffix):
            base = upper[: -len(suffix)]
            return f"{'BTC' if base == 'XBT' else base}/{suffix[:-1]}"
    raise UnknownSymbol(f"not a KuCoin perpetual: {symbol!r}; dated contracts need a symbol map entry")


def futures_symbol(pair: str) -> str:
    base, quote, expiry = split_pair(pair)
    if expiry:
        raise UnknownSymbol(f"{pair}: dated KuCoin futures need an explicit symbol map entry")
    return f"{'XBT' if base == 'BTC' else base}{quote}M"

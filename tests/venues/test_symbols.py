"""Symbol naming shared by the drivers: quote-suffix split and the override map."""

from __future__ import annotations

import pytest

from engine.model import Market
from engine.venues import DRIVERS
from engine.venues.symbols import SymbolMap, UnknownSymbol, split_concatenated, split_pair


@pytest.mark.parametrize("symbol,expected", [
    ("BTCUSDT", ("BTC", "USDT")), ("ETHUSDC", ("ETH", "USDC")), ("BNBFDUSD", ("BNB", "FDUSD")),
    ("BLZETH", ("BLZ", "ETH")), ("LRCBTC", ("LRC", "BTC")), ("RUNEEUR", ("RUNE", "EUR")),
    ("USDTTRY", ("USDT", "TRY")), ("BTCUSD", ("BTC", "USD")), ("btcusdt", ("BTC", "USDT"))])
def test_split_concatenated_known_quote_longest_suffix_wins(symbol, expected):
    assert split_concatenated(symbol) == expected


@pytest.mark.parametrize("symbol", ["USDT", "ABCXYZ", ""])
def test_split_concatenated_unknown_quote_raises(symbol):
    with pytest.raises(UnknownSymbol):
        split_concatenated(symbol)


def test_split_pair_with_and_without_expiry():
    assert split_pair("BTC/USDT") == ("BTC", "USDT", "")
    assert split_pair("BTC/USD-220527") == ("BTC", "USD", "220527")
    with pytest.raises(UnknownSymbol):
        split_pair("BTCUSDT")


def test_symbol_map_explicit_entries_bypass_rules():
    names = SymbolMap(lambda s: "rule/" + s, lambda p: "RULE", {"WEIRD/PAIR": "WXYZ"})
    assert names.pair("WXYZ") == "WEIRD/PAIR"
    assert names.symbol("WEIRD/PAIR") == "WXYZ"
    assert names.symbol("A/B") == "RULE"
    assert names.pair("ABC") == "rule/ABC"


@pytest.mark.parametrize("name,market", [(name, market) for name, cls in sorted(DRIVERS.items())
                                         for market in cls.markets])
def test_every_driver_names_through_the_base_cache_explicit_entries_win(name, market):
    driver = DRIVERS[name](market, symbols={"ODD/PAIR": "ODDX"})
    assert driver.symbol("ODD/PAIR") == "ODDX" and driver.pair("ODDX") == "ODD/PAIR"
    assert driver._wire_pair("ODDX") == "ODD/PAIR"
    assert driver._pair_of == {"ODDX": "ODD/PAIR"}  # the parsers' cache is the base driver's


def test_set_naming_replaces_the_rule_and_empties_the_parsers_caches():
    driver = DRIVERS["okx"](Market.SPOT)
    assert driver._own_pair("BTC-USDT") == "BTC/USDT"
    assert driver._own_pair("BTC-USDT-SWAP") is None  # another market's instrument
    driver.set_naming(lambda symbol: "X/Y", lambda pair: "XY")
    assert driver._own_pair_of == {} and driver._pair_of == {}
    assert driver._own_pair("BTC-USDT") == "X/Y" and driver.symbol("A/B") == "XY"

"""Symbol naming shared by the drivers: quote-suffix split and the override map."""

from __future__ import annotations

import pytest

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

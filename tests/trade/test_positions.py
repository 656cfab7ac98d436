"""Positions from fills in exact decimals: average cost, realized PnL, fees
in quote, base and a third asset, marks and the daily PnL."""

from __future__ import annotations

from decimal import Decimal as D

from engine.model import Market, Side
from engine.model_trade import Fill
from engine.trade.positions import PositionBook

DAY_NS = 1_700_000_000_000_000_000  # 2023-11-14 22:13 UTC


def fill(side: Side, price: str, qty: str, fee: str = "0", fee_asset: str = "",
         trade_id: str = "1", at_ns: int = DAY_NS) -> Fill:
    return Fill("binance", Market.SPOT, "BTC/USDT", "E1-1-0", "1", trade_id, side, price, qty,
                fee, fee_asset, True, at_ns)


def test_average_cost_and_realized_pnl() -> None:
    book = PositionBook()
    book.on_fill(fill(Side.BUY, "100", "1"))
    book.on_fill(fill(Side.BUY, "110", "1"))
    position = book.position("binance", "BTC/USDT")
    assert (position.quantity, position.average_price) == (D("2"), D("105"))
    book.on_fill(fill(Side.SELL, "120", "0.5"))
    position = book.position("binance", "BTC/USDT")
    assert (position.quantity, position.realized_pnl) == (D("1.5"), D("7.5"))
    book.on_fill(fill(Side.SELL, "100", "1.5"))
    position = book.position("binance", "BTC/USDT")
    assert (position.quantity, position.average_price, position.realized_pnl) == (
        D("0"), D("0"), D("0"))


def test_fees_in_base_quote_and_other_assets() -> None:
    book = PositionBook()
    book.on_fill(fill(Side.BUY, "100", "1", "0.001", "BTC"))  # buyer pays in base
    book.on_fill(fill(Side.SELL, "110", "0.5", "0.055", "USDT"))  # seller pays in quote
    book.on_fill(fill(Side.SELL, "110", "0.1", "0.01", "BNB"))
    position = book.position("binance", "BTC/USDT")
    assert position.quantity == D("0.399")
    assert position.realized_pnl == (D("110") - D("100")) * D("0.6") - D("0.055")
    assert position.fees_quote == D("0.1") + D("0.055")
    assert position.fees_other == {"BNB": D("0.01")}


def test_unrealized_and_daily_pnl_follow_marks() -> None:
    book = PositionBook()
    book.mark("binance", "BTC/USDT", D("100"), DAY_NS)
    book.on_fill(fill(Side.BUY, "100", "2"))
    book.mark("binance", "BTC/USDT", D("90"), DAY_NS)
    assert book.position("binance", "BTC/USDT").unrealized_pnl() == D("-20")
    assert book.daily_pnl(DAY_NS) == D("-20")
    book.on_fill(fill(Side.SELL, "90", "1", trade_id="2"))
    assert book.daily_pnl(DAY_NS) == D("-20")  # -10 realized, -10 unrealized
    assert book.status()["positions"]["binance:BTC/USDT"]["realized_pnl"] == "-10"


def test_balances_are_kept_per_venue_and_asset() -> None:
    book = PositionBook()
    book.set_balances("binance", {"BTC": ("1.5", "0.5")})
    assert book.balance("binance", "BTC") == (D("1.5"), D("0.5"))
    assert book.balance("binance", "ETH") == (D("0"), D("0"))


def test_status_explains_its_realized_pnl_against_the_slots_figure() -> None:
    book = PositionBook()
    book.on_fill(fill(Side.BUY, "100", "1"))
    book.on_fill(fill(Side.SELL, "110", "1", trade_id="2"))
    status = book.status()
    assert status["positions"]["binance:BTC/USDT"]["realized_pnl"] == "10"
    basis = status["realized_pnl_basis"]
    assert "positions.realized_pnl" in basis and "slots <id>.realized" in basis

"""Trade histories: aggregation, klines (alignment, gap filling) and the
rolling 24 h ticker, on an injected clock."""

from __future__ import annotations

from engine.sim.market_data import (
    DAY_MS,
    MINUTE_MS,
    MarketData,
    interval_close,
    interval_open,
)
from engine.sim.orders import Trade

T0 = 1_700_000_000_000  # 2023-11-14 22:13:20 UTC, a Tuesday


def trade(trade_id: int, price: int, qty: int, time_ms: int, taker: int = 1,
          buyer_is_maker: bool = False) -> Trade:
    return Trade("X", trade_id, price, qty, price * qty, time_ms, 1, 2, "a", "b",
                 buyer_is_maker, 0, 0, taker)


def test_same_taker_same_price_aggregates() -> None:
    market = MarketData("X")
    made = market.add_trades([trade(1, 100, 1, T0), trade(2, 100, 2, T0), trade(3, 101, 1, T0)])
    assert [(a.agg_id, a.price, a.qty, a.first_trade_id, a.last_trade_id) for a in made] == [
        (1, 100, 3, 1, 2), (2, 101, 1, 3, 3)]
    other_taker = market.add_trades([trade(4, 101, 1, T0, taker=9)])
    assert other_taker[0].agg_id == 3


def test_interval_alignment_matches_binance() -> None:
    assert T0 % MINUTE_MS == 20_000
    assert interval_open("1m", T0 + 39_999) == T0 - 20_000
    assert interval_open("1m", T0 + 40_000) == T0 + 40_000
    week = interval_open("1w", T0)
    assert (week // DAY_MS + 3) % 7 == 0  # a Monday (epoch day 0 was a Thursday)
    month = interval_open("1M", T0)
    assert month == 1_698_796_800_000  # 2023-11-01
    assert interval_close("1M", month) == 1_701_388_799_999  # 2023-11-30 23:59:59.999
    assert interval_close("1h", interval_open("1h", T0)) - interval_open("1h", T0) == 3_599_999


def test_klines_are_gap_filled_flat_at_the_last_close() -> None:
    market = MarketData("X")
    start = interval_open("1m", T0)
    market.add_trades([trade(1, 100, 1, start + 1), trade(2, 105, 1, start + 2)])
    market.add_trades([trade(3, 90, 2, start + 3 * MINUTE_MS)])
    candles = market.klines_between("1m", None, None, 10, start + 3 * MINUTE_MS + 5)
    assert [(k.open_ms - start) // MINUTE_MS for k in candles] == [0, 1, 2, 3]
    assert [(k.open, k.high, k.low, k.close, k.volume, k.trades) for k in candles] == [
        (100, 105, 100, 105, 2, 2), (105, 105, 105, 105, 0, 0), (105, 105, 105, 105, 0, 0),
        (90, 90, 90, 90, 2, 1)]
    window = market.klines_between("1m", start + 1, start + 2 * MINUTE_MS, 10, start + 10**7)
    assert [(k.open_ms - start) // MINUTE_MS for k in window] == [1, 2]


def test_ticker_rolls_over_the_last_24_hours() -> None:
    market = MarketData("X")
    market.add_trades([trade(1, 100, 1, T0 - DAY_MS - 5 * MINUTE_MS)])  # outside the window
    market.add_trades([trade(2, 110, 1, T0 - 60 * MINUTE_MS, buyer_is_maker=True)])
    market.add_trades([trade(3, 120, 3, T0)])
    ticker = market.ticker(T0)
    assert (ticker.open, ticker.high, ticker.low, ticker.last) == (110, 120, 110, 120)
    assert (ticker.prev_close, ticker.volume, ticker.trade_count) == (100, 4, 2)
    assert (ticker.first_id, ticker.last_id, ticker.last_qty) == (2, 3, 3)

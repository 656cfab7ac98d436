"""Public market history of one symbol, built from the venue's own trades:
recent trades, aggregate trades, klines for every Binance interval and the
rolling 24-hour statistics.

Pure and time-injected. Bounded: each history keeps a fixed number of recent
entries (older trades live in the state store). Klines are stored sparse
(only intervals that traded) and gap-filled when read, the way Binance
returns a flat zero-volume candle for an interval without trades.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple

from engine.sim.orders import Trade

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
# Binance weeks open Monday 00:00 UTC; the epoch was a Thursday.
WEEK_OFFSET_MS = 4 * DAY_MS

INTERVAL_MS = {
    "1s": SECOND_MS, "1m": MINUTE_MS, "3m": 3 * MINUTE_MS, "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS, "30m": 30 * MINUTE_MS, "1h": HOUR_MS, "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS, "6h": 6 * HOUR_MS, "8h": 8 * HOUR_MS, "12h": 12 * HOUR_MS,
    "1d": DAY_MS, "3d": 3 * DAY_MS, "1w": 7 * DAY_MS, "1M": 0,  # 1M: calendar month
}

# Kept per history: enough for every REST "limit" (max 1000) plus slack; more
# costs memory on a venue whose bots trade around the clock.
TRADES_KEPT = 5_000
KLINES_KEPT = 1_500


def interval_open(interval: str, time_ms: int) -> int:
    if interval == "1M":
        day = dt.datetime.fromtimestamp(time_ms / 1000, dt.UTC)
        start = dt.datetime(day.year, day.month, 1, tzinfo=dt.UTC)
        return int(start.timestamp()) * 1000
    width = INTERVAL_MS[interval]
    offset = WEEK_OFFSET_MS if interval == "1w" else 0
    return (time_ms - offset) // width * width + offset


def interval_close(interval: str, open_ms: int) -> int:
    """Last millisecond of the interval that opens at ``open_ms``."""
    if interval == "1M":
        day = dt.datetime.fromtimestamp(open_ms / 1000, dt.UTC)
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return int(dt.datetime(year, month, 1, tzinfo=dt.UTC).timestamp()) * 1000 - 1
    return open_ms + INTERVAL_MS[interval] - 1


class AggTrade(NamedTuple):
    agg_id: int
    price: int
    qty: int
    first_trade_id: int
    last_trade_id: int
    time_ms: int
    buyer_is_maker: bool


class Kline:
    """One candle; prices in price units, volumes in quantity/amount units."""

    __slots__ = ("open_ms", "open", "high", "low", "close", "volume", "quote_volume",
                 "trades", "taker_buy_volume", "taker_buy_quote", "first_id", "last_id")

    def __init__(self, open_ms: int, price: int, first_id: int) -> None:
        self.open_ms = open_ms
        self.open = self.high = self.low = self.close = price
        self.volume = self.quote_volume = self.taker_buy_volume = self.taker_buy_quote = 0
        self.trades = 0
        self.first_id = first_id
        self.last_id = first_id

    @classmethod
    def flat(cls, open_ms: int, close: int) -> Kline:
        """A candle without trades: Binance prints it flat at the last close."""
        kline = cls(open_ms, close, -1)
        kline.last_id = -1
        return kline

    def add(self, trade: Trade) -> None:
        price = trade.price
        if price > self.high:
            self.high = price
        if price < self.low:
            self.low = price
        self.close = price
        self.volume += trade.qty
        self.quote_volume += trade.quote_qty
        self.trades += 1
        self.last_id = trade.trade_id
        if not trade.buyer_is_maker:
            self.taker_buy_volume += trade.qty
            self.taker_buy_quote += trade.quote_qty


class Ticker(NamedTuple):
    open_ms: int
    close_ms: int
    open: int
    high: int
    low: int
    last: int
    last_qty: int
    prev_close: int
    volume: int
    quote_volume: int
    first_id: int
    last_id: int
    trade_count: int


class MarketData:
    """Trades in, histories out. Not thread-safe: the exchange's lock guards it."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.trades: deque[Trade] = deque(maxlen=TRADES_KEPT)
        self.agg_trades: deque[AggTrade] = deque(maxlen=TRADES_KEPT)
        self.next_agg_id = 1
        self.klines: dict[str, deque[Kline]] = {
            interval: deque(maxlen=KLINES_KEPT) for interval in INTERVAL_MS}

    def add_trades(self, trades: Iterable[Trade]) -> list[AggTrade]:
        """Record one operation's trades; returns the aggregate trades they form
        (same taker order, same price -> one aggregate, as Binance groups them)."""
        made: list[AggTrade] = []
        current: AggTrade | None = None
        taker = -1
        for trade in trades:
            self.trades.append(trade)
            for interval, klines in self.klines.items():
                open_ms = interval_open(interval, trade.time_ms)
                if klines and klines[-1].open_ms == open_ms:
                    klines[-1].add(trade)
                else:
                    kline = Kline(open_ms, trade.price, trade.trade_id)
                    kline.add(trade)
                    klines.append(kline)
            if current is not None and trade.taker_order_id == taker \
                    and trade.price == current.price:
                current = current._replace(qty=current.qty + trade.qty,
                                           last_trade_id=trade.trade_id)
                made[-1] = current
                continue
            current = AggTrade(self.next_agg_id, trade.price, trade.qty, trade.trade_id,
                               trade.trade_id, trade.time_ms, trade.buyer_is_maker)
            taker = trade.taker_order_id
            self.next_agg_id += 1
            made.append(current)
        self.agg_trades.extend(made)
        return made

    @property
    def last_trade(self) -> Trade | None:
        return self.trades[-1] if self.trades else None

    def klines_between(self, interval: str, start_ms: int | None, end_ms: int | None,
                       limit: int, now_ms: int) -> list[Kline]:
        """Gap-filled candles, oldest first, as GET /api/v3/klines returns them."""
        stored = self.klines[interval]
        if not stored:
            return []
        by_open = {k.open_ms: k for k in stored}
        first_open = stored[0].open_ms
        last_open = interval_open(interval, now_ms)
        if end_ms is not None:
            last_open = min(last_open, interval_open(interval, end_ms))
        if start_ms is not None:  # the first candle opening at or after startTime
            cursor = interval_open(interval, start_ms)
            if cursor < start_ms:
                cursor = interval_close(interval, cursor) + 1
            cursor = max(cursor, first_open)
        else:
            cursor = last_open
            for _ in range(limit - 1):
                if cursor <= first_open:
                    break
                cursor = interval_open(interval, cursor - 1)
        previous = self._close_before(stored, cursor)
        out: list[Kline] = []
        while cursor <= last_open and len(out) < limit:
            kline = by_open.get(cursor)
            if kline is None:
                if previous is None:
                    cursor = interval_close(interval, cursor) + 1
                    continue
                kline = Kline.flat(cursor, previous)
            out.append(kline)
            previous = kline.close
            cursor = interval_close(interval, cursor) + 1
        return out

    @staticmethod
    def _close_before(stored: deque[Kline], open_ms: int) -> int | None:
        close = None
        for kline in stored:
            if kline.open_ms >= open_ms:
                break
            close = kline.close
        return close

    def ticker(self, now_ms: int) -> Ticker | None:
        """Rolling 24 h statistics over whole minutes (1m candles)."""
        last = self.last_trade
        if last is None:
            return None
        window_start = interval_open("1m", now_ms - DAY_MS) + MINUTE_MS
        candles = [k for k in self.klines["1m"] if k.open_ms >= window_start]
        older = [k for k in self.klines["1m"] if k.open_ms < window_start]
        prev_close = older[-1].close if older else (candles[0].open if candles else last.price)
        if not candles:
            return Ticker(now_ms - DAY_MS, now_ms, last.price, last.price, last.price,
                          last.price, last.qty, prev_close, 0, 0, -1, -1, 0)
        return Ticker(
            now_ms - DAY_MS, now_ms, candles[0].open, max(k.high for k in candles),
            min(k.low for k in candles), last.price, last.qty, prev_close,
            sum(k.volume for k in candles), sum(k.quote_volume for k in candles),
            candles[0].first_id, candles[-1].last_id, sum(k.trades for k in candles))

"""Time-driven streams: depth diffs every 100 ms (and merged each second),
partial books, 24h tickers each second, klines each two seconds.

web-socket-streams.md gives the cadences ("Update Speed"). The 100 ms diff
is cut from the book under the exchange lock whether or not anyone listens:
consecutive diffs then always satisfy U == previous u + 1, and the 1 s diff
is the union of ten of them, so a client that subscribes at any moment can
follow Binance's sync recipe on either speed. Network thread only.
"""

from __future__ import annotations

from collections.abc import Callable

from engine.sim.exchange import Exchange
from engine.sim.filters import SymbolSpec
from engine.sim.market_data import INTERVAL_MS
from engine.sim.wire_market import kline_event, levels, ticker_event

FAST_MS = 100
SLOW_MS = 1000
KLINE_MS = 2000
PARTIAL_LEVELS = (5, 10, 20)

Publish = Callable[[str, dict], None]
Has = Callable[[str], bool]


class _MergedDiff:
    __slots__ = ("first", "last", "bids", "asks")

    def __init__(self, first: int) -> None:
        self.first = first
        self.last = first
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}


class PeriodicStreams:
    def __init__(self, exchange: Exchange, specs: dict[str, SymbolSpec], publish: Publish,
                 has: Has) -> None:
        self.exchange = exchange
        self.specs = specs
        self.publish = publish
        self.has = has
        self.next_fast = self.next_slow = self.next_kline = 0
        self.merged: dict[str, _MergedDiff] = {}
        self.kline_opens: dict[str, int] = {}  # stream -> open time of the last push

    def poll(self, now_ms: int) -> float:
        """Run what is due; seconds until the next job."""
        if now_ms >= self.next_fast:
            self.next_fast = (now_ms // FAST_MS + 1) * FAST_MS
            self._fast(now_ms)
        if now_ms >= self.next_slow:
            self.next_slow = (now_ms // SLOW_MS + 1) * SLOW_MS
            self._slow(now_ms)
        if now_ms >= self.next_kline:
            self.next_kline = (now_ms // KLINE_MS + 1) * KLINE_MS
            self._klines(now_ms)
        due = min(self.next_fast, self.next_slow, self.next_kline)
        return max(0.0, (due - now_ms) / 1000)

    def _fast(self, now_ms: int) -> None:
        for symbol, spec in self.specs.items():
            lower = symbol.lower()
            diff = self.exchange.take_depth_diff(symbol)
            if diff is not None:
                first, last, bids, asks = diff
                merged = self.merged.get(symbol)
                if merged is None:
                    merged = self.merged[symbol] = _MergedDiff(first)
                merged.last = last
                merged.bids.update(bids)
                merged.asks.update(asks)
                stream = f"{lower}@depth@100ms"
                if self.has(stream):
                    self.publish(stream, self._diff_event(spec, now_ms, first, last, bids, asks))
            self._partials(spec, now_ms, "@100ms")

    def _slow(self, now_ms: int) -> None:
        for symbol, spec in self.specs.items():
            lower = symbol.lower()
            merged = self.merged.pop(symbol, None)
            if merged is not None and self.has(f"{lower}@depth"):
                bids = sorted(merged.bids.items(), reverse=True)
                asks = sorted(merged.asks.items())
                self.publish(f"{lower}@depth", self._diff_event(
                    spec, now_ms, merged.first, merged.last, bids, asks))
            self._partials(spec, now_ms, "")
            if self.has(f"{lower}@ticker") or self.has(f"{lower}@miniTicker"):
                self._ticker(spec, now_ms)

    def _partials(self, spec: SymbolSpec, now_ms: int, speed: str) -> None:
        lower = spec.symbol.lower()
        wanted = [n for n in PARTIAL_LEVELS if self.has(f"{lower}@depth{n}{speed}")]
        if not wanted:
            return
        update_id, bids, asks = self.exchange.depth(spec.symbol, max(wanted))
        for n in wanted:
            self.publish(f"{lower}@depth{n}{speed}", {
                "lastUpdateId": update_id, "bids": levels(spec, bids[:n]),
                "asks": levels(spec, asks[:n])})

    @staticmethod
    def _diff_event(spec: SymbolSpec, now_ms: int, first: int, last: int,
                    bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> dict:
        return {"e": "depthUpdate", "E": now_ms, "s": spec.symbol, "U": first, "u": last,
                "b": levels(spec, bids), "a": levels(spec, asks)}

    def _ticker(self, spec: SymbolSpec, now_ms: int) -> None:
        lower = spec.symbol.lower()
        ticker, top = self.exchange.read(
            lambda ex: (ex.markets[spec.symbol].ticker(now_ms), ex.book_top(spec.symbol)))
        payload = ticker_event(spec, ticker, top, now_ms)
        self.publish(f"{lower}@ticker", payload)
        self.publish(f"{lower}@miniTicker", {
            "e": "24hrMiniTicker", "E": now_ms, "s": spec.symbol, "c": payload["c"],
            "o": payload["o"], "h": payload["h"], "l": payload["l"], "v": payload["v"],
            "q": payload["q"]})

    def _klines(self, now_ms: int) -> None:
        for symbol, spec in self.specs.items():
            lower = symbol.lower()
            for interval in INTERVAL_MS:
                stream = f"{lower}@kline_{interval}"
                if not self.has(stream):
                    self.kline_opens.pop(stream, None)
                    continue
                recent = self.exchange.read(
                    lambda ex, s=symbol, i=interval: ex.markets[s].klines_between(  # type: ignore[misc]
                        i, None, None, 2, now_ms))
                if not recent:
                    continue
                current = recent[-1]
                pushed = self.kline_opens.get(stream)
                if len(recent) == 2 and pushed == recent[0].open_ms:
                    self.publish(stream, kline_event(spec, interval, recent[0], True, now_ms))
                self.publish(stream, kline_event(spec, interval, current, False, now_ms))
                self.kline_opens[stream] = current.open_ms

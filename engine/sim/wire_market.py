"""Binance's JSON shapes for public market data, shared by REST and the
WebSocket streams: depth, trades, aggregate trades, klines, tickers.

Pure formatting (rest-api.md "Market Data endpoints", web-socket-streams.md
"Detailed Stream information"). Money is always a decimal string.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from engine.sim.exchange import BookTop
from engine.sim.filters import SymbolSpec
from engine.sim.market_data import AggTrade, Kline, Ticker, interval_close
from engine.sim.orders import Trade
from engine.sim.wire_orders import amount_text, price_text, qty_text

Json = dict[str, Any]


def levels(spec: SymbolSpec, pairs: list[tuple[int, int]]) -> list[list[str]]:
    return [[price_text(spec, price), qty_text(spec, qty)] for price, qty in pairs]


def trade(spec: SymbolSpec, t: Trade) -> Json:
    """GET /api/v3/trades and historicalTrades."""
    return {"id": t.trade_id, "price": price_text(spec, t.price), "qty": qty_text(spec, t.qty),
            "quoteQty": amount_text(spec, t.quote_qty), "time": t.time_ms,
            "isBuyerMaker": t.buyer_is_maker, "isBestMatch": True}


def trade_event(spec: SymbolSpec, t: Trade, event_ms: int) -> Json:
    return {"e": "trade", "E": event_ms, "s": spec.symbol, "t": t.trade_id,
            "p": price_text(spec, t.price), "q": qty_text(spec, t.qty),
            "T": t.time_ms, "m": t.buyer_is_maker, "M": True}


def agg_trade(spec: SymbolSpec, a: AggTrade) -> Json:
    return {"a": a.agg_id, "p": price_text(spec, a.price), "q": qty_text(spec, a.qty),
            "f": a.first_trade_id, "l": a.last_trade_id, "T": a.time_ms,
            "m": a.buyer_is_maker, "M": True}


def agg_trade_event(spec: SymbolSpec, a: AggTrade, event_ms: int) -> Json:
    return {"e": "aggTrade", "E": event_ms, "s": spec.symbol, **agg_trade(spec, a)}


def kline_row(spec: SymbolSpec, interval: str, k: Kline) -> list:
    return [k.open_ms, price_text(spec, k.open), price_text(spec, k.high),
            price_text(spec, k.low), price_text(spec, k.close), qty_text(spec, k.volume),
            interval_close(interval, k.open_ms), amount_text(spec, k.quote_volume), k.trades,
            qty_text(spec, k.taker_buy_volume), amount_text(spec, k.taker_buy_quote), "0"]


def kline_event(spec: SymbolSpec, interval: str, k: Kline, closed: bool, event_ms: int) -> Json:
    return {"e": "kline", "E": event_ms, "s": spec.symbol, "k": {
        "t": k.open_ms, "T": interval_close(interval, k.open_ms), "s": spec.symbol,
        "i": interval, "f": k.first_id, "L": k.last_id, "o": price_text(spec, k.open),
        "c": price_text(spec, k.close), "h": price_text(spec, k.high),
        "l": price_text(spec, k.low), "v": qty_text(spec, k.volume), "n": k.trades,
        "x": closed, "q": amount_text(spec, k.quote_volume),
        "V": qty_text(spec, k.taker_buy_volume), "Q": amount_text(spec, k.taker_buy_quote),
        "B": "0"}}


def _percent(change: int, base: int) -> str:
    if not base:
        return "0.000"
    value = (Decimal(change) * 100 / Decimal(base)).quantize(Decimal("0.001"), ROUND_HALF_UP)
    return f"{value:.3f}"


def _weighted(spec: SymbolSpec, t: Ticker) -> str:
    if not t.volume:
        return price_text(spec, 0)
    # quote_volume / volume in price units: amount units -> price units
    scale = spec.notional_scale
    price_units = t.quote_volume // (t.volume * scale)
    return price_text(spec, price_units)


def ticker_24hr(spec: SymbolSpec, t: Ticker | None, top: BookTop, now_ms: int) -> Json:
    """GET /api/v3/ticker/24hr (FULL)."""
    if t is None:
        t = Ticker(now_ms - 86_400_000, now_ms, 0, 0, 0, 0, 0, 0, 0, 0, -1, -1, 0)
    return {
        "symbol": spec.symbol, "priceChange": price_text(spec, t.last - t.open),
        "priceChangePercent": _percent(t.last - t.open, t.open),
        "weightedAvgPrice": _weighted(spec, t), "prevClosePrice": price_text(spec, t.prev_close),
        "lastPrice": price_text(spec, t.last), "lastQty": qty_text(spec, t.last_qty),
        "bidPrice": price_text(spec, top.bid_price), "bidQty": qty_text(spec, top.bid_qty),
        "askPrice": price_text(spec, top.ask_price), "askQty": qty_text(spec, top.ask_qty),
        "openPrice": price_text(spec, t.open), "highPrice": price_text(spec, t.high),
        "lowPrice": price_text(spec, t.low), "volume": qty_text(spec, t.volume),
        "quoteVolume": amount_text(spec, t.quote_volume), "openTime": t.open_ms,
        "closeTime": t.close_ms, "firstId": t.first_id, "lastId": t.last_id,
        "count": t.trade_count,
    }


def ticker_mini(spec: SymbolSpec, t: Ticker | None, top: BookTop, now_ms: int) -> Json:
    full = ticker_24hr(spec, t, top, now_ms)
    keys = ("symbol", "openPrice", "highPrice", "lowPrice", "lastPrice", "volume",
            "quoteVolume", "openTime", "closeTime", "firstId", "lastId", "count")
    return {key: full[key] for key in keys}


def ticker_event(spec: SymbolSpec, t: Ticker | None, top: BookTop, now_ms: int) -> Json:
    full = ticker_24hr(spec, t, top, now_ms)
    return {"e": "24hrTicker", "E": now_ms, "s": spec.symbol, "p": full["priceChange"],
            "P": full["priceChangePercent"], "w": full["weightedAvgPrice"],
            "x": full["prevClosePrice"], "c": full["lastPrice"], "Q": full["lastQty"],
            "b": full["bidPrice"], "B": full["bidQty"], "a": full["askPrice"],
            "A": full["askQty"], "o": full["openPrice"], "h": full["highPrice"],
            "l": full["lowPrice"], "v": full["volume"], "q": full["quoteVolume"],
            "O": full["openTime"], "C": full["closeTime"], "F": full["firstId"],
            "L": full["lastId"], "n": full["count"]}


def book_ticker(spec: SymbolSpec, top: BookTop) -> Json:
    return {"symbol": spec.symbol, "bidPrice": price_text(spec, top.bid_price),
            "bidQty": qty_text(spec, top.bid_qty), "askPrice": price_text(spec, top.ask_price),
            "askQty": qty_text(spec, top.ask_qty)}


def book_ticker_event(spec: SymbolSpec, top: BookTop) -> Json:
    return {"u": top.update_id, "s": spec.symbol, "b": price_text(spec, top.bid_price),
            "B": qty_text(spec, top.bid_qty), "a": price_text(spec, top.ask_price),
            "A": qty_text(spec, top.ask_qty)}

"""Public REST endpoints: ping, time, exchangeInfo, depth, trades, historical
and aggregate trades, klines, average price and the tickers.

Parameters, defaults, limits and weights as rest-api.md states them
("General endpoints", "Market Data endpoints"; weights of its 2023-06-07
edition). Reads go through the exchange lock; nothing here changes state.
"""

from __future__ import annotations

import json
from typing import Any

from engine.sim import history
from engine.sim import orders as o
from engine.sim.exchange import recent_trades
from engine.sim.filters import SymbolSpec
from engine.sim.market_data import INTERVAL_MS, MINUTE_MS
from engine.sim.rest import Call, Route, VenueContext, spec_for
from engine.sim.rest_params import NONE, ApiError, Params
from engine.sim.wire_market import (
    agg_trade,
    book_ticker,
    kline_row,
    levels,
    ticker_24hr,
    ticker_mini,
    trade,
)
from engine.sim.wire_orders import amount_text, price_text, qty_text

SYMBOLS_PATTERN = '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$'


def ping(ctx: VenueContext, call: Call) -> Any:
    return {}


def server_time(ctx: VenueContext, call: Call) -> Any:
    return {"serverTime": call.now_ms}


def _symbols(ctx: VenueContext, params: Params) -> list[SymbolSpec] | None:
    """``symbol`` or ``symbols`` (a JSON list); None when neither was sent."""
    single, many = params.text("symbol"), params.text("symbols")
    if single and many:
        raise ApiError(-1128, "Combination of optional parameters invalid.")
    if single:
        return [spec_for(ctx, params)]
    if many is None:
        return None
    try:
        names = json.loads(many)
        assert isinstance(names, list) and all(isinstance(n, str) for n in names)
    except (ValueError, AssertionError):
        raise ApiError(-1100, f"Illegal characters found in parameter 'symbols'; legal range "
                              f"is '{SYMBOLS_PATTERN}'.") from None
    if len(set(names)) != len(names):
        raise ApiError(-1151, "Symbol is present multiple times in the list.")
    found = [ctx.specs.get(name) for name in names]
    if any(spec is None for spec in found):
        raise ApiError(-1121, "Invalid symbol.")
    return [spec for spec in found if spec is not None]


def _symbol_info(ctx: VenueContext, spec: SymbolSpec) -> dict:
    fmt_price = lambda v: price_text(spec, v)
    fmt_qty = lambda v: qty_text(spec, v)
    return {
        "symbol": spec.symbol, "status": "TRADING", "baseAsset": spec.base,
        "baseAssetPrecision": spec.wire_qty_decimals, "quoteAsset": spec.quote,
        "quotePrecision": spec.amount_decimals, "quoteAssetPrecision": spec.amount_decimals,
        "baseCommissionPrecision": spec.amount_decimals,
        "quoteCommissionPrecision": spec.amount_decimals,
        "orderTypes": list(o.ORDER_TYPES), "icebergAllowed": False, "ocoAllowed": False,
        "otoAllowed": False, "quoteOrderQtyMarketAllowed": True, "allowTrailingStop": False,
        "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": fmt_price(spec.tick),
             "maxPrice": fmt_price(spec.max_price), "tickSize": fmt_price(spec.tick)},
            {"filterType": "LOT_SIZE", "minQty": fmt_qty(spec.step),
             "maxQty": fmt_qty(spec.max_qty), "stepSize": fmt_qty(spec.step)},
            {"filterType": "NOTIONAL",
             "minNotional": amount_text(spec, spec.min_notional), "applyMinToMarket": True,
             "maxNotional": amount_text(spec, spec.notional(spec.max_price, spec.max_qty)),
             "applyMaxToMarket": False, "avgPriceMins": 0},
        ],
        "permissions": [], "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": ctx.exchange.engine.default_stp,
        "allowedSelfTradePreventionModes": list(o.STP_MODES),
    }


def exchange_info(ctx: VenueContext, call: Call) -> Any:
    chosen = _symbols(ctx, call.params) or list(ctx.specs.values())
    return {"timezone": "UTC", "serverTime": call.now_ms,
            "rateLimits": ctx.limiter.rate_limits_json(), "exchangeFilters": [],
            "symbols": [_symbol_info(ctx, spec) for spec in chosen]}


def depth_weight(params: Params) -> int:
    """CHANGELOG 2023-10-19: 5 / 25 / 50 / 250 by limit (REST and WebSocket API)."""
    limit = params.limit(100, 5000)
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def depth(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    update_id, bids, asks = ctx.exchange.depth(spec.symbol, call.params.limit(100, 5000))
    return {"lastUpdateId": update_id, "bids": levels(spec, bids), "asks": levels(spec, asks)}


def trades(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    limit = call.params.limit(500, 1000)
    found = ctx.exchange.read(lambda ex: recent_trades(ex.markets[spec.symbol], limit))
    return [trade(spec, t) for t in found]


def historical_trades(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    found = ctx.exchange.history(history.trades_from, spec.symbol,
                                 call.params.integer("fromId"), call.params.limit(500, 1000))
    return [trade(spec, t) for t in found]


def agg_trades(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    p = call.params
    from_id, start, end = p.integer("fromId"), p.integer("startTime"), p.integer("endTime")
    limit = p.limit(500, 1000)

    def pick(ex: Any) -> list:
        kept = list(ex.markets[spec.symbol].agg_trades)
        if from_id is not None:
            return [a for a in kept if a.agg_id >= from_id][:limit]
        if start is not None or end is not None:
            chosen = [a for a in kept if (start is None or a.time_ms >= start)
                      and (end is None or a.time_ms <= end)]
            return chosen[:limit]
        return kept[-limit:]
    return [agg_trade(spec, a) for a in ctx.exchange.read(pick)]


def klines(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    p = call.params
    interval = p.text("interval", required=True)
    if interval not in INTERVAL_MS:
        raise ApiError(-1120, "Invalid interval.")
    assert interval is not None
    start, end, limit = p.integer("startTime"), p.integer("endTime"), p.limit(500, 1000)
    found = ctx.exchange.read(lambda ex: ex.markets[spec.symbol].klines_between(
        interval, start, end, limit, call.now_ms))
    return [kline_row(spec, interval, k) for k in found]


def avg_price(ctx: VenueContext, call: Call) -> Any:
    spec = spec_for(ctx, call.params)
    window = 5 * MINUTE_MS

    def average(ex: Any) -> tuple[int, int]:
        market = ex.markets[spec.symbol]
        recent = [k for k in market.klines["1m"] if k.open_ms >= call.now_ms - window]
        volume, quote = sum(k.volume for k in recent), sum(k.quote_volume for k in recent)
        last = market.last_trade
        if volume:
            return quote // (volume * spec.notional_scale), recent[-1].open_ms + MINUTE_MS - 1
        return (last.price if last else 0), (last.time_ms if last else call.now_ms)
    price, close_ms = ctx.exchange.read(average)
    return {"mins": 5, "price": price_text(spec, price), "closeTime": close_ms}


def _per_symbol(ctx: VenueContext, call: Call, render: Any) -> Any:
    chosen = _symbols(ctx, call.params)
    rows = [render(spec) for spec in (chosen or ctx.specs.values())]
    return rows[0] if call.params.text("symbol") else rows


def ticker_24h(ctx: VenueContext, call: Call) -> Any:
    kind = call.params.choice("type", ("FULL", "MINI"), -1139, "Invalid ticker type.") or "FULL"
    render_one = ticker_24hr if kind == "FULL" else ticker_mini
    return _per_symbol(ctx, call, lambda spec: ctx.exchange.read(lambda ex: render_one(
        spec, ex.markets[spec.symbol].ticker(call.now_ms), ex.book_top(spec.symbol),
        call.now_ms)))


def ticker_price(ctx: VenueContext, call: Call) -> Any:
    def render(spec: SymbolSpec) -> dict:
        last = ctx.exchange.read(lambda ex: ex.engine.last_price[spec.symbol])
        return {"symbol": spec.symbol, "price": price_text(spec, last or 0)}
    return _per_symbol(ctx, call, render)


def ticker_book(ctx: VenueContext, call: Call) -> Any:
    return _per_symbol(ctx, call, lambda spec: book_ticker(spec, ctx.exchange.top(spec.symbol)))


def _by_symbols(single: int, many: int) -> Any:
    return lambda p: single if p.text("symbol") else many


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/v3/ping"): Route(ping, NONE, 1),
    ("GET", "/api/v3/time"): Route(server_time, NONE, 1),
    ("GET", "/api/v3/exchangeInfo"): Route(exchange_info, NONE, 20),
    ("GET", "/api/v3/depth"): Route(depth, NONE, depth_weight),
    ("GET", "/api/v3/trades"): Route(trades, NONE, 25),
    ("GET", "/api/v3/historicalTrades"): Route(historical_trades, NONE, 25),
    ("GET", "/api/v3/aggTrades"): Route(agg_trades, NONE, 4),
    ("GET", "/api/v3/klines"): Route(klines, NONE, 2),
    ("GET", "/api/v3/uiKlines"): Route(klines, NONE, 2),
    ("GET", "/api/v3/avgPrice"): Route(avg_price, NONE, 2),
    ("GET", "/api/v3/ticker/24hr"): Route(ticker_24h, NONE, _by_symbols(2, 80)),
    ("GET", "/api/v3/ticker/price"): Route(ticker_price, NONE, _by_symbols(2, 4)),
    ("GET", "/api/v3/ticker/bookTicker"): Route(ticker_book, NONE, _by_symbols(2, 4)),
}

"""Public /v5/market endpoints: instruments-info, orderbook, recent-trade,
tickers, time. Shapes per docs/v5/market/{instrument,orderbook,recent-trade,
tickers,time}; spot reads the venue's spot books, linear its perpetuals.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from engine.sim.bybit.context import ALL_CATEGORIES, BybitContext
from engine.sim.bybit.errors import LINEAR, SPOT, params_error
from engine.sim.bybit.rest import Call, Route
from engine.sim.bybit.wire import (
    amount_text,
    price_text,
    qty_text,
    ratio_text,
    trade_id_text,
    wire_symbol,
)
from engine.sim.exchange import Exchange
from engine.sim.filters import SymbolSpec

BOOK_LIMITS = {SPOT: (1, 200), LINEAR: (25, 500)}  # (default, max) per the orderbook page
TRADE_LIMITS = {SPOT: (60, 60), LINEAR: (500, 1000)}
FUNDING_INTERVAL_MIN = 480


def _int(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise params_error(f"{name} invalid") from None
    if value < low:
        raise params_error(f"{name} invalid")
    return min(value, high)


def _chosen(ctx: BybitContext, category: str, params: dict) -> list[SymbolSpec]:
    spec = ctx.spec(category, params, required=False)
    return [spec] if spec is not None else list(ctx.specs(category).values())


def instrument_json(category: str, spec: SymbolSpec) -> dict[str, Any]:
    tick = price_text(spec, spec.tick)
    step = qty_text(spec, spec.step)
    if category == SPOT:
        return {"symbol": spec.symbol, "baseCoin": spec.base, "quoteCoin": spec.quote,
                "innovation": "0", "status": "Trading", "marginTrading": "none",
                "stTag": "0", "symbolType": "",
                "lotSizeFilter": {"basePrecision": step,
                                  "quotePrecision": price_text(spec, spec.tick),
                                  "minOrderQty": step, "maxOrderQty": qty_text(spec, spec.max_qty),
                                  "minOrderAmt": amount_text(spec, spec.min_notional),
                                  "maxOrderAmt": "100000000"},
                "priceFilter": {"tickSize": tick},
                "riskParameters": {"priceLimitRatioX": "0.05", "priceLimitRatioY": "0.05"}}
    return {"symbol": wire_symbol(spec), "contractType": "LinearPerpetual", "status": "Trading",
            "baseCoin": spec.base, "quoteCoin": spec.quote, "settleCoin": spec.quote,
            "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
            "priceScale": str(spec.price_decimals),
            "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00",
                               "leverageStep": "0.01"},
            "priceFilter": {"minPrice": tick, "maxPrice": price_text(spec, spec.max_price),
                            "tickSize": tick},
            "lotSizeFilter": {"maxOrderQty": qty_text(spec, spec.max_qty), "minOrderQty": step,
                              "qtyStep": step, "postOnlyMaxOrderQty": qty_text(spec, spec.max_qty),
                              "maxMktOrderQty": qty_text(spec, spec.max_qty),
                              "minNotionalValue": amount_text(spec, spec.min_notional)},
            "unifiedMarginTrade": True, "fundingInterval": FUNDING_INTERVAL_MIN,
            "copyTrading": "none", "upperFundingRate": "0.00375",
            "lowerFundingRate": "-0.00375", "isPreListing": False, "preListingInfo": None,
            "displayName": "", "riskParameters": {"priceLimitRatioX": "0.01",
                                                  "priceLimitRatioY": "0.02"}}


def instruments(ctx: BybitContext, call: Call) -> Any:
    """``status`` other than Trading lists nothing: the venue has no PreLaunch
    symbols (ccxt asks for them too)."""
    category = ctx.category(call.params, ALL_CATEGORIES)
    status = call.params.get("status")
    chosen = [] if status not in (None, "", "Trading") else _chosen(ctx, category, call.params)
    return {"category": category, "list": [instrument_json(category, s) for s in chosen],
            "nextPageCursor": ""}


def orderbook(ctx: BybitContext, call: Call) -> Any:
    category = ctx.category(call.params)
    spec = ctx.spec(category, call.params)
    assert spec is not None
    default, high = BOOK_LIMITS[category]
    limit = _int(call.params, "limit", default, 1, high)
    update_id, bids, asks = ctx.exchange.depth(spec.symbol, limit)
    return {"s": wire_symbol(spec),
            "b": [[price_text(spec, p), qty_text(spec, q)] for p, q in bids],
            "a": [[price_text(spec, p), qty_text(spec, q)] for p, q in asks],
            "ts": call.now_ms, "u": update_id, "seq": update_id, "cts": call.now_ms}


def recent_trades(ctx: BybitContext, call: Call) -> Any:
    category = ctx.category(call.params)
    spec = ctx.spec(category, call.params)
    assert spec is not None
    default, high = TRADE_LIMITS[category]
    limit = _int(call.params, "limit", default, 1, high)
    trades = ctx.exchange.read(lambda ex: list(ex.markets[spec.symbol].trades)[-limit:])
    return {"category": category, "list": [
        {"execId": trade_id_text(category, spec.symbol, t.trade_id), "symbol": wire_symbol(spec),
         "price": price_text(spec, t.price), "size": qty_text(spec, t.qty),
         "side": "Sell" if t.buyer_is_maker else "Buy", "time": str(t.time_ms),
         "isBlockTrade": False, "isRPITrade": False, "seq": str(t.trade_id)}
        for t in reversed(trades)]}


def ticker_json(ctx: BybitContext, ex: Exchange, category: str, spec: SymbolSpec,
                now_ms: int) -> dict[str, Any]:
    """One tickers row (also the tickers.<symbol> stream's data); caller holds the lock."""
    top = ex.book_top(spec.symbol)
    stats = ex.markets[spec.symbol].ticker(now_ms)
    last = stats.last if stats else 0
    previous = stats.prev_close if stats else 0
    change = Fraction(last - previous, previous) if previous else Fraction(0)
    out = {"symbol": wire_symbol(spec),
           "bid1Price": price_text(spec, top.bid_price), "bid1Size": qty_text(spec, top.bid_qty),
           "ask1Price": price_text(spec, top.ask_price), "ask1Size": qty_text(spec, top.ask_qty),
           "lastPrice": price_text(spec, last), "prevPrice24h": price_text(spec, previous),
           "price24hPcnt": ratio_text(change, 6) if change >= 0
           else "-" + ratio_text(-change, 6),
           "highPrice24h": price_text(spec, stats.high if stats else 0),
           "lowPrice24h": price_text(spec, stats.low if stats else 0),
           "turnover24h": amount_text(spec, stats.quote_volume if stats else 0),
           "volume24h": qty_text(spec, stats.volume if stats else 0)}
    if category == SPOT:
        return out | {"usdIndexPrice": price_text(spec, last)}
    d, funding = ctx.derivatives, ctx.funding
    mark = d.mark(spec.symbol, last) if d is not None else last
    index_spec = ctx.spot.get(wire_symbol(spec))
    index = mark
    if index_spec is not None:
        spot_top = ex.book_top(index_spec.symbol)
        if spot_top.bid_price and spot_top.ask_price:
            index = (spot_top.bid_price + spot_top.ask_price) // 2
    rate = funding.rate(spec.symbol, now_ms) if funding is not None else Fraction(0)
    next_ms = funding.state(spec.symbol, now_ms).next_funding_ms if funding is not None else 0
    return out | {"indexPrice": price_text(spec, index), "markPrice": price_text(spec, mark),
                  "prevPrice1h": price_text(spec, previous), "openInterest": "0",
                  "openInterestValue": "0",
                  "fundingRate": ratio_text(rate, 8) if rate >= 0 else "-" + ratio_text(-rate, 8),
                  "nextFundingTime": str(next_ms), "predictedDeliveryPrice": "",
                  "basisRate": "", "deliveryFeeRate": "", "deliveryTime": "0", "basis": "",
                  "fundingIntervalHour": "8", "fundingCap": "0.00375"}


def tickers(ctx: BybitContext, call: Call) -> Any:
    category = ctx.category(call.params, ALL_CATEGORIES)
    chosen = _chosen(ctx, category, call.params)
    rows = ctx.exchange.read(lambda ex: [ticker_json(ctx, ex, category, s, call.now_ms)
                                         for s in chosen])
    return {"category": category, "list": rows}


def server_time(ctx: BybitContext, call: Call) -> Any:
    now_ns = ctx.exchange.clock.now_ns()
    return {"timeSecond": str(now_ns // 1_000_000_000), "timeNano": str(now_ns)}


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/v5/market/instruments-info"): Route(instruments, False),
    ("GET", "/v5/market/orderbook"): Route(orderbook, False),
    ("GET", "/v5/market/recent-trade"): Route(recent_trades, False),
    ("GET", "/v5/market/tickers"): Route(tickers, False),
    ("GET", "/v5/market/time"): Route(server_time, False),
}

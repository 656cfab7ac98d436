"""USD-M public REST: ping, time, exchangeInfo, depth, trades, aggTrades,
klines, premiumIndex (mark price), fundingRate, fundingInfo, tickers and
openInterest. Weights from the USD-M market-data endpoint pages.
"""

from __future__ import annotations

from typing import Any, cast

from engine.sim import orders as o
from engine.sim.exchange import recent_trades
from engine.sim.filters import SymbolSpec
from engine.sim.market_data import INTERVAL_MS
from engine.sim.rest import Call, Route, VenueContext
from engine.sim.rest_params import NONE, ApiError, Params
from engine.sim.usdm.context import UsdmContext
from engine.sim.usdm.wire import amount_text, decimal_text, price_text, qty_text, wire_symbol
from engine.sim.wire_market import ticker_24hr

ORDER_TYPES = ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET"]


def _ctx(ctx: VenueContext) -> UsdmContext:
    return cast(UsdmContext, ctx)


def ping(ctx: VenueContext, call: Call) -> Any:
    return {}


def server_time(ctx: VenueContext, call: Call) -> Any:
    return {"serverTime": call.now_ms}


def _symbol_info(spec: SymbolSpec) -> dict:
    return {
        "symbol": wire_symbol(spec), "pair": wire_symbol(spec), "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base, "quoteAsset": spec.quote, "marginAsset": spec.quote,
        "pricePrecision": spec.price_decimals, "quantityPrecision": spec.qty_decimals,
        "baseAssetPrecision": 8, "quotePrecision": 8, "underlyingType": "COIN",
        "underlyingSubType": [], "settlePlan": 0, "triggerProtect": "0.0500",
        "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": price_text(spec, spec.tick),
             "maxPrice": price_text(spec, spec.max_price), "tickSize": price_text(spec, spec.tick)},
            {"filterType": "LOT_SIZE", "minQty": qty_text(spec, spec.step),
             "maxQty": qty_text(spec, spec.max_qty), "stepSize": qty_text(spec, spec.step)},
            {"filterType": "MARKET_LOT_SIZE", "minQty": qty_text(spec, spec.step),
             "maxQty": qty_text(spec, spec.max_qty), "stepSize": qty_text(spec, spec.step)},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": amount_text(spec, spec.min_notional)},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500",
             "multiplierDown": "0.9500", "multiplierDecimal": "4"},
        ],
        "orderTypes": ORDER_TYPES, "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        "permissionSets": ["GRID", "COPY"],
    }


def exchange_info(ctx: VenueContext, call: Call) -> Any:
    assets = sorted({spec.quote for spec in ctx.specs.values()})
    limits = ctx.limiter.limits
    return {
        "timezone": "UTC", "serverTime": call.now_ms, "futuresType": "U_MARGINED",
        "rateLimits": [
            {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
             "limit": limits.weight_per_minute},
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
             "limit": limits.orders_per_10s * 4},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
             "limit": limits.orders_per_10s}],
        "exchangeFilters": [],
        "assets": [{"asset": a, "marginAvailable": True, "autoAssetExchange": "-10000"}
                   for a in assets],
        "symbols": [_symbol_info(spec) for spec in ctx.specs.values()],
    }


def _depth_weight(params: Params) -> int:
    limit = params.limit(500, 1000)
    return 2 if limit < 100 else 5 if limit < 500 else 10 if limit <= 500 else 20


def depth(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    update_id, bids, asks = ctx.exchange.depth(spec.symbol, call.params.limit(500, 1000))
    return {"lastUpdateId": update_id, "E": call.now_ms, "T": call.now_ms,
            "bids": [[price_text(spec, p), qty_text(spec, q)] for p, q in bids],
            "asks": [[price_text(spec, p), qty_text(spec, q)] for p, q in asks]}


def trades(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    limit = call.params.limit(500, 1000)
    found = ctx.exchange.read(lambda ex: recent_trades(ex.markets[spec.symbol], limit))
    return [{"id": t.trade_id, "price": price_text(spec, t.price), "qty": qty_text(spec, t.qty),
             "quoteQty": amount_text(spec, t.quote_qty), "time": t.time_ms,
             "isBuyerMaker": t.buyer_is_maker} for t in found]


def agg_trades(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    p = call.params
    from_id, start, end = p.integer("fromId"), p.integer("startTime"), p.integer("endTime")
    limit = p.limit(500, 1000)

    def pick(ex: Any) -> list:
        kept = list(ex.markets[spec.symbol].agg_trades)
        if from_id is not None:
            return [a for a in kept if a.agg_id >= from_id][:limit]
        if start is not None or end is not None:
            return [a for a in kept if (start is None or a.time_ms >= start)
                    and (end is None or a.time_ms <= end)][:limit]
        return kept[-limit:]
    return [{"a": a.agg_id, "p": price_text(spec, a.price), "q": qty_text(spec, a.qty),
             "f": a.first_trade_id, "l": a.last_trade_id, "T": a.time_ms,
             "m": a.buyer_is_maker} for a in ctx.exchange.read(pick)]


def _klines_weight(params: Params) -> int:
    limit = params.limit(500, 1500)
    return 1 if limit < 100 else 2 if limit < 500 else 5 if limit <= 1000 else 10


def klines(ctx: VenueContext, call: Call) -> Any:
    spec = _ctx(ctx).spec(call.params)
    assert spec is not None
    p = call.params
    interval = p.text("interval", required=True)
    if interval not in INTERVAL_MS or interval == "1s":
        raise ApiError(-1120, "Invalid interval.")
    assert interval is not None
    start, end, limit = p.integer("startTime"), p.integer("endTime"), p.limit(500, 1500)
    found = ctx.exchange.read(lambda ex: ex.markets[spec.symbol].klines_between(
        interval, start, end, min(limit, 1000), call.now_ms))
    from engine.sim.market_data import interval_close  # small helper
    return [[k.open_ms, price_text(spec, k.open), price_text(spec, k.high),
             price_text(spec, k.low), price_text(spec, k.close), qty_text(spec, k.volume),
             interval_close(interval, k.open_ms), amount_text(spec, k.quote_volume), k.trades,
             qty_text(spec, k.taker_buy_volume), amount_text(spec, k.taker_buy_quote), "0"]
            for k in found]


def premium_json(ctx: UsdmContext, spec: SymbolSpec, now_ms: int) -> dict:
    funding = ctx.funding
    state = funding.state(spec.symbol, now_ms)
    mark = ctx.derivatives.mark(spec.symbol)
    return {"symbol": wire_symbol(spec), "markPrice": price_text(spec, mark),
            "indexPrice": price_text(spec, state.index),
            "estimatedSettlePrice": price_text(spec, mark),
            "lastFundingRate": decimal_text(funding.rate(spec.symbol, now_ms)),
            "interestRate": decimal_text(funding.rules.interest_rate),
            "nextFundingTime": state.next_funding_ms, "time": now_ms}


def premium_index(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params, required=False)
    rows = ctx.exchange.read(lambda ex: [premium_json(u, s, call.now_ms) for s in (
        [spec] if spec else list(ctx.specs.values()))])
    return rows[0] if spec else rows


def funding_rate(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params, required=False)
    limit = call.params.limit(100, 1000)
    history = ctx.exchange.read(lambda ex: list(u.funding.history))
    rows = [h for h in history if spec is None or h[0] == spec.symbol]
    return [{"symbol": wire_symbol(u.by_internal(s)), "fundingTime": t,
             "fundingRate": decimal_text(rate),
             "markPrice": price_text(u.by_internal(s), mark)} for s, t, rate, mark in
            rows[-limit:]]


def funding_info(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    hours = u.funding.rules.interval_ms // 3_600_000
    return [{"symbol": wire_symbol(spec), "adjustedFundingRateCap":
             decimal_text(u.funding.rules.cap), "adjustedFundingRateFloor":
             decimal_text(-u.funding.rules.cap), "fundingIntervalHours": max(1, hours),
             "disclaimer": False} for spec in ctx.specs.values()]


def _per_symbol(ctx: VenueContext, call: Call, render: Any) -> Any:
    spec = _ctx(ctx).spec(call.params, required=False)
    rows = [render(s) for s in ([spec] if spec else ctx.specs.values())]
    return rows[0] if spec else rows


def ticker_24h(ctx: VenueContext, call: Call) -> Any:
    def render(spec: SymbolSpec) -> dict:
        row = ctx.exchange.read(lambda ex: ticker_24hr(
            spec, ex.markets[spec.symbol].ticker(call.now_ms), ex.book_top(spec.symbol),
            call.now_ms))
        keep = ("priceChange", "priceChangePercent", "weightedAvgPrice", "lastPrice",
                "lastQty", "openPrice", "highPrice", "lowPrice", "volume", "quoteVolume",
                "openTime", "closeTime", "firstId", "lastId", "count")
        return {"symbol": wire_symbol(spec), **{k: row[k] for k in keep}}
    return _per_symbol(ctx, call, render)


def ticker_price(ctx: VenueContext, call: Call) -> Any:
    def render(spec: SymbolSpec) -> dict:
        last = ctx.exchange.read(lambda ex: ex.engine.last_price[spec.symbol])
        return {"symbol": wire_symbol(spec), "price": price_text(spec, last or 0),
                "time": call.now_ms}
    return _per_symbol(ctx, call, render)


def ticker_book(ctx: VenueContext, call: Call) -> Any:
    def render(spec: SymbolSpec) -> dict:
        top = ctx.exchange.top(spec.symbol)
        return {"symbol": wire_symbol(spec), "bidPrice": price_text(spec, top.bid_price),
                "bidQty": qty_text(spec, top.bid_qty), "askPrice": price_text(spec, top.ask_price),
                "askQty": qty_text(spec, top.ask_qty), "time": call.now_ms,
                "lastUpdateId": top.update_id}
    return _per_symbol(ctx, call, render)


def open_interest(ctx: VenueContext, call: Call) -> Any:
    u = _ctx(ctx)
    spec = u.spec(call.params)
    assert spec is not None
    total = ctx.exchange.read(lambda ex: sum(
        p.qty for p in u.derivatives.book.open_positions() if p.symbol == spec.symbol
        and p.qty > 0))
    return {"openInterest": qty_text(spec, total), "symbol": wire_symbol(spec),
            "time": call.now_ms}


def _by_symbol(single: int, many: int) -> Any:
    return lambda p: single if p.text("symbol") else many


ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/fapi/v1/ping"): Route(ping, NONE, 1),
    ("GET", "/fapi/v1/time"): Route(server_time, NONE, 1),
    ("GET", "/fapi/v1/exchangeInfo"): Route(exchange_info, NONE, 1),
    ("GET", "/fapi/v1/depth"): Route(depth, NONE, _depth_weight),
    ("GET", "/fapi/v1/trades"): Route(trades, NONE, 5),
    ("GET", "/fapi/v1/aggTrades"): Route(agg_trades, NONE, 20),
    ("GET", "/fapi/v1/klines"): Route(klines, NONE, _klines_weight),
    ("GET", "/fapi/v1/markPriceKlines"): Route(klines, NONE, _klines_weight),
    ("GET", "/fapi/v1/indexPriceKlines"): Route(klines, NONE, _klines_weight),
    ("GET", "/fapi/v1/premiumIndex"): Route(premium_index, NONE, _by_symbol(1, 10)),
    ("GET", "/fapi/v1/fundingRate"): Route(funding_rate, NONE, 1),
    ("GET", "/fapi/v1/fundingInfo"): Route(funding_info, NONE, 1),
    ("GET", "/fapi/v1/ticker/24hr"): Route(ticker_24h, NONE, _by_symbol(1, 40)),
    ("GET", "/fapi/v1/ticker/price"): Route(ticker_price, NONE, _by_symbol(1, 2)),
    ("GET", "/fapi/v2/ticker/price"): Route(ticker_price, NONE, _by_symbol(1, 2)),
    ("GET", "/fapi/v1/ticker/bookTicker"): Route(ticker_book, NONE, _by_symbol(2, 5)),
    ("GET", "/fapi/v1/openInterest"): Route(open_interest, NONE, 1),
}
_ = o  # order vocabulary re-exported for the type list above

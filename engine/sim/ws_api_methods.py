"""The WebSocket API's request methods that mirror REST endpoints: name ->
(REST handler, security, weight). Session and user data methods are
ws_api_session.py's.

web-socket-api.md: "WebSocket API and REST API are functionally equivalent:
they ... accept the same parameters, return the same status and error codes"
(CHANGELOG 2022-12-15), so each method runs the REST handler on the same
parameters. Weights are today's (CHANGELOG 2023-08-25 and 2023-10-19 and the
current web-socket-api.md), the same as REST's (rest_market.py, rest_trade.py).
"""

from __future__ import annotations

from typing import Any

from engine.sim import rest_market as m
from engine.sim import rest_trade as t
from engine.sim.rest import Call, Route, VenueContext
from engine.sim.rest_params import NONE, SIGNED, Params


def rate_limit_orders(ctx: VenueContext, call: Call) -> Any:
    """account.rateLimits.orders: the account's unfilled order counts."""
    ten_s, day = ctx.limiter.order_counts(call.account, call.now_ms)
    return ctx.limiter.order_limits_json(ten_s, day)


def _count_weight(params: Params, single: int, many: int) -> int:
    return single if params.text("symbol") else many


METHODS: dict[str, Route] = {
    "ping": Route(m.ping, NONE, 1),
    "time": Route(m.server_time, NONE, 1),
    "exchangeInfo": Route(m.exchange_info, NONE, 20),
    "depth": Route(m.depth, NONE, m.depth_weight),
    "trades.recent": Route(m.trades, NONE, 25),
    "trades.historical": Route(m.historical_trades, NONE, 25),
    "trades.aggregate": Route(m.agg_trades, NONE, 4),
    "klines": Route(m.klines, NONE, 2),
    "uiKlines": Route(m.klines, NONE, 2),
    "avgPrice": Route(m.avg_price, NONE, 2),
    "ticker.24hr": Route(m.ticker_24h, NONE, lambda p: _count_weight(p, 2, 80)),
    "ticker.price": Route(m.ticker_price, NONE, lambda p: _count_weight(p, 2, 4)),
    "ticker.book": Route(m.ticker_book, NONE, lambda p: _count_weight(p, 2, 4)),
    "order.place": Route(t.new_order, SIGNED, 1, counts_order=True),
    "order.test": Route(t.test_order, SIGNED, t.test_order_weight),
    "order.status": Route(t.query_order, SIGNED, 4),
    "order.cancel": Route(t.cancel_order, SIGNED, 1),
    "order.cancelReplace": Route(t.cancel_replace, SIGNED, 1, counts_order=True),
    "openOrders.status": Route(t.open_orders, SIGNED, lambda p: _count_weight(p, 6, 80)),
    "openOrders.cancelAll": Route(t.cancel_open_orders, SIGNED, 1),
    "allOrders": Route(t.all_orders, SIGNED, 20),
    "myTrades": Route(t.my_trades, SIGNED, t.my_trades_weight),
    "account.status": Route(t.account, SIGNED, 20),
    "account.rateLimits.orders": Route(rate_limit_orders, SIGNED, 40),
}

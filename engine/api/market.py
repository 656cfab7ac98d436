"""Market-data routes over the recorded history: candles, trade pages,
24-hour statistics and the book at a given time, for any recorded venue,
market and pair. The numbers come from ClickHouse SQL (engine/store/queries.py
through the history store); this module parses requests and shapes errors.

A book is named as everywhere else, ``venue:market:BASE/QUOTE``; times are
integer nanoseconds since the epoch (UTC)::

  GET /market/pairs
  GET /market/candles/{key}?interval=1m&start_ns=..&end_ns=..   1m 5m 15m 1h 4h 1d
  GET /market/trades/{key}?start_ns=..&end_ns=..&limit=500&cursor=..
  GET /market/stats/{key}?at_ns=..          (at_ns - 24 h, at_ns]
  GET /market/book/{key}?at_ns=..&depth=20
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from engine.api.http import Request, Response, Router
from engine.api.params import BadRequest, int_param

NS = 1_000_000_000
INTERVAL_NS = {"1m": 60 * NS, "5m": 300 * NS, "15m": 900 * NS, "1h": 3600 * NS,
               "4h": 4 * 3600 * NS, "1d": 86400 * NS}
DEFAULT_CANDLES = 500  # candles up to end_ns (default now) when no start_ns is given
DEFAULT_TRADES_SPAN_NS = 3600 * NS  # a trade page's range when no start_ns is given


class MarketHistory(Protocol):
    """What the routes need of the history store (engine.store.history.HistoryStore)."""

    def pairs(self) -> list[dict[str, Any]]: ...

    def candles(self, venue: str, market: str, pair: str, interval: str,
                start_ns: int, end_ns: int) -> list[dict[str, Any]]: ...

    def trades(self, venue: str, market: str, pair: str, start_ns: int, end_ns: int,
               limit: int, cursor: str = "") -> dict[str, Any]: ...

    def stats_24h(self, venue: str, market: str, pair: str, at_ns: int) -> dict[str, Any]: ...

    def book_at(self, venue: str, market: str, pair: str, at_ns: int,
                depth: int) -> dict[str, Any] | None: ...


def _book_key(req: Request) -> tuple[str, str, str]:
    parts = req.params["key"].split(":", 2)
    if len(parts) != 3 or not all(parts):
        raise BadRequest(f"book {req.params['key']!r} is not venue:market:BASE/QUOTE")
    return parts[0], parts[1], parts[2]


def _int(req: Request, name: str, default: int) -> int:
    """Times in ns and sizes: any 64-bit integer is accepted here; the
    queries check their own ranges (limit, depth) and say which."""
    return int_param(req, name, default, low=0)


def install(router: Router, history: MarketHistory | None,
            now_ns: Callable[[], int] = time.time_ns) -> None:
    """Adds the /market routes. ``history`` None (storage.history.backend:
    none) makes each answer 503 saying so."""

    def guarded(handler: Callable[[MarketHistory, Request], Any]) -> Callable[[Request], Response]:
        def run(req: Request) -> Response:
            if history is None:
                return Response.error(503, "history store disabled (storage.history.backend: none)")
            try:
                result = handler(history, req)
            except ValueError as exc:  # BadRequest, and the queries' QueryError
                return Response.error(400, str(exc))
            except RuntimeError as exc:  # the store's StoreUnavailable / StoreError
                return Response.error(503, f"history store unavailable: {exc}")
            if isinstance(result, Response):
                return result
            return Response.json(result)
        return run

    def pairs(h: MarketHistory, req: Request) -> Any:
        return {"pairs": h.pairs()}

    def candles(h: MarketHistory, req: Request) -> Any:
        venue, market, pair = _book_key(req)
        interval = req.query.get("interval", "1m")
        step = INTERVAL_NS.get(interval)
        if step is None:
            raise BadRequest(f"interval {interval!r} is not one of {', '.join(INTERVAL_NS)}")
        end_ns = _int(req, "end_ns", now_ns())
        last_open = (end_ns - 1) - (end_ns - 1) % step  # the interval holding end_ns - 1
        start_ns = _int(req, "start_ns", last_open - (DEFAULT_CANDLES - 1) * step)
        if start_ns >= end_ns:
            raise BadRequest("start_ns must be before end_ns")
        return {"venue": venue, "market": market, "pair": pair, "interval": interval,
                "candles": h.candles(venue, market, pair, interval, start_ns, end_ns)}

    def trades(h: MarketHistory, req: Request) -> Any:
        venue, market, pair = _book_key(req)
        end_ns = _int(req, "end_ns", now_ns())
        start_ns = _int(req, "start_ns", end_ns - DEFAULT_TRADES_SPAN_NS)
        limit = _int(req, "limit", 500)
        page = h.trades(venue, market, pair, start_ns, end_ns, limit, req.query.get("cursor", ""))
        return {"venue": venue, "market": market, "pair": pair, "start_ns": start_ns,
                "end_ns": end_ns} | page

    def stats(h: MarketHistory, req: Request) -> Any:
        venue, market, pair = _book_key(req)
        return h.stats_24h(venue, market, pair, _int(req, "at_ns", now_ns()))

    def book(h: MarketHistory, req: Request) -> Any:
        venue, market, pair = _book_key(req)
        at_ns = _int(req, "at_ns", now_ns())
        found = h.book_at(venue, market, pair, at_ns, _int(req, "depth", 20))
        if found is None:
            return Response.error(404, f"no book snapshot of {venue}:{market}:{pair} recorded "
                                       f"at or before {at_ns}")
        return found

    router.add("GET", "/market/pairs", guarded(pairs), summary="Recorded venues, markets and pairs")
    router.add("GET", "/market/candles/{key}", guarded(candles),
               summary="OHLCV candles of a recorded pair",
               query=("interval: 1m 5m 15m 1h 4h 1d", "start_ns: int64", "end_ns: int64"))
    router.add("GET", "/market/trades/{key}", guarded(trades),
               summary="A page of recorded trades, oldest first",
               query=("start_ns: int64", "end_ns: int64", "limit: int", "cursor: from a page"))
    router.add("GET", "/market/stats/{key}", guarded(stats), summary="24-hour statistics",
               query=("at_ns: int64",))
    router.add("GET", "/market/book/{key}", guarded(book),
               summary="The recorded book at a time", query=("at_ns: int64", "depth: int"))

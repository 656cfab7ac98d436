"""Market-data queries over the recorded history, in the ClickHouse SQL that
both 18.16 and chdb run (tests/support/servers.py): candles, trade pages,
24-hour statistics and the book at a given time. The aggregation happens in
ClickHouse; Python only fills empty candle intervals and shapes JSON.

Each function takes ``query(sql) -> rows`` (HistoryStore.query, which puts
the database where the SQL says ``{db}``). Identifiers from users are checked
against NAME and quoted; numbers are formatted as integers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Query = Callable[[str], list[tuple[Any, ...]]]

NS = 1_000_000_000
INTERVALS_NS = {"1m": 60 * NS, "5m": 300 * NS, "15m": 900 * NS, "1h": 3600 * NS,
                "4h": 4 * 3600 * NS, "1d": 86400 * NS}
MAX_CANDLES = 5000  # per request: bounds the response and the gap filling
MAX_TRADES = 5000  # per page
MAX_DEPTH = 5000  # levels per side of a rebuilt book
DAY_NS = 86400 * NS
# How far back the last price before a candle range is looked for (fills the
# leading empty intervals). Longer finds a price for pairs that trade rarely;
# each extra day is one more partition scanned.
PRICE_LOOKBACK_NS = 7 * DAY_NS
# Deltas recorded after a snapshot may have been received a little before it
# (a REST snapshot overtakes a busy socket thread); this bounds the scan below
# the snapshot's recv_ns. Far above any thread delay; costs little to scan.
LATE_DELTA_NS = 60 * NS

NAME = re.compile(r"^[A-Za-z0-9_.:/\-]{1,64}$")
# Rows of one trade in record order: the venue's time, then the recorder's order.
ORDER_KEY = "(ts_ns, batch_id, ord)"


class QueryError(ValueError):
    """A request the queries cannot answer as asked (bad interval, range too long)."""


def quote(value: str) -> str:
    if not NAME.match(value):
        raise QueryError(f"{value!r} is not a venue, market or pair name")
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _book(venue: str, market: str, pair: str) -> str:
    return f"venue = {quote(venue)} AND market = {quote(market)} AND pair = {quote(pair)}"


def pairs(query: Query) -> list[dict[str, Any]]:
    """Every (venue, market, pair) with recorded trades or book snapshots."""
    rows = query(
        "SELECT venue, market, pair, sum(trades) AS trades, sum(snapshots) AS snapshots FROM ("
        " SELECT venue, market, pair, count() AS trades, 0 AS snapshots FROM {db}.trades"
        " GROUP BY venue, market, pair"
        " UNION ALL"
        " SELECT venue, market, pair, 0 AS trades, count() AS snapshots FROM {db}.book_snapshots"
        " GROUP BY venue, market, pair"
        ") GROUP BY venue, market, pair ORDER BY venue, market, pair")
    return [{"venue": v, "market": m, "pair": p, "trades": int(t), "snapshots": int(s)}
            for v, m, p, t, s in rows]


def candles(query: Query, venue: str, market: str, pair: str, interval: str,
            start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    """OHLCV per interval in [start_ns, end_ns), aligned to the epoch (UTC).

    Every interval in the range appears once, in order. One without trades
    has volume 0, trades 0 and open = high = low = close = the last price
    before it (None when none is known within PRICE_LOOKBACK_NS)."""
    step = INTERVALS_NS.get(interval)
    if step is None:
        raise QueryError(f"interval {interval!r} is not one of {', '.join(INTERVALS_NS)}")
    first = start_ns - start_ns % step
    if end_ns <= first:
        return []
    count = -(-(end_ns - first) // step)
    if count > MAX_CANDLES:
        raise QueryError(f"{count} intervals of {interval}: at most {MAX_CANDLES} per request")
    where = f"{_book(venue, market, pair)} AND ts_ns >= {int(first)} AND ts_ns < {int(end_ns)}"
    rows = query(
        f"SELECT intDiv(ts_ns, {step}) * {step} AS bucket_ns,"
        f" argMin(price, {ORDER_KEY}) AS open, max(price) AS high, min(price) AS low,"
        f" argMax(price, {ORDER_KEY}) AS close, sum(size) AS volume,"
        f" sum(price * size) AS quote_volume, count() AS trades"
        f" FROM {{db}}.trades WHERE {where} GROUP BY bucket_ns ORDER BY bucket_ns")
    found = {int(r[0]): r for r in rows}
    previous = None
    if int(first) not in found:
        (previous, before), = query(
            f"SELECT argMax(price, {ORDER_KEY}), count() FROM {{db}}.trades"
            f" WHERE {_book(venue, market, pair)} AND ts_ns < {int(first)}"
            f" AND ts_ns >= {int(first - PRICE_LOOKBACK_NS)}")
        previous = float(previous) if before else None
    out = []
    for i in range(count):
        bucket = first + i * step
        row = found.get(bucket)
        if row is None:
            out.append({"open_ns": bucket, "open": previous, "high": previous, "low": previous,
                        "close": previous, "volume": 0.0, "quote_volume": 0.0, "trades": 0})
            continue
        _, o, h, low, c, volume, quote_volume, n = row
        out.append({"open_ns": bucket, "open": float(o), "high": float(h), "low": float(low),
                    "close": float(c), "volume": float(volume), "quote_volume": float(quote_volume),
                    "trades": int(n)})
        previous = float(c)
    return out


def _cursor(text: str) -> tuple[int, int, int]:
    try:
        ts_ns, batch_id, ord_ = (int(part) for part in text.split("-"))
    except ValueError:
        raise QueryError(f"cursor {text!r} is not one this API returned") from None
    return ts_ns, batch_id, ord_


def trades(query: Query, venue: str, market: str, pair: str, start_ns: int, end_ns: int,
           limit: int, cursor: str = "") -> dict[str, Any]:
    """Trades with start_ns <= ts_ns < end_ns, oldest first, ``limit`` per page.
    ``next_cursor`` (None on the last page) continues after the page's last
    trade, stable while more trades are recorded."""
    if not 1 <= limit <= MAX_TRADES:
        raise QueryError(f"limit {limit} is not in 1..{MAX_TRADES}")
    where = f"{_book(venue, market, pair)} AND ts_ns >= {int(start_ns)} AND ts_ns < {int(end_ns)}"
    if cursor:
        ts_ns, batch_id, ord_ = _cursor(cursor)
        where += f" AND {ORDER_KEY} > ({ts_ns}, {batch_id}, {ord_})"
    rows = query(
        f"SELECT ts_ns, exch_ns, recv_ns, trade_id, price, size, taker_side, batch_id, ord"
        f" FROM {{db}}.trades WHERE {where} ORDER BY ts_ns, batch_id, ord LIMIT {int(limit) + 1}")
    page = rows[:limit]
    out = [{"ts_ns": int(r[0]), "exch_ns": int(r[1]), "recv_ns": int(r[2]), "trade_id": r[3],
            "price": float(r[4]), "size": float(r[5]), "taker_side": "buy" if r[6] == 1 else "sell"}
           for r in page]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        next_cursor = f"{int(last[0])}-{int(last[7])}-{int(last[8])}"
    return {"trades": out, "next_cursor": next_cursor}


def stats_24h(query: Query, venue: str, market: str, pair: str, at_ns: int) -> dict[str, Any]:
    """Statistics of the trades in (at_ns - 24 h, at_ns]. ``open`` is the
    window's first trade, ``last`` its last; change = last - open."""
    start_ns = at_ns - DAY_NS
    (n, high, low, volume, quote_volume, open_, last, last_ns), = query(
        f"SELECT count(), max(price), min(price), sum(size), sum(price * size),"
        f" argMin(price, {ORDER_KEY}), argMax(price, {ORDER_KEY}), max(ts_ns)"
        f" FROM {{db}}.trades WHERE {_book(venue, market, pair)}"
        f" AND ts_ns > {int(start_ns)} AND ts_ns <= {int(at_ns)}")
    out: dict[str, Any] = {"venue": venue, "market": market, "pair": pair, "start_ns": start_ns,
                           "end_ns": at_ns, "trades": int(n), "volume": float(volume or 0),
                           "quote_volume": float(quote_volume or 0)}
    if not n:
        return out | {"high": None, "low": None, "open": None, "last": None, "last_ns": None,
                      "change": None, "change_pct": None}
    open_, last = float(open_), float(last)
    return out | {"high": float(high), "low": float(low), "open": open_, "last": last,
                  "last_ns": int(last_ns), "change": last - open_,
                  "change_pct": (last - open_) / open_ * 100 if open_ else None}


def book_at(query: Query, venue: str, market: str, pair: str, at_ns: int,
            depth: int) -> dict[str, Any] | None:
    """The book at ``at_ns`` (receive clock): the last snapshot with
    recv_ns <= at_ns, then every delta recorded after it (batch_id, ord) with
    recv_ns <= at_ns and last_seq > the snapshot's seq, latest size per level.
    None when no snapshot precedes ``at_ns``."""
    if not 1 <= depth <= MAX_DEPTH:
        raise QueryError(f"depth {depth} is not in 1..{MAX_DEPTH}")
    book = _book(venue, market, pair)
    found = query(
        f"SELECT batch_id, ord, seq, recv_ns, toString(reason) FROM {{db}}.book_snapshots"
        f" WHERE {book} AND recv_ns <= {int(at_ns)}"
        f" ORDER BY recv_ns DESC, batch_id DESC, ord DESC LIMIT 1")
    if not found:
        return None
    batch_id, ord_, seq, snap_ns, reason = (int(found[0][0]), int(found[0][1]), int(found[0][2]),
                                            int(found[0][3]), found[0][4])
    snapshot = f"{book} AND recv_ns = {snap_ns} AND batch_id = {batch_id} AND ord = {ord_}"
    after = (f"{book} AND recv_ns <= {int(at_ns)} AND recv_ns >= {snap_ns - LATE_DELTA_NS}"
             f" AND (batch_id, ord) > ({batch_id}, {ord_})"
             + (f" AND last_seq > {seq}" if seq else ""))
    levels = query(
        "SELECT side, price, size FROM ("
        " SELECT side, price, argMax(size, (b, o)) AS size FROM ("
        "  SELECT toInt8(1) AS side, p AS price, s AS size, batch_id AS b, ord AS o"
        f"  FROM {{db}}.book_snapshots ARRAY JOIN bid_prices AS p, bid_sizes AS s WHERE {snapshot}"
        "  UNION ALL"
        "  SELECT toInt8(-1) AS side, p AS price, s AS size, batch_id AS b, ord AS o"
        f"  FROM {{db}}.book_snapshots ARRAY JOIN ask_prices AS p, ask_sizes AS s WHERE {snapshot}"
        "  UNION ALL"
        "  SELECT side, price, size, batch_id AS b, ord AS o"
        f"  FROM {{db}}.book_deltas WHERE {after}"
        " ) GROUP BY side, price"
        ") WHERE size > 0"
        f" ORDER BY side DESC, if(side = 1, -price, price) LIMIT {int(depth)} BY side")
    (delta_rows, ), = query(f"SELECT count() FROM {{db}}.book_deltas WHERE {after}")
    losses = query(
        f"SELECT kind, reason, events, first_recv_ns, last_recv_ns FROM {{db}}.history_losses"
        f" WHERE {book} AND last_recv_ns >= {snap_ns} AND first_recv_ns <= {int(at_ns)}"
        f" ORDER BY first_recv_ns")
    return {
        "venue": venue, "market": market, "pair": pair, "at_ns": at_ns,
        "snapshot": {"recv_ns": snap_ns, "seq": seq, "reason": reason},
        "delta_rows": int(delta_rows),
        "bids": [[float(p), float(s)] for side, p, s in levels if side == 1],
        "asks": [[float(p), float(s)] for side, p, s in levels if side == -1],
        "complete": not losses,
        "losses": [{"kind": k, "reason": r, "events": int(n), "first_recv_ns": int(a),
                    "last_recv_ns": int(b)} for k, r, n, a, b in losses],
    }

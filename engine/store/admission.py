"""Admission to the history store: decides whether a normalized event fits
what the tables can hold (sql/clickhouse/history.sql) before it enters the
recorder. Pure and cheap; owns the limits, never the counting or the I/O
(engine/store/deadletter.py keeps what is refused).

An event that passed here always encodes (orjson, spill, journal) and always
inserts: Int64 columns get integers in [0, 2^63), Float64 columns finite
numbers, String columns valid UTF-8 of bounded length. So one venue frame
can never poison a batch, the spill or the delivery thread.
"""

from __future__ import annotations

from typing import Any

from engine.model import BookDelta, BookSnapshot, Market, Side, Trade

INT64_MAX = (1 << 63) - 1
# String limits. Venue and market names are ours; a pair is BASE/QUOTE; trade
# ids are decimal integers or UUIDs at every venue we know. Longer is garbage,
# and a 1 MB id would weigh on every batch that carries it.
MAX_NAME_CHARS = 32
MAX_PAIR_CHARS = 64
MAX_TRADE_ID_CHARS = 128
# Levels in one delta or snapshot. Deep books send ~5,000 per side; far more
# is a broken frame, and one event must fit one batch (batch_rows ≤ 1M).
MAX_LEVELS = 100_000


class Unfit(ValueError):
    """Why an event does not fit: the field and a short reason."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _text(value: Any, field: str, limit: int) -> None:
    if type(value) is not str:
        raise Unfit(field, f"not a string ({type(value).__name__})")
    if not value or len(value) > limit:
        raise Unfit(field, f"length {len(value)} outside 1..{limit}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Unfit(field, "not valid UTF-8 (lone surrogate)") from None


def _count(value: Any, field: str) -> None:
    """An Int64 column holding a sequence id or a timestamp in ns: [0, 2^63)."""
    if type(value) is not int:  # bool, float, numpy ints: refuse, the columns are exact
        raise Unfit(field, f"not an integer ({type(value).__name__})")
    if not 0 <= value <= INT64_MAX:
        raise Unfit(field, "outside 0..2^63-1" if value > 0 else "negative")


def _number(value: Any, field: str) -> None:
    """A Float64 column: finite, not negative (prices and sizes)."""
    if value.__class__ is not float and (not isinstance(value, (int, float)) or isinstance(value, bool)):
        raise Unfit(field, f"not a number ({type(value).__name__})")
    if isinstance(value, int) and value > INT64_MAX:
        raise Unfit(field, "integer beyond 2^63")
    if not value - value == 0:  # NaN and ±inf: inf - inf is NaN, and NaN != 0
        raise Unfit(field, f"not finite ({value!r})")
    if value < 0:
        raise Unfit(field, "negative")


def _levels(levels: Any, field: str) -> None:
    # A list of (price, size), or the C decoder's immutable ``Levels`` sequence
    # (engine/venues/wire.fast_levels); its values are checked like any other.
    if isinstance(levels, (str, bytes, dict)) or not hasattr(levels, "__len__") \
            or not hasattr(levels, "__getitem__"):
        raise Unfit(field, f"not a sequence of levels ({type(levels).__name__})")
    if len(levels) > MAX_LEVELS:
        raise Unfit(field, f"{len(levels)} levels, more than {MAX_LEVELS}")
    for level in levels:
        try:
            price, size = level
        except (TypeError, ValueError):
            raise Unfit(field, "a level is not (price, size)") from None
        # Fast path (nearly every level): two finite, non-negative floats.
        if (price.__class__ is float and size.__class__ is float and price - price == 0
                and size - size == 0 and price >= 0 and size >= 0):
            continue
        _number(price, f"{field}.price")
        _number(size, f"{field}.size")


def _book(event: Any) -> None:
    _text(event.venue, "venue", MAX_NAME_CHARS)
    if event.market.__class__ is not Market:
        raise Unfit("market", f"not a Market ({event.market!r})")
    _text(event.pair, "pair", MAX_PAIR_CHARS)
    _count(event.exch_ns, "exch_ns")
    _count(event.recv_ns, "recv_ns")


def check(event: Any) -> None:
    """Raises Unfit when ``event`` (a Trade, BookDelta or BookSnapshot) does
    not fit the history tables."""
    kind = event.__class__
    _book(event)
    if kind is Trade:
        _text(event.trade_id, "trade_id", MAX_TRADE_ID_CHARS)
        _number(event.price, "price")
        _number(event.size, "size")
        if event.taker_side.__class__ is not Side:
            raise Unfit("taker_side", f"not a Side ({event.taker_side!r})")
    elif kind is BookDelta:
        _count(event.first_seq, "first_seq")
        _count(event.last_seq, "last_seq")
        if type(event.prev_seq) is not int or not -1 <= event.prev_seq <= INT64_MAX:
            raise Unfit("prev_seq", "not an integer in -1..2^63-1")
        _levels(event.bids, "bids")
        _levels(event.asks, "asks")
    elif kind is BookSnapshot:
        _count(event.seq, "seq")
        _levels(event.bids, "bids")
        _levels(event.asks, "asks")

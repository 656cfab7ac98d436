"""Value types that cross package boundaries: the normalized events every venue
driver produces and every consumer (books, recorder, trader) reads.

Owns only plain data; no I/O, no venue knowledge. Timestamps are integer
nanoseconds: ``exch_ns`` is the venue's clock, ``recv_ns`` ours (clocks differ,
keep both). Market data prices and sizes are float64 (docs/architecture.md, Money).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

# A level change or snapshot level: (price, size). Size 0.0 in a delta deletes.
Level = tuple[float, float]


# Every exchange id the system knows: the one list. engine.venues checks at
# import that it is exactly the ids its registries (DRIVERS, TRADING_DRIVERS)
# hold, so it cannot drift; the task DB (store/, which may not import venues/)
# validates rows against it.
EXCHANGE_IDS = frozenset({
    "binance", "bitget", "bybit", "coinbase", "coinex", "gate", "htx", "hyperliquid", "kucoin",
    "mexc", "okx",
})


class Market(str, enum.Enum):
    SPOT = "spot"
    FUTURES = "futures"


class Side(str, enum.Enum):
    BUY = "buy"
    SELL = "sell"


class SyncState(enum.IntEnum):
    """Published per book in shared memory; readers must treat anything but
    SYNCED as "do not trade on this"."""

    EMPTY = 0  # never had a snapshot
    SYNCED = 1
    RESYNCING = 2


@dataclass(slots=True)
class BookSnapshot:
    """A whole book (or the venue's top-N of it) replacing what we hold.

    ``seq`` is the venue's id of the state the snapshot represents
    (Binance ``lastUpdateId``, OKX ``seqId``, Bybit ``u``); 0 if none.
    """

    venue: str
    market: Market
    pair: str  # BASE/QUOTE, e.g. "BTC/USDT"
    bids: list[Level]
    asks: list[Level]
    seq: int = 0
    exch_ns: int = 0
    recv_ns: int = 0
    # Venue-specific sync fields (checksum, cross sequence, ...) kept raw.
    extra: dict = field(default_factory=dict)


@dataclass(slots=True)
class BookDelta:
    """One venue message's worth of level changes (absolute sizes; 0 deletes).

    ``first_seq``/``last_seq`` bound the update ids the message covers
    (Binance ``U``/``u``); ``prev_seq`` is the venue's pointer to the previous
    message where it sends one (Binance futures ``pu``, OKX ``prevSeqId``),
    else -1.
    """

    venue: str
    market: Market
    pair: str
    bids: list[Level]
    asks: list[Level]
    first_seq: int = 0
    last_seq: int = 0
    prev_seq: int = -1
    exch_ns: int = 0
    recv_ns: int = 0
    extra: dict = field(default_factory=dict)


@dataclass(slots=True)
class Trade:
    venue: str
    market: Market
    pair: str
    price: float
    size: float
    taker_side: Side
    trade_id: str
    exch_ns: int = 0
    recv_ns: int = 0


class OrderStatus(str, enum.Enum):
    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(slots=True)
class OrderUpdate:
    """An update of one of our orders from the venue (user-data stream or REST).

    ``update_id`` with ``client_order_id`` makes the update idempotent: the
    position manager ignores a pair it has already applied.
    Money fields are decimal strings exactly as the venue sent them.
    """

    venue: str
    market: Market
    pair: str
    client_order_id: str
    venue_order_id: str
    status: OrderStatus
    side: Side
    price: str
    quantity: str
    filled: str
    average_price: str
    fee: str = "0"
    fee_asset: str = ""
    update_id: int = 0
    exch_ns: int = 0
    recv_ns: int = 0


@dataclass(slots=True)
class FeedError:
    """A frame the driver could not understand, or an error the venue sent.

    Drivers return this instead of raising so a connection thread never dies
    on bad input; the connection counts it and logs ``reason``.
    """

    venue: str
    reason: str
    raw: str = ""


Event = BookSnapshot | BookDelta | Trade | OrderUpdate | FeedError


def book_key(venue: str, market: Market | str, pair: str) -> str:
    """The one name a book has everywhere (BookStore, metrics, API)."""
    market_value = market.value if isinstance(market, Market) else market
    return f"{venue}:{market_value}:{pair}"

"""The driver interface every venue module implements (Sans-I/O).

A driver builds the frames and requests a connection sends, parses what comes
back into normalized events (engine.model), and states the venue's book-sync
rule and limits. It never opens a socket, reads a clock or sleeps: the feed
(engine.feed) does all I/O and passes ``recv_ns`` in.
"""

from __future__ import annotations

import enum
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from engine.model import BookDelta, BookSnapshot, Event, FeedError, Market
from engine.venues.symbols import SymbolMap


@dataclass(frozen=True)
class Limits:
    """What the venue allows; the pool and limiter enforce these."""

    max_streams_per_connection: int = 50  # pairs (book + trades) per socket
    max_connects_per_window: int = 300  # new connections per window per IP
    connect_window_s: float = 300.0
    max_client_msgs_per_s: float = 5.0  # frames we may send per connection
    rest_weight_per_minute: int = 6000  # shared by every REST call of the venue
    snapshot_weight: int = 50  # weight of one REST book snapshot
    max_args_per_subscribe: int = 0  # topics in one subscribe frame; 0 = no venue limit
    max_connection_lifetime_s: float = 0.0  # venue closes sockets older than this; 0 = none


@dataclass(frozen=True)
class Heartbeat:
    """Keep-alive rule. Server WS-level pings are answered by the socket layer;
    application pings from the server are answered via ``Parsed.replies``."""

    client_ping_interval_s: float | None = None  # send ``client_ping`` this often
    client_ping: str | None = None  # text frame, e.g. '{"op":"ping"}' or 'ping'
    ws_ping_interval_s: float | None = None  # send WS ping frames this often
    client_pong: str | None = None  # what the venue answers to ``client_ping`` (doc shape)
    server_ping_interval_s: float | None = None  # venue sends WS ping frames this often
    # No frame (data, pong or ping) for this long: the socket is dead, reconnect.
    timeout_s: float = 60.0


@dataclass(frozen=True)
class RestRequest:
    url: str
    params: dict = field(default_factory=dict)
    method: str = "GET"
    weight: int = 1
    # JSON body of a POST (Hyperliquid's ``/info`` takes ``{"type": "meta"}``);
    # None: the request has no body and ``params`` go in the query.
    body: dict | None = None


@dataclass(frozen=True)
class ConnectGrant:
    """The socket to open, from the reply to ``Driver.connect_request`` (KuCoin
    hands out a token, a server URL and a ping interval per connection)."""

    url: str
    heartbeat: Heartbeat | None = None  # None: the driver's own ``heartbeat``


@dataclass(frozen=True)
class Subscription:
    pair: str  # BASE/QUOTE
    depth: int = 20
    trades: bool = True
    book: bool = True  # False: trades only (e.g. Binance USD-M trade socket)


@dataclass(slots=True)
class Parsed:
    """Result of one frame: events for the books/recorder, replies to send."""

    events: list[Event]
    replies: list[str] = field(default_factory=list)
    # The venue announced it will close this socket (Binance serverShutdown,
    # OKX notice 64008): reconnect now, before the books go stale.
    reconnect: bool = False
    # Pairs whose book stream the venue just confirmed (a subscribe ack that
    # names them, e.g. Binance {"result":null,"id":7}): a REST-snapshot book
    # can be seeded now instead of at its first delta, which a quiet market
    # may never send. A tuple: no allocation on the per-frame path.
    subscribed: tuple[str, ...] = ()
    # The venue's number of this message on its connection, where it numbers a
    # socket's messages rather than a book's (Coinbase ``sequence_num``): the
    # router hands it to ``Driver.connection_rule()``. -1: not numbered.
    conn_seq: int = -1


class Verdict(enum.Enum):
    APPLY = "apply"  # in sequence: apply to the book
    DROP = "drop"  # older than the book state: ignore (not an error)
    GAP = "gap"  # continuity broken: resync this book


# The verdicts as plain names for the per-delta code (rules, BookSync): looking
# an Enum member up on its class costs ~70 ns in CPython 3.11, a global ~8 ns.
APPLY, DROP, GAP = Verdict.APPLY, Verdict.DROP, Verdict.GAP


class SyncRule(ABC):
    """A venue's continuity rule for one book; holds that book's last id."""

    @abstractmethod
    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        """The book was (re)seeded from ``snapshot``."""

    @abstractmethod
    def check(self, delta: BookDelta) -> Verdict:
        """Whether ``delta`` follows the book's state; advances on APPLY."""

    def verify_snapshot(self, snapshot: BookSnapshot) -> bool:
        """A venue check on the snapshot itself (OKX checksum); True if none."""
        return True


class ConnectionRule(ABC):
    """A venue's continuity rule for one connection, where the venue numbers the
    messages of a socket, not of a book (Coinbase ``sequence_num``): one lost
    message may have belonged to any book on the socket. The router keeps one
    per connection and passes every numbered frame through ``admit``."""

    @abstractmethod
    def admit(self, parsed: Parsed) -> Parsed:
        """``parsed`` (``conn_seq`` >= 0) as the books should see it: a stale or
        repeated message loses its events; after a lost one, the events make
        every book seen on this socket fail its own ``SyncRule`` (and resync)."""

    def reset(self) -> None:  # noqa: B027 - optional: a rule may spot a new socket itself
        """The socket was replaced: numbering starts afresh."""


class ResyncMethod(enum.Enum):
    REST = "rest"  # buffer deltas, fetch a REST snapshot, replay the buffer
    RESUBSCRIBE = "resubscribe"  # unsubscribe + subscribe: the venue sends a snapshot


class Driver(ABC):
    """One venue and market. Stateless apart from configuration and thread-safe
    caches (Binance remembers which pairs its unanswered subscribe requests
    carry), so one instance serves every connection of that market."""

    venue: str = ""
    market: Market = Market.SPOT
    # Markets this venue has; make_driver refuses the others with ValueError.
    markets: tuple[Market, ...] = (Market.SPOT, Market.FUTURES)
    limits: Limits = Limits()
    heartbeat: Heartbeat = Heartbeat()
    resync: ResyncMethod = ResyncMethod.REST
    # True: a BookSnapshot from the stream answers a request (HTX spot ``req``)
    # instead of starting the stream, so deltas buffered before it may be newer
    # than it. The router must then bridge it like a REST snapshot (replay the
    # buffer through the rule) rather than drop the buffer as it does for a
    # snapshot that heads its stream (Bybit, OKX, HTX swaps).
    stream_snapshot_bridges: bool = False

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        """``symbols``: explicit BASE/QUOTE -> venue symbol entries for symbols
        the venue's naming rule cannot split (e.g. {"BTC/USD": "BTCUSD_PERP"})."""
        self.market = market
        self.rest_base = (rest_url or self.default_rest_url(market)).rstrip("/")
        self.ws_base = ws_url or self.default_ws_url(market)
        self.explicit_symbols = dict(symbols or {})
        # Parsers' caches, filled by set_naming: wire symbol -> pair, and (for
        # venues whose sockets mix markets) -> pair or None for another market's.
        self._pair_of: dict[str, str] = {}
        self._own_pair_of: dict[Hashable, str | None] = {}

    def set_naming(self, to_pair: Callable[[str], str], to_symbol: Callable[[str], str]) -> None:
        """The venue's naming rule (symbol -> BASE/QUOTE and back), cached both
        ways with the explicit ``symbols`` entries winning; every driver calls it
        in ``__init__`` (again when its instrument list changes). Empties the
        parsers' caches, which were filled by the previous rule."""
        self.names = SymbolMap(to_pair, to_symbol, self.explicit_symbols)
        self._pair_of = {}
        self._own_pair_of = {}

    @classmethod
    @abstractmethod
    def default_rest_url(cls, market: Market) -> str: ...

    @classmethod
    @abstractmethod
    def default_ws_url(cls, market: Market) -> str: ...

    def connect_url(self, subscriptions: list[Subscription]) -> str:
        """URL to open for a connection that will carry ``subscriptions``."""
        return self.ws_base

    def endpoints(self, subscriptions: list[Subscription]) -> dict[str, list[Subscription]]:
        """Sockets these subscriptions need: URL -> what to ``subscribe`` on it.
        One socket for most venues; Binance USD-M serves depth on ``/public``
        and trades on ``/market`` since 2026-04-23, so it returns two."""
        return {self.connect_url(subscriptions): list(subscriptions)}

    def connect_request(self, url: str) -> RestRequest | None:
        """A REST call to make before every connect to ``url`` (one of ``endpoints``,
        planned rotations included), whose reply ``connect_grant`` turns into the
        socket to open. None (most venues): open ``url`` as it is."""
        return None

    def connect_grant(self, url: str, body: str | bytes) -> ConnectGrant:
        """The socket to open for ``url`` from ``connect_request``'s reply body;
        raises ValueError on an error reply (the connect attempt failed: back off)."""
        raise NotImplementedError(f"{self.venue} connects without a REST call")

    def resubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """Frames that make the venue send a fresh book snapshot (WS-snapshot venues)."""
        return self.unsubscribe(subscriptions) + self.subscribe(subscriptions)

    def pair(self, symbol: str) -> str:
        """BASE/QUOTE for a venue symbol (inverse of ``symbol``); raises UnknownSymbol."""
        return self.names.pair(symbol)

    def symbol(self, pair: str) -> str:
        """Venue symbol for BASE/QUOTE; raises UnknownSymbol."""
        return self.names.symbol(pair)

    def _wire_pair(self, symbol: str) -> str:
        """``pair`` for a symbol read from a frame (parsers): one dict lookup once seen."""
        pair = self._pair_of.get(symbol)
        if pair is None:
            pair = self._pair_of[symbol] = self.names.pair(symbol)
        return pair

    def _own_pair(self, symbol: str) -> str | None:
        """``pair`` for a symbol of this driver's market, None for another
        market's (venues whose sockets or names mix markets); cached."""
        pair = self._own_pair_of.get(symbol, "")
        if pair == "":
            pair = self.names.pair(symbol) if self.is_own(symbol) else None
            self._own_pair_of[symbol] = pair
        return pair

    def is_own(self, symbol: str) -> bool:
        """Whether a wire symbol names an instrument of this driver's market."""
        return True

    def snapshot_pair(self, url: str) -> str | None:
        """The pair a REST snapshot URL asks for (replay of recorded snapshots)."""
        return None

    @abstractmethod
    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """Frames to send to start these subscriptions."""

    @abstractmethod
    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        ...

    @abstractmethod
    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Decode one frame. Never raises: bad input yields a FeedError event."""

    def snapshot_request(self, pair: str, depth: int) -> RestRequest | None:
        """REST snapshot for a resync, or None where snapshots come over WS."""
        return None

    def parse_snapshot(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        raise NotImplementedError(f"{self.venue} takes snapshots over WebSocket")

    @abstractmethod
    def sync_rule(self) -> SyncRule:
        """A fresh continuity rule for one book."""

    def connection_rule(self) -> ConnectionRule | None:
        """A fresh continuity rule for one connection, for venues that number a
        socket's messages (``Parsed.conn_seq``); None for the others."""
        return None

    # Venues that close the whole socket on a subscription they do not know
    # (Hyperliquid) need their instrument list before anything is subscribed.

    def instruments_request(self) -> RestRequest | None:
        """The REST call listing the venue's instruments, to make (and hand to
        ``load_instruments``) before the first subscribe and now and then after;
        None: the venue refuses an unknown symbol harmlessly, nothing to load."""
        return None

    def load_instruments(self, body: str | bytes) -> None:
        """Learn the instruments from ``instruments_request``'s reply; raises
        ValueError on an error or unreadable body (the old list stays)."""
        raise NotImplementedError(f"{self.venue} needs no instrument list")

    def refused(self, subscriptions: list[Subscription]) -> dict[str, str]:
        """Pairs among ``subscriptions`` that must not be subscribed -> why
        (unknown to the loaded instrument list); {} when all may be."""
        return {}


# A FeedError keeps this much of the offending frame: enough to recognise it
# in a log, small enough that a flood of garbage does not balloon memory.
ERROR_SAMPLE_CHARS = 200


def error_parsed(venue: str, reason: str, frame: str | bytes = "") -> Parsed:
    """The Parsed a driver returns for a frame it cannot use (it never raises)."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        sample = bytes(frame[:ERROR_SAMPLE_CHARS]).decode("utf-8", "replace")
    else:
        sample = str(frame)[:ERROR_SAMPLE_CHARS]
    return Parsed([FeedError(venue, reason, sample)])


# Largest payload an inflated frame may have (HTX and CoinEx send every frame as
# a gzip member). Real frames inflate 2-10x and stay far below 1 MB; 8x the
# connection's 8 MB wire limit still passes any honest frame, while a
# decompression bomb (deflate reaches ~1000:1) is refused before it eats memory.
MAX_INFLATED_BYTES = 64 * 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


def inflate_gzip(frame: str | bytes, limit: int = MAX_INFLATED_BYTES) -> str | bytes:
    """The JSON inside a gzip-member frame; text and non-gzip bytes pass through
    (imported captures hold decoded text). Raises ValueError (or zlib.error) on
    a truncated, corrupt (CRC or deflate error), trailing-garbage or over-limit
    member, so the driver can turn it into a FeedError."""
    if isinstance(frame, str) or frame[:2] != GZIP_MAGIC:
        return frame
    member = zlib.decompressobj(31)  # 16 + 15: gzip wrapper, header and CRC checked
    out = member.decompress(frame, limit)
    if not member.eof:
        raise ValueError("truncated gzip member" if not member.unconsumed_tail
                         else f"gzip member inflates beyond {limit} bytes")
    if member.unused_data:
        raise ValueError("bytes after the gzip member")
    return out

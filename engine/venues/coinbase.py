"""Coinbase Advanced Trade market data (``level2`` books, ``market_trades``) for
spot and US futures (``*-CDE`` products). Sans-I/O: builds frames, parses
frames, states the sync rules; never opens a socket. Facts and sources:
docs/venues/coinbase.md.

API docs: https://docs.cdp.coinbase.com/coinbase-app/advanced-trade-apis/websocket/websocket-channels
(channels), .../websocket/websocket-overview (sequence numbers), .../websocket/websocket-rate-limits,
https://docs.cdp.coinbase.com/api-reference/advanced-trade-api/advanced-trade-asyncapi.json
(field shapes "verified against the production feed").

``sequence_num`` numbers every message of a *connection*, whatever its channel,
so a lost message may have belonged to any book on the socket. The per-socket
check is CoinbaseConnectionRule (the router runs it, Driver.connection_rule):
it gives each unbroken run of a socket's messages an epoch, and a book applies
only deltas of the epoch its snapshot came in (CoinbaseRule). After a gap every
book the socket carries fails that check and is resubscribed for a snapshot.
"""

from __future__ import annotations

import calendar
import itertools
from datetime import datetime

import msgspec
import orjson

from engine.clock import NS_PER_S
from engine.model import BookDelta, BookSnapshot, Event, Market, Side, Trade
from engine.venues.base import (
    APPLY,
    DROP,
    GAP,
    ConnectionRule,
    Driver,
    Heartbeat,
    Limits,
    Parsed,
    ResyncMethod,
    Subscription,
    SyncRule,
    Verdict,
    error_parsed,
)
from engine.venues.symbols import UnknownSymbol, split_pair
from engine.venues.wire import WireInt

VENUE = "coinbase"
EPOCH = "epoch"  # BookDelta/BookSnapshot.extra key set by CoinbaseConnectionRule
INT64_MAX = 2**63 - 1
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

LIMITS = Limits(
    # A lost message resyncs every book on its socket, and Coinbase advises
    # spreading busy products over sockets; fewer pairs per socket shrink that
    # blast radius but cost threads and subscribe frames (see the next line).
    max_streams_per_connection=20,
    # 8 new sockets/s per IP, but also 8 unauthenticated frames/s per IP, and a
    # new socket sends 3 (level2, market_trades, heartbeats): 2 sockets/s and
    # 4 frames/s per socket stay inside the frame limit.
    max_connects_per_window=2, connect_window_s=1.0, max_client_msgs_per_s=4.0,
    rest_weight_per_minute=600, snapshot_weight=1)  # public REST 10 req/s; books come over WS
# No client ping exists; the ``heartbeats`` channel sends one message a second
# and keeps quiet subscriptions from being closed (60-90 s). Silence of 15 s
# means the socket is dead; less would reconnect on a brief venue pause.
HEARTBEAT = Heartbeat(timeout_s=15.0)

_EPOCHS = itertools.count(1)  # process-wide: epochs of different sockets never collide


class CoinbaseRule(SyncRule):
    """A WS snapshot seeds the book with its socket's current epoch; a delta of
    the same epoch applies (Coinbase sends absolute sizes, no per-book id), one
    of an older epoch predates the snapshot, any other means the socket lost a
    message since the snapshot: resync. Without a connection rule (no epochs)
    every delta applies: nothing here could detect a loss."""

    __slots__ = ("epoch",)

    def __init__(self) -> None:
        self.epoch: int | None = None

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.epoch = snapshot.extra.get(EPOCH)

    def check(self, delta: BookDelta) -> Verdict:
        epoch = delta.extra.get(EPOCH)
        if epoch == self.epoch:
            return APPLY
        if epoch is not None and self.epoch is not None and epoch < self.epoch:
            return DROP
        return GAP


class CoinbaseConnectionRule(ConnectionRule):
    """One socket's ``sequence_num`` chain: each message is the last + 1. A
    lower number is a repeat or arrived late (the docs: ignore it) unless it is
    0 after others, a new socket's first message; a higher one means messages
    were lost: a new epoch starts, and every book seen on the socket gets an
    empty delta of it, which its CoinbaseRule turns into a resync at once."""

    __slots__ = ("market", "last", "extra", "books")

    def __init__(self, market: Market) -> None:
        self.market = market
        self.books: dict[str, None] = {}  # ordered set of pairs seen on this socket
        self.reset()

    def reset(self) -> None:
        self.last = -1
        self.extra = {EPOCH: next(_EPOCHS)}  # shared by the epoch's events; never mutated
        self.books.clear()

    def admit(self, parsed: Parsed) -> Parsed:
        seq, last = parsed.conn_seq, self.last
        lost: list[Event] = []
        if seq != last + 1 and last >= 0:
            if seq <= last and (seq != 0 or last == 0):
                return Parsed([], parsed.replies, parsed.reconnect, parsed.subscribed, seq)
            self.extra = {EPOCH: next(_EPOCHS)}  # a gap, or a new socket's numbering
            recv_ns = parsed.events[0].recv_ns if parsed.events else 0  # type: ignore[union-attr]
            lost = [BookDelta(VENUE, self.market, pair, [], [], seq, seq, -1, 0, recv_ns, self.extra)
                    for pair in self.books]
            if seq <= last:
                self.books.clear()
        self.last = seq
        extra, books = self.extra, self.books
        for event in parsed.events:
            kind = event.__class__
            if kind is BookDelta or kind is BookSnapshot:
                event.extra = extra  # type: ignore[union-attr]
                books[event.pair] = None  # type: ignore[union-attr]
        if lost:
            return Parsed(lost + parsed.events, parsed.replies, parsed.reconnect, parsed.subscribed,
                          seq)
        return parsed


# ``timegm`` of a timestamp's seconds part: a second's many messages share it.
# Bounded: cleared when full (a few hundred KB at most).
_SECONDS: dict[str, int] = {}
SECONDS_CACHE = 4096
EPOCH_START, EPOCH_END = datetime(1970, 1, 1), datetime(2262, 1, 1)  # int64 ns holds these


def iso_ns(text: str) -> int:
    """ns since the epoch of ``2023-02-09T20:32:50.714964855Z`` (RFC 3339, UTC,
    0-9 fraction digits); raises ValueError on anything else."""
    head = text[:19]
    sec = _SECONDS.get(head)
    if sec is None:
        if len(head) != 19 or head[4] != "-" or head[7] != "-" or head[10] != "T" \
                or head[13] != ":" or head[16] != ":" or not head.isascii():
            raise ValueError(f"not an RFC 3339 time: {text!r}")
        fields = [head[:4], head[5:7], head[8:10], head[11:13], head[14:16], head[17:19]]
        if not all(f.isdigit() for f in fields):
            raise ValueError(f"not an RFC 3339 time: {text!r}")
        year, month, day, hour, minute, second = map(int, fields)
        stamp = datetime(year, month, day, hour, minute, second)  # raises on a 31st of February
        if not EPOCH_START <= stamp < EPOCH_END:
            raise ValueError(f"time out of the int64-ns range: {text!r}")
        sec = calendar.timegm(stamp.timetuple())
        if len(_SECONDS) >= SECONDS_CACHE:
            _SECONDS.clear()
        _SECONDS[head] = sec
    rest = text[19:]
    if rest == "Z":
        return sec * NS_PER_S
    digits = rest[1:-1]
    if rest[:1] != "." or rest[-1:] != "Z" or not 1 <= len(digits) <= 9 or not digits.isascii() \
            or not digits.isdigit():
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    return sec * NS_PER_S + int(digits.ljust(9, "0"))


# ------------------------------------------------- typed frames (engine.venues.wire)


class _Envelope(msgspec.Struct):
    channel: str
    sequence_num: WireInt
    timestamp: str
    events: msgspec.Raw
    type: msgspec.UnsetType | str = msgspec.UNSET  # present (``error``): the generic path's


class _L2Event(msgspec.Struct):
    type: str
    product_id: str
    updates: msgspec.Raw


class _Level(msgspec.Struct):
    side: str
    price_level: float  # lax: the quoted decimal, read as float() reads it (wire.py)
    new_quantity: float


class _Trade(msgspec.Struct):
    trade_id: str
    product_id: str
    price: str
    size: str
    side: str
    time: str


class _TradeEvent(msgspec.Struct):
    type: str
    trades: list[_Trade]


_decode_envelope = msgspec.json.Decoder(_Envelope).decode
_decode_l2_events = msgspec.json.Decoder(list[_L2Event]).decode
_decode_levels = msgspec.json.Decoder(list[_Level], strict=False).decode
_decode_trade_events = msgspec.json.Decoder(list[_TradeEvent]).decode


def _spot_pair(product: str) -> str:
    base, sep, quote = product.upper().partition("-")
    if not sep or not base or not quote or "-" in quote:
        raise UnknownSymbol(f"not a spot product id: {product!r}")
    return f"{base}/{quote}"


def _spot_symbol(pair: str) -> str:
    base, quote, expiry = split_pair(pair)
    if expiry:
        raise UnknownSymbol(f"{pair}: a dated pair is not a spot product")
    return f"{base}-{quote}"


def _future_pair(product: str) -> str:
    """``BIT-28JUN24-CDE`` -> ``BIT/USD-240628``: the contract code as base (the
    venue names no underlying in the id); US futures settle in USD."""
    code, expiry, venue = product.upper().split("-")
    if venue != "CDE" or len(expiry) != 7 or not code:
        raise UnknownSymbol(f"not a US futures product id: {product!r}")
    month = MONTHS.index(expiry[2:5]) + 1
    return f"{code}/USD-{int(expiry[5:]):02d}{month:02d}{int(expiry[:2]):02d}"


def _future_symbol(pair: str) -> str:
    code, quote, expiry = split_pair(pair)
    if quote != "USD" or len(expiry) != 6 or not expiry.isdigit():
        raise UnknownSymbol(f"{pair}: US futures are CODE/USD-YYMMDD")
    return f"{code}-{expiry[4:]}{MONTHS[int(expiry[2:4]) - 1]}{expiry[:2]}-CDE"


def _market_of(product: str) -> Market | None:
    parts = product.split("-")
    if len(parts) == 2:
        return Market.SPOT
    if len(parts) == 3 and parts[2] == "CDE":
        return Market.FUTURES
    return None  # INTX perpetuals (BTC-PERP-INTX) live on another feed


class CoinbaseDriver(Driver):
    venue = VENUE
    limits = LIMITS
    heartbeat = HEARTBEAT
    resync = ResyncMethod.RESUBSCRIBE

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        futures = market == Market.FUTURES
        self.set_naming(_future_pair if futures else _spot_pair,
                        _future_symbol if futures else _spot_symbol)

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api.coinbase.com"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        return "wss://advanced-trade-ws.coinbase.com"

    def is_own(self, symbol: str) -> bool:
        return _market_of(symbol) == self.market

    # ------------------------------------------------------------ frames

    def _frames(self, kind: str, channels: list[tuple[str, list[str]]]) -> list[str]:
        step = self.limits.max_args_per_subscribe or 1 << 30
        return [orjson.dumps({"type": kind, "product_ids": ids[i:i + step], "channel": channel}).decode()
                for channel, ids in channels for i in range(0, len(ids), step)]

    def _channels(self, subscriptions: list[Subscription]) -> list[tuple[str, list[str]]]:
        return [("level2", [self.symbol(s.pair) for s in subscriptions if s.book]),
                ("market_trades", [self.symbol(s.pair) for s in subscriptions if s.trades])]

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """One frame per channel (the venue takes one channel per message), then
        ``heartbeats``: ``{"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"}``"""
        frames = self._frames("subscribe", self._channels(subscriptions))
        return frames + ['{"type":"subscribe","channel":"heartbeats"}'] if frames else []

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("unsubscribe", self._channels(subscriptions))

    def resubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """Only ``level2`` is cycled: the new subscription starts with a snapshot."""
        ids = [("level2", [self.symbol(s.pair) for s in subscriptions if s.book])]
        return self._frames("unsubscribe", ids) + self._frames("subscribe", ids)

    def connection_rule(self) -> ConnectionRule:
        return CoinbaseConnectionRule(self.market)

    def sync_rule(self) -> SyncRule:
        return CoinbaseRule()

    # ----------------------------------------------------------- parsing

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Book snapshot or update (docs example, trimmed; ``side`` is ``bid`` or
        ``offer``, ``new_quantity`` absolute, "0" deletes)::

            {"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z",
             "sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[
             {"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"21921.73",
              "new_quantity":"0.06317902"}]}]}

        Book and trade frames take the typed path; everything else, and any
        frame it refuses, the generic one (which owns the error behaviour)."""
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but an ``l2_data`` or ``market_trades`` frame of the exact types."""
        msg = _decode_envelope(frame)
        if msg.type is not msgspec.UNSET or msg.sequence_num < 0:
            raise ValueError("not a typed data frame")
        seq = msg.sequence_num
        out: list[Event] = []
        if msg.channel == "l2_data":
            exch_ns = iso_ns(msg.timestamp)
            for ev in _decode_l2_events(msg.events):
                pair = self._own_pair(ev.product_id)
                if pair is None:
                    continue
                bids, asks = [], []
                for lv in _decode_levels(ev.updates):
                    if lv.side == "bid":
                        bids.append((lv.price_level, lv.new_quantity))
                    elif lv.side == "offer":
                        asks.append((lv.price_level, lv.new_quantity))
                    else:
                        raise ValueError("unknown book side")
                out.append(self._book(ev.type, pair, bids, asks, seq, exch_ns, recv_ns))
            return Parsed(out, conn_seq=seq)
        if msg.channel == "market_trades":
            for tev in _decode_trade_events(msg.events):
                if tev.type == "update":
                    for t in tev.trades:
                        self._add_trade(out, t.product_id, t.price, t.size, t.side, t.trade_id,
                                        t.time, recv_ns)
                elif tev.type != "snapshot":
                    raise ValueError("unknown market_trades event type")
            return Parsed(out, conn_seq=seq)
        raise ValueError("not a book or trade channel")

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, as dicts (orjson); never raises."""
        try:
            msg = orjson.loads(frame)
            if msg.get("type") == "error":
                return error_parsed(VENUE, f"venue error: {msg.get('message')} {msg.get('reason', '')}",
                                    frame)
            seq = msg.get("sequence_num", -1)
            if seq.__class__ is not int or not (0 <= seq <= INT64_MAX or seq == -1):
                raise ValueError(f"bad sequence_num {seq!r}")
            channel = msg.get("channel")
            if channel == "l2_data":
                return Parsed(self._books(msg, seq, recv_ns), conn_seq=seq)
            if channel == "market_trades":
                return Parsed(self._trades(msg, recv_ns), conn_seq=seq)
            return Parsed([], conn_seq=seq)  # heartbeats, subscriptions, ticker...: numbered, no data
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    def _books(self, msg: dict, seq: int, recv_ns: int) -> list[Event]:
        exch_ns = iso_ns(msg["timestamp"])
        out: list[Event] = []
        for ev in msg["events"]:
            kind = ev["type"]
            pair = self._own_pair(ev["product_id"])
            if pair is None:
                continue
            bids, asks = [], []
            for u in ev["updates"]:
                side = u["side"]
                level = (float(u["price_level"]), float(u["new_quantity"]))
                if side == "bid":
                    bids.append(level)
                elif side == "offer":
                    asks.append(level)
                else:
                    raise ValueError(f"unknown book side {side!r}")
            out.append(self._book(kind, pair, bids, asks, seq, exch_ns, recv_ns))
        return out

    def _book(self, kind: str, pair: str, bids: list, asks: list, seq: int, exch_ns: int,
              recv_ns: int) -> BookSnapshot | BookDelta:
        if kind == "update":
            return BookDelta(VENUE, self.market, pair, bids, asks, seq, seq, -1, exch_ns, recv_ns, {})
        if kind == "snapshot":
            return BookSnapshot(VENUE, self.market, pair, bids, asks, seq, exch_ns, recv_ns, {})
        raise ValueError(f"unknown l2_data event type {kind!r}")

    def _trades(self, msg: dict, recv_ns: int) -> list[Event]:
        """``{"trade_id":"000000000","product_id":"ETH-USD","price":"1260.01","size":"0.3",
        "side":"BUY","time":"2019-08-14T20:42:27.265Z"}``; ``side`` is the *maker's*
        (docs), so the taker is the other side. The ``snapshot`` event on
        subscribe repeats recent history and is skipped."""
        out: list[Event] = []
        for ev in msg["events"]:
            kind = ev["type"]
            if kind == "update":
                for t in ev["trades"]:
                    self._add_trade(out, t["product_id"], t["price"], t["size"], t["side"],
                                    t["trade_id"], t["time"], recv_ns)
            elif kind != "snapshot":
                raise ValueError(f"unknown market_trades event type {kind!r}")
        return out

    def _add_trade(self, out: list[Event], product: str, price: str, size: str, side: str,
                   trade_id: str, time: str, recv_ns: int) -> None:
        if price.__class__ is not str or size.__class__ is not str or trade_id.__class__ is not str:
            raise ValueError("trade price, size and id are strings")
        if side == "BUY":  # the maker bought: the taker sold
            taker = Side.SELL
        elif side == "SELL":
            taker = Side.BUY
        else:
            raise ValueError(f"unknown maker side {side!r}")
        px, qty = float(price), float(size)
        if not (0.0 < px < float("inf") and 0.0 < qty < float("inf")):
            raise ValueError(f"bad trade price={price!r} size={size!r}")
        exch_ns = iso_ns(time)
        pair = self._own_pair(product)
        if pair is not None:
            out.append(Trade(VENUE, self.market, pair, px, qty, taker, trade_id, exch_ns, recv_ns))

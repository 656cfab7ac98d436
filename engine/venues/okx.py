"""OKX v5 spot and swap/futures market data (``books`` channel, trades).
Sans-I/O: builds URLs and frames, parses frames and REST books, states the
book-sync rule (seqId/prevSeqId; CRC32 checksum only where the venue still sends
a non-zero one); never opens a socket. Facts and sources: docs/venues/okx.md.

API docs: https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-order-book-channel,
https://www.okx.com/docs-v5/en/#order-book-trading-market-data-ws-trades-channel,
https://www.okx.com/docs-v5/log_en (checksum fixed at 0 from 2026-06-23; REST-seeded sync).
"""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson

from engine.clock import NS_PER_MS
from engine.model import BookDelta, BookSnapshot, Event, Market, Side, Trade
from engine.venues.base import (
    APPLY,
    DROP,
    GAP,
    Driver,
    Heartbeat,
    Limits,
    Parsed,
    RestRequest,
    ResyncMethod,
    Subscription,
    SyncRule,
    Verdict,
    error_parsed,
)
from engine.venues.rules import CrcBook, InterleavedBook, ShadowBook, interleaved_checksum
from engine.venues.symbols import UnknownSymbol, split_pair
from engine.venues.wire import WireInt, wide_levels

VENUE = "okx"
CHECKSUM_LEVELS = 25  # the venue's recipe: top 25 bids and asks, interleaved
REST_BOOK_DEPTH = 400  # GET /api/v5/market/books maximum; equals the ``books`` channel depth

LIMITS = Limits(
    # 480 subscribe/unsubscribe ops per connection per hour bound how often books
    # on one socket can be resubscribed; 100 pairs leaves room for resyncs.
    max_streams_per_connection=100, max_connects_per_window=3, connect_window_s=1.0,
    max_client_msgs_per_s=3.0, rest_weight_per_minute=1200, snapshot_weight=1)
# Client sends text "ping" when nothing arrived for < 30 s; the reply is text "pong";
# the server closes a socket after 30 s without data or subscription.
HEARTBEAT = Heartbeat(client_ping_interval_s=20.0, client_ping="ping", client_pong="pong",
                      timeout_s=30.0)


def checksum(bids: list, asks: list) -> int:
    """Signed CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top 25 levels,
    using the price/size strings as the venue sent them."""
    return interleaved_checksum(bids, asks, CHECKSUM_LEVELS)


# The checksum book (engine.venues.rules): compiled where built, and its Python
# reference, under the names tests/venues/test_checksum_c.py uses.
_Shadow: Any = InterleavedBook
_PyShadow = ShadowBook


# Applied seqIds remembered per book to recognise a repeated update (dropped)
# after the chain moved on. seqIds are not contiguous, so a repeat is known only
# by being seen; an older update outside this window is a gap (a resync, never a
# guess: after a maintenance reset, updates we cannot chain also look "older").
# Wider tolerates later repeats at a few bytes per seqId.
REPEAT_WINDOW = 64


class OkxRule(SyncRule):
    """After a snapshot with seqId L (WS snapshot, or REST): drop updates with
    ``seqId <= L``; the first applied has ``prevSeqId <= L < seqId``; then every
    update's ``prevSeqId`` equals the previous ``seqId`` (an empty keepalive has
    seqId == prevSeqId; a maintenance reset may lower seqId, still chained by
    prevSeqId). An update that does not chain is dropped if it is a repeat (its
    seqId is the last applied or among the REPEAT_WINDOW before), else a gap.
    Messages without seqId (before 2022-H2) are unsequenced: only
    their checksum can be checked. A non-zero checksum is verified; 0 is ignored."""

    __slots__ = ("last", "fresh", "shadow", "applied")

    def __init__(self) -> None:
        self.last = 0
        self.fresh = True
        self.shadow: ShadowBook | None = None  # or its compiled twin (InterleavedBook)
        self.applied: deque[int] = deque(maxlen=REPEAT_WINDOW)  # seqIds since the snapshot

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.last = snapshot.seq
        self.fresh = True
        self.applied.clear()
        raw = snapshot.extra.get("raw")
        self.shadow = InterleavedBook(*raw) if raw is not None else None

    def verify_snapshot(self, snapshot: BookSnapshot) -> bool:
        raw = snapshot.extra.get("raw")
        if raw is None:
            return True
        return InterleavedBook(*raw).checksum() == snapshot.extra["checksum"]

    def check(self, delta: BookDelta) -> Verdict:
        seq, prev = delta.last_seq, delta.prev_seq
        if seq >= 0:  # sequenced (seqId present)
            if self.fresh:
                if prev <= self.last < seq:
                    self.fresh = False
                elif seq <= self.last:
                    return DROP
                else:
                    return GAP
            elif prev != self.last:
                return DROP if seq == self.last or seq in self.applied else GAP
            self.last = seq
            self.applied.append(seq)
        raw = delta.extra.get("raw") if delta.extra else None
        if self.shadow is not None:
            if raw is None:  # the venue stopped sending checksums: stop checking
                self.shadow = None
            else:
                self.shadow.apply(*raw)
                if self.shadow.checksum() != delta.extra["checksum"]:
                    return GAP
        return APPLY


# ------------------------------------------------- typed frames (engine.venues.wire)


class _Arg(msgspec.Struct):
    channel: str
    instId: str


class _Frame(msgspec.Struct):
    arg: _Arg
    data: msgspec.Raw  # decoded per channel
    action: str = ""
    event: msgspec.UnsetType = msgspec.UNSET  # present: an event frame, the generic path's


class _BookData(msgspec.Struct):
    asks: msgspec.Raw  # levels: _decode_levels
    bids: msgspec.Raw
    ts: str
    checksum: WireInt | None = None
    seqId: WireInt = -1
    prevSeqId: WireInt = -1


class _TradeData(msgspec.Struct):
    tradeId: str
    px: str
    sz: str
    side: str
    ts: str


class _RestBooks(msgspec.Struct):
    code: str
    data: list[_BookData]


_decode_frame = msgspec.json.Decoder(_Frame).decode
_decode_books = msgspec.json.Decoder(list[_BookData]).decode
_decode_trades = msgspec.json.Decoder(list[_TradeData]).decode
_decode_rest_books = msgspec.json.Decoder(_RestBooks).decode
# OKX levels are [price, size, "0" (deprecated), order count]: (price, size)
# doubles by the C level decoder, else msgspec (wire.wide_levels).
_decode_levels = wide_levels(4)


def _market_of(inst_id: str) -> Market | None:
    parts = inst_id.split("-")
    if len(parts) == 2:
        return Market.SPOT
    if len(parts) == 3:
        return Market.FUTURES  # BTC-USDT-SWAP or dated BTC-USD-220527
    return None  # options and spreads are not ours


def _to_pair(inst_id: str) -> str:
    parts = inst_id.upper().split("-")
    if len(parts) == 2:
        return f"{parts[0]}/{parts[1]}"
    if len(parts) == 3:
        return f"{parts[0]}/{parts[1]}" if parts[2] == "SWAP" else f"{parts[0]}/{parts[1]}-{parts[2]}"
    raise UnknownSymbol(f"not a spot, swap or futures instId: {inst_id!r}")


def _wire_texts(bids: msgspec.Raw, asks: msgspec.Raw) -> tuple:
    """The levels as sent, for the checksum book: the wire text itself where
    the compiled CrcBook reads it (no string per deleted level, no list per
    level), else the lists the generic path holds."""
    if CrcBook is not None:
        return (bids, asks)
    return (orjson.loads(memoryview(bids)), orjson.loads(memoryview(asks)))


class OkxDriver(Driver):
    venue = VENUE
    limits = LIMITS
    heartbeat = HEARTBEAT
    # The WS ``books`` snapshot seeds and reseeds books; if none comes (OKX
    # announced delisting it), the router falls back to snapshot_request().
    resync = ResyncMethod.RESUBSCRIBE

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.set_naming(_to_pair, self._to_symbol)

    def _to_symbol(self, pair: str) -> str:
        base, quote, expiry = split_pair(pair)
        if self.market == Market.SPOT:
            return f"{base}-{quote}"
        return f"{base}-{quote}-{expiry or 'SWAP'}"

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://www.okx.com"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        return "wss://ws.okx.com:8443/ws/v5/public"

    def is_own(self, symbol: str) -> bool:
        return _market_of(symbol) == self.market

    def _frames(self, op: str, subscriptions: list[Subscription]) -> list[str]:
        args = []
        for sub in subscriptions:
            inst_id = self.symbol(sub.pair)
            if sub.book:
                args.append({"channel": "books", "instId": inst_id})
            if sub.trades:
                args.append({"channel": "trades", "instId": inst_id})
        return [orjson.dumps({"op": op, "args": args}).decode()] if args else []

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """``{"op":"subscribe","args":[{"channel":"books","instId":"BTC-USDT"},
        {"channel":"trades","instId":"BTC-USDT"}]}``"""
        return self._frames("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("unsubscribe", subscriptions)

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Book update (2022 capture, trimmed); frames since 2022-H2 add ``seqId`` and
        ``prevSeqId``, and since 2026-06-23 carry ``"checksum":0``::

            {"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update",
             "data":[{"asks":[["30243.5","1.2112","0","4"]],"bids":[["30237.2","0","0","0"]],
             "ts":"1652459225453","checksum":-652563973}]}

        Data frames take the typed path; events, pongs and any frame it
        refuses, the generic one (which owns the error behaviour)."""
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but a data frame of the venue's exact types."""
        msg = _decode_frame(frame)
        channel = msg.arg.channel
        pair = self._own_pair(msg.arg.instId)
        if pair is None:
            return Parsed([])
        if channel == "books":
            action = msg.action
            if action != "snapshot" and action != "update":
                raise ValueError(f"unknown books action {action!r}")
            return Parsed([self._book_typed(action, data, pair, recv_ns)
                           for data in _decode_books(msg.data)])
        if channel == "trades":
            trades: list[Event] = []
            for t in _decode_trades(msg.data):
                if t.side != "buy" and t.side != "sell":
                    raise ValueError(f"unknown taker side {t.side!r}")
                trades.append(Trade(VENUE, self.market, pair, float(t.px), float(t.sz),
                                    Side.BUY if t.side == "buy" else Side.SELL, t.tradeId,
                                    int(t.ts) * NS_PER_MS, recv_ns))
            return Parsed(trades)
        return Parsed([])

    def _book_typed(self, action: str, data: _BookData, pair: str,
                    recv_ns: int) -> BookSnapshot | BookDelta:
        bids, asks = _decode_levels(data.bids), _decode_levels(data.asks)
        seq = data.seqId
        crc = data.checksum or 0
        # The checksum needs the level strings as sent: the compiled book reads
        # them from the wire text itself, the Python one from the generic lists.
        extra = ({"checksum": crc, "raw": _wire_texts(data.bids, data.asks)} if crc else {})
        exch_ns = int(data.ts) * NS_PER_MS
        if action == "snapshot":
            return BookSnapshot(VENUE, self.market, pair, bids, asks, max(seq, 0), exch_ns, recv_ns, extra)
        return BookDelta(VENUE, self.market, pair, bids, asks, seq, seq, data.prevSeqId, exch_ns,
                         recv_ns, extra)

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, as dicts (orjson); never raises."""
        try:
            if frame == "pong" or frame == b"pong":
                return Parsed([])
            msg = orjson.loads(frame)
            arg = msg.get("arg")
            if "event" in msg:
                return self._event(msg, frame)
            channel = arg["channel"]
            pair = self._own_pair(arg["instId"])
            if pair is None:
                return Parsed([])
            if channel == "books":
                return Parsed([self._book(item, pair, recv_ns) for item in self._books(msg)])
            if channel == "trades":
                return Parsed([self._trade(t, pair, recv_ns) for t in msg["data"]])
            return Parsed([])
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    @staticmethod
    def _books(msg: dict) -> list[tuple[str, dict]]:
        action = msg["action"]
        if action not in ("snapshot", "update"):
            raise ValueError(f"unknown books action {action!r}")
        return [(action, data) for data in msg["data"]]

    def _event(self, msg: dict, frame: str | bytes) -> Parsed:
        """``{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},"connId":"a4d3ae55"}``;
        errors ``{"event":"error","code":"60012","msg":"Invalid request"}``; maintenance
        ``{"event":"notice","code":"64008",...}`` about 60 s before the socket closes."""
        event = msg["event"]
        if event == "error":
            return error_parsed(VENUE, f"venue error {msg.get('code')}: {msg.get('msg')}", frame)
        if event == "notice":
            return Parsed([], reconnect=True)
        return Parsed([])

    def _book(self, item: tuple[str, dict], pair: str, recv_ns: int) -> BookSnapshot | BookDelta:
        action, data = item
        raw_bids, raw_asks = data["bids"], data["asks"]
        bids = [(float(lv[0]), float(lv[1])) for lv in raw_bids]
        asks = [(float(lv[0]), float(lv[1])) for lv in raw_asks]
        seq = int(data["seqId"]) if "seqId" in data else -1
        prev = int(data["prevSeqId"]) if "prevSeqId" in data else -1
        crc = int(data.get("checksum") or 0)
        extra = {"checksum": crc, "raw": (raw_bids, raw_asks)} if crc else {}
        exch_ns = int(data["ts"]) * NS_PER_MS
        if action == "snapshot":
            return BookSnapshot(VENUE, self.market, pair, bids, asks, max(seq, 0), exch_ns, recv_ns, extra)
        return BookDelta(VENUE, self.market, pair, bids, asks, seq, seq, prev, exch_ns, recv_ns, extra)

    def _trade(self, t: dict, pair: str, recv_ns: int) -> Trade:
        """``{"instId":"BTC-USDT","tradeId":"338476307","px":"30236","sz":"0.0002",
        "side":"buy","ts":"1652459224818"}``; ``side`` is the taker's."""
        side = t["side"]
        if side not in ("buy", "sell"):
            raise ValueError(f"unknown taker side {side!r}")
        return Trade(VENUE, self.market, pair, float(t["px"]), float(t["sz"]),
                     Side.BUY if side == "buy" else Side.SELL, str(t["tradeId"]),
                     int(t["ts"]) * NS_PER_MS, recv_ns)

    # ------------------------------------------------------------------ REST

    def snapshot_request(self, pair: str, depth: int) -> RestRequest:
        return RestRequest(f"{self.rest_base}/api/v5/market/books",
                           {"instId": self.symbol(pair), "sz": REST_BOOK_DEPTH},
                           weight=self.limits.snapshot_weight)

    def snapshot_pair(self, url: str) -> str | None:
        inst = parse_qs(urlsplit(url).query).get("instId")
        return self._own_pair(inst[0]) if inst else None

    def parse_snapshot(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        """``{"code":"0","msg":"","data":[{"asks":[["41006.8","0.6","0","1"]],
        "bids":[["41006.3","0.3","0","2"]],"ts":"1629966436396","seqId":3082930112}]}``.
        The endpoint reference lists no ``seqId``; the 2026 sync guide relies on it.
        Without it the snapshot cannot be bridged to the stream: ValueError."""
        try:
            return self._parse_snapshot_typed(pair, body, recv_ns)
        except Exception:  # noqa: BLE001 - the generic parser decides, and raises
            return self._parse_snapshot_generic(pair, body, recv_ns)

    def _parse_snapshot_typed(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        rest = _decode_rest_books(body)
        book = rest.data[0]
        if rest.code != "0" or book.seqId < 0:  # an error body, or no seqId (the default -1)
            raise ValueError("not a bridgeable book")
        return BookSnapshot(VENUE, self.market, pair, _decode_levels(book.bids),
                            _decode_levels(book.asks), book.seqId, int(book.ts) * NS_PER_MS, recv_ns)

    def _parse_snapshot_generic(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        msg = orjson.loads(body)
        if msg.get("code") != "0":
            raise ValueError(f"venue error {msg.get('code')}: {msg.get('msg')}")
        data = msg["data"][0]
        if "seqId" not in data:
            raise ValueError("REST book has no seqId; cannot bridge it to the stream")
        return BookSnapshot(
            VENUE, self.market, pair,
            [(float(lv[0]), float(lv[1])) for lv in data["bids"]],
            [(float(lv[0]), float(lv[1])) for lv in data["asks"]],
            int(data["seqId"]), int(data["ts"]) * NS_PER_MS, recv_ns)

    def sync_rule(self) -> SyncRule:
        return OkxRule()

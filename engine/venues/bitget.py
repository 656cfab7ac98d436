"""Bitget v2 ("classic") spot and futures market data: the ``books`` channel
(snapshot + updates chained by ``seq``/``pseq``, CRC32 checksum where still sent)
and ``trade``. Sans-I/O: builds frames, parses frames, states the book-sync rule;
never opens a socket. Facts and sources: docs/venues/bitget.md.

API docs: https://www.bitget.com/docs/classic/websocket/contract/public/Order-Book-Channel,
https://www.bitget.com/api-doc/spot/websocket/public/Depth-Channel (checksum recipe),
https://www.bitget.com/api-doc/contract/websocket/public/New-Trades-Channel,
https://www.bitget.com/api-doc/common/websocket-intro (limits, ping). Snapshots
come over the WebSocket; a resync is an unsubscribe + subscribe.
"""

from __future__ import annotations

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
    ResyncMethod,
    Subscription,
    SyncRule,
    Verdict,
    error_parsed,
)
from engine.venues.rules import CrcBook, InterleavedBook, ShadowBook, interleaved_checksum
from engine.venues.symbols import split_concatenated, split_pair
from engine.venues.wire import WireInt, fast_levels

VENUE = "bitget"
CHECKSUM_LEVELS = 25  # the venue's recipe: top 25 bids and asks, interleaved
SPOT = "SPOT"
# Futures product lines by quote: USDT-M ids are BTCUSDT, USDC-M BTCPERP, coin-M BTCUSD.
FUTURES_TYPES = {"USDT": "USDT-FUTURES", "USDC": "USDC-FUTURES", "USD": "COIN-FUTURES"}

LIMITS = Limits(
    # "strongly recommended" below 50 channels per connection: 25 pairs x (books + trade).
    max_streams_per_connection=25, max_connects_per_window=300, connect_window_s=300.0,
    # 10 messages/s per connection, pings included; 5 leaves room for a resubscribe burst.
    max_client_msgs_per_s=5.0, rest_weight_per_minute=0, snapshot_weight=0,
    # Args are capped at 4096 bytes per request (~55 of ours); the v3 socket dropped
    # connections at >= 25 args in a 2026 probe. 20 stays clear of both.
    max_args_per_subscribe=20,
    max_connection_lifetime_s=86400.0)  # "forcibly disconnected every 24 hours"
# Text "ping" every 30 s (we use 25), text "pong" back; no ping for 2 min closes
# the socket even while it streams.
HEARTBEAT = Heartbeat(client_ping_interval_s=25.0, client_ping="ping", client_pong="pong",
                      timeout_s=60.0)


def checksum(bids: list, asks: list) -> int:
    """Signed CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top 25 levels,
    with the price and size strings exactly as sent ("0.5000", not "0.5")."""
    return interleaved_checksum(bids, asks, CHECKSUM_LEVELS)


class BitgetRule(SyncRule):
    """A snapshot (seq L) replaces the book. An update with ``pseq`` 0 is a venue
    restart: resync. Updates with ``seq <= L`` are old or repeated: dropped. The
    first update after a snapshot has ``pseq <= L < seq`` (observed: ``pseq == L``);
    then every ``pseq`` equals the previous ``seq``. Frames without ``pseq`` (spot
    as documented; v1 had no sequence at all) can only be checked by ``seq``
    growing and the checksum. A non-zero checksum is verified; 0 or none is ignored."""

    __slots__ = ("last", "fresh", "shadow")

    def __init__(self) -> None:
        self.last = 0
        self.fresh = True
        self.shadow: ShadowBook | None = None  # or its compiled twin (InterleavedBook)

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.last = snapshot.seq
        self.fresh = True
        raw = snapshot.extra.get("raw")
        self.shadow = InterleavedBook(*raw) if raw is not None else None

    def verify_snapshot(self, snapshot: BookSnapshot) -> bool:
        raw = snapshot.extra.get("raw")
        return raw is None or InterleavedBook(*raw).checksum() == snapshot.extra["checksum"]

    def check(self, delta: BookDelta) -> Verdict:
        seq, prev = delta.last_seq, delta.prev_seq
        if prev == 0:
            return GAP  # the venue restarted this book's sequence
        if seq >= 0:
            if seq <= self.last:
                return DROP
            if prev > 0:
                if self.fresh:
                    if not prev <= self.last < seq:
                        return GAP
                elif prev != self.last:
                    return GAP
            self.fresh = False
            self.last = seq
        extra = delta.extra
        if self.shadow is not None:
            if not extra:  # the venue stopped sending checksums: stop checking
                self.shadow = None
            else:
                self.shadow.apply(*extra["raw"])
                if self.shadow.checksum() != extra["checksum"]:
                    return GAP
        return APPLY


# ------------------------------------------------- typed frames (engine.venues.wire)


class _Arg(msgspec.Struct):
    instType: str
    channel: str
    instId: str


class _Frame(msgspec.Struct):
    arg: _Arg
    data: msgspec.Raw  # decoded per channel
    action: str = ""
    event: msgspec.UnsetType = msgspec.UNSET  # present: an event frame, the generic path's


class _BookData(msgspec.Struct):
    asks: msgspec.Raw  # levels: fast_levels
    bids: msgspec.Raw
    ts: str
    seq: WireInt = -1
    pseq: WireInt = -1
    checksum: WireInt = 0


class _TradeData(msgspec.Struct):
    ts: str
    price: str
    size: str
    side: str
    tradeId: str


_decode_frame = msgspec.json.Decoder(_Frame).decode
_decode_books = msgspec.json.Decoder(list[_BookData]).decode
_decode_trades = msgspec.json.Decoder(list[_TradeData]).decode
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}


def _wire_texts(bids: msgspec.Raw, asks: msgspec.Raw) -> tuple:
    """The levels as sent, for the checksum book: the wire text itself where
    the compiled CrcBook reads it, else the lists the generic path holds."""
    if CrcBook is not None:
        return (bids, asks)
    return (orjson.loads(memoryview(bids)), orjson.loads(memoryview(asks)))


class BitgetDriver(Driver):
    venue = VENUE
    limits = LIMITS
    heartbeat = HEARTBEAT
    resync = ResyncMethod.RESUBSCRIBE

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.spot = market == Market.SPOT
        self.set_naming(self._to_pair, self._to_symbol)

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api.bitget.com"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        return "wss://ws.bitget.com/v2/ws/public"

    def _to_pair(self, inst_id: str) -> str:
        if not self.spot and inst_id.upper().endswith("PERP"):  # USDC-M: BTCPERP
            return f"{inst_id[:-4].upper()}/USDC"
        base, quote = split_concatenated(inst_id)
        return f"{base}/{quote}"

    def _to_symbol(self, pair: str) -> str:
        base, quote, expiry = split_pair(pair)
        if expiry:
            raise ValueError(f"{pair}: dated Bitget futures need an explicit symbol map entry")
        return f"{base}PERP" if not self.spot and quote == "USDC" else f"{base}{quote}"

    def inst_type(self, pair: str) -> str:
        if self.spot:
            return SPOT
        quote = split_pair(pair)[1]
        try:
            return FUTURES_TYPES[quote]
        except KeyError:
            raise ValueError(f"{pair}: no Bitget futures line settles in {quote}") from None

    def _arg_pair(self, inst_type: str, inst_id: str) -> str | None:
        """Pair of an arg of this driver's market; None for another market's frame.
        Cached by (instType, instId): the type, not the id, names the market."""
        key = (inst_type, inst_id)
        if key in self._own_pair_of:
            return self._own_pair_of[key]
        kind = inst_type.upper()
        ours = kind == SPOT if self.spot else kind in FUTURES_TYPES.values()
        pair = self.names.pair(inst_id) if ours else None
        self._own_pair_of[key] = pair
        return pair

    def _frames(self, op: str, subscriptions: list[Subscription]) -> list[str]:
        args = []
        for sub in subscriptions:
            inst = {"instType": self.inst_type(sub.pair), "instId": self.symbol(sub.pair)}
            if sub.book:
                args.append({"instType": inst["instType"], "channel": "books", "instId": inst["instId"]})
            if sub.trades:
                args.append({"instType": inst["instType"], "channel": "trade", "instId": inst["instId"]})
        step = self.limits.max_args_per_subscribe
        return [orjson.dumps({"op": op, "args": args[i:i + step]}).decode()
                for i in range(0, len(args), step)]

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """``{"op":"subscribe","args":[{"instType":"USDT-FUTURES","channel":"books","instId":"BTCUSDT"},
        {"instType":"USDT-FUTURES","channel":"trade","instId":"BTCUSDT"}]}``"""
        return self._frames("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("unsubscribe", subscriptions)

    # --------------------------------------------------------------- parsing

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Book update (2026 probe, v2 USDT-FUTURES, levels trimmed)::

            {"action":"update","arg":{"instType":"USDT-FUTURES","channel":"books","instId":"MAVUSDT"},
             "data":[{"asks":[],"bids":[["0.00519","30828.52"]],"ts":"1789456512452",
             "seq":427583480559,"pseq":427583461144}],"ts":1789456512453}

        Book and trade frames take the typed path; events, ``pong`` and any
        frame it refuses, the generic one (which owns the error behaviour)."""
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but a book or trade frame of the venue's exact types."""
        msg = _decode_frame(frame)
        arg = msg.arg
        pair = self._arg_pair(arg.instType, arg.instId)
        if pair is None:
            return Parsed([])
        channel = arg.channel
        if channel == "books":
            action = msg.action
            if action != "snapshot" and action != "update":
                raise ValueError(f"unknown books action {action!r}")
            events: list[Event] = []
            for d in _decode_books(msg.data):
                crc = d.checksum
                raw = _wire_texts(d.bids, d.asks) if crc else None
                events.append(self._book(action, pair, fast_levels(d.bids), fast_levels(d.asks),
                                         d.seq, d.pseq, crc, raw, int(d.ts), recv_ns))
            return Parsed(events)
        if channel == "trade":
            trades: list[Event] = []
            for t in _decode_trades(msg.data):
                trades.append(Trade(VENUE, self.market, pair, float(t.price), float(t.size),
                                    _SIDES[t.side], t.tradeId, int(t.ts) * NS_PER_MS, recv_ns))
            return Parsed(trades)
        return Parsed([])

    def _book(self, action: str, pair: str, bids: list, asks: list, seq: int, pseq: int, crc: int,
              raw: tuple | None, exch_ms: int, recv_ns: int) -> BookSnapshot | BookDelta:
        extra = {"checksum": crc, "raw": raw} if raw is not None else {}
        if action == "snapshot":
            return BookSnapshot(VENUE, self.market, pair, bids, asks, max(seq, 0), exch_ms * NS_PER_MS,
                                recv_ns, extra)
        return BookDelta(VENUE, self.market, pair, bids, asks, seq, seq, pseq, exch_ms * NS_PER_MS,
                         recv_ns, extra)

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, as dicts (orjson); never raises. Acks
        ``{"event":"subscribe","arg":{"instType":"USDT-FUTURES","channel":"books","instId":"BTCUSDT"}}``;
        errors ``{"event":"error","arg":{...},"code":30001,"msg":"... doesn't exist","op":"subscribe"}``;
        the keepalive answer is the bare text ``pong``."""
        try:
            if frame == "pong" or frame == b"pong":
                return Parsed([])
            msg = orjson.loads(frame)
            if "event" in msg:
                if msg["event"] == "error":
                    return error_parsed(VENUE, f"venue error {msg.get('code')}: {msg.get('msg')}", frame)
                return Parsed([])
            arg = msg["arg"]
            pair = self._arg_pair(arg["instType"], arg["instId"])
            if pair is None:
                return Parsed([])
            channel = arg["channel"]
            if channel == "books":
                action = msg["action"]
                if action not in ("snapshot", "update"):
                    raise ValueError(f"unknown books action {action!r}")
                return Parsed([self._book_generic(action, pair, d, recv_ns) for d in msg["data"]])
            if channel == "trade":
                return Parsed([self._trade(pair, t, recv_ns) for t in msg["data"]])
            return Parsed([])
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    def _book_generic(self, action: str, pair: str, d: dict, recv_ns: int) -> BookSnapshot | BookDelta:
        raw_bids, raw_asks = d["bids"], d["asks"]
        crc = int(d.get("checksum") or 0)
        return self._book(action, pair, [(float(lv[0]), float(lv[1])) for lv in raw_bids],
                          [(float(lv[0]), float(lv[1])) for lv in raw_asks],
                          int(d.get("seq", -1)), int(d.get("pseq", -1)), crc,
                          (raw_bids, raw_asks) if crc else None, int(d["ts"]), recv_ns)

    def _trade(self, pair: str, t: dict, recv_ns: int) -> Trade:
        """``{"ts":"1695716760565","price":"27000.5","size":"0.001","side":"buy",
        "tradeId":"1111111111"}``; ``side`` is the taker's."""
        side = _SIDES.get(t["side"])
        if side is None:
            raise ValueError(f"unknown taker side {t['side']!r}")
        return Trade(VENUE, self.market, pair, float(t["price"]), float(t["size"]), side,
                     str(t["tradeId"]), int(t["ts"]) * NS_PER_MS, recv_ns)

    def sync_rule(self) -> SyncRule:
        return BitgetRule()

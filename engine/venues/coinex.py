"""CoinEx API v2 spot and futures market data (``depth.subscribe`` with
incremental pushes checked by CRC32, ``deals.subscribe``); every server frame is
a gzip member. Sans-I/O: builds frames, inflates and parses what arrives,
states the sync rule; never opens a socket. Facts and sources, including the
venue's 2026 cessation: docs/venues/coinex.md.

API docs: https://docs.coinex.com/api/v2/spot/market/ws/market-depth,
https://docs.coinex.com/api/v2/spot/market/ws/market-deals (futures pages alike under
``/api/v2/futures/...``), https://docs.coinex.com/api/v2/guide (compression, replies).

The book has no sequence ids: a ``depth.update`` with ``is_full`` true replaces
it (first push, then every minute), one with false changes levels, and each
carries the CRC32 of the venue's whole book after it. That checksum is the only
way to see a lost push, so the rule keeps the wire strings of every level.
"""

from __future__ import annotations

import zlib
from typing import Any

import msgspec
import orjson

from engine.clock import NS_PER_MS
from engine.model import BookDelta, BookSnapshot, Event, Market, Side, Trade
from engine.venues.base import (
    APPLY,
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
    inflate_gzip,
)
from engine.venues.rules import CrcBook, ShadowBook
from engine.venues.symbols import split_concatenated, split_pair
from engine.venues.wire import WireInt, fast_levels

VENUE = "coinex"

# Levels per side we subscribe (the venue offers 5, 10, 20, 50). The checksum
# covers the venue's book of that many levels, so the rule truncates to it too.
# 50 costs nothing extra: pushes carry only changed levels.
BOOK_LIMIT = 50
# Markets per subscribe frame. No cap is published; one 2026 probe sent 221 in a
# frame, a production connector found large frames unreliable and sends 30.
MARKETS_PER_FRAME = 30

LIMITS = Limits(
    # No WS limits are published (REST: 400 req/s per IP). 100 pairs keep one
    # socket's checksum work and a reconnect's resync burst small.
    max_streams_per_connection=100, max_connects_per_window=300, connect_window_s=300.0,
    max_client_msgs_per_s=10.0, rest_weight_per_minute=0, snapshot_weight=0)
# The server closes a socket silent for 60 s (2026 probe); ``server.ping`` keeps it.
HEARTBEAT = Heartbeat(client_ping_interval_s=20.0,
                      client_ping='{"method":"server.ping","params":{},"id":0}',
                      client_pong='{"id":0,"code":0,"data":{"result":"pong"},"message":"OK"}',
                      timeout_s=45.0)


def checksum_of(bids: list, asks: list) -> int:
    """CRC32 (unsigned) of ``bid1_price:bid1_amount:...:ask1_price:ask1_amount:...``:
    all bids best first, then all asks, as the venue wrote the strings."""
    parts = [f"{p}:{s}" for p, s in bids] + [f"{p}:{s}" for p, s in asks]
    return zlib.crc32(":".join(parts).encode())


def _new_book() -> Any:
    """CoinEx's recipe (all bids, then all asks, top BOOK_LIMIT each) on the
    compiled CrcBook where built, else on rules.ShadowBook."""
    return CrcBook([], [], BOOK_LIMIT, False) if CrcBook is not None else ShadowBook()


class CoinexRule(SyncRule):
    """Every push carries the checksum of the venue's book after it; a delta
    whose checksum our book (wire strings, top ``BOOK_LIMIT`` per side) does not
    reproduce is a gap: something was lost or reordered. The docs call it a
    signed 32-bit integer, their example is unsigned: compared modulo 2**32.
    A full push that its own checksum does not describe (a recipe we cannot
    reproduce) switches checking off until a full push that does: deltas then
    apply unchecked and the minute's full push repairs the book. A lost push
    whose every change the next push overwrites leaves no trace to check, and
    no damage either."""

    __slots__ = ("book", "verified")

    def __init__(self) -> None:
        self.book = _new_book()
        self.verified = False

    def _matches(self, expected: int) -> bool:
        if CrcBook is not None:
            crc = self.book.checksum()
            return crc is not None and crc & 0xFFFFFFFF == expected & 0xFFFFFFFF
        return self.book.concatenated_crc32(BOOK_LIMIT) == expected & 0xFFFFFFFF

    def _apply(self, bids: list, asks: list, raw: tuple) -> None:
        if CrcBook is not None:  # keys from the wire strings by float(): the same doubles
            self.book.apply(raw[0], raw[1])
        else:
            self.book.apply_parsed(bids, asks, raw[0], raw[1])

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.book = _new_book()
        raw = snapshot.extra.get("raw")
        if raw is None:  # a hand-made or foreign snapshot: nothing to check against
            self.verified = False
            return
        self._apply(snapshot.bids, snapshot.asks, raw)
        self.verified = self._matches(snapshot.extra["checksum"])

    def check(self, delta: BookDelta) -> Verdict:
        extra = delta.extra
        if not extra:
            return APPLY  # no wire strings: unchecked
        self._apply(delta.bids, delta.asks, extra["raw"])
        if self.verified and not self._matches(extra["checksum"]):
            return GAP
        return APPLY


# ------------------------------------------------- typed frames (engine.venues.wire)


_NONE = msgspec.Raw(b"[]")


class _Depth(msgspec.Struct):
    asks: msgspec.Raw = _NONE  # levels: fast_levels (floats) and _decode_texts (wire strings)
    bids: msgspec.Raw = _NONE
    updated_at: WireInt = 0
    checksum: WireInt | None = None


class _DepthData(msgspec.Struct):
    market: str
    is_full: bool
    depth: _Depth


class _Deal(msgspec.Struct):
    deal_id: WireInt
    created_at: WireInt
    side: str
    price: str
    amount: str


class _DealsData(msgspec.Struct):
    market: str
    deal_list: list[_Deal]


class _Push(msgspec.Struct, tag_field="method"):
    id: None = None


class _DepthPush(_Push, tag="depth.update"):
    data: _DepthData | None = None


class _DealsPush(_Push, tag="deals.update"):
    data: _DealsData | None = None


_decode_push = msgspec.json.Decoder(_DepthPush | _DealsPush).decode
_decode_texts = msgspec.json.Decoder(list[tuple[str, str]]).decode  # strict: strings only


def _to_pair(symbol: str) -> str:
    base, quote = split_concatenated(symbol)
    return f"{base}/{quote}"


def _to_symbol(pair: str) -> str:
    base, quote, expiry = split_pair(pair)
    if expiry:
        raise ValueError(f"{pair}: CoinEx has no dated futures")
    return f"{base}{quote}"


class CoinexDriver(Driver):
    venue = VENUE
    limits = LIMITS
    heartbeat = HEARTBEAT
    resync = ResyncMethod.RESUBSCRIBE  # unsubscribe + subscribe: the venue pushes a full book

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.set_naming(_to_pair, _to_symbol)

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api.coinex.com/v2"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        return "wss://socket.coinex.com/v2/" + ("futures" if market == Market.FUTURES else "spot")


    def _frames(self, method: str, markets: list, first_id: int) -> list[str]:
        return [orjson.dumps({"method": method, "params": {"market_list": markets[i:i + MARKETS_PER_FRAME]},
                              "id": first_id + i}).decode()
                for i in range(0, len(markets), MARKETS_PER_FRAME)]

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """``{"method":"depth.subscribe","params":{"market_list":[["BTCUSDT",50,"0",false]]},"id":1}``
        (market, limit, merge interval "0" = none, if_full false = incremental pushes) and
        ``{"method":"deals.subscribe","params":{"market_list":["BTCUSDT"]},"id":...}``."""
        books = [[self.symbol(s.pair), BOOK_LIMIT, "0", False] for s in subscriptions if s.book]
        deals = [self.symbol(s.pair) for s in subscriptions if s.trades]
        return self._frames("depth.subscribe", books, 1) + self._frames("deals.subscribe", deals, 10_001)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        books = [self.symbol(s.pair) for s in subscriptions if s.book]
        deals = [self.symbol(s.pair) for s in subscriptions if s.trades]
        # An empty market_list would unsubscribe every market: never send one.
        return self._frames("depth.unsubscribe", books, 20_001) + self._frames("deals.unsubscribe", deals, 30_001)

    def resubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """The books only: ``depth.unsubscribe`` then ``depth.subscribe``."""
        books = [Subscription(s.pair, s.depth, trades=False) for s in subscriptions if s.book]
        return self.unsubscribe(books) + self.subscribe(books)

    # --------------------------------------------------------------- parsing

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """A gzip member (text too: imported captures). Incremental push, inflated::

            {"method":"depth.update","data":{"market":"BTCUSDT","is_full":false,
             "depth":{"asks":[["86760","0"]],"bids":[["86690","0.61130406"]],
                      "last":"86690","updated_at":1790133816976,"checksum":833975860}},"id":null}

        Pushes take the typed path; replies, errors and anything it refuses, the
        generic one (which owns the error behaviour, a corrupt gzip member included)."""
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but a depth or deals push of the venue's exact types."""
        push = _decode_push(inflate_gzip(frame))
        data = push.data
        if data is None:
            raise ValueError("push without data")
        if isinstance(data, _DepthData):
            d = data.depth
            return Parsed([self._book(data.market, data.is_full, fast_levels(d.bids),
                                      fast_levels(d.asks), _decode_texts(d.bids),
                                      _decode_texts(d.asks), d.checksum, d.updated_at, recv_ns)])
        pair = self._wire_pair(data.market)
        return Parsed([self._trade(t.price, t.amount, t.side, t.deal_id, t.created_at, pair, recv_ns)
                       for t in data.deal_list])

    def _book(self, market: str, is_full: bool, fbids: list, fasks: list, bids: list, asks: list,
              crc: int | None, updated_ms: int, recv_ns: int) -> BookSnapshot | BookDelta:
        """``bids``/``asks``: the wire strings, for the checksum; ``fbids``/``fasks`` as floats."""
        pair = self._wire_pair(market)
        extra = {} if crc is None else {"checksum": crc, "raw": (bids, asks)}
        if is_full:
            return BookSnapshot(VENUE, self.market, pair, fbids, fasks, 0, updated_ms * NS_PER_MS,
                                recv_ns, extra)
        return BookDelta(VENUE, self.market, pair, fbids, fasks, -1, -1, -1, updated_ms * NS_PER_MS, recv_ns,
                         extra)

    def _trade(self, price: str, amount: str, side: str, deal_id: object, created_ms: int, pair: str,
               recv_ns: int) -> Trade:
        """``{"deal_id":3514376759,"created_at":1689152421692,"side":"buy","price":"30718.42",
        "amount":"0.00000325"}``; ``side`` is the taker's."""
        if side != "buy" and side != "sell":
            raise ValueError(f"unknown taker side {side!r}")
        px, qty = float(price), float(amount)
        if not (0.0 < px < 1e300 and 0.0 < qty < 1e300):
            raise ValueError(f"bad deal price={price!r} amount={amount!r}")
        return Trade(VENUE, self.market, pair, px, qty, Side.BUY if side == "buy" else Side.SELL,
                     str(deal_id), created_ms * NS_PER_MS, recv_ns)

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, inflated, as dicts (orjson); never raises."""
        try:
            text = inflate_gzip(frame)
        except Exception as exc:  # noqa: BLE001 - a corrupt member is counted, never fatal
            return error_parsed(VENUE, f"bad gzip frame: {type(exc).__name__}: {exc}", frame)
        try:
            msg = orjson.loads(text)
            method = msg.get("method")
            if method is None:
                return self._reply(msg, text)
            data = msg.get("data")
            if method == "depth.update":
                depth = data["depth"]
                bids, asks = _texts(depth.get("bids")), _texts(depth.get("asks"))
                crc = depth.get("checksum")
                if crc is not None and not isinstance(crc, int):  # the docs' table says string
                    crc = int(crc)
                is_full = data["is_full"]
                if not isinstance(is_full, bool):
                    raise ValueError(f"is_full is not a bool: {is_full!r}")
                return Parsed([self._book(str(data["market"]), is_full, _floats(bids), _floats(asks),
                                          bids, asks, crc, int(depth.get("updated_at") or 0), recv_ns)])
            if method == "deals.update":
                pair = self._wire_pair(str(data["market"]))
                events: list[Event] = [self._trade(str(t["price"]), str(t["amount"]), t["side"], t["deal_id"],
                                                   int(t["created_at"]), pair, recv_ns)
                                       for t in data["deal_list"]]
                return Parsed(events)
            return Parsed([])  # state, bbo, index pushes: not ours
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", text)

    @staticmethod
    def _reply(msg: dict, text: str | bytes) -> Parsed:
        """Acks ``{"id":2,"code":0,"message":"OK"}``, pongs ``{"id":1,"code":0,
        "data":{"result":"pong"},"message":"OK"}``; errors ``{"id":8,"code":30002,
        "message":"unknown method"}``."""
        code = msg["code"]
        if code != 0:
            return error_parsed(VENUE, f"venue error {code}: {msg.get('message')}", text)
        return Parsed([])

    def sync_rule(self) -> SyncRule:
        return CoinexRule()


def _texts(levels: list | None) -> list[tuple[str, str]]:
    """Wire levels ``[["86760","0.58"]]`` as string pairs; the venue sends strings
    (the checksum is over them), anything else is refused."""
    out = []
    for price, size in levels or ():
        if not (isinstance(price, str) and isinstance(size, str)):
            raise ValueError(f"level is not two strings: {[price, size]!r}")
        out.append((price, size))
    return out


def _floats(levels: list[tuple[str, str]]) -> list[tuple[float, float]]:
    return [(float(p), float(s)) for p, s in levels]

"""HTX (Huobi) spot and swap market data: spot Market-By-Price increments
(``market.$symbol.mbp.150`` on ``/feed``, seeded by a ``req`` refresh on the same
socket), swap ``market.$code.depth.size_N.high_freq`` increments (snapshot first),
trades (``trade.detail``); full ``depth.step*`` books of older recordings replay
as snapshots. Every server frame is a gzip member. Sans-I/O: builds frames,
inflates and parses what arrives, states the sync rule; never opens a socket.
Facts and sources: docs/venues/htx.md.

API docs: https://huobiapi.github.io/docs/spot/v1/en/#market-by-price-incremental-update
(spot MBP, REQ refresh, heartbeat, gzip) and
https://huobiapi.github.io/docs/usdt_swap/v1/en/#general-subscribe-incremental-market-depth-data
(USDT-M ``high_freq``; coin-M ``/swap-ws`` frames parse the same way with a futures
driver whose ws_url is overridden in config).

  spot:  /feed  sub + req mbp.150 ──► rep   BookSnapshot(seqNum)
                                  ──► ch    BookDelta(prevSeqNum ─► seqNum)
         /ws    sub trade.detail  ──► Trade
  swaps: one socket, sub size_N.high_freq ──► snapshot, then update (version + 1)
"""

from __future__ import annotations

from urllib.parse import urlsplit

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
    inflate_gzip,
)
from engine.venues.symbols import KNOWN_QUOTES, UnknownSymbol, split_concatenated, split_pair
from engine.venues.wire import WireInt, fast_levels

VENUE = "htx"

# Spot MBP depth. 150 is the only level count every symbol has (20 is a short
# list of symbols, 5 is too shallow) that the REQ refresh also serves (400 has
# no REQ). It is pushed every 100 ms as the diff between two snapshots.
SPOT_LEVELS = 150
# Swap high_freq sizes the venue accepts (5 and 400 answer "invalid topic").
# The smallest one >= the subscription's depth: 150 costs several times the bandwidth.
SWAP_SIZES = (20, 150)
# HTX spot quotes beyond the shared list, matched longest first (yfihusd = YFI/HUSD).
QUOTES = tuple(sorted(set(KNOWN_QUOTES) | {"HUSD", "HT", "USDD", "TUSD", "BRL", "UAH"},
                      key=len, reverse=True))

SPOT_LIMITS = Limits(
    # Two sockets per group (books on /feed, trades on /ws). 50 pairs keep a
    # reconnect's 100 book frames (sub + req each) near 12 s at the paced rate.
    max_streams_per_connection=50, max_connects_per_window=300, connect_window_s=300.0,
    # "req" is limited to one per 100 ms per connection; every frame is paced alike.
    max_client_msgs_per_s=10.0, rest_weight_per_minute=0, snapshot_weight=0)
SWAP_LIMITS = Limits(
    # 150 streams per socket ran gap-free in 2026 probes; 100 leaves headroom.
    max_streams_per_connection=100, max_connects_per_window=300, connect_window_s=300.0,
    max_client_msgs_per_s=40.0,  # "40 subscriptions at most ... in one second"
    rest_weight_per_minute=0, snapshot_weight=0)
# The server pings {"ping": ms} every 5 s and closes after 2 (spot) to 5 (swaps)
# unanswered; swaps never answer a client ping. Three missed pings = a dead socket.
HEARTBEAT = Heartbeat(timeout_s=15.0)


class HtxRule(SyncRule):
    """After a snapshot with id L (spot refresh ``seqNum``, swap snapshot
    ``version``, or a full ``depth.step*`` book's ``version``), a delta applies
    when its ``prev_seq`` is the last id (spot ``prevSeqNum``; swaps carry
    ``version - 1``: the venue's version grows by one per push); an id at or
    below the last is older (a duplicate, or buffered before the snapshot):
    DROP; anything else is a gap. Spot ids are not consecutive integers: only
    the prevSeqNum chain counts."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = 0

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.last = snapshot.seq

    def check(self, delta: BookDelta) -> Verdict:
        if delta.prev_seq == self.last:
            self.last = delta.last_seq
            return APPLY
        if delta.last_seq <= self.last:
            return DROP
        return GAP


# ------------------------------------------------- typed frames (engine.venues.wire)


_ABSENT = msgspec.Raw(b"[]")  # msgspec takes no ``Raw | None``: an absent side reads as []


class _Frame(msgspec.Struct):
    ch: str = ""  # a push: ``tick``
    rep: str = ""  # a req refresh: ``data``
    status: str = ""
    ts: WireInt = 0
    tick: msgspec.Raw = _ABSENT
    data: msgspec.Raw = _ABSENT


class _BookTick(msgspec.Struct):
    bids: msgspec.Raw = _ABSENT  # levels: fast_levels; a side may be absent (mbp.5/20)
    asks: msgspec.Raw = _ABSENT
    seqNum: WireInt | None = None  # spot mbp
    prevSeqNum: WireInt | None = None
    version: WireInt | None = None  # swaps high_freq, depth.step*
    event: str = ""  # swaps high_freq: "snapshot" | "update"
    ts: WireInt = 0


class _TradeRow(msgspec.Struct):
    price: float
    amount: float
    direction: str
    ts: WireInt
    tradeId: WireInt | None = None  # spot; swaps have only ``id``
    id: msgspec.Raw = msgspec.Raw(b"null")  # spot's exceed int64: used only without tradeId


class _TradeTick(msgspec.Struct):
    data: list[_TradeRow]


_decode_frame = msgspec.json.Decoder(_Frame).decode
_decode_book_tick = msgspec.json.Decoder(_BookTick).decode
_decode_trade_tick = msgspec.json.Decoder(_TradeTick).decode
_decode_int = msgspec.json.Decoder(WireInt).decode
def _spot_pair(symbol: str) -> str:
    base, quote = split_concatenated(symbol, QUOTES)
    return f"{base}/{quote}"


def _swap_pair(code: str) -> str:
    """BTC-USDT -> BTC/USDT; BTC-USDT-210625 -> BTC/USDT-210625; BTC-USD (coin-M) -> BTC/USD."""
    parts = code.upper().split("-")
    if len(parts) in (2, 3) and all(parts):
        return f"{parts[0]}/{parts[1]}" + (f"-{parts[2]}" if len(parts) == 3 else "")
    raise UnknownSymbol(f"not an HTX contract code: {code!r}")


def _spot_symbol(pair: str) -> str:
    base, quote, expiry = split_pair(pair)
    if expiry:
        raise ValueError(f"{pair}: HTX spot has no dated instruments")
    return f"{base}{quote}".lower()


def _swap_symbol(pair: str) -> str:
    base, quote, expiry = split_pair(pair)
    return f"{base}-{quote}-{expiry}" if expiry else f"{base}-{quote}"


class HtxDriver(Driver):
    venue = VENUE
    heartbeat = HEARTBEAT
    # Spot: the resync "resubscribe" is a ``req`` refresh on the book's socket;
    # swaps: unsub + sub, which the venue answers with a fresh snapshot.
    resync = ResyncMethod.RESUBSCRIBE

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.spot = market == Market.SPOT
        self.limits = SPOT_LIMITS if self.spot else SWAP_LIMITS
        # The spot refresh answers our ``req``; increments already buffered may be newer.
        self.stream_snapshot_bridges = self.spot
        if self.spot:
            self.set_naming(_spot_pair, _spot_symbol)
        else:
            self.set_naming(_swap_pair, _swap_symbol)

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api.huobi.pro" if market == Market.SPOT else "https://api.hbdm.com"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        # Spot: a host; books go to <host>/feed, trades to <host>/ws (endpoints()).
        return "wss://api.huobi.pro" if market == Market.SPOT else "wss://api.hbdm.com/linear-swap-ws"

    # ------------------------------------------------------------ connecting

    def _url(self, path: str) -> str:
        base = self.ws_base.rstrip("/")
        if not self.spot or urlsplit(base).path not in ("", "/"):
            return base  # swaps, or an explicit endpoint (a test venue, a proxy): one socket
        return base + path

    def connect_url(self, subscriptions: list[Subscription]) -> str:
        return self._url("/feed")

    def endpoints(self, subscriptions: list[Subscription]) -> dict[str, list[Subscription]]:
        """Spot MBP increments exist only on ``/feed``, trades only on ``/ws``."""
        feed, ws = self._url("/feed"), self._url("/ws")
        if feed == ws:
            return {feed: list(subscriptions)}
        books = [Subscription(s.pair, s.depth, trades=False) for s in subscriptions if s.book]
        trades = [Subscription(s.pair, s.depth, trades=True, book=False)
                  for s in subscriptions if s.trades]
        plan = {}
        if books:
            plan[feed] = books
        if trades:
            plan[ws] = trades
        return plan

    def book_topic(self, sub: Subscription) -> str:
        symbol = self.symbol(sub.pair)
        if self.spot:
            return f"market.{symbol}.mbp.{SPOT_LEVELS}"
        size = next((s for s in SWAP_SIZES if s >= sub.depth), SWAP_SIZES[-1])
        return f"market.{symbol}.depth.size_{size}.high_freq"

    def _frame(self, op: str, topic: str) -> str:
        msg = {op: topic, "id": f"{op}:{topic}"}
        if topic.endswith(".high_freq") and op != "req":
            msg["data_type"] = "incremental"
        return orjson.dumps(msg).decode()

    def _frames(self, op: str, subscriptions: list[Subscription]) -> list[str]:
        frames = []
        for sub in subscriptions:
            if sub.book:
                topic = self.book_topic(sub)
                frames.append(self._frame(op, topic))
                if op == "sub" and self.spot:  # the refresh that seeds the book
                    frames.append(self._frame("req", topic))
            if sub.trades:
                frames.append(self._frame(op, f"market.{self.symbol(sub.pair)}.trade.detail"))
        return frames

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """One topic per frame (the 2026 pages also show topic arrays; the wire,
        the SDKs and every other page use one string)::

            {"sub":"market.btcusdt.mbp.150","id":"sub:market.btcusdt.mbp.150"}
            {"req":"market.btcusdt.mbp.150","id":"req:market.btcusdt.mbp.150"}
            {"sub":"market.BTC-USDT.depth.size_20.high_freq","id":"sub:...","data_type":"incremental"}"""
        return self._frames("sub", subscriptions)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("unsub", subscriptions)

    def resubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """Spot: a ``req`` refresh per book; swaps: unsub + sub of the book topic."""
        topics = [self.book_topic(s) for s in subscriptions if s.book]
        if self.spot:
            return [self._frame("req", t) for t in topics]
        return [self._frame("unsub", t) for t in topics] + [self._frame("sub", t) for t in topics]

    # --------------------------------------------------------------- parsing

    def is_own(self, symbol: str) -> bool:
        return ("-" in symbol) != self.spot  # swap contract codes have a dash

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """A gzip member (text too: imported captures). Spot MBP increment, inflated::

            {"ch":"market.btcusdt.mbp.150","ts":1573199608679,
             "tick":{"seqNum":100020146795,"prevSeqNum":100020146794,"bids":[],
                     "asks":[[645.14,26.75597395914065]]}}

        Pushes take the typed path; control frames and anything it refuses, the
        generic one (which owns the error behaviour, a corrupt gzip member included).
        Both inflate: a frame that falls back (a ping every 5 s) is inflated twice."""
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but a book or trade push, or a book refresh, of the
        venue's exact types."""
        msg = _decode_frame(inflate_gzip(frame))
        if msg.status == "error" or not (msg.ch or msg.rep):
            raise ValueError("not a push or a refresh")
        parts = (msg.ch or msg.rep).split(".")
        if len(parts) < 4 or parts[0] != "market":
            raise ValueError("not a market topic")
        if not msg.ch:  # a ``req`` refresh
            return Parsed(self._refresh_typed(parts, msg, recv_ns))
        pair = self._own_pair(parts[1])
        if pair is None:
            return Parsed([])
        kind = parts[2]
        if kind == "mbp" or kind == "depth":
            tick = _decode_book_tick(msg.tick)
            return Parsed([self._book(parts, tick, fast_levels(tick.bids), fast_levels(tick.asks),
                                      pair, msg.ts, recv_ns)])
        if kind == "trade":
            trades: list[Event] = []
            for t in _decode_trade_tick(msg.tick).data:
                # Without tradeId an id must be an int64 here; larger ones go generic.
                trade_id = t.tradeId if t.tradeId is not None else _decode_int(t.id)
                trades.append(self._trade(t.price, t.amount, t.direction, trade_id, t.ts, pair,
                                          recv_ns))
            return Parsed(trades)
        return Parsed([])  # bbo, detail, kline: not ours

    def _refresh_typed(self, parts: list[str], msg: _Frame, recv_ns: int) -> list[Event]:
        if parts[2] != "mbp":
            return []  # a req of another topic: not a book
        pair = self._own_pair(parts[1])
        if pair is None:
            return []
        data = _decode_book_tick(msg.data)
        if data.seqNum is None:
            raise ValueError("refresh without seqNum")
        return [BookSnapshot(VENUE, self.market, pair, fast_levels(data.bids),
                             fast_levels(data.asks), data.seqNum, msg.ts * NS_PER_MS, recv_ns)]

    def _book(self, parts: list[str], tick: _BookTick, bids: list, asks: list, pair: str,
              envelope_ms: int, recv_ns: int) -> BookSnapshot | BookDelta:
        exch_ns = (tick.ts or envelope_ms) * NS_PER_MS
        if parts[2] == "mbp":
            seq = tick.seqNum
            if seq is None:
                raise ValueError("mbp push without seqNum")
            if parts[3] == "refresh":  # mbp.refresh.N: a whole book per push
                return BookSnapshot(VENUE, self.market, pair, bids, asks, seq, exch_ns, recv_ns)
            if tick.prevSeqNum is None:
                raise ValueError("mbp increment without prevSeqNum")
            return BookDelta(VENUE, self.market, pair, bids, asks, seq, seq, tick.prevSeqNum,
                             exch_ns, recv_ns)
        version = tick.version
        if version is None:
            raise ValueError("depth push without version")
        event = tick.event
        if event == "update":
            return BookDelta(VENUE, self.market, pair, bids, asks, version, version, version - 1,
                             exch_ns, recv_ns)
        if event == "snapshot" or (event == "" and parts[3].startswith("step")):
            return BookSnapshot(VENUE, self.market, pair, bids, asks, version, exch_ns, recv_ns)
        raise ValueError(f"unknown depth event {event!r}")

    def _trade(self, price: float, size: float, direction: str, trade_id: object, ts_ms: int,
               pair: str, recv_ns: int) -> Trade:
        """Spot ``{"id":100182534526255757567432481,"ts":1618678027940,"tradeId":100045088885,
        "amount":20995.88,"price":9.2E-7,"direction":"buy"}``; swaps carry only ``id``,
        ``amount`` in contracts (the book's unit) and ``quantity`` in coins.
        ``direction`` is the taker's side."""
        if direction != "buy" and direction != "sell":
            raise ValueError(f"unknown taker side {direction!r}")
        if not (0.0 < price < 1e300 and 0.0 < size < 1e300):
            raise ValueError(f"bad trade price={price!r} amount={size!r}")
        return Trade(VENUE, self.market, pair, price, size,
                     Side.BUY if direction == "buy" else Side.SELL, str(trade_id), ts_ms * NS_PER_MS,
                     recv_ns)

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, inflated, as dicts (orjson); never raises."""
        try:
            text = inflate_gzip(frame)
        except Exception as exc:  # noqa: BLE001 - a corrupt member is counted, never fatal
            return error_parsed(VENUE, f"bad gzip frame: {type(exc).__name__}: {exc}", frame)
        try:
            msg = orjson.loads(text)
            if "ping" in msg:  # market sockets: {"ping": 1492420473027}
                return Parsed([], [orjson.dumps({"pong": msg["ping"]}).decode()])
            if msg.get("op") == "ping":  # notification sockets: {"op":"ping","ts":"..."}
                return Parsed([], [orjson.dumps({"op": "pong", "ts": msg.get("ts")}).decode()])
            if msg.get("status") == "error":
                return self._error(msg, text)
            if "rep" in msg:
                return Parsed(self._refresh(msg, recv_ns))
            ch = msg.get("ch")
            if ch is None:
                return Parsed([])  # acks {"id","status":"ok","subbed"}, op notify
            parts = ch.split(".")
            if len(parts) < 4 or parts[0] != "market":
                return Parsed([])
            pair = self._own_pair(parts[1])
            if pair is None:
                return Parsed([])
            tick = msg["tick"]
            if parts[2] == "trade":
                return Parsed([self._trade(float(t["price"]), float(t["amount"]), t["direction"],
                                           t["tradeId"] if t.get("tradeId") is not None else t["id"],
                                           int(t["ts"]), pair, recv_ns) for t in tick["data"]])
            if parts[2] in ("mbp", "depth"):
                book = _BookTick(_ABSENT, _ABSENT, _opt_int(tick, "seqNum"),
                                 _opt_int(tick, "prevSeqNum"), _opt_int(tick, "version"),
                                 str(tick.get("event") or ""), int(tick.get("ts") or 0))
                return Parsed([self._book(parts, book, _float_levels(tick.get("bids")),
                                          _float_levels(tick.get("asks")), pair,
                                          int(msg.get("ts") or 0), recv_ns)])
            return Parsed([])
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", text)

    def _refresh(self, msg: dict, recv_ns: int) -> list[Event]:
        """A ``req`` refresh: ``{"id":"id2","rep":"market.btcusdt.mbp.150","status":"ok",
        "data":{"seqNum":100020142010,"bids":[[618.37,71.594]],"asks":[[650.59,14.9097]]}}``."""
        parts = str(msg["rep"]).split(".")
        if len(parts) < 4 or parts[2] != "mbp":
            return []  # a req of another topic: not a book
        pair = self._own_pair(parts[1])
        if pair is None:
            return []
        data = msg["data"]
        return [BookSnapshot(VENUE, self.market, pair, _float_levels(data.get("bids")),
                             _float_levels(data.get("asks")), int(data["seqNum"]),
                             int(msg.get("ts") or 0) * NS_PER_MS, recv_ns)]

    def _error(self, msg: dict, text: str | bytes) -> Parsed:
        """``{"status":"error","ts":1790134833291,"id":"e-size400","err-code":"bad-request",
        "err-msg":"invalid topic market.BTC-USDT.depth.size_400.high_freq"}``. A refused
        ``req`` (``429 too many request``) is asked again, or its book would wait forever."""
        parsed = error_parsed(VENUE, f"venue error {msg.get('err-code')}: {msg.get('err-msg')}", text)
        request_id = str(msg.get("id") or "")
        if request_id.startswith("req:market.") and "429" in str(msg.get("err-msg")):
            parsed.replies.append(self._frame("req", request_id[4:]))
        return parsed

    def sync_rule(self) -> SyncRule:
        return HtxRule()


def _opt_int(tick: dict, key: str) -> int | None:
    value = tick.get(key)
    return None if value is None else int(value)


def _float_levels(levels: list | None) -> list[tuple[float, float]]:
    return [(float(lv[0]), float(lv[1])) for lv in levels or ()]

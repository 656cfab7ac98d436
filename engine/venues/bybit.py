"""Bybit v5 spot and linear market data (orderbook snapshot + delta, public trades).
Sans-I/O: builds URLs and frames, parses frames, states the book-sync rule;
never opens a socket. Facts and sources: docs/venues/bybit.md.

API docs: https://bybit-exchange.github.io/docs/v5/websocket/public/orderbook and
https://bybit-exchange.github.io/docs/v5/websocket/public/trade (connect/ping:
https://bybit-exchange.github.io/docs/v5/ws/connect). Snapshots come over the
WebSocket; a resync is an unsubscribe + subscribe.
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
from engine.venues.symbols import split_concatenated, split_pair
from engine.venues.wire import WireInt, fast_levels

VENUE = "bybit"

# Depths the public orderbook topic offers (spot and linear 1/50/200/1000 in
# the 2026 docs; older pages list 500 for linear, which the 2024 history
# capture uses). A subscription asks for the smallest one >= its depth: deeper
# books cost bandwidth and are pushed less often (1000 levels every 200 ms).
BOOK_DEPTHS = {Market.SPOT: (1, 50, 200, 1000), Market.FUTURES: (1, 50, 200, 1000)}

LIMITS = Limits(
    # The venue caps a connection by args length (21,000 chars), not count;
    # 100 pairs x 2 topics stays far below it and keeps one thread's load small.
    max_streams_per_connection=100, max_connects_per_window=500, connect_window_s=300.0,
    max_client_msgs_per_s=10.0, rest_weight_per_minute=0, snapshot_weight=0,
    max_args_per_subscribe=10)  # spot accepts at most 10 args per subscribe request
# Client pings {"op":"ping"} every 20 s (the docs' advice); public reply
# {"success":true,"ret_msg":"pong",...,"op":"ping"}.
HEARTBEAT = Heartbeat(client_ping_interval_s=20.0, client_ping='{"op":"ping"}',
                      client_pong='{"success":true,"ret_msg":"pong","op":"ping"}', timeout_s=60.0)


# How far behind the book a delta may be and still count as a repeat (dropped)
# rather than a sequence we do not know (a gap). ``u`` is contiguous, so every
# u in (L - window, L] is in the book already. Wider tolerates later repeats;
# narrower sooner notices a venue restart whose ``u == 1`` snapshot was lost
# (the deltas after it restart low, behind the book).
REPEAT_WINDOW = 1000


class BybitRule(SyncRule):
    """A snapshot (any, including ``u == 1`` after a venue restart) replaces the
    book; then each delta's ``u`` is the previous ``u`` + 1. A delta the book
    already holds (``u <= L``: buffered from before the snapshot, or repeated)
    is dropped, unless it is more than REPEAT_WINDOW behind or ``u == 1`` (a
    restart, its snapshot lost); anything else is a gap."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = 0

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.last = snapshot.seq

    def check(self, delta: BookDelta) -> Verdict:
        u = delta.last_seq
        last = self.last
        if u == last + 1:
            self.last = u
            return APPLY
        if last - REPEAT_WINDOW < u <= last and u != 1:
            return DROP
        return GAP


# ------------------------------------------------- typed frames (engine.venues.wire)


class _BookData(msgspec.Struct):
    s: str
    b: msgspec.Raw  # levels: fast_levels
    a: msgspec.Raw
    u: WireInt
    seq: WireInt = 0


class _TradeData(msgspec.Struct):
    T: WireInt
    s: str
    S: str
    v: str
    p: str
    i: str


class _Frame(msgspec.Struct):
    topic: str
    ts: WireInt
    data: _BookData | list[_TradeData]
    type: str = ""
    cts: WireInt | None = None


_decode_frame = msgspec.json.Decoder(_Frame).decode


def _to_pair(symbol: str) -> str:
    base, quote = split_concatenated(symbol)
    return f"{base}/{quote}"


def _to_symbol(pair: str) -> str:
    base, quote, expiry = split_pair(pair)
    if expiry:
        raise ValueError(f"{pair}: dated Bybit futures need an explicit symbol map entry")
    return f"{base}{quote}"


class BybitDriver(Driver):
    venue = VENUE
    limits = LIMITS
    heartbeat = HEARTBEAT
    resync = ResyncMethod.RESUBSCRIBE

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.set_naming(_to_pair, _to_symbol)

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api.bybit.com"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        category = "linear" if market == Market.FUTURES else "spot"
        return f"wss://stream.bybit.com/v5/public/{category}"

    def book_depth(self, depth: int) -> int:
        offered = BOOK_DEPTHS[self.market]
        return next((d for d in offered if d >= depth), offered[-1])

    def _topics(self, subscriptions: list[Subscription]) -> list[str]:
        topics = []
        for sub in subscriptions:
            symbol = self.symbol(sub.pair)
            if sub.book:
                topics.append(f"orderbook.{self.book_depth(sub.depth)}.{symbol}")
            if sub.trades:
                topics.append(f"publicTrade.{symbol}")
        return topics

    def _frames(self, op: str, subscriptions: list[Subscription]) -> list[str]:
        topics = self._topics(subscriptions)
        step = self.limits.max_args_per_subscribe
        return [orjson.dumps({"req_id": f"{op}-{i}", "op": op, "args": topics[i:i + step]}).decode()
                for i in range(0, len(topics), step)]

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """``{"req_id":"subscribe-0","op":"subscribe","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT"]}``"""
        return self._frames("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("unsubscribe", subscriptions)

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Book snapshot/delta (trimmed from the 2024 history capture)::

            {"topic":"orderbook.500.XRPUSDT","type":"delta","ts":1733011200693,
             "data":{"s":"XRPUSDT","b":[["1.9531","6198"]],"a":[["1.9535","8415"]],
             "u":20254870,"seq":130020239261},"cts":1733011200691}

        Book and trade frames take the typed path; everything else, and any
        frame it refuses, the generic one (which owns the error behaviour)."""
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but a book or trade frame of the venue's exact types."""
        msg = _decode_frame(frame)
        data = msg.data
        if isinstance(data, _BookData) and msg.topic.startswith("orderbook."):
            symbol = data.s
            pair = self._pair_of.get(symbol) or self._pair_of.setdefault(symbol, self.pair(symbol))
            bids, asks = fast_levels(data.b), fast_levels(data.a)
            u = data.u
            exch_ns = (msg.cts or msg.ts) * NS_PER_MS
            extra = {"seq": data.seq}
            if msg.type == "delta":
                return Parsed([BookDelta(VENUE, self.market, pair, bids, asks, u, u, -1, exch_ns,
                                         recv_ns, extra)])
            if msg.type == "snapshot":
                return Parsed([BookSnapshot(VENUE, self.market, pair, bids, asks, u, exch_ns,
                                            recv_ns, extra)])
        elif isinstance(data, list) and msg.topic.startswith("publicTrade."):
            trades: list[Event] = []
            for t in data:
                if t.S != "Buy" and t.S != "Sell":
                    raise ValueError(f"unknown taker side {t.S!r}")
                trades.append(Trade(VENUE, self.market, self.pair(t.s), float(t.p), float(t.v),
                                    Side.BUY if t.S == "Buy" else Side.SELL, t.i, t.T * NS_PER_MS, recv_ns))
            return Parsed(trades)
        raise ValueError("not a book or trade frame of the typed shapes")

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, as dicts (orjson); never raises."""
        try:
            msg = orjson.loads(frame)
            topic = msg.get("topic")
            if topic is None:
                return self._control(msg, frame)
            if topic.startswith("orderbook."):
                return Parsed([self._book(msg, recv_ns)])
            if topic.startswith("publicTrade."):
                return Parsed([self._trade(t, recv_ns) for t in msg["data"]])
            return Parsed([])
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    def _control(self, msg: dict, frame: str | bytes) -> Parsed:
        """Acks and pongs: ``{"success":true,"ret_msg":"subscribe","conn_id":"..","op":"subscribe"}``;
        a failed subscribe has ``"success":false`` and the reason in ``ret_msg``."""
        if msg.get("success") is False:
            return error_parsed(VENUE, f"venue error on {msg.get('op')}: {msg.get('ret_msg')}", frame)
        return Parsed([])

    def _book(self, msg: dict, recv_ns: int) -> BookSnapshot | BookDelta:
        data = msg["data"]
        symbol = data["s"]
        pair = self._pair_of.get(symbol) or self._pair_of.setdefault(symbol, self.pair(symbol))
        bids = [(float(p), float(q)) for p, q in data["b"]]
        asks = [(float(p), float(q)) for p, q in data["a"]]
        u = int(data["u"])
        exch_ns = int(msg.get("cts") or msg["ts"]) * NS_PER_MS
        extra = {"seq": int(data.get("seq", 0))}
        kind = msg["type"]
        if kind == "snapshot":
            return BookSnapshot(VENUE, self.market, pair, bids, asks, u, exch_ns, recv_ns, extra)
        if kind == "delta":
            return BookDelta(VENUE, self.market, pair, bids, asks, u, u, -1, exch_ns, recv_ns, extra)
        raise ValueError(f"unknown orderbook message type {kind!r}")

    def _trade(self, t: dict, recv_ns: int) -> Trade:
        """``{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",
        "L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}``; ``S`` = taker side."""
        side = t["S"]
        if side not in ("Buy", "Sell"):
            raise ValueError(f"unknown taker side {side!r}")
        return Trade(VENUE, self.market, self.pair(t["s"]), float(t["p"]), float(t["v"]),
                     Side.BUY if side == "Buy" else Side.SELL, str(t["i"]), int(t["T"]) * NS_PER_MS, recv_ns)

    def sync_rule(self) -> SyncRule:
        return BybitRule()

"""KuCoin classic spot and futures market data: level-2 increments bridged to a
REST snapshot, trades; the public token each socket needs. Sans-I/O: builds
frames and REST requests, parses frames, replies and snapshots, states the
sync rule; never opens a socket. Facts and sources: docs/venues/kucoin.md.

API docs (docs-new, "Classic" WebSocket): spot increments
https://www.kucoin.com/docs-new/3470068w0, futures increments
https://www.kucoin.com/docs-new/3470082w0, token
https://www.kucoin.com/docs-new/websocket-api/base-info/get-public-token-spot-margin.md,
connection and heartbeat https://www.kucoin.com/docs-new/websocket-api/base-info/introduction.md.
Why the classic sockets and not the tokenless UTA ``obu`` ones: docs/venues/kucoin.md.
"""

from __future__ import annotations

import itertools
import math
import threading
import uuid
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from engine.clock import NS_PER_MS
from engine.model import BookDelta, BookSnapshot, Market, Side, Trade
from engine.venues.base import (
    ConnectGrant,
    Driver,
    Heartbeat,
    Limits,
    Parsed,
    RestRequest,
    ResyncMethod,
    Subscription,
    SyncRule,
    error_parsed,
)
from engine.venues.kucoin_fields import (
    futures_pair,
    futures_symbol,
    number,
    parse_change,
    parse_changes,
    parse_levels,
    seq_id,
    spot_pair,
    spot_symbol,
)
from engine.venues.rules import ContiguousIdRule

VENUE = "kucoin"
OK = "200000"  # KuCoin's success code in every REST reply

BULLET_PATH = "/api/v1/bullet-public"  # POST, no auth; spot and futures hosts alike
BULLET_WEIGHT = 10  # public pool weight of one token request
SPOT_BOOK_PATH = "/api/v1/market/orderbook/level2_100"  # public; the full book needs a key
FUTURES_BOOK_PATH = "/api/v1/level2/snapshot"  # public full book
# REST book paths replay recognises: ours, plus the authenticated full spot book
# the 2021 recordings used and the 20-level partial book.
SPOT_BOOK_PATHS = (SPOT_BOOK_PATH, "/api/v1/market/orderbook/level2_20", "/api/v3/market/orderbook/level2")

# Topics per subscribe frame: the venue's cap on one request is 100.
TOPICS_PER_FRAME = 100
# Pairs per socket. Spot joins up to 100 symbols in one topic, so 100 pairs are
# two frames; futures topics name one contract each, and at 10 frames/s per
# socket 50 pairs take ~12 s to subscribe. More pairs per socket means a
# reconnect resyncs more books at once (each a REST snapshot from a shared pool).
SPOT_PAIRS_PER_CONNECTION = 100
FUTURES_PAIRS_PER_CONNECTION = 50
# The public REST pool is 2000 weight per 30 s (VIP0); budgeting 2000 per minute
# can never exceed it. level2_100 weighs 4; the futures book's weight is not
# documented where we could read it, so it is budgeted like the spot full book.
LIMITS = {
    Market.SPOT: Limits(max_streams_per_connection=SPOT_PAIRS_PER_CONNECTION,
                        max_connects_per_window=30, connect_window_s=60.0,
                        max_client_msgs_per_s=10.0, rest_weight_per_minute=2000,
                        snapshot_weight=4, max_args_per_subscribe=TOPICS_PER_FRAME,
                        max_connection_lifetime_s=86400.0),
    Market.FUTURES: Limits(max_streams_per_connection=FUTURES_PAIRS_PER_CONNECTION,
                           max_connects_per_window=30, connect_window_s=60.0,
                           max_client_msgs_per_s=10.0, rest_weight_per_minute=2000,
                           snapshot_weight=4, max_args_per_subscribe=1,
                           max_connection_lifetime_s=86400.0),
}

PING = '{"id":"hb","type":"ping"}'
PONG = '{"id":"hb","type":"pong"}'
# Ping a little more often than the token reply's pingInterval asks (18 s
# today): a ping that arrives late counts as none. Lower costs uplink messages
# (100 per 10 s per socket, subscribes included).
PING_FRACTION = 0.8
# Used when no token reply set them (an explicit ws_url: local venue, tests).
DEFAULT_PING_INTERVAL_S, DEFAULT_PING_TIMEOUT_S = 18.0, 10.0
# Subscribe requests remembered until acked, so an ack can name its books.
# A request lost with its socket is never acked: past this many the oldest goes.
PENDING_SUBSCRIBES = 4096


def heartbeat_for(ping_interval_s: float, ping_timeout_s: float) -> Heartbeat:
    """Client ``ping`` a bit inside the interval; no frame for interval + timeout: dead."""
    return Heartbeat(client_ping_interval_s=ping_interval_s * PING_FRACTION, client_ping=PING,
                     client_pong=PONG, timeout_s=ping_interval_s + ping_timeout_s)


class KucoinRule(ContiguousIdRule):
    """Spot ``sequenceStart``/``sequenceEnd`` (futures: one ``sequence`` per
    message, both ends equal) against the snapshot's ``sequence`` S: drop a
    message ending at or before the book's last id; apply one that starts at
    most one past it (the first after a snapshot may straddle S: its changes
    numbered <= S are already in the snapshot and are removed first); a later
    start is a gap."""

    __slots__ = ()

    def on_overlap(self, delta: BookDelta, last: int) -> None:
        if delta.extra:
            trim(delta, last)


def trim(delta: BookDelta, last: int) -> None:
    """Remove the changes numbered <= ``last`` from a message straddling it
    (the docs' example: a change "ignored because sequence < 16")."""
    bid_seqs, ask_seqs = delta.extra["seqs"]
    delta.bids = [lv for lv, s in zip(delta.bids, bid_seqs) if s > last]
    delta.asks = [lv for lv, s in zip(delta.asks, ask_seqs) if s > last]


class KucoinDriver(Driver):
    venue = VENUE
    resync = ResyncMethod.REST

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.futures = market == Market.FUTURES
        self.limits = LIMITS[market]
        self.heartbeat = heartbeat_for(DEFAULT_PING_INTERVAL_S, DEFAULT_PING_TIMEOUT_S)
        # A configured ws_url (local venue, test server) is opened as it is; the
        # venue's own sockets need a token from connect_request first.
        self.use_token = not ws_url
        if self.futures:
            self.set_naming(futures_pair, futures_symbol)
        else:
            self.set_naming(spot_pair, spot_symbol)
        prefix = "/contractMarket/" if self.futures else "/market/"
        self._book_topic = prefix + "level2:"
        self._trade_topic = prefix + ("execution:" if self.futures else "match:")
        self._book_url = self.rest_base + (FUTURES_BOOK_PATH if self.futures else SPOT_BOOK_PATH)
        self._book_paths = (FUTURES_BOOK_PATH,) if self.futures else SPOT_BOOK_PATHS
        self._ids = itertools.count(1)
        self._pending: dict[str, tuple[str, ...]] = {}  # subscribe id -> its book pairs
        self._pending_lock = threading.Lock()

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api-futures.kucoin.com" if market == Market.FUTURES else "https://api.kucoin.com"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        """Only a lane name while tokens are used: the URL comes from the token reply."""
        return ("wss://ws-api-futures.kucoin.com" if market == Market.FUTURES
                else "wss://ws-api-spot.kucoin.com")

    # ------------------------------------------------------------ connecting

    def connect_request(self, url: str) -> RestRequest | None:
        """``POST /api/v1/bullet-public`` before every connect (token valid 24 h)."""
        if not self.use_token:
            return None
        return RestRequest(self.rest_base + BULLET_PATH, method="POST", weight=BULLET_WEIGHT)

    def connect_grant(self, url: str, body: str | bytes) -> ConnectGrant:
        """``{"code":"200000","data":{"token":"2neAiuYvAU61ZDXANAGAsiL4-iAExhsBXZxf...",
        "instanceServers":[{"endpoint":"wss://ws-api-spot.kucoin.com/","encrypt":true,
        "protocol":"websocket","pingInterval":18000,"pingTimeout":10000}]}}`` ->
        ``{endpoint}?token=...&connectId=<random>`` and that server's ping rule."""
        msg = orjson.loads(body)
        if not isinstance(msg, dict) or msg.get("code") != OK:
            raise ValueError(f"token request refused: {str(body)[:200]}")
        data = msg["data"]
        token, server = data["token"], data["instanceServers"][0]
        endpoint = server["endpoint"]
        interval_ms, timeout_ms = server["pingInterval"], server["pingTimeout"]
        if not (isinstance(token, str) and token and isinstance(endpoint, str)
                and endpoint.startswith(("wss://", "ws://"))):
            raise ValueError(f"token reply without token or endpoint: {str(body)[:200]}")
        if not (type(interval_ms) is int and type(timeout_ms) is int and 1000 <= interval_ms
                and 0 <= timeout_ms):
            raise ValueError(f"token reply with a bad ping rule: {interval_ms!r}/{timeout_ms!r}")
        query = urlencode({"token": token, "connectId": uuid.uuid4().hex})
        sep = "&" if "?" in endpoint else "?"
        return ConnectGrant(f"{endpoint}{sep}{query}",
                            heartbeat_for(interval_ms / 1000.0, timeout_ms / 1000.0))

    def _topics(self, subscriptions: list[Subscription]) -> list[tuple[str, tuple[str, ...]]]:
        """(topic, the pairs whose books it carries) per subscribe frame."""
        books = [s.pair for s in subscriptions if s.book]
        trades = [s.pair for s in subscriptions if s.trades]
        out: list[tuple[str, tuple[str, ...]]] = []
        step = self.limits.max_args_per_subscribe
        for prefix, pairs, carries in ((self._book_topic, books, True), (self._trade_topic, trades, False)):
            for i in range(0, len(pairs), step):
                chunk = pairs[i:i + step]
                out.append((prefix + ",".join(self.symbol(p) for p in chunk),
                            tuple(chunk) if carries else ()))
        return out

    def _frames(self, kind: str, subscriptions: list[Subscription]) -> list[str]:
        frames = []
        for topic, books in self._topics(subscriptions):
            request_id = f"{kind[0]}{next(self._ids)}"
            if kind == "subscribe" and books:
                with self._pending_lock:
                    self._pending[request_id] = books
                    if len(self._pending) > PENDING_SUBSCRIBES:
                        del self._pending[next(iter(self._pending))]  # the oldest
            frames.append(orjson.dumps({"id": request_id, "type": kind, "topic": topic,
                                        "privateChannel": False, "response": True}).decode())
        return frames

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """``{"id":"s1","type":"subscribe","topic":"/market/level2:BTC-USDT,ETH-USDT",
        "privateChannel":false,"response":true}``; acked ``{"id":"s1","type":"ack"}``.
        Futures topics name one contract: ``/contractMarket/level2:XBTUSDTM``."""
        return self._frames("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("unsubscribe", subscriptions)

    def _answered(self, request_id: object) -> tuple[str, ...]:
        with self._pending_lock:
            return self._pending.pop(str(request_id), ())

    # --------------------------------------------------------------- parsing

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Spot increment (2021 capture)::

            {"data":{"sequenceStart":1613277183875,"symbol":"BCHSV-USDT","changes":{"asks":
             [["244.351","150","1613277183875"]],"bids":[]},"sequenceEnd":1613277183875},
             "subject":"trade.l2update","topic":"/market/level2:BCHSV-USDT","type":"message"}

        Futures increment (docs)::

            {"topic":"/contractMarket/level2:XBTUSDTM","type":"message","subject":"level2",
             "sn":1709400450243,"data":{"sequence":1709400450243,"change":"90631.2,sell,2",
             "timestamp":1731897467182}}

        One parser (orjson): a msgspec typed path (engine/venues/wire.py) measured
        no gain on these one-change frames (3.46 vs 3.45 us), so there is none."""
        return self._parse_generic(frame, recv_ns)

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, as dicts (orjson); never raises. Also ``_parse_typed``: the
        name the typed-path tests (tests/venues/test_wire.py) call."""
        try:
            msg = orjson.loads(frame)
            if not isinstance(msg, dict):
                raise ValueError("not a JSON object")
            kind = msg.get("type")
            if kind == "message":
                topic = msg["topic"]
                if topic.startswith(self._book_topic):
                    data = msg["data"]
                    if self.futures:
                        return Parsed([self._futures_delta(topic, data["sequence"], data["change"],
                                                           data.get("timestamp", 0), recv_ns)])
                    changes = data["changes"]
                    return Parsed([self._spot_delta(data["symbol"], data["sequenceStart"],
                                                    data["sequenceEnd"], changes["bids"],
                                                    changes["asks"], data.get("time", 0), recv_ns)])
                if topic.startswith(self._trade_topic):
                    data = msg["data"]
                    return Parsed([self._trade(data["symbol"], data["side"], data["price"],
                                               data["size"], data["tradeId"],
                                               data["ts"] if self.futures else data["time"], recv_ns)])
                return Parsed([])  # tickers, candles, the other market's topics
            if kind == "ack":
                return Parsed([], subscribed=self._answered(msg.get("id")))
            if kind == "error":  # {"id":"p28","type":"error","code":404,"data":"topic does not exist"}
                self._answered(msg.get("id"))
                return error_parsed(VENUE, f"venue error {msg.get('code')}: {msg.get('data')}", frame)
            return Parsed([])  # welcome, pong; UTA-socket frames are not ours
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    def _spot_delta(self, symbol: str, start: object, end: object, bids: object, asks: object,
                    time_ms: object, recv_ns: int) -> BookDelta:
        first, last = seq_id(start), seq_id(end)
        if first > last:
            raise ValueError(f"sequenceStart {first} after sequenceEnd {last}")
        bid_levels, bid_seqs = parse_changes(bids)
        ask_levels, ask_seqs = parse_changes(asks)
        # Per-change ids matter only when the message can straddle a snapshot.
        extra = {"seqs": (bid_seqs, ask_seqs)} if first != last else {}
        return BookDelta(VENUE, self.market, self._wire_pair(symbol), bid_levels, ask_levels, first, last,
                         -1, seq_id(time_ms) * NS_PER_MS, recv_ns, extra)

    def _futures_delta(self, topic: str, sequence: object, change: object, time_ms: object,
                       recv_ns: int) -> BookDelta:
        seq = seq_id(sequence)
        side, level = parse_change(change)
        pair = self._wire_pair(topic[len(self._book_topic):])
        bids, asks = ([level], []) if side is Side.BUY else ([], [level])
        return BookDelta(VENUE, self.market, pair, bids, asks, seq, seq, -1, seq_id(time_ms) * NS_PER_MS,
                         recv_ns)

    def _trade(self, symbol: str, side: object, price: object, size: object, trade_id: object,
               time_ns: object, recv_ns: int) -> Trade:
        """Spot ``{"symbol":"DAPPT-BTC","sequence":"1612701563869","side":"buy","size":"81.8814",
        "price":"0.0000001117","time":"1619378327739050725","tradeId":"6085c09769bc506996295e36",...}``;
        futures ``{"symbol":"XBTUSDTM","side":"buy","size":2,"price":"90503.9",
        "tradeId":"1794100537695","ts":1731898619520000000,...}``. ``side`` is the taker's."""
        if side != "buy" and side != "sell":
            raise ValueError(f"unknown taker side {side!r}")
        if not isinstance(trade_id, str) or not isinstance(price, str):
            raise ValueError("tradeId and price must be strings")
        px, qty = number(price), number(size)
        if not (0.0 < px < math.inf and 0.0 < qty < math.inf):
            raise ValueError(f"trade price {price!r} or size {size!r}")
        return Trade(VENUE, self.market, self._wire_pair(symbol), px, qty,
                     Side.BUY if side == "buy" else Side.SELL, trade_id, seq_id(time_ns), recv_ns)

    # ------------------------------------------------------------------ REST

    def snapshot_request(self, pair: str, depth: int) -> RestRequest:
        return RestRequest(self._book_url, {"symbol": self.symbol(pair)},
                           weight=self.limits.snapshot_weight)

    def snapshot_pair(self, url: str) -> str | None:
        """The pair a REST book URL of this market asks for; None for other URLs."""
        parts = urlsplit(url)
        if not parts.path.endswith(self._book_paths):
            return None
        symbols = parse_qs(parts.query).get("symbol")
        return self.pair(symbols[0]) if symbols else None

    def parse_snapshot(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        """Spot ``{"code":"200000","data":{"time":1619378326628,"sequence":"1613277183892",
        "bids":[["242.649","5"]],"asks":[["242.951","0.08"]]}}``; futures (docs) ``{"code":"200000",
        "data":{"sequence":1697895963339,"symbol":"XBTUSDM","bids":[[66968,2]],"asks":[[66968.1,13501]],
        "ts":1729168101216000000}}``. Raises ValueError on an error body."""
        return self._parse_snapshot_generic(pair, body, recv_ns)

    def _parse_snapshot_generic(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        msg = orjson.loads(body)
        if not isinstance(msg, dict) or msg.get("code") != OK:
            raise ValueError(f"not a book: {str(body)[:200]}")
        data = msg["data"]
        exch_ns = seq_id(data["ts"]) if self.futures else seq_id(data.get("time", 0)) * NS_PER_MS
        return BookSnapshot(VENUE, self.market, pair, parse_levels(data["bids"]),
                            parse_levels(data["asks"]), seq_id(data["sequence"]), exch_ns, recv_ns)

    _parse_typed = _parse_generic
    _parse_snapshot_typed = _parse_snapshot_generic

    def sync_rule(self) -> SyncRule:
        return KucoinRule()

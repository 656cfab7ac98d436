"""Binance spot and USD-M futures market data (diff depth + REST snapshot, trades).
Sans-I/O: builds URLs, frames and REST requests, parses frames and snapshots,
states the book-sync rule; never opens a socket. Facts and sources: docs/venues/binance.md.

API docs: https://developers.binance.com/docs/binance-spot-api-docs/web-socket-streams
(spot "How to manage a local order book correctly") and
https://developers.binance.com/docs/derivatives/usds-margined-futures/websocket-market-streams
(USD-M; depth moved to ``/public``, trades to ``/market`` on 2026-04-23).
COIN-M (dstream/dapi) frames parse the same way with a futures driver whose
endpoints are overridden in config.
"""

from __future__ import annotations

import itertools
import threading
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson

from engine.clock import NS_PER_MS
from engine.model import BookDelta, BookSnapshot, Market, Side, Trade
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
from engine.venues.rules import ContiguousIdRule
from engine.venues.symbols import split_concatenated, split_pair
from engine.venues.wire import WireInt, binance_depth, fast_levels, slot_maker, strict_levels

VENUE = "binance"

# REST snapshot depth: the first documented tier holding SNAPSHOT_DEPTH_FACTOR
# times the subscribed depth (at least 100 levels). Deeper costs weight and so
# time in a resync storm (spot limit 1000 is weight 50: 500 books need 8 min of
# the budget; limit 100 is weight 5: 50 s) while every waiting book buffers its
# stream. Shallower risks a hole: a level below the snapshot that never changes
# is never sent by the diff stream, so it is missing if the price moves through
# the levels above it. 5x means a depth-20 book needs an 80-level move across
# untouched levels to show a hole; subscribe deeper to be safer.
SNAPSHOT_DEPTH_FACTOR = 5
# (limit, request weight) per market, from the depth endpoints' weight tables.
SPOT_SNAPSHOT_TIERS = ((100, 5), (500, 25), (1000, 50), (5000, 250))
FUTURES_SNAPSHOT_TIERS = ((100, 5), (500, 10), (1000, 20))
SNAPSHOT_LIMIT = 1000  # the tier when the depth is unknown

# Pairs per socket. The venue allows 1024 streams (512 pairs with trades), but a
# reconnect resyncs every pair with one REST snapshot each: 50 x weight 50 =
# 2500 of the 6000/min spot budget, so two sockets can drop at once and recover.
PAIRS_PER_CONNECTION = 50

SPOT_LIMITS = Limits(
    max_streams_per_connection=PAIRS_PER_CONNECTION, max_connects_per_window=300,
    connect_window_s=300.0, max_client_msgs_per_s=5.0, rest_weight_per_minute=6000,
    snapshot_weight=50, max_args_per_subscribe=200, max_connection_lifetime_s=86400.0)
FUTURES_LIMITS = Limits(
    max_streams_per_connection=PAIRS_PER_CONNECTION, max_connects_per_window=300,
    connect_window_s=300.0, max_client_msgs_per_s=10.0, rest_weight_per_minute=2400,
    snapshot_weight=20, max_args_per_subscribe=200, max_connection_lifetime_s=86400.0)
# Subscribe requests remembered until the venue answers them (id -> the pairs
# whose depth streams they carry), so an ack can name the books it made live.
# A request lost with its socket is never answered: past this many the oldest
# is forgotten, and its books fall back to a snapshot at their first delta.
# Higher costs a little memory; lower risks forgetting a request still queued.
PENDING_SUBSCRIBES = 4096

# Server pings (WS ping frames): spot every 20 s, pong within 60 s; USD-M every
# 3 min, pong within 10 min. The socket layer answers them; no JSON ping exists.
SPOT_HEARTBEAT = Heartbeat(server_ping_interval_s=20.0, timeout_s=60.0)
FUTURES_HEARTBEAT = Heartbeat(server_ping_interval_s=180.0, timeout_s=200.0)


class BinanceFuturesRule(SyncRule):
    """USD-M / COIN-M: drop ``u < L``; the first event has ``U <= L <= u``;
    after it every event's ``pu`` equals the previous event's ``u``."""

    __slots__ = ("last", "fresh")

    def __init__(self) -> None:
        self.last = 0
        self.fresh = True

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.last = snapshot.seq
        self.fresh = True

    def check(self, delta: BookDelta) -> Verdict:
        if self.fresh:
            if delta.last_seq < self.last:
                return DROP
            if delta.first_seq > self.last:
                return GAP
            self.fresh = False
        elif delta.prev_seq != self.last:
            return DROP if delta.last_seq <= self.last else GAP
        self.last = delta.last_seq
        return APPLY


# ------------------------------------------------- typed frames (engine.venues.wire)


class _Depth(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    E: WireInt
    s: str
    U: WireInt
    u: WireInt
    b: msgspec.Raw  # levels: decode_levels
    a: msgspec.Raw
    pu: WireInt = -1


class _AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade"):
    s: str
    a: WireInt
    p: str
    q: str
    m: bool
    T: WireInt


class _RawTrade(msgspec.Struct, tag_field="e", tag="trade"):
    s: str
    t: WireInt
    p: str
    q: str
    m: bool
    T: WireInt


_Event = _Depth | _AggTrade | _RawTrade


class _Combined(msgspec.Struct):
    data: _Event | None = None  # None: a raw stream event, no wrapper


class _RestDepth(msgspec.Struct):
    lastUpdateId: WireInt
    bids: msgspec.Raw
    asks: msgspec.Raw
    E: WireInt = 0


# The per-frame fast path (wire.binance_depth): a depth frame to BookDelta and
# Parsed in C, no __init__ frames; the plain classes when not built.
_new_delta = slot_maker(BookDelta)
_new_parsed = slot_maker(Parsed) or Parsed
_depth_frame = binance_depth if _new_delta is not None else None

_decode_combined = msgspec.json.Decoder(_Combined).decode
_decode_event = msgspec.json.Decoder(_Event).decode
_decode_rest_depth = msgspec.json.Decoder(_RestDepth).decode


def _to_pair(symbol: str) -> str:
    """BTCUSDT -> BTC/USDT; COIN-M BTCUSD_PERP -> BTC/USD, BTCUSD_211231 -> BTC/USD-211231."""
    head, _, contract = symbol.upper().partition("_")
    base, quote = split_concatenated(head)
    return f"{base}/{quote}-{contract}" if contract and contract != "PERP" else f"{base}/{quote}"


def _to_symbol(pair: str) -> str:
    base, quote, expiry = split_pair(pair)
    return f"{base}{quote}_{expiry}" if expiry else f"{base}{quote}"


class BinanceDriver(Driver):
    venue = VENUE
    resync = ResyncMethod.REST

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.futures = market == Market.FUTURES
        self.limits = FUTURES_LIMITS if self.futures else SPOT_LIMITS
        self.heartbeat = FUTURES_HEARTBEAT if self.futures else SPOT_HEARTBEAT
        self.set_naming(_to_pair, _to_symbol)
        # SUBSCRIBE request id -> pairs with a depth stream in it (see PENDING_SUBSCRIBES).
        # Ids are unique per driver: every connection of the market shares it.
        self._request_ids = itertools.count(1)
        self._pending: dict[int, tuple[str, ...]] = {}
        self._pending_lock = threading.Lock()
        depth_path = "/dapi/v1/depth" if "dapi" in self.rest_base else (
            "/fapi/v1/depth" if self.futures else "/api/v3/depth")
        self._depth_url = self.rest_base + depth_path

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://fapi.binance.com" if market == Market.FUTURES else "https://api.binance.com"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        return ("wss://fstream.binance.com" if market == Market.FUTURES
                else "wss://stream.binance.com:9443")

    # ------------------------------------------------------------ connecting

    def _url(self, section: str) -> str:
        base = self.ws_base.rstrip("/")
        if base.endswith(("/stream", "/ws")):  # an explicit endpoint (local venue, COIN-M)
            return base
        return f"{base}/{section}/stream" if section else f"{base}/stream"

    def connect_url(self, subscriptions: list[Subscription]) -> str:
        return self._url("public" if self.futures else "")

    def endpoints(self, subscriptions: list[Subscription]) -> dict[str, list[Subscription]]:
        if not self.futures or self._url("public") == self._url("market"):
            return {self.connect_url(subscriptions): list(subscriptions)}
        books = [Subscription(s.pair, s.depth, trades=False) for s in subscriptions if s.book]
        trades = [Subscription(s.pair, s.depth, trades=True, book=False)
                  for s in subscriptions if s.trades]
        plan = {}
        if books:
            plan[self._url("public")] = books
        if trades:
            plan[self._url("market")] = trades
        return plan

    def _streams(self, subscriptions: list[Subscription]) -> list[tuple[str, str | None]]:
        """(stream name, the pair if it is a depth stream) for each stream."""
        streams: list[tuple[str, str | None]] = []
        for sub in subscriptions:
            name = self.symbol(sub.pair).lower()
            if sub.book:
                streams.append((f"{name}@depth@100ms", sub.pair))
            if sub.trades:
                streams.append((f"{name}@aggTrade", None))
        return streams

    def _frames(self, method: str, subscriptions: list[Subscription]) -> list[str]:
        streams = self._streams(subscriptions)
        step = self.limits.max_args_per_subscribe
        frames = []
        for i in range(0, len(streams), step):
            chunk = streams[i:i + step]
            request_id = next(self._request_ids)
            books = tuple(pair for _, pair in chunk if pair is not None)
            if method == "SUBSCRIBE" and books:
                with self._pending_lock:
                    self._pending[request_id] = books
                    if len(self._pending) > PENDING_SUBSCRIBES:
                        del self._pending[next(iter(self._pending))]  # the oldest
            frames.append(orjson.dumps({"method": method, "params": [name for name, _ in chunk],
                                        "id": request_id}).decode())
        return frames

    def _answered(self, request_id: object) -> tuple[str, ...]:
        """Forget request ``request_id``; the pairs whose depth streams it carried."""
        if not isinstance(request_id, int):
            return ()
        with self._pending_lock:
            return self._pending.pop(request_id, ())

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """``{"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@aggTrade"],"id":1}``;
        the venue answers ``{"result":null,"id":1}`` once those streams are live."""
        return self._frames("SUBSCRIBE", subscriptions)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("UNSUBSCRIBE", subscriptions)

    # --------------------------------------------------------------- parsing

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Combined-stream wrapper or a raw event; depth diff sample (spot; USD-M adds ``pu``, ``T``)::

            {"stream":"nknusdt@depth@100ms","data":{"e":"depthUpdate","E":1633998512568,
             "s":"NKNUSDT","U":499869753,"u":499869754,"b":[["0.35170000","4265.00000000"]],
             "a":[["0.35290000","10968.00000000"]]}}

        A plain depth frame of a known symbol is decoded whole in C
        (wire.binance_depth); other depth and trade events take the typed path;
        everything else, and any frame it refuses, the generic one (which owns
        the error behaviour)."""
        if _depth_frame is not None:
            try:
                delta = _depth_frame(frame, _new_delta, self._pair_of, VENUE, self.market, recv_ns)
                if delta is not None:
                    return _new_parsed([delta], [], False, (), -1)
            except Exception:  # noqa: BLE001, S110 - out of memory, say: the typed path decides
                pass
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but a depth or trade event of the venue's exact types."""
        event = _decode_combined(frame).data
        if event is None:  # no wrapper (a /ws endpoint), as in _parse_generic
            event = _decode_event(frame)
        symbol = event.s
        pair = self._pair_of.get(symbol) or self._pair_of.setdefault(symbol, self.pair(symbol))
        if isinstance(event, _Depth):
            return Parsed([BookDelta(VENUE, self.market, pair, strict_levels(event.b),
                                     strict_levels(event.a), event.U, event.u, event.pu,
                                     event.E * NS_PER_MS, recv_ns)])
        trade_id = event.a if isinstance(event, _AggTrade) else event.t
        return Parsed([Trade(VENUE, self.market, pair, float(event.p), float(event.q),
                             Side.SELL if event.m else Side.BUY, str(trade_id), event.T * NS_PER_MS,
                             recv_ns)])

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, as dicts (orjson); never raises."""
        try:
            msg = orjson.loads(frame)
            data = msg.get("data")
            if data is None:
                data = msg
            kind = data.get("e")
            if kind == "depthUpdate":
                symbol = data["s"]
                pair = self._pair_of.get(symbol) or self._pair_of.setdefault(symbol, self.pair(symbol))
                return Parsed([BookDelta(
                    VENUE, self.market, pair,
                    [(float(p), float(q)) for p, q in data["b"]],
                    [(float(p), float(q)) for p, q in data["a"]],
                    int(data["U"]), int(data["u"]), int(data.get("pu", -1)),
                    int(data["E"]) * NS_PER_MS, recv_ns)])
            if kind == "aggTrade" or kind == "trade":
                return Parsed([self._trade(data, kind, recv_ns)])
            if kind == "serverShutdown":
                return Parsed([], reconnect=True)
            if "id" in data and "result" in data:  # {"result":null,"id":1}: a request succeeded
                return Parsed([], subscribed=self._answered(data["id"]))
            if "code" in data and "msg" in data:  # {"code":2,"msg":"Invalid request...","id":1}
                self._answered(data.get("id"))
                return error_parsed(VENUE, f"venue error {data['code']}: {data['msg']}", frame)
            return Parsed([])  # bookTicker, kline: not ours
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    def _trade(self, data: dict, kind: str, recv_ns: int) -> Trade:
        """``{"e":"aggTrade","E":1633998523963,"s":"NKNUSDT","a":15683430,"p":"0.35280000",
        "q":"58.00000000","f":19862790,"l":19862790,"T":1633998523963,"m":false}``;
        ``m`` = buyer is maker, so the taker sold."""
        symbol = data["s"]
        trade_id = data["a"] if kind == "aggTrade" else data["t"]
        return Trade(VENUE, self.market, self.pair(symbol), float(data["p"]), float(data["q"]),
                     Side.SELL if data["m"] else Side.BUY, str(trade_id),
                     int(data["T"]) * NS_PER_MS, recv_ns)

    # ------------------------------------------------------------------ REST

    def snapshot_request(self, pair: str, depth: int) -> RestRequest:
        tiers = SPOT_SNAPSHOT_TIERS if self.market == Market.SPOT else FUTURES_SNAPSHOT_TIERS
        want = max(100, SNAPSHOT_DEPTH_FACTOR * depth) if depth > 0 else SNAPSHOT_LIMIT
        limit, weight = next(((n, w) for n, w in tiers if n >= want), tiers[-1])
        return RestRequest(self._depth_url, {"symbol": self.symbol(pair), "limit": limit},
                           weight=weight)

    def snapshot_pair(self, url: str) -> str | None:
        symbols = parse_qs(urlsplit(url).query).get("symbol")
        return self.pair(symbols[0]) if symbols else None

    def parse_snapshot(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        """``{"lastUpdateId":499869752,"bids":[["0.35210000","672.00000000"]],
        "asks":[["0.35260000","3199.00000000"]]}`` (USD-M adds ``E``, ``T``).
        Raises ValueError on an error body such as ``{"code":-1121,"msg":"Invalid symbol."}``."""
        try:
            return self._parse_snapshot_typed(pair, body, recv_ns)
        except Exception:  # noqa: BLE001 - the generic parser decides, and raises
            return self._parse_snapshot_generic(pair, body, recv_ns)

    def _parse_snapshot_typed(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        rest = _decode_rest_depth(body)
        return BookSnapshot(VENUE, self.market, pair, fast_levels(rest.bids),
                            fast_levels(rest.asks), rest.lastUpdateId, rest.E * NS_PER_MS, recv_ns)

    def _parse_snapshot_generic(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        data = orjson.loads(body)
        if not isinstance(data, dict) or "lastUpdateId" not in data:
            raise ValueError(f"not a depth snapshot: {str(body)[:200]}")
        return BookSnapshot(
            VENUE, self.market, pair,
            [(float(p), float(q)) for p, q in data["bids"]],
            [(float(p), float(q)) for p, q in data["asks"]],
            int(data["lastUpdateId"]), int(data.get("E", 0)) * NS_PER_MS, recv_ns)

    def sync_rule(self) -> SyncRule:
        # Spot: drop ``u <= L``; apply ``U <= last+1 <= u``; a later ``U`` is a gap.
        return BinanceFuturesRule() if self.futures else ContiguousIdRule()

"""Hyperliquid (the DEX) market data: ``l2Book`` whole-book frames and ``trades``
for perpetuals ("futures") and spot, one socket for both. Sans-I/O: builds
frames and the instrument request, parses frames and replies, states the sync
rule; never opens a socket. Facts and sources: docs/venues/hyperliquid.md.

API docs: https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/websocket/subscriptions,
.../api/websocket/timeouts-and-heartbeats, .../api/notation (side = aggressor),
.../api/info-endpoint/perpetuals and .../info-endpoint/spot (``meta``, ``spotMeta``),
.../api/rate-limits; example client: github.com/hyperliquid-dex/hyperliquid-python-sdk.

Every ``l2Book`` frame replaces the book (top 20 levels a side, 5 with ``fast``):
no sequence, no checksum, no gap to detect; a lost frame is healed by the next.
A subscription naming a coin the venue does not know closes the whole socket,
so the pool loads the instrument list first (instruments_request ->
load_instruments) and never subscribes what ``refused`` names.
"""

from __future__ import annotations

from operator import attrgetter

import msgspec
import orjson

from engine.clock import NS_PER_MS
from engine.model import BookDelta, BookSnapshot, Event, Market, Side, Trade
from engine.venues.base import (
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
from engine.venues.symbols import UnknownSymbol
from engine.venues.wire import WireInt

VENUE = "hyperliquid"
MAX_MS = (2**63 - 1) // NS_PER_MS  # a later ms time would overflow the int64 ns timestamps
QUOTE = "USDC"  # perpetuals are margined and settled in USDC
# The text the venue sends on connect before any JSON (the official SDK skips it).
WELCOME = "Websocket connection established."
# Subscriptions at or below this depth ask for ``"fast": true``: 5 levels about
# every 0.5 s instead of 20 levels about every 5 s (since June 2026). Shallow and
# fresh suits quoting near the touch; a deeper book is five times staler.
FAST_DEPTH = 5

LIMITS = Limits(
    # Per IP: 1000 subscriptions (2 per pair here), 2000 client frames a minute,
    # 30 new sockets a minute, 10 sockets (the docs' table says 100, the 2026
    # SDKs 10). 100 pairs keep 5 sockets under the subscription cap.
    max_streams_per_connection=100, max_connects_per_window=30, connect_window_s=60.0,
    # 2000 frames/min per IP is 33/s for all sockets together: 10/s each lets
    # three subscribe at full speed at once.
    max_client_msgs_per_s=10.0,
    rest_weight_per_minute=1200, snapshot_weight=2,  # info l2Book weighs 2 (books come over WS)
    max_args_per_subscribe=1)  # one subscription per frame
# The venue closes a socket it has heard nothing from for 60 s: ping at half
# that. A frame arrives at least every 5 s (books) or 30 s (pong) when alive.
HEARTBEAT = Heartbeat(client_ping_interval_s=30.0, client_ping='{"method":"ping"}',
                      client_pong='{"channel":"pong"}', timeout_s=60.0)
INSTRUMENTS_WEIGHT = 20  # ``meta`` / ``spotMeta`` info requests


class HyperliquidRule(SyncRule):
    """Each frame is the whole book, so any frame reseeds it; one whose ``time``
    is older than the book's came out of order and is refused (a resync). The
    venue sends no deltas: one would be a bug, treated as a gap."""

    __slots__ = ("time",)

    def __init__(self) -> None:
        self.time = 0

    def verify_snapshot(self, snapshot: BookSnapshot) -> bool:
        return snapshot.seq >= self.time

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.time = snapshot.seq

    def check(self, delta: BookDelta) -> Verdict:
        return GAP


# ------------------------------------------------- typed frames (engine.venues.wire)


class _BookData(msgspec.Struct):
    coin: str
    time: WireInt
    levels: msgspec.Raw  # lax-decoded apart: _decode_sides


class _Level(msgspec.Struct):
    px: float  # lax: the quoted decimal, read as float() reads it (wire.py)
    sz: float


class _Trade(msgspec.Struct):
    coin: str
    side: str
    px: str
    sz: str
    time: WireInt
    tid: WireInt


class _BookFrame(msgspec.Struct, tag_field="channel", tag="l2Book"):
    data: _BookData


class _TradesFrame(msgspec.Struct, tag_field="channel", tag="trades"):
    data: list[_Trade]


_decode_frame = msgspec.json.Decoder(_BookFrame | _TradesFrame).decode
_decode_sides = msgspec.json.Decoder(tuple[list[_Level], list[_Level]], strict=False).decode
_px_sz = attrgetter("px", "sz")  # a _Level as its (price, size) tuple, in C


def _is_spot(coin: str) -> bool:
    """Spot books are named ``PURR/USDC`` (the first pairs) or ``@<index>``."""
    return "/" in coin or coin.startswith("@")


class HyperliquidDriver(Driver):
    venue = VENUE
    limits = LIMITS
    heartbeat = HEARTBEAT
    resync = ResyncMethod.RESUBSCRIBE  # a new subscription starts with the current book

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.spot = market == Market.SPOT
        # From the instrument list (load_instruments): upper-cased pair -> coin,
        # and spot ``@N`` coins -> pair. None until loaded: pairs are trusted.
        self._coin_of: dict[str, str] | None = None
        self._spot_pair_of: dict[str, str] = {}
        self._delisted: set[str] = set()
        self._listed: set[str] = set()
        self.set_naming(self._to_pair, self._to_symbol)

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api.hyperliquid.xyz"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        return "wss://api.hyperliquid.xyz/ws"

    # ------------------------------------------------------------ naming

    def _to_pair(self, coin: str) -> str:
        if not self.spot:
            return f"{coin}/{QUOTE}"  # BTC, kPEPE, xyz:SP500 (HIP-3): the coin's own case
        if coin.startswith("@"):
            pair = self._spot_pair_of.get(coin)
            if pair is None:
                raise UnknownSymbol(f"spot coin {coin!r} is not in the loaded instrument list")
            return pair
        return coin

    def _to_symbol(self, pair: str) -> str:
        base, sep, quote = pair.partition("/")
        if not sep or not base or not quote or "/" in quote:
            raise UnknownSymbol(f"pair {pair!r} is not BASE/QUOTE")
        if not self.spot and quote.upper() != QUOTE:
            raise UnknownSymbol(f"{pair}: Hyperliquid perpetuals are quoted in {QUOTE}")
        key = (pair if self.spot else base).upper()
        if self._coin_of is not None and key in self._coin_of:
            return self._coin_of[key]  # the venue's exact case: a mis-cased coin closes the socket
        return pair if self.spot else base

    def is_own(self, symbol: str) -> bool:
        return _is_spot(symbol) == self.spot

    # -------------------------------------------------------- instruments

    def instruments_request(self) -> RestRequest:
        return RestRequest(f"{self.rest_base}/info", method="POST", weight=INSTRUMENTS_WEIGHT,
                           body={"type": "spotMeta" if self.spot else "meta"})

    def load_instruments(self, body: str | bytes) -> None:
        """``meta``: ``{"universe":[{"name":"BTC","szDecimals":5,"maxLeverage":50},
        {"name":"LOOM",...,"isDelisted":true}],"marginTables":[...]}``; ``spotMeta``:
        ``{"tokens":[{"name":"USDC","index":0,...},{"name":"PURR","index":1,...}],
        "universe":[{"name":"PURR/USDC","tokens":[1,0],"index":0,...},{"name":"@1",...}]}``."""
        try:
            msg = orjson.loads(body)
            coin_of: dict[str, str] = {}
            spot_pair_of: dict[str, str] = {}
            delisted: set[str] = set()
            if self.spot:
                tokens = {t["index"]: t["name"] for t in msg["tokens"]}
                for u in msg["universe"]:
                    base, quote = (tokens[i] for i in u["tokens"])
                    pair = f"{base}/{quote}"
                    coin_of[pair.upper()] = u["name"]
                    if u["name"].startswith("@"):
                        spot_pair_of[u["name"]] = pair
            else:
                for u in msg["universe"]:
                    name = u["name"]
                    if not isinstance(name, str) or not name:
                        raise ValueError(f"bad coin name {name!r}")
                    coin_of[name.upper()] = name
                    if u.get("isDelisted"):
                        delisted.add(name)
            if not coin_of or not all(isinstance(c, str) and c for c in coin_of.values()):
                raise ValueError("no instruments")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"unusable {VENUE} instrument list: {type(exc).__name__}: {exc}") from exc
        self._coin_of, self._spot_pair_of, self._delisted = coin_of, spot_pair_of, delisted
        self._listed = set(coin_of.values())
        # Names resolved before the list arrived may have had the wrong case.
        self.set_naming(self._to_pair, self._to_symbol)  # the caches knew the old list

    def refused(self, subscriptions: list[Subscription]) -> dict[str, str]:
        out = {}
        for sub in subscriptions:
            try:
                coin = self.symbol(sub.pair)
            except UnknownSymbol as exc:
                out[sub.pair] = str(exc)
                continue
            if self._coin_of is None:
                continue  # nothing loaded: the configuration is trusted
            if coin not in self._listed:
                out[sub.pair] = f"{coin!r} is not listed (subscribing would close the socket)"
            elif coin in self._delisted:
                out[sub.pair] = f"{coin!r} is delisted"
        return out

    # ------------------------------------------------------------ frames

    def _subscriptions(self, subscriptions: list[Subscription], books: bool = True,
                       trades: bool = True) -> list[dict]:
        refused = self.refused(subscriptions)
        out: list[dict] = []
        for sub in subscriptions:
            if sub.pair in refused:
                continue  # never sent: an unknown coin would close every book's socket
            coin = self.symbol(sub.pair)
            if sub.book and books:
                book: dict = {"type": "l2Book", "coin": coin}
                if sub.depth <= FAST_DEPTH:
                    book["fast"] = True
                out.append(book)
            if sub.trades and trades:
                out.append({"type": "trades", "coin": coin})
        return out

    @staticmethod
    def _frames(method: str, subscriptions: list[dict]) -> list[str]:
        return [orjson.dumps({"method": method, "subscription": s}).decode() for s in subscriptions]

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """One frame per subscription:
        ``{"method":"subscribe","subscription":{"type":"l2Book","coin":"BTC"}}``."""
        return self._frames("subscribe", self._subscriptions(subscriptions))

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("unsubscribe", self._subscriptions(subscriptions))

    def resubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """Only ``l2Book`` is cycled: the new subscription's first frame is the book."""
        books = self._subscriptions(subscriptions, trades=False)
        return self._frames("unsubscribe", books) + self._frames("subscribe", books)

    def sync_rule(self) -> SyncRule:
        return HyperliquidRule()

    # ----------------------------------------------------------- parsing

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Whole book, bids then asks, best first (2025 recording, trimmed)::

            {"channel":"l2Book","data":{"coin":"BTC","levels":[[{"n":5,"px":"105055.0",
             "sz":"3.03622"}],[{"n":13,"px":"105056.0","sz":"6.34472"}]],"time":1737918843869}}

        Book and trade frames take the typed path; everything else, and any
        frame it refuses, the generic one (which owns the error behaviour)."""
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but an ``l2Book`` or ``trades`` frame of the exact types."""
        msg = _decode_frame(frame)
        if isinstance(msg, _BookFrame):
            data = msg.data
            if not 0 <= data.time <= MAX_MS:
                raise ValueError("time out of range")
            pair = self._own_pair(data.coin)
            if pair is None:
                return Parsed([])
            bids, asks = _decode_sides(data.levels)
            return Parsed([BookSnapshot(VENUE, self.market, pair, list(map(_px_sz, bids)),
                                        list(map(_px_sz, asks)), data.time, data.time * NS_PER_MS,
                                        recv_ns)])
        out: list[Event] = []
        for t in msg.data:
            self._add_trade(out, t.coin, t.side, t.px, t.sz, t.time, t.tid, recv_ns)
        return Parsed(out)

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, as dicts (orjson); never raises."""
        try:
            if frame == WELCOME or frame == WELCOME.encode():
                return Parsed([])
            msg = orjson.loads(frame)
            channel = msg.get("channel")
            if channel == "l2Book":
                return Parsed(self._book(msg["data"], recv_ns))
            if channel == "trades":
                out: list[Event] = []
                for t in msg["data"]:
                    self._add_trade(out, t["coin"], t["side"], t["px"], t["sz"], t["time"], t["tid"],
                                    recv_ns)
                return Parsed(out)
            if channel == "error":
                return error_parsed(VENUE, f"venue error: {msg.get('data')}", frame)
            return Parsed([])  # pong, subscriptionResponse, post, other channels
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    def _book(self, data: dict, recv_ns: int) -> list[Event]:
        coin, time = data["coin"], data["time"]
        if coin.__class__ is not str or time.__class__ is not int or not 0 <= time <= MAX_MS:
            raise ValueError(f"bad coin {coin!r} or time {time!r}")
        pair = self._own_pair(coin)
        if pair is None:
            return []
        raw_bids, raw_asks = data["levels"]
        return [BookSnapshot(VENUE, self.market, pair,
                             [(float(lv["px"]), float(lv["sz"])) for lv in raw_bids],
                             [(float(lv["px"]), float(lv["sz"])) for lv in raw_asks],
                             time, time * NS_PER_MS, recv_ns)]

    def _add_trade(self, out: list[Event], coin: str, side: str, px: str, sz: str, time: int,
                   tid: int, recv_ns: int) -> None:
        """``{"coin":"BTC","side":"A","px":"84143.0","sz":"0.00036","time":1790232216193,
        "hash":"0x7ab6...","tid":1045359869404765,"users":["0x9aa5...","0x8269..."]}``;
        ``side`` is the aggressor's (docs, Notation): B buys, A sells."""
        if coin.__class__ is not str or px.__class__ is not str or sz.__class__ is not str \
                or time.__class__ is not int or tid.__class__ is not int \
                or not (0 <= time <= MAX_MS and -(2**63) <= tid < 2**63):
            raise ValueError("trade coin/px/sz are strings, time/tid 64-bit integers")
        if side == "B":
            taker = Side.BUY
        elif side == "A":
            taker = Side.SELL
        else:
            raise ValueError(f"unknown aggressor side {side!r}")
        price, size = float(px), float(sz)
        if not (0.0 < price < float("inf") and 0.0 < size < float("inf")):
            raise ValueError(f"bad trade px={px!r} sz={sz!r}")
        pair = self._own_pair(coin)
        if pair is not None:
            out.append(Trade(VENUE, self.market, pair, price, size, taker, str(tid), time * NS_PER_MS,
                             recv_ns))

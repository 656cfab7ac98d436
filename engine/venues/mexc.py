"""MEXC spot (protobuf diff depth) and USDT-M perpetual futures (JSON) market data.
Sans-I/O: builds URLs, frames and REST requests, parses frames and snapshots,
states the book-sync rule; never opens a socket. Spot protobuf decoding lives in
mexc_spot.py. Facts and sources: docs/venues/mexc.md.

API docs: https://www.mexc.com/api-docs/spot-v3/websocket-market-streams (spot; local
book: .../how-to-properly-maintain-a-local-copy-of-the-order-book),
https://www.mexc.com/api-docs/futures/websocket-api (futures; local book:
.../incremental-order-book-maintenance-mechanism). Both books are REST-seeded.
"""

from __future__ import annotations

import gzip
import itertools
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import orjson

from engine.clock import NS_PER_MS
from engine.model import BookDelta, BookSnapshot, Event, Market, Side, Trade
from engine.venues import mexc_spot
from engine.venues.base import (
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
from engine.venues.rules import StrictContiguousIdRule
from engine.venues.symbols import split_concatenated, split_pair
from engine.venues.wire import WireInt

VENUE = "mexc"

# Push interval of the aggregated spot channels: "100ms" or "10ms". 10 ms sends
# up to 10x the frames for the same book; 100 ms is plenty for a 20-level mirror.
SPOT_INTERVAL = "100ms"
# REST snapshot depth. The spot guide asks for limit=5000 (max) and warns that a
# level below the snapshot that never changes is never pushed; the futures guide
# uses limit=1000. Deeper costs bytes, not weight (spot depth weighs 1).
SPOT_SNAPSHOT_LIMIT = 5000
FUTURES_SNAPSHOT_LIMIT = 1000

SPOT_LIMITS = Limits(
    # 30 subscriptions per connection (book + trades = 2 per pair): 15 pairs.
    max_streams_per_connection=15, max_connects_per_window=300, connect_window_s=300.0,
    # No message-rate limit in the docs read (notes: 100/s): 10/s is ample for pings and
    # subscribes. REST: 500 requests / 10 s per endpoint and IP [notes], depth weighs 1;
    # 1200/min leaves room for the venue's other calls on the same IP.
    max_client_msgs_per_s=10.0, rest_weight_per_minute=1200, snapshot_weight=1,
    # No per-frame cap is documented; 10 params keep a refused frame's blast radius small.
    max_args_per_subscribe=10, max_connection_lifetime_s=86400.0)
FUTURES_LIMITS = Limits(
    # No per-connection cap is documented; 50 pairs = 100 sub frames to replay on reconnect.
    max_streams_per_connection=50, max_connects_per_window=300, connect_window_s=300.0,
    # Undocumented; one frame per channel and symbol, so subscribing 50 pairs takes 5 s.
    max_client_msgs_per_s=20.0,
    # No futures market-data REST limit found in the docs read: 10/s is a guess on
    # the safe side; a resync storm of 50 books then takes 5 s to reseed.
    rest_weight_per_minute=600, snapshot_weight=1)
# Spot: {"method":"PING"} -> {"id":0,"code":0,"msg":"PONG"}; a subscribed socket
# without data is closed after 60 s. Futures: {"method":"ping"} at least once a
# minute (docs advise every 10-20 s; data does not count) -> {"channel":"pong",...}.
SPOT_HEARTBEAT = Heartbeat(client_ping_interval_s=20.0, client_ping='{"method":"PING"}',
                           client_pong='{"id":0,"code":0,"msg":"PONG"}', timeout_s=60.0)
FUTURES_HEARTBEAT = Heartbeat(client_ping_interval_s=15.0, client_ping='{"method":"ping"}',
                              client_pong='{"channel":"pong","data":0}', timeout_s=60.0)
GZIP_MAGIC = b"\x1f\x8b"
_TAKER = {1: Side.BUY, 2: Side.SELL}  # deal ``T``: 1 buy, 2 sell (the taker's side)


# ------------------------------------------------- typed frames (engine.venues.wire)


class _FuturesDepth(msgspec.Struct):
    asks: msgspec.Raw  # [[price, contracts, orders], ...]: _decode_rows
    bids: msgspec.Raw
    version: WireInt
    begin: WireInt = -1  # merged pushes (the default since 2025-04) span begin..end
    end: WireInt = -1
    cts: WireInt = 0


class _FuturesFrame(msgspec.Struct):
    channel: str
    data: msgspec.Raw
    symbol: str = ""
    ts: WireInt = 0


class _FuturesDeal(msgspec.Struct):
    p: float
    v: float
    T: WireInt
    t: WireInt


_decode_frame = msgspec.json.Decoder(_FuturesFrame).decode
_decode_deals = msgspec.json.Decoder(_FuturesDeal | list[_FuturesDeal]).decode
_decode_depth = msgspec.json.Decoder(_FuturesDepth).decode
_decode_level_rows = msgspec.json.Decoder(list[tuple[float, float, Any]], strict=False).decode
_price_size = itemgetter(0, 1)


def _decode_rows(raw: msgspec.Raw | bytes) -> list[tuple[float, float]]:
    return list(map(_price_size, _decode_level_rows(raw)))


def _inflated(frame: str | bytes) -> str | bytes:
    """A gzip frame decompressed (we ask for ``"gzip":false``; this is the fallback).
    Raises on a corrupt member."""
    if isinstance(frame, (bytes, bytearray, memoryview)) and bytes(frame[:2]) == GZIP_MAGIC:
        return gzip.decompress(frame)
    return frame


def _spot_pair(symbol: str) -> str:
    base, quote = split_concatenated(symbol)
    return f"{base}/{quote}"


def _futures_pair(symbol: str) -> str:
    base, sep, quote = symbol.upper().partition("_")
    if not sep or not base or not quote:
        raise ValueError(f"not a MEXC contract symbol: {symbol!r}")
    return f"{base}/{quote}"


class MexcDriver(Driver):
    venue = VENUE
    resync = ResyncMethod.REST

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.spot = market == Market.SPOT
        self.limits = SPOT_LIMITS if self.spot else FUTURES_LIMITS
        self.heartbeat = SPOT_HEARTBEAT if self.spot else FUTURES_HEARTBEAT
        self.set_naming(_spot_pair if self.spot else _futures_pair, self._to_symbol)
        self._ids = itertools.count(1)

    def _to_symbol(self, pair: str) -> str:
        base, quote, expiry = split_pair(pair)
        if expiry:
            raise ValueError(f"{pair}: MEXC lists no dated futures")
        return f"{base}{quote}" if self.spot else f"{base}_{quote}"

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api.mexc.com"  # futures REST moved from contract.mexc.com on 2026-01-19

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        return "wss://wbs-api.mexc.com/ws" if market == Market.SPOT else "wss://contract.mexc.com/edge"

    # ----------------------------------------------------------- subscribing

    def _frames(self, subscribe: bool, subscriptions: list[Subscription]) -> list[str]:
        if not self.spot:  # one frame per channel and symbol
            prefix = "sub" if subscribe else "unsub"
            frames = []
            for sub in subscriptions:
                param = {"symbol": self.symbol(sub.pair)}
                for channel, wanted in (("depth", sub.book), ("deal", sub.trades)):
                    if wanted:
                        frames.append(orjson.dumps({"method": f"{prefix}.{channel}", "param": param,
                                                    "gzip": False}).decode())
            return frames
        params = []
        for sub in subscriptions:
            symbol = self.symbol(sub.pair)
            if sub.book:
                params.append(f"{mexc_spot.DEPTH_CHANNEL}@{SPOT_INTERVAL}@{symbol}")
            if sub.trades:
                params.append(f"{mexc_spot.DEALS_CHANNEL}@{SPOT_INTERVAL}@{symbol}")
        step = self.limits.max_args_per_subscribe
        method = "SUBSCRIPTION" if subscribe else "UNSUBSCRIPTION"
        return [orjson.dumps({"method": method, "params": params[i:i + step],
                              "id": next(self._ids)}).decode() for i in range(0, len(params), step)]

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """Spot ``{"method":"SUBSCRIPTION","params":["spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT",
        "spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"],"id":1}``; futures one frame each,
        ``{"method":"sub.depth","param":{"symbol":"BTC_USDT"},"gzip":false}`` and ``sub.deal``."""
        return self._frames(True, subscriptions)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames(False, subscriptions)

    def _acked_books(self, text: str) -> tuple[str, ...]:
        """Pairs whose spot depth channels an ack's ``msg`` names."""
        return tuple(self.pair(ch.rpartition("@")[2]) for ch in text.split(",")
                     if ch.startswith(mexc_spot.DEPTH_CHANNEL))

    # --------------------------------------------------------------- parsing

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Spot: protobuf pushes (mexc_spot.parse_push) and JSON control frames.
        Futures: JSON; a depth push (2026 probe, merged by default since 2025-04)::

            {"symbol":"SKHYNIXSTOCK_USDT","data":{"cts":1789498405579,"asks":[[1235.06,606,1]],
             "bids":[[1233.04,0,0]],"end":1111084807,"begin":1111084806,"version":1111084807},
             "channel":"push.depth","ts":1789498405588}

        Levels are [price, contracts, orders]; 0 contracts deletes. Futures depth
        frames take the typed path; everything else, and any frame it refuses, the
        generic one (which owns the error behaviour). Spot has one decoder (protobuf)."""
        if self.spot:
            return self._parse_spot(frame, recv_ns)
        try:
            return self._parse_typed(frame, recv_ns)
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_spot(self, frame: str | bytes, recv_ns: int) -> Parsed:
        head = frame[:1]
        if head == "{" or head == b"{":
            return mexc_spot.parse_control(frame, self._acked_books)
        data = frame.encode() if isinstance(frame, str) else bytes(frame)
        if data[:2] == GZIP_MAGIC:
            return error_parsed(VENUE, "gzip frame on the spot socket", data)
        return mexc_spot.parse_push(data, self.market, self.pair, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but a futures depth frame of the venue's exact types
        (spot: the protobuf decoder, which never raises)."""
        if self.spot:
            return self._parse_spot(frame, recv_ns)
        return self._parse_futures_typed(_inflated(frame), recv_ns)

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame; never raises."""
        if self.spot:
            return self._parse_spot(frame, recv_ns)
        try:
            frame = _inflated(frame)
        except Exception as exc:  # noqa: BLE001 - bad gzip: a FeedError, never a crash
            return error_parsed(VENUE, f"corrupt gzip frame: {type(exc).__name__}: {exc}", frame)
        return self._parse_futures_generic(frame, recv_ns)

    def _parse_futures_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Raises on anything but a push.depth or push.deal frame of the venue's exact types."""
        msg = _decode_frame(frame)
        if msg.channel == "push.depth":
            depth = _decode_depth(msg.data)
            return Parsed([self._delta(msg.symbol, depth.version, depth.begin, depth.end,
                                       _decode_rows(depth.bids), _decode_rows(depth.asks),
                                       depth.cts or msg.ts, recv_ns)])
        if msg.channel != "push.deal":
            raise ValueError("not a depth or deal push")
        deals = _decode_deals(msg.data)
        pair = self._wire_pair(msg.symbol)
        trades: list[Event] = []
        for d in deals if isinstance(deals, list) else (deals,):
            side = _TAKER.get(d.T)
            if side is None:
                raise ValueError(f"unknown deal direction T={d.T!r}")
            trades.append(Trade(VENUE, self.market, pair, d.p, d.v, side, "", d.t * NS_PER_MS, recv_ns))
        return Parsed(trades)

    def _delta(self, symbol: str, version: int, begin: int, end: int, bids: list, asks: list,
               exch_ms: int, recv_ns: int) -> BookDelta:
        if end >= 0 or begin >= 0:
            if not (0 <= begin <= end == version):
                raise ValueError(f"inconsistent begin/end/version {begin}/{end}/{version}")
        else:
            begin = end = version
        return BookDelta(VENUE, self.market, self._wire_pair(symbol), bids, asks, begin, end, -1,
                         exch_ms * NS_PER_MS, recv_ns)

    def _parse_futures_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any futures frame, as dicts (orjson); never raises. Acks
        ``{"channel":"rs.sub.depth","data":"success","ts":1789498321789}``, pong
        ``{"channel":"pong","data":1789498336785}``, errors
        ``{"channel":"rs.error","data":"Contract [NOPE_USDT] not exists"}``."""
        try:
            msg = orjson.loads(frame)
            channel = msg["channel"]
            data = msg.get("data")
            if channel == "push.depth":
                return Parsed([self._delta(
                    msg["symbol"], int(data["version"]), int(data.get("begin", -1)),
                    int(data.get("end", -1)), [(float(lv[0]), float(lv[1])) for lv in data["bids"]],
                    [(float(lv[0]), float(lv[1])) for lv in data["asks"]],
                    int(data.get("cts") or msg.get("ts") or 0), recv_ns)])
            if channel == "push.deal":
                deals = data if isinstance(data, list) else [data]
                return Parsed([self._trade(msg["symbol"], d, recv_ns) for d in deals])
            if channel == "rs.error" or (channel.startswith("rs.") and data != "success"):
                return error_parsed(VENUE, f"venue error on {channel}: {data}", frame)
            return Parsed([])  # pong, acks, tickers, funding...: not ours
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    def _trade(self, symbol: str, deal: dict, recv_ns: int) -> Event:
        """``{"p":6866.5,"v":2096,"T":1,"O":1,"M":1,"t":1587442049632}``: ``T`` 1 buy, 2 sell
        (the taker's side); ``v`` in contracts. Deals carry no id: trade_id is ""."""
        side = _TAKER.get(deal["T"]) if type(deal["T"]) is int else None
        if side is None:
            raise ValueError(f"unknown deal direction T={deal['T']!r}")
        return Trade(VENUE, self.market, self._wire_pair(symbol), float(deal["p"]), float(deal["v"]),
                     side, "", int(deal["t"]) * NS_PER_MS, recv_ns)

    # ------------------------------------------------------------------ REST

    def snapshot_request(self, pair: str, depth: int) -> RestRequest:
        symbol = self.symbol(pair)
        if self.spot:
            return RestRequest(f"{self.rest_base}/api/v3/depth",
                               {"symbol": symbol, "limit": SPOT_SNAPSHOT_LIMIT},
                               weight=self.limits.snapshot_weight)
        return RestRequest(f"{self.rest_base}/api/v1/contract/depth/{symbol}",
                           {"limit": FUTURES_SNAPSHOT_LIMIT}, weight=self.limits.snapshot_weight)

    def snapshot_pair(self, url: str) -> str | None:
        parts = urlsplit(url)
        if self.spot:
            if not parts.path.endswith("/api/v3/depth"):
                return None
            symbols = parse_qs(parts.query).get("symbol")
            return self.pair(symbols[0]) if symbols else None
        head, _, symbol = parts.path.rpartition("/")
        return self.pair(symbol) if head.endswith("/api/v1/contract/depth") and symbol else None

    def parse_snapshot(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        """Spot ``{"lastUpdateId":1112416,"bids":[["15.00000","49999.00000"]],
        "asks":[["14.0000","1.0000"]],"timestamp":...}``; futures ``{"success":true,"code":0,
        "data":{"asks":[[108779.2,3240,1]],"bids":[[108779.1,3240,1]],"version":28111438870,
        "timestamp":1761879567135}}``. An error body raises ValueError. Snapshots are
        rare (one per resync), so one parser serves (``_parse_snapshot_generic``)."""
        return self._parse_snapshot_generic(pair, body, recv_ns)

    def _parse_snapshot_typed(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        return self._parse_snapshot_generic(pair, body, recv_ns)

    def _parse_snapshot_generic(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        msg = orjson.loads(body)
        if not isinstance(msg, dict):
            raise ValueError(f"not a depth snapshot: {str(body)[:200]}")
        data: dict
        if self.spot:
            if "lastUpdateId" not in msg:
                raise ValueError(f"venue error {msg.get('code')}: {msg.get('msg')}")
            data, seq = msg, int(msg["lastUpdateId"])
            stamp = int(msg.get("timestamp") or 0)
        else:
            inner = msg.get("data")
            if msg.get("success") is not True or not isinstance(inner, dict):
                raise ValueError(f"venue error {msg.get('code')}: {msg.get('message')}")
            data = inner
            seq, stamp = int(data["version"]), int(data.get("timestamp") or 0)
        return BookSnapshot(VENUE, self.market, pair,
                            [(float(lv[0]), float(lv[1])) for lv in data["bids"]],
                            [(float(lv[0]), float(lv[1])) for lv in data["asks"]], seq,
                            stamp * NS_PER_MS, recv_ns)

    def sync_rule(self) -> SyncRule:
        """Both markets, after a REST snapshot with version L: drop pushes whose last
        version (spot ``toVersion``; futures ``end``, else ``version``) is <= L; the
        first applied has ``first <= L + 1``; then every push's first version (spot
        ``fromVersion``; futures ``begin``, else ``version``) is the previous last + 1."""
        return StrictContiguousIdRule()

"""Gate v4 spot and USDT-settled perpetual market data: ``*.order_book_update``
diffs bridged to a REST ``with_id`` snapshot (``full: true`` pushes replace the
book), trades. Sans-I/O: builds frames and REST requests, parses frames and
snapshots, states the sync rule; never opens a socket. Facts and sources:
docs/venues/gate.md.

API docs: https://www.gate.io/docs/developers/apiv4/ws/en/ (spot: "Changed order
book levels", "How to maintain local order book") and
https://www.gate.io/docs/developers/futures/ws/en/ (futures: "Order book update
notification"); REST ``GET /api/v4/spot/order_book`` and
``GET /api/v4/futures/{settle}/order_book`` with ``with_id=true``.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qs, urlsplit

import orjson

from engine.clock import NS_PER_S, SYSTEM, Clock
from engine.model import BookDelta, BookSnapshot, Market, Side, Trade
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
from engine.venues.gate_fields import (
    book_id,
    dict_levels,
    gate_pair,
    gate_symbol,
    list_levels,
    millis_to_ns,
    number,
    seconds_to_ns,
    typed_spot_book,
)
from engine.venues.rules import ContiguousIdRule

VENUE = "gate"

# Depth of the diff stream and of the REST snapshot that seeds it. They must be
# equal (docs): "100ms" carries changes of the top 100 levels, "20ms" of the top
# 20 (faster but shallow: a level that drops below 20 and comes back is unseen).
BOOK_LEVELS = 100
BOOK_INTERVAL = "100ms"
SETTLE = "usdt"  # one futures socket serves one settle currency

# Gate documents no subscription or connection cap (its maintainers advise at
# most 100 sockets per host and warn that a socket whose reader falls behind is
# closed); 50 pairs per socket keeps one thread's load and a reconnect's resync
# burst small. Public REST is 200 requests per 10 s per endpoint per IP:
# budgeting 200 per minute can never exceed it, and still seeds 200 books a minute.
LIMITS = Limits(max_streams_per_connection=50, max_connects_per_window=60, connect_window_s=60.0,
                max_client_msgs_per_s=10.0, rest_weight_per_minute=200, snapshot_weight=1)
# The server pings at the protocol level and the socket layer answers; our own
# WS pings every 10 s make a dead link show within ~30 s. The JSON ``*.ping``
# would need a current "time" field, which a fixed ping frame cannot carry.
HEARTBEAT = Heartbeat(ws_ping_interval_s=10.0, timeout_s=30.0)


def price(value: object) -> float:
    """A trade price: positive and finite, else ValueError (the frame is a FeedError)."""
    px = number(value)
    if not 0.0 < px < math.inf:
        raise ValueError(f"trade price {value!r}")
    return px


class GateDriver(Driver):
    venue = VENUE
    limits = LIMITS
    heartbeat = HEARTBEAT
    resync = ResyncMethod.REST

    def __init__(self, market: Market, rest_url: str = "", ws_url: str = "",
                 symbols: dict[str, str] | None = None, clock: Clock = SYSTEM) -> None:
        super().__init__(market, rest_url, ws_url, symbols)
        self.futures = market == Market.FUTURES
        self.clock = clock  # requests carry the current time in seconds
        self.set_naming(gate_pair, gate_symbol)
        prefix = "futures." if self.futures else "spot."
        self._book_channel = prefix + "order_book_update"
        self._trade_channel = prefix + "trades"
        self._levels = dict_levels if self.futures else list_levels
        if self.futures:
            self._book_path = f"/api/v4/futures/{SETTLE}/order_book"
            self._book_key = "contract"
        else:
            self._book_path, self._book_key = "/api/v4/spot/order_book", "currency_pair"

    @classmethod
    def default_rest_url(cls, market: Market) -> str:
        return "https://api.gateio.ws"

    @classmethod
    def default_ws_url(cls, market: Market) -> str:
        return (f"wss://fx-ws.gateio.ws/v4/ws/{SETTLE}" if market == Market.FUTURES
                else "wss://api.gateio.ws/ws/v4/")

    # ------------------------------------------------------------ subscribing

    def _frames(self, event: str, subscriptions: list[Subscription]) -> list[str]:
        now_s = self.clock.now_ns() // NS_PER_S
        frames = []
        books = [s.pair for s in subscriptions if s.book]
        for pair in books:  # one book per request: the payload is [pair, interval(, level)]
            payload = [self.symbol(pair), BOOK_INTERVAL]
            if self.futures:
                payload.append(str(BOOK_LEVELS))
            frames.append(orjson.dumps({"time": now_s, "channel": self._book_channel, "event": event,
                                        "payload": payload}).decode())
        trades = [self.symbol(s.pair) for s in subscriptions if s.trades]
        if trades:
            frames.append(orjson.dumps({"time": now_s, "channel": self._trade_channel, "event": event,
                                        "payload": trades}).decode())
        return frames

    def subscribe(self, subscriptions: list[Subscription]) -> list[str]:
        """``{"time":1619093532,"channel":"spot.order_book_update","event":"subscribe",
        "payload":["BTC_USDT","100ms"]}`` per book (futures add the level: ``["BTC_USDT","100ms",
        "100"]``), one ``*.trades`` request for all pairs; acked ``{"time":..,"channel":..,
        "event":"subscribe","result":{"status":"success"}}``."""
        return self._frames("subscribe", subscriptions)

    def unsubscribe(self, subscriptions: list[Subscription]) -> list[str]:
        return self._frames("unsubscribe", subscriptions)

    # --------------------------------------------------------------- parsing

    def parse(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Spot diff (2021 capture, trimmed); frames since 2025 add ``"l":"100"`` and,
        on a whole-book push, ``"full":true``::

            {"time":1619093532,"channel":"spot.order_book_update","event":"update","result":
             {"t":1619093532978,"e":"depthUpdate","E":1619093532,"s":"HAI_ETH","U":2691446,
             "u":2691446,"b":[["0.00010322","5360.209"]],"a":[["0.00010396","0"]]}}

        Futures levels are objects with integer sizes (2023 capture)::

            {"time":1684930165,"time_ms":1684930165353,"channel":"futures.order_book_update",
             "event":"update","result":{"U":203083178,"a":[{"p":"0.3047","s":8393}],"b":[],
             "s":"RDNT_USDT","t":1684930165247,"u":203083178}}

        Spot book diffs take the typed path (gate_fields.typed_spot_book); every
        other frame, and any it refuses, the generic one (which owns the errors)."""
        if self.futures:
            return self._parse_generic(frame, recv_ns)
        return self._parse_typed(frame, recv_ns)

    def _parse_typed(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """A spot book diff decoded by msgspec; anything else (and every futures
        frame) goes to the generic parser."""
        if self.futures:
            return self._parse_generic(frame, recv_ns)
        try:
            symbol, first, last, full, t_ms, bids, asks = typed_spot_book(frame, self._book_channel)
            return Parsed([self._book(symbol, first, last, full, t_ms, bids, asks, recv_ns)])
        except Exception:  # noqa: BLE001 - not a typed shape: the generic parser decides
            return self._parse_generic(frame, recv_ns)

    def _parse_generic(self, frame: str | bytes, recv_ns: int) -> Parsed:
        """Any frame, as dicts (orjson); never raises."""
        try:
            msg = orjson.loads(frame)
            if not isinstance(msg, dict):
                raise ValueError("not a JSON object")
            channel, event = msg.get("channel"), msg.get("event")
            if msg.get("error") is not None:  # {"error":{"code":2,"message":"..."},"result":{"status":"fail"}}
                err = msg["error"]
                code, text = (err.get("code"), err.get("message")) if isinstance(err, dict) else ("", err)
                return error_parsed(VENUE, f"venue error {code} on {channel} {event}: {text}", frame)
            if event == "subscribe" and channel == self._book_channel:
                return Parsed([], subscribed=self._acked(msg.get("payload")))
            if event != "update":
                return Parsed([])  # other acks, *.pong
            if channel == self._book_channel:
                r = msg["result"]
                levels = self._levels
                return Parsed([self._book(r["s"], r["U"], r["u"], r.get("full", False), r["t"],
                                          levels(r.get("b", [])), levels(r.get("a", [])), recv_ns)])
            if channel == self._trade_channel:
                result = msg["result"]
                if self.futures:
                    return Parsed([self._futures_trade(t, recv_ns) for t in result])
                return Parsed([self._spot_trade(result, recv_ns)])
            return Parsed([])  # tickers, candles, book_ticker, the other market's channels
        except Exception as exc:  # noqa: BLE001 - a frame must never kill the connection
            return error_parsed(VENUE, f"{type(exc).__name__}: {exc}", frame)

    def _acked(self, payload: object) -> tuple[str, ...]:
        """The book a subscribe ack confirms, where the ack echoes its payload
        (2026 frames do: ``"payload":["BTC_USDT","100ms","100"]``; 2021 ones do not)."""
        if type(payload) is list and payload and type(payload[0]) is str:
            try:
                return (self._wire_pair(payload[0]),)
            except ValueError:
                return ()
        return ()

    def _book(self, symbol: str, first: object, last: object, full: object, t_ms: object,
              bids: list, asks: list, recv_ns: int) -> BookDelta | BookSnapshot:
        first_id, last_id = book_id(first), book_id(last)
        if first_id > last_id:
            raise ValueError(f"U {first_id} after u {last_id}")
        exch_ns = millis_to_ns(t_ms)
        pair = self._wire_pair(symbol)
        if full is True:  # the whole top-N book: replaces ours (docs; a "full" push may recur)
            return BookSnapshot(VENUE, self.market, pair, bids, asks, last_id, exch_ns, recv_ns)
        if full is not False:
            raise ValueError(f"full must be a boolean: {full!r}")
        return BookDelta(VENUE, self.market, pair, bids, asks, first_id, last_id, -1, exch_ns, recv_ns)

    def _spot_trade(self, t: dict, recv_ns: int) -> Trade:
        """``{"id":816995772,"create_time":1619093543,"create_time_ms":"1619093543708.2642",
        "side":"sell","currency_pair":"DIS_USDT","amount":"0.2010000000","price":"121.58"}``;
        ``side`` is the taker's."""
        side = t["side"]
        if side != "buy" and side != "sell":
            raise ValueError(f"unknown taker side {side!r}")
        amount = number(t["amount"])
        if not 0.0 < amount < math.inf:
            raise ValueError(f"trade amount {t['amount']!r}")
        return Trade(VENUE, self.market, self._wire_pair(t["currency_pair"]), price(t["price"]), amount,
                     Side.BUY if side == "buy" else Side.SELL, str(book_id(t["id"])),
                     millis_to_ns(t["create_time_ms"]), recv_ns)

    def _futures_trade(self, t: dict, recv_ns: int) -> Trade:
        """``{"size":-108,"id":27753479,"create_time":1545136464,"create_time_ms":1545136464123,
        "price":"96.4","contract":"BTC_USD"}``: positive size = the taker bought."""
        qty = number(t["size"])
        if qty == 0.0 or not math.isfinite(qty):
            raise ValueError(f"trade size {t['size']!r}")
        return Trade(VENUE, self.market, self._wire_pair(t["contract"]), price(t["price"]), abs(qty),
                     Side.BUY if qty > 0 else Side.SELL, str(book_id(t["id"])),
                     millis_to_ns(t["create_time_ms"]), recv_ns)

    # ------------------------------------------------------------------ REST

    def snapshot_request(self, pair: str, depth: int) -> RestRequest:
        return RestRequest(self.rest_base + self._book_path,
                           {self._book_key: self.symbol(pair), "limit": BOOK_LEVELS, "with_id": "true"},
                           weight=self.limits.snapshot_weight)

    def snapshot_pair(self, url: str) -> str | None:
        """The pair a REST book URL of this market asks for; None for other URLs."""
        parts = urlsplit(url)
        if not parts.path.endswith(self._book_path):
            return None
        symbols = parse_qs(parts.query).get(self._book_key)
        return self.pair(symbols[0]) if symbols else None

    def parse_snapshot(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        """Spot ``{"id":2691446,"current":1623898993123,"update":1623898993121,
        "asks":[["0.00010396","5876.967"]],"bids":[["0.00010322","5360.209"]]}``;
        futures ``{"id":3132789259,"current":1684930166.384,"update":1684930166.35,
        "asks":[{"s":803,"p":"0.2974"}],"bids":[...]}`` (seconds). Without ``id`` (no
        ``with_id=true``) the book cannot be bridged: ValueError, as for an error body
        ``{"label":"INVALID_CURRENCY","message":"..."}``."""
        return self._parse_snapshot_generic(pair, body, recv_ns)

    def _parse_snapshot_generic(self, pair: str, body: str | bytes, recv_ns: int) -> BookSnapshot:
        data = orjson.loads(body)
        if not isinstance(data, dict) or "id" not in data:
            raise ValueError(f"not a book with an id: {str(body)[:200]}")
        current = data.get("current", 0)
        exch_ns = seconds_to_ns(current) if self.futures else millis_to_ns(current)
        return BookSnapshot(VENUE, self.market, pair, self._levels(data["bids"]),
                            self._levels(data["asks"]), book_id(data["id"]), exch_ns, recv_ns)

    _parse_snapshot_typed = _parse_snapshot_generic  # once per resync: one parser is enough

    def sync_rule(self) -> SyncRule:
        """After a REST snapshot with ``id`` B: drop a diff with ``u <= B``; the
        first applied has ``U <= B+1 <= u``; after it each ``U`` is the previous
        ``u`` + 1 (docs "How to maintain local order book"). A ``full: true`` push
        is a snapshot and restarts the chain from its ``u``."""
        return ContiguousIdRule()

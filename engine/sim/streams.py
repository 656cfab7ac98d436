"""Binance's WebSocket market streams and user data streams on the venue.

web-socket-streams.md: raw streams at /ws/<stream>, combined at
/stream?streams=a/b wrapped as {"stream", "data"}; SUBSCRIBE, UNSUBSCRIBE,
LIST_SUBSCRIPTIONS, SET_PROPERTY/GET_PROPERTY "combined"; lower-case
symbols. Streams served: <s>@depth and <s>@depth@100ms (diffs whose U/u
continue the REST lastUpdateId, so the documented local-book recipe works),
<s>@depth5|10|20[@100ms], <s>@trade, <s>@aggTrade, <s>@bookTicker,
<s>@kline_<interval>, <s>@ticker, <s>@miniTicker, and /ws/<listenKey> with
executionReport and outboundAccountPosition (user-data-stream.md).

Runs on the network thread (netloop.WsApp). Other threads only call
``enqueue`` (the exchange's listener), which queues and wakes the loop.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.frames import Frame, Opcode

from engine.sim.exchange import Exchange, Published
from engine.sim.filters import SymbolSpec
from engine.sim.listen_keys import ListenKeys
from engine.sim.market_data import INTERVAL_MS
from engine.sim.netloop import Connection
from engine.sim.periodic import PeriodicStreams
from engine.sim.wire_market import agg_trade_event, book_ticker_event, trade_event
from engine.sim.wire_orders import account_position, execution_report

MAX_STREAMS_PER_CONNECTION = 1024  # web-socket-streams.md, "Websocket Limits"
# How often lapsed listenKeys are looked for: an expired key's stream may run
# this much past its hour; checking more often buys nothing a client can see.
EXPIRY_CHECK_MS = 5_000
_METHODS = "`SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`"
_SIMPLE_KINDS = frozenset({"trade", "aggTrade", "bookTicker", "ticker", "miniTicker", "depth",
                           "depth@100ms"} | {f"depth{n}{speed}" for n in (5, 10, 20)
                                             for speed in ("", "@100ms")}
                          | {f"kline_{interval}" for interval in INTERVAL_MS})


class _KeyClosed(NamedTuple):
    key: str
    reason: str


class StreamHub:
    def __init__(self, exchange: Exchange, specs: dict[str, SymbolSpec],
                 listen_keys: ListenKeys) -> None:
        self.exchange = exchange
        self.specs = specs
        self.by_lower = {symbol.lower(): spec for symbol, spec in specs.items()}
        self.listen_keys = listen_keys
        self.subscribers: dict[str, set[Connection]] = {}
        self.user_keys: dict[str, set[str]] = {}  # account -> subscribed listenKeys
        # accounts with a WebSocket API user data subscription (ws_api.py keeps it)
        self.api_accounts: set[str] = set()
        self._inbox: deque[Published | _KeyClosed] = deque()
        self.periodic = PeriodicStreams(exchange, specs, self.publish, self._has)
        self.wake = lambda: None  # set by the server to NetLoop.wake
        self._next_expiry_check = 0
        listen_keys.on_close.append(self._key_closed)

    # --------------------------------------------------------- any thread

    def enqueue(self, published: Published) -> None:
        self._inbox.append(published)
        self.wake()

    def _key_closed(self, key: str, reason: str) -> None:
        self._inbox.append(_KeyClosed(key, reason))
        self.wake()

    # ------------------------------------------------- network thread only

    def stream_valid(self, name: str) -> bool:
        symbol, sep, kind = name.partition("@")
        if sep and symbol in self.by_lower and kind in _SIMPLE_KINDS:
            return True
        return self.listen_keys.account_of(name, self.exchange.now_ms()) is not None

    def check(self, target: str) -> str | None:
        """/ws/<any name> is accepted (Binance accepts it and waits for SUBSCRIBE;
        ccxt names its sockets that way); combined /stream names must exist."""
        if not urlsplit(target).path.startswith("/stream"):
            return None
        names = self._names_in(target)
        bad = [n for n in names if not self.stream_valid(n)]
        return f"Invalid request: unknown stream name {bad[0]!r}\n" if bad else None

    @staticmethod
    def _names_in(target: str) -> list[str]:
        parts = urlsplit(target)
        if parts.path.startswith("/stream"):
            return [n for raw in parse_qs(parts.query).get("streams", [])
                    for n in raw.split("/") if n]
        return [n for n in parts.path[len("/ws"):].split("/") if n]

    def on_open(self, conn: Connection, target: str) -> None:
        conn.combined = urlsplit(target).path.startswith("/stream")
        for name in self._names_in(target):
            if self.stream_valid(name):  # a name that is no stream subscribes nothing
                self._subscribe(conn, name)

    def on_closed(self, conn: Connection) -> None:
        for name in list(conn.streams):
            self._unsubscribe(conn, name)

    def on_message(self, conn: Connection, data: bytes) -> None:
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._reply(conn, {"code": 3, "msg": "Invalid JSON: expected value at line 1 "
                                                 "column 1"})
            return
        if not isinstance(message, dict) or "method" not in message:
            self._reply(conn, {"code": 2, "msg": "Invalid request: missing field `method`"})
            return
        request_id = message.get("id")
        if not (request_id is None or isinstance(request_id, (int, str))
                and not isinstance(request_id, bool)):
            self._reply(conn, {"code": 2, "msg": "Invalid request: request ID must be an "
                                                 "unsigned integer"})
            return
        method, params = message["method"], message.get("params") or []
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            names = [p for p in params if isinstance(p, str)]
            bad = [n for n in names if not self.stream_valid(n)] + [
                p for p in params if not isinstance(p, str)]
            if bad or len(names) + len(conn.streams) > MAX_STREAMS_PER_CONNECTION \
                    and method == "SUBSCRIBE":
                self._reply(conn, {"code": 2, "msg": f"Invalid request: invalid stream "
                                                     f"name or too many streams {bad}",
                                   "id": request_id})
                return
            for name in names:
                (self._subscribe if method == "SUBSCRIBE" else self._unsubscribe)(conn, name)
            self._reply(conn, {"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(conn, {"result": sorted(conn.streams), "id": request_id})
        elif method in ("SET_PROPERTY", "GET_PROPERTY"):
            self._property(conn, method, params, request_id)
        else:
            self._reply(conn, {"code": 2, "msg": f"Invalid request: unknown variant "
                                                 f"`{method}`, expected one of {_METHODS}",
                               "id": request_id})

    def _property(self, conn: Connection, method: str, params: list, request_id: object) -> None:
        if not params or not isinstance(params[0], str):
            self._reply(conn, {"code": 2, "msg": "Invalid request: property name must be a "
                                                 "string", "id": request_id})
        elif params[0] != "combined":
            self._reply(conn, {"code": 0, "msg": "Unknown property", "id": request_id})
        elif method == "GET_PROPERTY":
            self._reply(conn, {"result": conn.combined, "id": request_id})
        elif len(params) != 2 or not isinstance(params[1], bool):
            self._reply(conn, {"code": 1, "msg": "Invalid value type: expected Boolean"})
        else:
            conn.combined = params[1]
            self._reply(conn, {"result": None, "id": request_id})

    @staticmethod
    def _reply(conn: Connection, payload: dict) -> None:
        conn.send_text(orjson.dumps(payload))

    def _subscribe(self, conn: Connection, name: str) -> None:
        conn.streams.add(name)
        self.subscribers.setdefault(name, set()).add(conn)
        account = None if "@" in name else self.listen_keys.account_of(
            name, self.exchange.now_ms())
        if account is not None:
            self.user_keys.setdefault(account, set()).add(name)
            self.sync_listening()

    def _unsubscribe(self, conn: Connection, name: str) -> None:
        conn.streams.discard(name)
        conns = self.subscribers.get(name)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.subscribers[name]
                for keys in self.user_keys.values():
                    keys.discard(name)
                self.sync_listening()

    def sync_listening(self) -> None:
        listening = {account for account, keys in self.user_keys.items() if keys}
        listening |= self.api_accounts
        with self.exchange.lock:
            self.exchange.listening.clear()
            self.exchange.listening.update(listening)

    def publish(self, stream: str, payload: dict) -> None:
        conns = self.subscribers.get(stream)
        if not conns:
            return
        raw = orjson.dumps(payload)
        raw_frame = wrapped_frame = None
        for conn in list(conns):
            if conn.combined:
                if wrapped_frame is None:
                    wrapped = b'{"stream":"%s","data":%s}' % (stream.encode(), raw)
                    wrapped_frame = Frame(Opcode.TEXT, wrapped).serialize(mask=False)
                conn.send_frame(wrapped_frame)
            else:
                if raw_frame is None:
                    raw_frame = Frame(Opcode.TEXT, raw).serialize(mask=False)
                conn.send_frame(raw_frame)

    def poll(self) -> float:
        """Deliver queued operations, then run due periodic streams; venue time."""
        now_ms = self.exchange.now_ms()
        while self._inbox:
            item = self._inbox.popleft()
            if isinstance(item, _KeyClosed):
                self._end_user_stream(item.key, item.reason)
            else:
                self._deliver(item)
        if now_ms >= self._next_expiry_check:
            self._next_expiry_check = now_ms + EXPIRY_CHECK_MS
            self.listen_keys.expire(now_ms)  # closes come back through the inbox
        return self.periodic.poll(now_ms)

    def _has(self, stream: str) -> bool:
        return stream in self.subscribers

    def _end_user_stream(self, key: str, reason: str) -> None:
        if reason == "expired":
            self.publish(key, {"e": "listenKeyExpired", "E": self.exchange.now_ms(),
                               "listenKey": key})
        for conn in list(self.subscribers.get(key, ())):
            conn.close_ws(1000, f"listenKey {reason}")

    def _deliver(self, item: Published) -> None:
        spec = self.specs[item.symbol]
        lower = item.symbol.lower()
        now = item.time_ms
        for trade in item.result.trades:
            self.publish(f"{lower}@trade", trade_event(spec, trade, now))
        for agg in item.agg_trades:
            self.publish(f"{lower}@aggTrade", agg_trade_event(spec, agg, now))
        if item.top is not None:
            self.publish(f"{lower}@bookTicker", book_ticker_event(spec, item.top))
        if not self.user_keys:
            return
        for execution in item.result.executions:
            for key in self.user_keys.get(execution.order.account, ()):
                self.publish(key, execution_report(execution, spec, now))
        for account, positions in item.positions.items():
            for key in self.user_keys.get(account, ()):
                self.publish(key, account_position(positions, spec.amount_decimals, now))

"""USD-M WebSocket market streams and user data streams, plus routing of
/ws-fapi/v1 connections to the WebSocket API (ws_api.py).

Paths (USD-M "Important WebSocket Change Notice", 2026 split by traffic):
/public/ws|stream (depth, bookTicker), /market/ws|stream (aggTrade, trade,
markPrice, kline, ticker), /private/ws?listenKey=<key> or /private/ws/<key>
(user data). A stream on the wrong routed path is accepted and never
delivered, as Binance does. The legacy root /ws/<names> and
/stream?streams= still serve everything here (Binance: public data only). Diff depth events carry ``pu`` (the previous event's ``u`` on
that stream), cut from the book every 100 ms whether or not anyone listens,
so ``pu == previous u`` holds for every cadence (100 ms, 250 ms, 500 ms).
Network thread only, except ``wake``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import orjson
from websockets.frames import Frame, Opcode

from engine.sim.exchange import Published
from engine.sim.filters import SymbolSpec
from engine.sim.market_data import INTERVAL_MS
from engine.sim.netloop import Connection
from engine.sim.usdm.wire import price_text, qty_text, wire_symbol
from engine.sim.wire_market import kline_event, ticker_event

if TYPE_CHECKING:
    from engine.sim.usdm.service import UsdmDialect

MAX_STREAMS_PER_CONNECTION = 1024
CUT_MS = 100
DIFF_SPEEDS = {"@100ms": 100, "": 250, "@500ms": 500}  # stream suffix -> cadence
MARK_SPEEDS = {"": 3000, "@1s": 1000}
SLOW_MS = 1000
_KINDS = ({"aggTrade", "trade", "bookTicker", "ticker", "miniTicker", "forceOrder"}
          | {f"depth{s}" for s in DIFF_SPEEDS} | {f"markPrice{s}" for s in MARK_SPEEDS}
          | {f"depth{n}{s}" for n in (5, 10, 20) for s in DIFF_SPEEDS}
          | {f"kline_{i}" for i in INTERVAL_MS if i != "1s"})


def routes_of(name: str) -> tuple[str, ...]:
    """Which routed paths carry a stream (the 2026 split): depth and
    bookTicker on /public, everything else on /market. The raw ``@trade``
    stream is served on both: /work/shared/protocols puts it on /market, while
    ccxt's current release (4.5.90, ``get_future_ws_category``) subscribes it
    on /public, and the venue must serve that client unchanged."""
    kind = name.partition("@")[2]
    if kind == "trade":
        return ("public", "market")
    return ("public",) if kind.startswith("depth") or kind == "bookTicker" else ("market",)


class _Diff:
    __slots__ = ("first", "last", "bids", "asks", "previous", "due")

    def __init__(self, previous: int) -> None:
        self.first = 0
        self.last = 0
        self.previous = previous  # u of the last event sent (or due) on this cadence
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.due = 0


class UsdmHub:
    def __init__(self, dialect: UsdmDialect) -> None:
        self.dialect = dialect
        self.exchange = dialect.exchange
        self.by_lower = {symbol.lower(): spec for symbol, spec in dialect.specs.items()}
        self.subscribers: dict[str, set[Connection]] = {}
        self.user_conns: dict[str, set[Connection]] = {}  # account -> connections
        self.conn_account: dict[Connection, tuple[str, str]] = {}  # -> account, listenKey
        self.wake = lambda: None
        self.diffs: dict[tuple[str, int], _Diff] = {}
        self.next_cut = self.next_slow = self.next_tick = 0
        self.next_mark = dict.fromkeys(MARK_SPEEDS.values(), 0)
        self.marks: list[dict] = []
        from engine.sim.usdm.ws_api import WsApi  # it needs the hub
        self.api = WsApi(dialect, self)
        self.api_conns: set[Connection] = set()
        # connection -> "public" | "market" | "private" | "" (legacy root: all)
        self.routes: dict[Connection, str] = {}

    # ------------------------------------------------------------- routing

    def valid(self, name: str) -> bool:
        symbol, sep, kind = name.partition("@")
        if symbol in ("!markprice", "!markPrice") and kind in ("arr", "arr@1s"):
            return True
        return bool(sep) and symbol in self.by_lower and kind in _KINDS

    @staticmethod
    def _names(target: str) -> tuple[str, list[str], str | None]:
        """(kind, stream names, listenKey) of a handshake target."""
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query)
        if path.startswith("/ws-fapi"):
            return "api", [], None
        for prefix in ("/public", "/market", "/private"):
            if path.startswith(prefix):
                path = path[len(prefix):]
        keys = query.get("listenKey") or []
        key = keys[0] if keys else None
        if path.startswith("/stream"):
            names = [n for raw in query.get("streams", []) for n in raw.split("/") if n]
            return "combined", names, key
        return "raw", [n for n in path[len("/ws"):].split("/") if n], key

    def check(self, target: str) -> str | None:
        kind, names, key = self._names(target)
        now = self.exchange.now_ms()
        keys = self.dialect.listen_keys
        if key is not None and keys.account_of(key, now) is None:
            return "Invalid listenKey\n"
        return None  # like Binance, any other name in the path is accepted (and ignored)

    def on_open(self, conn: Connection, target: str) -> None:
        kind, names, key = self._names(target)
        if kind == "api":
            self.api_conns.add(conn)
            return
        conn.combined = kind == "combined"
        path = urlsplit(target).path
        self.routes[conn] = next((r for r in ("public", "market", "private")
                                  if path.startswith(f"/{r}")), "")
        now = self.exchange.now_ms()
        for name in names + [key for key in (key,) if key]:
            account = self.dialect.listen_keys.account_of(name, now)
            if account is not None:
                self.attach_user(conn, account, name)
            elif self.valid(name):
                self._subscribe(conn, name)

    def on_closed(self, conn: Connection) -> None:
        self.api_conns.discard(conn)
        self.routes.pop(conn, None)
        self.api.forget(conn)
        for name in list(conn.streams):
            self._unsubscribe(conn, name)
        attached = self.conn_account.pop(conn, None)
        if attached is not None:
            self.detach_user(conn, attached[0])

    def attach_user(self, conn: Connection, account: str, key: str) -> None:
        self.conn_account[conn] = (account, key)
        self.user_conns.setdefault(account, set()).add(conn)
        self.dialect.listening.add(account)

    def detach_user(self, conn: Connection, account: str) -> None:
        conns = self.user_conns.get(account)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                self.dialect.listening.discard(account)

    def on_message(self, conn: Connection, data: bytes) -> None:
        if conn in self.api_conns:
            self.api.on_message(conn, data)
            return
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self._reply(conn, {"code": 3, "msg": "Invalid JSON"})
            return
        if not isinstance(message, dict) or "method" not in message:
            self._reply(conn, {"code": 2, "msg": "Invalid request: missing field `method`"})
            return
        request_id, method = message.get("id"), message["method"]
        params = message.get("params") or []
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            now = self.exchange.now_ms()
            names = [p for p in params if isinstance(p, str)]
            bad = [n for n in names if not self.valid(n)
                   and self.dialect.listen_keys.account_of(n, now) is None]
            if bad or len(names) != len(params) or (
                    method == "SUBSCRIBE"
                    and len(names) + len(conn.streams) > MAX_STREAMS_PER_CONNECTION):
                self._reply(conn, {"code": 2, "msg": f"Invalid request: invalid stream name "
                                                     f"{bad}", "id": request_id})
                return
            for name in names:
                account = self.dialect.listen_keys.account_of(name, now)
                if account is not None:
                    if method == "SUBSCRIBE":
                        self.attach_user(conn, account, name)
                    else:
                        self.detach_user(conn, account)
                elif method == "SUBSCRIBE":
                    self._subscribe(conn, name)
                else:
                    self._unsubscribe(conn, name)
            self._reply(conn, {"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            self._reply(conn, {"result": sorted(conn.streams), "id": request_id})
        elif method in ("SET_PROPERTY", "GET_PROPERTY") and params and params[0] == "combined":
            if method == "SET_PROPERTY" and len(params) == 2 and isinstance(params[1], bool):
                conn.combined = params[1]
                self._reply(conn, {"result": None, "id": request_id})
            else:
                self._reply(conn, {"result": conn.combined, "id": request_id})
        else:
            self._reply(conn, {"code": 2, "msg": f"Invalid request: unknown variant "
                                                 f"`{method}`", "id": request_id})

    @staticmethod
    def _reply(conn: Connection, payload: dict) -> None:
        conn.send_text(orjson.dumps(payload))

    def _subscribe(self, conn: Connection, name: str) -> None:
        name = name.replace("!markprice", "!markPrice")
        conn.streams.add(name)
        route = self.routes.get(conn, "")
        if route and route not in routes_of(name):
            return  # accepted but never delivered on the wrong path, as Binance does
        self.subscribers.setdefault(name, set()).add(conn)

    def _unsubscribe(self, conn: Connection, name: str) -> None:
        conn.streams.discard(name)
        conns = self.subscribers.get(name)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.subscribers[name]

    # -------------------------------------------------------- publishing

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

    def send_user(self, account: str, payload: dict) -> None:
        conns = self.user_conns.get(account)
        if conns:
            raw = orjson.dumps(payload)
            for conn in list(conns):
                if conn in self.api_conns:
                    conn.send_text(orjson.dumps({"subscriptionId": 0, "event": payload}))
                elif conn.combined:
                    key = self.conn_account[conn][1]
                    conn.send_text(b'{"stream":"%s","data":%s}' % (key.encode(), raw))
                else:
                    conn.send_text(raw)

    def poll(self) -> float:
        now = self.exchange.now_ms()
        outbox = self.dialect.outbox
        while outbox:
            account, item = outbox.popleft()
            if isinstance(item, Published):
                self._deliver(item)
            else:
                self.send_user(account, item)
        if now >= self.next_tick:
            self.next_tick = now + self.dialect.config.mark_interval_ms
            self.marks = self.dialect.tick()
            while outbox:  # what the tick produced (liquidations, funding, calls)
                account, item = outbox.popleft()
                if isinstance(item, Published):
                    self._deliver(item)
                else:
                    self.send_user(account, item)
        for speed, every in MARK_SPEEDS.items():
            if now >= self.next_mark[every]:
                self.next_mark[every] = (now // every + 1) * every
                self._marks(speed)
        if now >= self.next_cut:
            self.next_cut = (now // CUT_MS + 1) * CUT_MS
            self._cut(now)
        if now >= self.next_slow:
            self.next_slow = (now // SLOW_MS + 1) * SLOW_MS
            self._slow(now)
        self.api.expire(now)
        due = min(self.next_cut, self.next_slow, self.next_tick, *self.next_mark.values())
        return max(0.0, (due - now) / 1000)

    def _marks(self, speed: str) -> None:
        if self.subscribers.get(f"!markPrice@arr{speed}"):
            self.publish(f"!markPrice@arr{speed}", self.marks)  # type: ignore[arg-type]
        for payload in self.marks:
            self.publish(f"{payload['s'].lower()}@markPrice{speed}", payload)

    def _deliver(self, item: Published) -> None:
        spec = self.exchange.engine.specs[item.symbol]
        lower = wire_symbol(spec).lower()
        for t in item.result.trades:
            self.publish(f"{lower}@trade", {
                "e": "trade", "E": item.time_ms, "T": t.time_ms, "s": wire_symbol(spec),
                "t": t.trade_id, "p": price_text(spec, t.price), "q": qty_text(spec, t.qty),
                "X": "MARKET", "m": t.buyer_is_maker})
        for a in item.agg_trades:
            self.publish(f"{lower}@aggTrade", {
                "e": "aggTrade", "E": item.time_ms, "a": a.agg_id, "s": wire_symbol(spec),
                "p": price_text(spec, a.price), "q": qty_text(spec, a.qty),
                "nq": qty_text(spec, a.qty), "f": a.first_trade_id, "l": a.last_trade_id,
                "T": a.time_ms, "m": a.buyer_is_maker})
        if item.top is not None:
            top = item.top
            self.publish(f"{lower}@bookTicker", {
                "e": "bookTicker", "u": top.update_id, "E": item.time_ms, "T": item.time_ms,
                "s": wire_symbol(spec), "b": price_text(spec, top.bid_price),
                "B": qty_text(spec, top.bid_qty), "a": price_text(spec, top.ask_price),
                "A": qty_text(spec, top.ask_qty)})

    def _cut(self, now: int) -> None:
        for spec in self.dialect.specs.values():
            internal = spec.symbol
            diff = self.exchange.take_depth_diff(internal)
            for speed, every in DIFF_SPEEDS.items():
                state = self.diffs.get((internal, every))
                if state is None:
                    state = self.diffs[(internal, every)] = _Diff(0)
                if diff is not None:
                    first, last, bids, asks = diff
                    if not state.first:
                        state.first = first
                    state.last = last
                    state.bids.update(bids)
                    state.asks.update(asks)
                if now >= state.due:
                    state.due = (now // every + 1) * every
                    self._flush(spec, speed, state, now)
                    self._partials(spec, speed, now)

    def _flush(self, spec: SymbolSpec, speed: str, state: _Diff, now: int) -> None:
        if not state.first:
            return
        stream = f"{wire_symbol(spec).lower()}@depth{speed}"
        if self.subscribers.get(stream):
            self.publish(stream, {
                "e": "depthUpdate", "E": now, "T": now, "s": wire_symbol(spec),
                "U": state.first, "u": state.last, "pu": state.previous,
                "b": [[price_text(spec, p), qty_text(spec, q)]
                      for p, q in sorted(state.bids.items(), reverse=True)],
                "a": [[price_text(spec, p), qty_text(spec, q)]
                      for p, q in sorted(state.asks.items())]})
        state.previous = state.last
        state.first = 0
        state.bids, state.asks = {}, {}

    def _partials(self, spec: SymbolSpec, speed: str, now: int) -> None:
        lower = wire_symbol(spec).lower()
        wanted = [n for n in (5, 10, 20) if self.subscribers.get(f"{lower}@depth{n}{speed}")]
        if not wanted:
            return
        update_id, bids, asks = self.exchange.depth(spec.symbol, max(wanted))
        for n in wanted:
            self.publish(f"{lower}@depth{n}{speed}", {
                "e": "depthUpdate", "E": now, "T": now, "s": wire_symbol(spec),
                "U": update_id, "u": update_id, "pu": update_id,
                "b": [[price_text(spec, p), qty_text(spec, q)] for p, q in bids[:n]],
                "a": [[price_text(spec, p), qty_text(spec, q)] for p, q in asks[:n]]})

    def _slow(self, now: int) -> None:
        for symbol, spec in self.dialect.specs.items():
            lower = symbol.lower()
            if self.subscribers.get(f"{lower}@ticker") or self.subscribers.get(
                    f"{lower}@miniTicker"):
                ticker, top = self.exchange.read(lambda ex, s=spec: (  # type: ignore[misc]
                    ex.markets[s.symbol].ticker(now), ex.book_top(s.symbol)))
                payload: dict[str, Any] = ticker_event(spec, ticker, top, now)
                payload["s"] = symbol
                self.publish(f"{lower}@ticker", payload)
                self.publish(f"{lower}@miniTicker", {
                    k: payload[k] for k in ("E", "s", "c", "o", "h", "l", "v", "q")} | {
                    "e": "24hrMiniTicker"})
            for interval in INTERVAL_MS:
                stream = f"{lower}@kline_{interval}"
                if not self.subscribers.get(stream):
                    continue
                recent = self.exchange.read(
                    lambda ex, s=spec.symbol, i=interval: ex.markets[s].klines_between(  # type: ignore[misc]
                        i, None, None, 1, now))
                if recent:
                    payload = kline_event(spec, interval, recent[-1], False, now)
                    payload["s"] = payload["k"]["s"] = symbol
                    self.publish(stream, payload)

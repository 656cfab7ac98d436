"""Bybit v5 WebSockets on the dialect's port: public streams
(/v5/public/spot, /v5/public/linear: orderbook.<depth>.<symbol>,
publicTrade.<symbol>, tickers.<symbol>), the private stream (/v5/private:
auth, then order, execution, position, wallet) and the trade WebSocket
(/v5/trade: auth, then order.create / order.cancel). Network thread only,
except ``wake``.

Books (docs/v5/websocket/public/orderbook): the first message after a
subscribe is a ``snapshot``, then ``delta``s with absolute sizes ("0"
deletes) and ``u`` + 1 per message; ``seq`` is the book's cross sequence.
One view per topic is kept as sent, and each cadence the topic's top levels
are compared with it, so a level that leaves the top N is deleted and every
subscriber applies the same chain. Depth 1 is snapshots only.
"""

from __future__ import annotations

import uuid
from collections import deque
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson

from engine.sim.bybit import ws_trade
from engine.sim.bybit.errors import LINEAR, SPOT, BybitError
from engine.sim.bybit.rest_market import ticker_json
from engine.sim.bybit.wire import price_text, qty_text, trade_id_text, wire_symbol
from engine.sim.exchange import Published
from engine.sim.filters import SymbolSpec
from engine.sim.netloop import Connection

if TYPE_CHECKING:
    from engine.sim.bybit.service import BybitDialect

PUBLIC_PATHS = {"/v5/public/spot": SPOT, "/v5/public/linear": LINEAR}
PRIVATE_PATH, TRADE_PATH = "/v5/private", "/v5/trade"
# Depth -> push cadence (ms) from the orderbook page: 1 every 10 ms, 50 every
# 20 ms, 200 every 100 ms, 1000 every 200 ms. Depth 1 runs at 20 ms here: a
# faster cut costs the network thread more than any client gains locally.
BOOK_CADENCE_MS = {1: 20, 50: 20, 200: 100, 1000: 200}
TICK_MS = 20
TICKER_MS = 100  # linear tickers push every 100 ms (spot 50 ms)
SPOT_MAX_ARGS = 10  # "spot can input up to 10 args for each subscription request"
PRIVATE_TOPICS = {"order", "execution", "position", "wallet", "order.spot", "order.linear",
                  "execution.spot", "execution.linear", "position.linear"}
_TICKS = ("PlusTick", "ZeroPlusTick", "MinusTick", "ZeroMinusTick")


class Session:
    __slots__ = ("kind", "category", "conn_id", "account", "topics", "req_ids")

    def __init__(self, kind: str, category: str) -> None:
        self.kind = kind  # "public" | "private" | "trade"
        self.category = category
        self.conn_id = str(uuid.uuid4())
        self.account = ""
        self.topics: set[str] = set()
        self.req_ids: deque[str] = deque(maxlen=ws_trade.REQ_IDS_KEPT)


class _Book:
    __slots__ = ("category", "spec", "depth", "u", "bids", "asks", "subscribers", "due")

    def __init__(self, category: str, spec: SymbolSpec, depth: int, u: int) -> None:
        self.category, self.spec, self.depth, self.u = category, spec, depth, u
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        self.subscribers: set[Connection] = set()
        self.due = 0


def _send(conn: Connection, payload: Any) -> None:
    conn.send_text(orjson.dumps(payload))


class BybitHub:
    def __init__(self, dialect: BybitDialect) -> None:
        self.dialect = dialect
        self.ctx = dialect.ctx
        self.exchange = dialect.exchange
        self.sessions: dict[Connection, Session] = {}
        # public topics are keyed "<category>|<topic>": spot and linear share names
        self.books: dict[str, _Book] = {}  # key -> view as sent
        self.last_u: dict[str, int] = {}  # key -> u when its last subscriber left
        self.subscribers: dict[str, set[Connection]] = {}  # trade and ticker keys
        self.private: dict[str, set[Connection]] = {}  # account -> authenticated streams
        self.tickers_sent: dict[str, dict] = {}
        self.last_trade: dict[str, tuple[int, int]] = {}  # symbol -> (price, tick index)
        self.wake = lambda: None
        self.next_tick = self.next_ticker = 0
        self.pushed = 0  # private messages sent (their ids)

    # ------------------------------------------------------------- routing

    def check(self, target: str) -> str | None:
        path = urlsplit(target).path.rstrip("/")
        if path in PUBLIC_PATHS or path in (PRIVATE_PATH, TRADE_PATH):
            return None
        return "Not Found"

    def on_open(self, conn: Connection, target: str) -> None:
        path = urlsplit(target).path.rstrip("/")
        if path in PUBLIC_PATHS:
            self.sessions[conn] = Session("public", PUBLIC_PATHS[path])
        else:
            self.sessions[conn] = Session("private" if path == PRIVATE_PATH else "trade", "")

    def on_closed(self, conn: Connection) -> None:
        session = self.sessions.pop(conn, None)
        if session is None:
            return
        for topic in list(session.topics):
            self._drop(conn, session, topic)
        if session.account:
            conns = self.private.get(session.account)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self.private[session.account]
                    self.dialect.listening.discard(session.account)

    def on_message(self, conn: Connection, data: bytes) -> None:
        session = self.sessions.get(conn)
        if session is None:
            return
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            message = None
        if not isinstance(message, dict):
            _send(conn, {"success": False, "ret_msg": "error:invalid message",
                         "conn_id": session.conn_id, "op": ""})
            return
        op = message.get("op")
        if session.kind == "trade":
            ws_trade.handle(self, conn, session, message)
        elif op == "ping":
            self.pong(conn, session, message)
        elif op == "auth" and session.kind == "private":
            self._auth(conn, session, message)
        elif op in ("subscribe", "unsubscribe"):
            self._subscription(conn, session, message, op)
        else:
            _send(conn, {"success": False, "ret_msg": f"error:unknown op {op!r}",
                         "conn_id": session.conn_id, "req_id": message.get("req_id", ""),
                         "op": op or ""})

    def pong(self, conn: Connection, session: Session, message: dict) -> None:
        if session.kind == "public":  # public: {"success":true,"ret_msg":"pong",...}
            _send(conn, {"success": True, "ret_msg": "pong", "conn_id": session.conn_id,
                         "req_id": message.get("req_id", ""), "op": "ping"})
        else:  # private and trade: {"op":"pong","args":["<ms>"],...}
            _send(conn, {"req_id": message.get("req_id", ""), "op": "pong",
                         "args": [str(self.exchange.now_ms())], "conn_id": session.conn_id})

    def authenticate(self, session: Session, conn: Connection, args: Any) -> None:
        account = self.ctx.check_ws_auth(args if isinstance(args, list) else [],
                                         self.exchange.now_ms())
        session.account = account.name
        if session.kind == "private":
            self.private.setdefault(account.name, set()).add(conn)
            with self.exchange.lock:  # the listener reads it under the lock
                self.dialect.listening.add(account.name)

    def _auth(self, conn: Connection, session: Session, message: dict) -> None:
        reply = {"req_id": message.get("req_id", ""), "op": "auth",
                 "conn_id": session.conn_id}
        try:
            self.authenticate(session, conn, message.get("args"))
        except BybitError as exc:
            _send(conn, reply | {"success": False, "ret_msg": exc.msg})
            return
        _send(conn, reply | {"success": True, "ret_msg": ""})

    # ------------------------------------------------------ subscriptions

    def _valid(self, session: Session, topic: str) -> bool:
        if session.kind == "private":
            return topic in PRIVATE_TOPICS
        kind, _, rest = topic.partition(".")
        specs = self.ctx.specs(session.category)
        if kind == "orderbook":
            depth, _, symbol = rest.partition(".")
            return depth.isdigit() and int(depth) in BOOK_CADENCE_MS and symbol in specs
        return kind in ("publicTrade", "tickers") and rest in specs

    def _subscription(self, conn: Connection, session: Session, message: dict,
                      op: str) -> None:
        args = message.get("args")
        reply = {"conn_id": session.conn_id, "req_id": message.get("req_id", ""), "op": op}
        if session.kind == "private" and not session.account:
            _send(conn, reply | {"success": False, "ret_msg": "Request not authorized"})
            return
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            _send(conn, reply | {"success": False, "ret_msg": "error:args must be a list"})
            return
        if session.kind == "public" and session.category == SPOT and len(args) > SPOT_MAX_ARGS:
            _send(conn, reply | {"success": False, "ret_msg": "args size >10"})
            return
        bad = [t for t in args if not self._valid(session, t)]
        if op == "subscribe":
            bad += [t for t in args if t in session.topics]
        if bad:
            why = "handler not found" if not self._valid(session, bad[0]) else "already subscribed"
            _send(conn, reply | {"success": False, "ret_msg": f"error:{why},topic:{bad[0]}"})
            return
        _send(conn, reply | {"success": True,
                             "ret_msg": "subscribe" if op == "subscribe" and
                             session.kind == "public" else ""})
        for topic in args:
            if op == "unsubscribe":
                self._drop(conn, session, topic)
                continue
            session.topics.add(topic)
            if session.kind == "private":
                continue
            if topic.startswith("orderbook."):
                self._join_book(conn, session.category, topic)
            else:
                self.subscribers.setdefault(f"{session.category}|{topic}", set()).add(conn)
                if topic.startswith("tickers."):
                    self._ticker_snapshot(conn, session.category, topic)

    def _drop(self, conn: Connection, session: Session, topic: str) -> None:
        session.topics.discard(topic)
        key = f"{session.category}|{topic}"
        book = self.books.get(key)
        if book is not None:
            book.subscribers.discard(conn)
            if not book.subscribers:
                self.last_u[key] = book.u
                del self.books[key]
        conns = self.subscribers.get(key)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.subscribers[key]

    # -------------------------------------------------------------- books

    def _join_book(self, conn: Connection, category: str, topic: str) -> None:
        key = f"{category}|{topic}"
        book = self.books.get(key)
        if book is None:
            _, depth, symbol = topic.split(".")
            spec = self.ctx.specs(category)[symbol]
            book = self.books[key] = _Book(category, spec, int(depth),
                                           self.last_u.get(key, 0) + 1)
            _, bids, asks = self.exchange.depth(spec.symbol, book.depth)
            book.bids, book.asks = dict(bids), dict(asks)
        book.subscribers.add(conn)
        seq = self.exchange.read(lambda ex: ex.engine.books[book.spec.symbol].update_id)
        _send(conn, self._book_message(book, topic, "snapshot", sorted(book.bids.items(),
                                       reverse=True), sorted(book.asks.items()), seq))

    def _book_message(self, book: _Book, topic: str, kind: str, bids: list, asks: list,
                      seq: int) -> dict:
        """``{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":..,"data":{"s":"BTCUSDT",
        "b":[["30000.00","0.5"]],"a":[],"u":12,"seq":345},"cts":..}``"""
        spec, now = book.spec, self.exchange.now_ms()
        return {"topic": topic, "type": kind, "ts": now, "data": {
            "s": wire_symbol(spec),
            "b": [[price_text(spec, p), qty_text(spec, q)] for p, q in bids],
            "a": [[price_text(spec, p), qty_text(spec, q)] for p, q in asks],
            "u": book.u, "seq": seq}, "cts": now}

    def _cut(self, now: int) -> None:
        for key, book in list(self.books.items()):
            topic = key.partition("|")[2]
            if now < book.due:
                continue
            book.due = now + BOOK_CADENCE_MS[book.depth]
            seq, bids, asks = self.exchange.depth(book.spec.symbol, book.depth)
            new_bids, new_asks = dict(bids), dict(asks)
            if book.depth == 1:
                if new_bids == book.bids and new_asks == book.asks:
                    continue
                book.bids, book.asks, book.u = new_bids, new_asks, book.u + 1
                self._publish_book(book, self._book_message(book, topic, "snapshot", bids,
                                                            asks, seq))
                continue
            bid_changes = _changes(book.bids, new_bids)
            ask_changes = _changes(book.asks, new_asks)
            if not bid_changes and not ask_changes:
                continue
            book.bids, book.asks, book.u = new_bids, new_asks, book.u + 1
            self._publish_book(book, self._book_message(
                book, topic, "delta", sorted(bid_changes, reverse=True), sorted(ask_changes),
                seq))

    @staticmethod
    def _publish_book(book: _Book, payload: dict) -> None:
        raw = orjson.dumps(payload)
        for conn in list(book.subscribers):
            conn.send_text(raw)

    # ------------------------------------------------------ trades, tickers

    def _trades(self, published: Published) -> None:
        served = self.ctx.by_internal.get(published.symbol)
        if served is None:
            return
        category, spec = served
        topic = f"publicTrade.{wire_symbol(spec)}"
        conns = self.subscribers.get(f"{category}|{topic}")
        rows = []
        for t in published.result.trades:
            tick = self._tick(spec.symbol, t.price)
            if conns:
                rows.append({"T": t.time_ms, "s": wire_symbol(spec),
                             "S": "Sell" if t.buyer_is_maker else "Buy",
                             "v": qty_text(spec, t.qty), "p": price_text(spec, t.price),
                             "L": _TICKS[tick], "i": trade_id_text(category, spec.symbol,
                                                                   t.trade_id),
                             "BT": False, "RPI": False, "seq": t.trade_id})
        if rows and conns:
            raw = orjson.dumps({"topic": topic, "type": "snapshot", "ts": published.time_ms,
                                "data": rows})
            for conn in list(conns):
                conn.send_text(raw)

    def _tick(self, symbol: str, price: int) -> int:
        previous = self.last_trade.get(symbol)
        if previous is None:
            tick = 1
        elif price > previous[0]:
            tick = 0
        elif price < previous[0]:
            tick = 2
        else:
            tick = 1 if previous[1] in (0, 1) else 3
        self.last_trade[symbol] = (price, tick)
        return tick

    def _ticker_row(self, category: str, topic: str) -> dict:
        spec = self.ctx.specs(category)[topic.partition(".")[2]]
        now = self.exchange.now_ms()
        return self.exchange.read(lambda ex: ticker_json(self.ctx, ex, category, spec, now))

    def _ticker_snapshot(self, conn: Connection, category: str, topic: str) -> None:
        row = self._ticker_row(category, topic)
        _send(conn, {"topic": topic, "type": "snapshot", "ts": self.exchange.now_ms(),
                     "cs": 0, "data": row})

    def _tickers(self, now: int) -> None:
        for key, conns in list(self.subscribers.items()):
            category, _, topic = key.partition("|")
            if not topic.startswith("tickers.") or not conns:
                continue
            row = self._ticker_row(category, topic)
            if self.tickers_sent.get(key) == row:
                continue
            self.tickers_sent[key] = row
            raw = orjson.dumps({"topic": topic, "type": "snapshot", "ts": now, "cs": 0,
                                "data": row})
            for conn in list(conns):
                conn.send_text(raw)

    # ------------------------------------------------------------ private

    def _deliver_private(self, account: str, topic: str, rows: list, now: int) -> None:
        for conn in list(self.private.get(account, ())):
            session = self.sessions.get(conn)
            if session is None:
                continue
            chosen = rows if topic in session.topics else [
                r for r in rows if f"{topic}.{r.get('category', '')}" in session.topics]
            if chosen:
                self.pushed += 1  # ids must be unique: clients may drop repeats by id
                _send(conn, {"id": f"{session.conn_id}-{self.pushed}", "topic": topic,
                             "creationTime": now, "data": chosen})

    # --------------------------------------------------------------- poll

    def poll(self) -> float:
        now = self.exchange.now_ms()
        outbox = self.dialect.outbox
        while outbox:
            account, item, rows = outbox.popleft()
            if isinstance(item, Published):
                self._trades(item)
            else:
                self._deliver_private(account, item, rows, now)
        if now >= self.next_tick:
            self.next_tick = now + TICK_MS
            self._cut(now)
        if now >= self.next_ticker:
            self.next_ticker = now + TICKER_MS
            self._tickers(now)
        return max(0.0, (min(self.next_tick, self.next_ticker) - now) / 1000)


def _changes(old: dict[int, int], new: dict[int, int]) -> list[tuple[int, int]]:
    changed = [(p, q) for p, q in new.items() if old.get(p) != q]
    changed += [(p, 0) for p in old if p not in new]
    return changed

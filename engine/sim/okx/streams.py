"""OKX v5 WebSockets: /ws/v5/public (books, books5, trades, tickers,
mark-price, funding-rate) here, /ws/v5/private in private.py; text
``ping``/``pong``; one ``subscribe`` event per argument.

``books``: a snapshot (prevSeqId -1) on subscribe, then every 100 ms an update
with the levels that changed in the top 400 (size "0" deletes), ``seqId`` =
the core book's update id and ``prevSeqId`` = the previous message's seqId; a
second without change sends an empty keepalive (seqId == prevSeqId). Every
subscriber of an instrument shares one published state, so the snapshot a
late subscriber gets chains to the next update. ``checksum`` is 0 (OKX since
2026-06-23) unless venue.okx.checksum is on: then the signed CRC32 of the top
25 levels, interleaved, over the strings sent. Network thread only, except wake.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from loguru import logger

from engine.sim.exchange import Published
from engine.sim.netloop import Connection
from engine.sim.okx import errors as e
from engine.sim.okx.rest_market import funding_json, mark_json, ticker_json
from engine.sim.okx.wire import SWAP, Instrument, px, sz

if TYPE_CHECKING:
    from engine.sim.okx.service import OkxDialect

log = logger.bind(component="venue")
BOOK_DEPTH = 400  # the ``books`` channel's depth
CUT_MS = 100  # books/books5/tickers cadence (OKX: 100 ms)
KEEPALIVE_MS = 1000  # an unchanged book sends an empty update this often
MARK_MS = 1000  # mark-price cadence, and the derivatives tick when the dialect owns it
FUNDING_MS = 10_000  # funding-rate cadence (OKX: 30-90 s)
CHECKSUM_LEVELS = 25
PUBLIC_CHANNELS = {"books", "books5", "trades", "tickers", "mark-price", "funding-rate"}
SWAP_ONLY = {"mark-price", "funding-rate"}


def checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    parts = []
    for i in range(CHECKSUM_LEVELS):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class BookState:
    """The ``books`` channel of one instrument as last published."""

    __slots__ = ("seq", "bids", "asks", "sent_ms")

    def __init__(self, seq: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]],
                 now_ms: int) -> None:
        self.seq = seq
        self.bids = dict(bids)
        self.asks = dict(asks)
        self.sent_ms = now_ms


def _diff(old: dict[int, int], new: dict[int, int]) -> list[tuple[int, int]]:
    changed = [(p, q) for p, q in new.items() if old.get(p) != q]
    changed += [(p, 0) for p in old if p not in new]
    return changed


class OkxStreams:
    def __init__(self, dialect: OkxDialect) -> None:
        from engine.sim.okx.private import PrivateHub
        self.dialect = dialect
        self.exchange = dialect.exchange
        self.wake = lambda: None
        self.kinds: dict[Connection, str] = {}  # -> "public" | "private" | "business"
        self.subscribers: dict[tuple[str, str], set[Connection]] = {}
        self.books: dict[str, BookState] = {}
        self.tops: dict[tuple[str, str], Any] = {}  # last books5/tickers sent, per instrument
        self.private = PrivateHub(dialect, self)
        self.next_cut = self.next_mark = self.next_funding = 0
        self.conn_ids = 0
        self.swallowed = 0  # requests that failed inside the venue (logged)

    # ------------------------------------------------------------- WsApp

    def check(self, target: str) -> str | None:
        path = urlsplit(target).path.rstrip("/")
        if path not in ("/ws/v5/public", "/ws/v5/private", "/ws/v5/business"):
            return "Wrong URL\n"
        return None

    def on_open(self, conn: Connection, target: str) -> None:
        self.kinds[conn] = urlsplit(target).path.rstrip("/").rsplit("/", 1)[-1]
        self.conn_ids += 1
        conn.okx_conn_id = f"{self.conn_ids:08x}"  # type: ignore[attr-defined]

    def on_closed(self, conn: Connection) -> None:
        self.kinds.pop(conn, None)
        for key in list(conn.streams):
            self._drop(conn, key)
        self.private.forget(conn)

    def on_message(self, conn: Connection, data: bytes) -> None:
        if data == b"ping":
            conn.send_text(b"pong")
            return
        try:
            message = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.error(conn, e.WS_ILLEGAL[0], f"Invalid request: {data[:100]!r}")
            return
        if not isinstance(message, dict) or not isinstance(message.get("op"), str):
            self.error(conn, e.WS_ILLEGAL[0], f"Invalid request: {data[:100]!r}")
            return
        op = message["op"]
        try:
            if self.kinds.get(conn) == "private":
                self.private.on_message(conn, op, message)
            elif op in ("subscribe", "unsubscribe"):
                self._subscribe(conn, op, message)
            else:
                self.error(conn, e.WS_ILLEGAL[0], f"Invalid request: {data[:100]!r}")
        except Exception:  # a venue bug answers this request, keeps the socket; counted
            self.swallowed += 1
            log.exception("venue OKX WebSocket request failed op={}", op)
            self.error(conn, "50026", "System error", message.get("id"))

    def poll(self) -> float:
        now = self.exchange.now_ms()
        outbox = self.dialect.outbox
        while outbox:
            account, item = outbox.popleft()
            if isinstance(item, Published):
                self._trades(item)
            else:
                self.private.send(account, item)
        if now >= self.next_mark:
            self.next_mark = now + MARK_MS
            self.dialect.tick()
            self._marks(now)
        if now >= self.next_funding:
            self.next_funding = now + FUNDING_MS
            self._funding(now)
        if now >= self.next_cut:
            self.next_cut = (now // CUT_MS + 1) * CUT_MS
            self._cut(now)
        due = min(self.next_cut, self.next_mark, self.next_funding)
        return max(0.0, (due - now) / 1000)

    # ------------------------------------------------------- subscriptions

    @staticmethod
    def send(conn: Connection, payload: Any) -> None:
        conn.send_text(orjson.dumps(payload))

    def error(self, conn: Connection, code: str, msg: str, request_id: Any = None) -> None:
        payload = {"event": "error", "code": code, "msg": msg,
                   "connId": getattr(conn, "okx_conn_id", "")}
        if request_id is not None:
            payload["id"] = request_id
        self.send(conn, payload)

    def _subscribe(self, conn: Connection, op: str, message: dict) -> None:
        args = message.get("args")
        request_id = message.get("id")
        if not isinstance(args, list) or not args:
            self.error(conn, e.WS_ILLEGAL[0], "Invalid request", request_id)
            return
        for arg in args:
            channel = arg.get("channel") if isinstance(arg, dict) else None
            inst_id = arg.get("instId", "") if isinstance(arg, dict) else ""
            inst = self.dialect.instruments.get(inst_id)
            if channel not in PUBLIC_CHANNELS or inst is None or (
                    channel in SWAP_ONLY and inst.inst_type != SWAP):
                self.error(conn, e.WS_NOT_EXIST, f"Wrong URL or channel:{channel},instId:"
                                                 f"{inst_id} doesn't exist.", request_id)
                continue
            reply: dict[str, Any] = {"event": op, "arg": {"channel": channel,
                                                          "instId": inst_id},
                                     "connId": getattr(conn, "okx_conn_id", "")}
            if request_id is not None:
                reply["id"] = request_id
            self.send(conn, reply)
            key = (channel, inst_id)
            if op == "unsubscribe":
                self._drop(conn, key)
                continue
            if key in conn.streams:
                continue
            conn.streams.add(key)  # type: ignore[arg-type]
            self.subscribers.setdefault(key, set()).add(conn)
            self._first(conn, channel, inst)

    def _drop(self, conn: Connection, key: Any) -> None:
        conn.streams.discard(key)
        conns = self.subscribers.get(key)
        if conns is not None:
            conns.discard(conn)
            if not conns:
                del self.subscribers[key]
                if key[0] == "books":
                    self.books.pop(key[1], None)
                self.tops.pop(key, None)

    def _first(self, conn: Connection, channel: str, inst: Instrument) -> None:
        """What a new subscriber gets at once: the books snapshot, the latest
        books5/ticker/mark/funding."""
        now = self.exchange.now_ms()
        arg = {"channel": channel, "instId": inst.inst_id}
        if channel == "books":
            state = self._book(inst, now)
            bids = self._levels(inst, sorted(state.bids.items(), reverse=True))
            asks = self._levels(inst, sorted(state.asks.items()))
            self.send(conn, {"arg": arg, "action": "snapshot", "data": [{
                "asks": asks, "bids": bids, "ts": str(now), "checksum": self._sum(bids, asks),
                "prevSeqId": -1, "seqId": state.seq}]})
        elif channel == "books5":
            self.send(conn, {"arg": arg, "data": [self._books5(inst, now)[0]]})
        elif channel == "tickers":
            self.send(conn, {"arg": arg, "data": [ticker_json(self.exchange, inst, now)]})
        elif channel == "mark-price":
            self.send(conn, {"arg": arg, "data": [mark_json(self.dialect, inst, now)]})
        elif channel == "funding-rate":
            self.send(conn, {"arg": arg, "data": [funding_json(self.dialect, inst, now)]})

    # --------------------------------------------------------------- books

    def _book(self, inst: Instrument, now: int) -> BookState:
        state = self.books.get(inst.inst_id)
        if state is None:
            seq, bids, asks = self.exchange.depth(inst.spec.symbol, BOOK_DEPTH)
            state = self.books[inst.inst_id] = BookState(seq, bids, asks, now)
        return state

    def book_state(self, inst: Instrument) -> tuple[int, list[tuple[int, int]],
                                                    list[tuple[int, int]]]:
        """(seqId, bids, asks) as last published, else the live book (REST books)."""
        state = self.books.get(inst.inst_id)
        if state is None:
            return self.exchange.depth(inst.spec.symbol, BOOK_DEPTH)
        return (state.seq, sorted(state.bids.items(), reverse=True),
                sorted(state.asks.items()))

    @staticmethod
    def _levels(inst: Instrument, levels: list[tuple[int, int]]) -> list[list[str]]:
        spec = inst.spec
        return [[px(spec, p), sz(spec, q), "0", "1" if q else "0"] for p, q in levels]

    def _sum(self, bids: list[list[str]], asks: list[list[str]]) -> int:
        return checksum(bids, asks) if self.dialect.config.checksum else 0

    def _cut(self, now: int) -> None:
        for inst_id, state in self.books.items():
            inst = self.dialect.instruments[inst_id]
            seq, bids, asks = self.exchange.depth(inst.spec.symbol, BOOK_DEPTH)
            new_bids, new_asks = dict(bids), dict(asks)
            bid_diff = _diff(state.bids, new_bids)
            ask_diff = _diff(state.asks, new_asks)
            if not bid_diff and not ask_diff and now - state.sent_ms < KEEPALIVE_MS:
                continue
            previous = state.seq
            if bid_diff or ask_diff:
                state.seq = max(seq, previous + 1)
            state.bids, state.asks, state.sent_ms = new_bids, new_asks, now
            crc = 0
            if self.dialect.config.checksum:
                crc = checksum(self._levels(inst, bids[:CHECKSUM_LEVELS]),
                               self._levels(inst, asks[:CHECKSUM_LEVELS]))
            self._publish(("books", inst_id), {
                "arg": {"channel": "books", "instId": inst_id}, "action": "update", "data": [{
                    "asks": self._levels(inst, sorted(ask_diff)),
                    "bids": self._levels(inst, sorted(bid_diff, reverse=True)),
                    "ts": str(now), "checksum": crc, "prevSeqId": previous,
                    "seqId": state.seq}]})
        for (channel, inst_id), _ in list(self.subscribers.items()):
            inst = self.dialect.instruments[inst_id]
            if channel == "books5":
                data, top = self._books5(inst, now)
            elif channel == "tickers":
                data = ticker_json(self.exchange, inst, now)
                top = (data["last"], data["bidPx"], data["bidSz"], data["askPx"],
                       data["askSz"])
            else:
                continue
            if self.tops.get((channel, inst_id)) != top:
                self.tops[(channel, inst_id)] = top
                self._publish((channel, inst_id), {"arg": {"channel": channel,
                                                           "instId": inst_id}, "data": [data]})

    def _books5(self, inst: Instrument, now: int) -> tuple[dict, Any]:
        seq, bids, asks = self.exchange.depth(inst.spec.symbol, 5)
        top = (tuple(bids), tuple(asks))
        return {"asks": self._levels(inst, asks), "bids": self._levels(inst, bids),
                "instId": inst.inst_id, "ts": str(now), "seqId": seq}, top

    # ----------------------------------------------------- other channels

    def _publish(self, key: tuple[str, str], payload: dict) -> None:
        conns = self.subscribers.get(key)
        if not conns:
            return
        raw = orjson.dumps(payload)
        for conn in list(conns):
            conn.send_text(raw)

    def _trades(self, item: Published) -> None:
        """``{"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",
        "tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy",
        "ts":"1630048897897","count":"3"}]}``: one item per taker order and price."""
        inst = self.dialect.by_symbol.get(item.symbol)
        if inst is None or not item.result.trades:
            return
        key = ("trades", inst.inst_id)
        if not self.subscribers.get(key):
            return
        spec = inst.spec
        data = [{"instId": inst.inst_id, "tradeId": str(t.trade_id), "px": px(spec, t.price),
                 "sz": sz(spec, t.qty), "side": "sell" if t.buyer_is_maker else "buy",
                 "ts": str(t.time_ms), "count": "1", "source": "0"}
                for t in item.result.trades]
        self._publish(key, {"arg": {"channel": "trades", "instId": inst.inst_id},
                            "data": data})

    def _marks(self, now: int) -> None:
        for (channel, inst_id) in list(self.subscribers):
            if channel == "mark-price":
                inst = self.dialect.instruments[inst_id]
                self._publish((channel, inst_id), {"arg": {"channel": channel,
                                                           "instId": inst_id},
                                                   "data": [mark_json(self.dialect, inst,
                                                                      now)]})

    def _funding(self, now: int) -> None:
        for (channel, inst_id) in list(self.subscribers):
            if channel == "funding-rate":
                inst = self.dialect.instruments[inst_id]
                self._publish((channel, inst_id), {"arg": {"channel": channel,
                                                           "instId": inst_id},
                                                   "data": [funding_json(self.dialect, inst,
                                                                         now)]})

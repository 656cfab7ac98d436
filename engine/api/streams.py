"""Live streams over /ws: clients subscribe to topics, one hub thread pushes.

  client ─► {"op": "subscribe", "topics": ["book:binance:spot:BTC/USDT", "orders"]}
  hub thread, every interval_ms:
     book:<key>    top-N of the shared-memory book, sent only if it changed (coalesced)
     trades:<key>  the feed's trades since the last push, batched
     orders, fills the trader's changes since the last push, batched
     positions     positions and PnL, each second if they changed
     health        the component checks, each second if they changed

A message is encoded once and the same frame queued on every subscriber; a
subscriber that falls too far behind is dropped by the server. The schemas
are in engine/api/openapi.py (WS_TOPICS) and docs/api.md."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from loguru import logger

from engine.api.connection import WsSession, text_frame
from engine.api.views import TradingView
from engine.book.reader import BookReader
from engine.model import Trade

log = logger.bind(component="ws")

TOPIC_KINDS = ("book", "trades", "orders", "fills", "positions", "health")
MAX_TOPICS = 64  # per client: each book topic costs a read per interval
SLOW_S = 1.0  # positions and health are sampled this often (cheap, but not free)
QUEUED_EVENTS = 10_000  # trades/orders/fills held between pushes; older ones are dropped (counted)


def _dumps(data: Any) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY)


class StreamHub:
    """The server's WsHandler. ``books``/``trading``/``health`` are read on
    the hub thread; ``on_event`` (feed) and the trading listener only queue."""

    def __init__(self, books: Callable[[], BookReader | None],
                 trading: Callable[[], TradingView | None],
                 health: Callable[[], dict[str, Any]], interval_ms: int = 250,
                 depth: int = 10) -> None:
        self.books, self.trading, self.health = books, trading, health
        self.interval_s, self.depth = interval_ms / 1000.0, depth
        self._lock = threading.Lock()
        self._subs: dict[str, set[WsSession]] = {}  # topic -> sessions
        self._topics: dict[int, set[str]] = {}  # session id -> topics
        self._queued: dict[str, deque[dict[str, Any]]] = {}  # topic -> events not pushed yet
        self._last: dict[str, Any] = {}  # topic -> what was pushed (change detection)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listening = False
        self.counts = {"pushed": 0, "dropped_events": 0, "errors": 0}

    # ---------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ws-hub", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    # ------------------------------------------------- WsHandler (I/O thread)

    def opened(self, session: WsSession) -> None:
        with self._lock:
            self._topics[session.id] = set()
        session.send_frame(text_frame(_dumps({"type": "hello", "topics": list(TOPIC_KINDS),
                                              "interval_ms": int(self.interval_s * 1000)})))

    def closed(self, session: WsSession) -> None:
        with self._lock:
            for topic in self._topics.pop(session.id, set()):
                subs = self._subs.get(topic)
                if subs is not None:
                    subs.discard(session)
                    if not subs:
                        del self._subs[topic]
                        self._last.pop(topic, None)

    def message(self, session: WsSession, text: str) -> None:
        try:
            msg = orjson.loads(text)
            op, topics = msg.get("op"), msg.get("topics", [])
            if op not in ("subscribe", "unsubscribe", "ping") or not isinstance(topics, list):
                raise ValueError("expected {\"op\": \"subscribe\"|\"unsubscribe\"|\"ping\", "
                                 "\"topics\": [...]}")
            bad = [t for t in topics if not isinstance(t, str) or not _valid(t)]
            if bad:
                raise ValueError(f"unknown topics {bad[:5]}: use {', '.join(TOPIC_KINDS)} "
                                 f"(book and trades as book:<venue:market:BASE/QUOTE>)")
        except (ValueError, AttributeError) as e:
            session.send_frame(text_frame(_dumps({"type": "error", "error": str(e)[:300]})))
            return
        if op == "ping":
            session.send_frame(text_frame(b'{"type":"pong"}'))
            return
        with self._lock:
            mine = self._topics.setdefault(session.id, set())
            if op == "subscribe":
                if len(mine | set(topics)) > MAX_TOPICS:
                    session.send_frame(text_frame(_dumps(
                        {"type": "error", "error": f"at most {MAX_TOPICS} topics per client"})))
                    return
                for t in topics:
                    mine.add(t)
                    self._subs.setdefault(t, set()).add(session)
                    self._last.pop(t, None)  # the newcomer gets the current state next push
            else:
                for t in topics:
                    mine.discard(t)
                    self._subs.get(t, set()).discard(session)
            now = sorted(mine)
        session.send_frame(text_frame(_dumps({"type": op + "d", "topics": now})))

    # ------------------------------------------------ event sources (any thread)

    def on_event(self, event: Any) -> None:
        """The feed's event hook: trades of subscribed pairs are queued."""
        if type(event) is Trade:
            topic = f"trades:{event.venue}:{event.market.value}:{event.pair}"
            if topic in self._subs:
                self._enqueue(topic, {"price": event.price, "size": event.size,
                                      "side": event.taker_side.value, "id": event.trade_id,
                                      "exch_ns": event.exch_ns})

    def on_trading_change(self, kind: str, data: dict[str, Any]) -> None:
        topic = "orders" if kind == "order" else "fills"
        if topic in self._subs:
            self._enqueue(topic, data)

    def _enqueue(self, topic: str, item: dict[str, Any]) -> None:
        queue = self._queued.get(topic)
        if queue is None:
            queue = self._queued.setdefault(topic, deque(maxlen=QUEUED_EVENTS))
        if len(queue) == QUEUED_EVENTS:
            self.counts["dropped_events"] += 1
        queue.append(item)

    # ----------------------------------------------------------- hub thread

    def _run(self) -> None:
        slow_at = 0.0
        while not self._stop.wait(self.interval_s):
            try:
                if not self._listening:
                    view = self.trading()
                    if view is not None:
                        view.subscribe(self.on_trading_change)
                        self._listening = True
                with self._lock:
                    subs = {t: list(s) for t, s in self._subs.items() if s}
                now = time.monotonic()
                slow = now - slow_at >= SLOW_S
                if slow:
                    slow_at = now
                for topic, sessions in subs.items():
                    message = self._message(topic, slow)
                    if message is not None:
                        frame = text_frame(_dumps(message))
                        for session in sessions:
                            session.send_frame(frame)
                        self.counts["pushed"] += len(sessions)
            except Exception as e:  # noqa: BLE001 - a bad push must not end the streams
                self.counts["errors"] += 1
                log.opt(exception=False).error("stream push failed error={}: {}",
                                               type(e).__name__, e)

    def _message(self, topic: str, slow: bool) -> dict[str, Any] | None:
        kind, _, key = topic.partition(":")
        if kind == "book":
            reader = self.books()
            if reader is None or key not in reader.keys():
                return None
            view = reader.read(key, self.depth)
            mark = (view.version, view.seq)
            if self._last.get(topic) == mark:
                return None
            self._last[topic] = mark
            return {"type": "book", "topic": topic, **view.to_dict(self.depth)}
        if kind in ("trades", "orders", "fills"):
            queue = self._queued.get(topic)
            if not queue:
                return None
            items = [queue.popleft() for _ in range(len(queue))]
            return {"type": kind, "topic": topic, "items": items}
        if not slow:
            return None
        body: dict[str, Any]
        if kind == "positions":
            view_t = self.trading()
            if view_t is None:
                return None
            body = {"positions": view_t.positions(), "pnl": view_t.pnl()}
        else:
            body = self.health()
        comparable = {k: v for k, v in body.items() if k != "pnl"} | (
            {"pnl": {k: v for k, v in body["pnl"].items() if k != "time_ms"}}
            if "pnl" in body else {})
        if self._last.get(topic) == comparable:
            return None
        self._last[topic] = comparable
        return {"type": kind, "topic": topic, **body}


def _valid(topic: str) -> bool:
    kind, _, key = topic.partition(":")
    if kind in ("book", "trades"):
        return key.count(":") == 2 and key.count("/") == 1
    return kind in TOPIC_KINDS and not key


def install(router: Any) -> None:
    """GET /ws without an Upgrade gets 426; with one the server hands the
    connection to the hub (its scope and Origin checked first)."""
    from engine.api.http import Response  # http imports the server

    def plain(_: Any) -> Response:
        return Response.error(426, "GET /ws is a WebSocket: send Upgrade: websocket "
                                   "(topics: /ws/topics.json)")

    router.add("GET", "/ws", plain, summary="WebSocket streams: books, trades, orders, fills, "
                                            "positions and PnL, health")

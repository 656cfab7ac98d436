"""The private stream of one trading account, and a REST catch-up after every
(re)connect so nothing that happened while the socket was down is missed.
Owns that socket and its thread only. Two kinds, as the driver declares:

  ws_api:     WS API ─► subscribe (signed) ─► catch_up ─► session.ws = socket (orders go
              over it) ─► frames: answers to our requests | pushes ─► OrderStore, PositionBook
  listen_key: POST key ─► WS <key> (PUT every keepalive_s) ─► catch_up ─► pushes ─► ...
  private_ws: private socket ─► logon (signed) ─► subscribe ─► catch_up ─► pushes ─► ...
              (orders go over the venue's separate WS API socket: wsorders.py)
  either:     drop / stall / subscription ended ─► reconnect (backoff + jitter), resubscribe,
              catch_up(): live orders + fills since the last one held + balances, by REST
While it is down the venue's breaker trip "user_stream" stops new orders, and
orders fall back to REST.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import websocket
from loguru import logger

from engine.lifecycle import Health
from engine.model_trade import Fill, UserEvent
from engine.trade.orders import OrderStore
from engine.trade.positions import PositionBook
from engine.trade.risk import RiskGuard
from engine.trade.session import VenueSession
from engine.trade.settings import TraderConfig
from engine.trade.wsapi import WsApiSocket

log = logger.bind(component="userstream")

RECONNECT_MIN_S = 0.2  # backoff floor; full jitter up to the doubling cap
RECONNECT_MAX_S = 15.0
CONNECT_TIMEOUT_S = 10.0
# Fills fetched before the last one we hold: covers fills with equal or
# slightly older venue timestamps on other orders. Duplicates are no-ops.
CATCH_UP_OVERLAP_MS = 60_000


def fetch_fills(session: VenueSession, pair: str, start_ms: int) -> list[Fill]:
    """Every fill of the account on ``pair`` since ``start_ms``, paging by
    trade id. Stops quietly at the first failed page (the caller retries later)."""
    driver = session.driver
    out: list[Fill] = []
    cursor: str | None = None
    while True:
        reply = session.call(driver.my_trades(pair, session.now_ms(), cursor=cursor,
                                              start_ms=start_ms, limit=driver.fills_page))
        if reply.kind != "ok":
            return out
        out += driver.fills(reply.body)
        previous, cursor = cursor, driver.fills_cursor(reply.body)
        if cursor is None:
            return out
        if cursor == previous:  # the venue ignored the cursor: the same page again
            log.warning("fills paging stalled venue={} pair={} cursor={}", driver.venue, pair,
                        cursor)
            return out


class UserStream:
    def __init__(self, session: VenueSession, store: OrderStore, positions: PositionBook,
                 risk: RiskGuard, settings: TraderConfig, pairs: tuple[str, ...] = ()) -> None:
        self.session = session
        self.driver = session.driver
        self.venue = session.driver.venue
        self.name = f"userstream:{self.venue}"
        self.store = store
        self.positions = positions
        self.risk = risk
        self.settings = settings
        self._pairs = set(pairs)  # always caught up, even without live orders
        self._pairs_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ws: websocket.WebSocket | None = None
        self.socket: WsApiSocket | None = None  # ws_api kind: the order socket too
        self.connected = threading.Event()
        self.caught_up = threading.Event()
        self.listen_key = ""
        self.down_since = time.monotonic()
        self.connects = 0
        self.last_frame_mono = time.monotonic()
        # Position reports and funding from the private stream (futures):
        # whoever tracks positions hooks in here (TraderService).
        self.on_positions: Callable[[UserEvent], None] = lambda event: None
        self.frames = 0
        self.catch_ups = 0
        self.errors = 0
        self.post_only_refused = 0  # post-only orders the venue refused after accepting them

    def add_pair(self, pair: str) -> None:
        """Catch up ``pair`` too from now on (any thread)."""
        with self._pairs_lock:
            self._pairs.add(pair)

    def pairs(self) -> set[str]:
        with self._pairs_lock:
            return set(self._pairs)

    # ---------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.risk.breaker.trip(self.venue, "user_stream", f"{self.name} not connected yet")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.close(timeout=0.5)
            except Exception:  # noqa: BLE001, S110 - closing a dead socket
                pass
        if self._thread is not None:
            self._thread.join(timeout_s)
        # No DELETE of the listenKey: Binance hands every client of an account the
        # same key, so closing it would cut another daemon's (or a human's) stream.
        # Unused, it lapses by itself after 60 minutes.

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._session_once()
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                if self._stop.is_set():  # our own stop closed the socket (Ctrl-C): not a fault
                    log.debug("user stream closed on stop venue={}", self.venue)
                    self._went_down()
                    return
                self.errors += 1
                log.warning("user stream down venue={} error={!r}", self.venue, exc)
            self._went_down()
            if self._stop.is_set():
                return
            failures = 0 if time.monotonic() - started > 30.0 else failures + 1
            cap = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2 ** min(failures, 10))
            self._stop.wait(random.uniform(RECONNECT_MIN_S / 2, cap))  # jitter

    def _went_down(self) -> None:
        if self.connected.is_set():
            self.down_since = time.monotonic()
        socket, self.socket = self.socket, None
        if socket is not None:
            if self.session.ws is socket:
                self.session.ws = None  # orders fall back to REST from here
            socket.close("user stream down")
        self.connected.clear()
        self.caught_up.clear()
        self._ws = None
        self.risk.breaker.trip(self.venue, "user_stream",
                               f"{self.name} disconnected: order updates may be missed")

    # ------------------------------------------------------------ session

    def _new_key(self) -> str:
        reply = self.session.call(self.driver.listen_key("POST"))
        if reply.kind != "ok":
            raise ConnectionError(f"listenKey refused: {reply.status} {reply.code} {reply.message}")
        return self.driver.listen_key_of(reply.body)

    def _session_once(self) -> None:
        if self.driver.user_stream in ("ws_api", "private_ws"):
            self._ws_api_once()
        else:
            self._listen_key_once()

    def _recv(self, ws: websocket.WebSocket) -> bytes | str | None:
        """One data frame, or None on a read timeout / control frame; raises on close."""
        try:
            opcode, frame = ws.recv_data_frame(True)
        except websocket.WebSocketTimeoutException:
            return None
        self.last_frame_mono = time.monotonic()
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise ConnectionError("venue closed the stream")
        if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
            self.frames += 1
            return frame.data
        return None

    def _ws_api_once(self) -> None:
        """Log on where the driver says so, subscribe; a WS API socket (kind
        ws_api) carries our orders once caught up, a private one only pushes."""
        private = self.driver.user_stream == "private_ws"
        url = self.driver.user_stream_url("") if private else self.driver.ws_api_url()
        ws = websocket.create_connection(url, timeout=CONNECT_TIMEOUT_S, enable_multithread=True)
        self._ws = ws
        socket = self.socket = WsApiSocket(ws, self.driver, self.apply_event)
        if self._stop.is_set():
            return
        ws.settimeout(1.0)
        self.last_frame_mono = time.monotonic()
        logon = self.driver.ws_logon(self.session.now_ms(), self.session.request_id())
        if logon is not None:
            reply = socket.subscribe(logon, CONNECT_TIMEOUT_S, lambda: self._recv(ws))
            if reply.kind != "ok":
                raise ConnectionError(f"private stream logon refused: {reply.status} "
                                      f"{reply.code} {reply.message}")
        request = self.driver.ws_subscribe_user(self.session.now_ms(), self.session.request_id())
        if not self.session.limiter.acquire(request.weight, timeout_s=CONNECT_TIMEOUT_S):
            raise ConnectionError("no REST weight left for the subscription")
        reply = socket.subscribe(request, CONNECT_TIMEOUT_S, lambda: self._recv(ws))
        if reply.kind != "ok":
            raise ConnectionError(f"user-data subscription refused: {reply.status} {reply.code} "
                                  f"{reply.message}")
        self.connects += 1
        self.connected.set()
        log.info("user stream subscribed venue={} via={} connects={}", self.venue,
                 self.driver.user_stream, self.connects)
        self.catch_up()  # by REST: this thread is the socket's only reader
        if not private:
            socket.mark_ready()
            self.session.ws = socket
        self.caught_up.set()
        self.risk.breaker.clear(self.venue, "user_stream")
        last_ping = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() - self.last_frame_mono > self.settings.user_stream_stall_s:
                raise TimeoutError(f"no frame for {time.monotonic() - self.last_frame_mono:.0f}s")
            if self.driver.ws_ping_s and time.monotonic() - last_ping >= self.driver.ws_ping_s:
                ws.send(self.driver.ws_ping_frame())  # the venue cuts a silent socket
                last_ping = time.monotonic()
            frame = self._recv(ws)
            if frame is not None and not socket.on_frame(frame, time.time_ns()):
                raise ConnectionError("user-data subscription ended")

    def _listen_key_once(self) -> None:
        self.listen_key = self._new_key()
        ws = websocket.create_connection(self.driver.user_stream_url(self.listen_key),
                                         timeout=CONNECT_TIMEOUT_S)
        self._ws = ws
        if self._stop.is_set():
            ws.close()
            return
        self.connects += 1
        self.connected.set()
        log.info("user stream connected venue={} connects={}", self.venue, self.connects)
        self.catch_up()  # after subscribing: whatever happened while we were away
        self.caught_up.set()
        self.risk.breaker.clear(self.venue, "user_stream")
        ws.settimeout(1.0)
        self.last_frame_mono = last_keepalive = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_keepalive >= self.settings.listen_key_keepalive_s:
                reply = self.session.call(self.driver.listen_key("PUT", self.listen_key))
                if reply.kind == "rejected":
                    raise ConnectionError(f"listenKey keepalive refused: {reply.message}")
                last_keepalive = now
            if now - self.last_frame_mono > self.settings.user_stream_stall_s:
                raise TimeoutError(f"no frame for {now - self.last_frame_mono:.0f}s")
            frame = self._recv(ws)
            if frame is not None and not self.apply_event(self.driver.parse_user(
                    frame, time.time_ns())):
                raise ConnectionError("listenKey expired")

    def on_frame(self, data: bytes | str, recv_ns: int) -> bool:
        """Apply one listenKey-stream frame; False when the stream must be renewed."""
        self.frames += 1
        return self.apply_event(self.driver.parse_user(data, recv_ns))

    def apply_event(self, event: UserEvent) -> bool:
        """Apply one private event (any thread that reads the socket); False if it ended."""
        if event.error:
            self.errors += 1
            log.warning("bad user-stream frame venue={} reason={}", self.venue, event.error)
        if event.would_take:
            self.post_only_refused += len(event.would_take)
            log.warning("post-only orders refused after acceptance (would take) venue={} "
                        "client_order_ids={}", self.venue, ",".join(event.would_take))
        if event.updates or event.fills:
            self.store.apply(event.updates, event.fills)
        if event.balances:
            self.positions.set_balances(self.venue, event.balances)
        if event.positions or event.funding or event.funding_due or event.warnings or \
                any(f.liquidation for f in event.fills):
            self.on_positions(event)
        return not event.expired

    # ----------------------------------------------------------- catch-up

    def catch_up(self) -> None:
        """Order states and fills from REST, for everything the socket may have
        missed: every live order of ours, then fills since the last one held."""
        self.catch_ups += 1
        session, driver = self.session, self.driver
        live = self.store.live_orders(self.venue)
        for record in live:
            reply = session.call(driver.query_order(record.pair, record.client_order_id,
                                                    session.now_ms()))
            if reply.kind == "ok":
                self.store.apply([driver.order_update(reply.body, time.time_ns())])
        for pair in sorted(self.pairs() | {r.pair for r in live}):
            since = max(0, self.store.last_fill_ms(self.venue, pair) - CATCH_UP_OVERLAP_MS)
            lookback = session.now_ms() - int(self.settings.reconcile_fill_lookback_s * 1000)
            self.store.apply([], fetch_fills(session, pair, max(since, lookback)))
        reply = session.call(driver.account(session.now_ms()))
        if reply.kind == "ok":
            self.positions.set_balances(self.venue, driver.balances(reply.body))

    # -------------------------------------------------------------- views

    def health(self) -> list[Health]:
        if self.connected.is_set() and self.caught_up.is_set():
            return [Health(self.name, True, "")]
        down = time.monotonic() - self.down_since
        return [Health(self.name, False, f"disconnected for {down:.0f}s; new orders stopped")]

    def status(self) -> dict:
        socket = self.socket
        return {"connected": self.connected.is_set(), "connects": self.connects,
                "frames": self.frames, "catch_ups": self.catch_ups, "errors": self.errors,
                "post_only_refused": self.post_only_refused,
                "kind": self.driver.user_stream,
                "ws_api": socket.status() if socket is not None else None}

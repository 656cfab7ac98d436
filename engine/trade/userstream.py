"""The user data stream of one trading account: a listenKey kept alive, a
WebSocket whose executionReports and balance updates go to the order store and
positions, and a REST catch-up after every (re)connect so nothing that happened
while the socket was down is missed. Owns that socket and thread only.

  POST userDataStream ─► listenKey ─► WS /ws/<key> ─► parse ─► OrderStore.apply, PositionBook
        ▲ PUT every keepalive_s                     │ drop / stall / listenKeyExpired
        └──────────── reconnect (backoff + jitter) ◄┘ ─► then catch_up(): query live
                                                      orders + myTrades since the last fill
While it is down the venue's breaker trip "user_stream" stops new orders.
"""

from __future__ import annotations

import random
import threading
import time

import websocket
from loguru import logger

from engine.lifecycle import Health
from engine.trade.orders import OrderStore
from engine.trade.positions import PositionBook
from engine.trade.risk import RiskGuard
from engine.trade.session import VenueSession
from engine.trade.settings import TraderConfig
from engine.venues.binance_trade import Fill

log = logger.bind(component="userstream")

RECONNECT_MIN_S = 0.2  # backoff floor; full jitter up to the doubling cap
RECONNECT_MAX_S = 15.0
CONNECT_TIMEOUT_S = 10.0
# Fills fetched before the last one we hold: covers fills with equal or
# slightly older venue timestamps on other orders. Duplicates are no-ops.
CATCH_UP_OVERLAP_MS = 60_000


MY_TRADES_PAGE = 1000  # Binance's maximum rows per myTrades call


def fetch_fills(session: VenueSession, pair: str, start_ms: int) -> list[Fill]:
    """Every fill of the account on ``pair`` since ``start_ms``, paging by
    trade id. Stops quietly at the first failed page (the caller retries later)."""
    driver = session.driver
    out: list[Fill] = []
    from_id: int | None = None
    while True:
        reply = session.call(driver.my_trades(pair, session.now_ms(), from_id=from_id,
                                              start_ms=start_ms, limit=MY_TRADES_PAGE))
        if reply.kind != "ok" or not isinstance(reply.body, list):
            return out
        out += driver.fills(reply.body)
        if len(reply.body) < MY_TRADES_PAGE:
            return out
        from_id = max(int(row["id"]) for row in reply.body) + 1


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
        self.connected = threading.Event()
        self.caught_up = threading.Event()
        self.listen_key = ""
        self.down_since = time.monotonic()
        self.connects = 0
        self.frames = 0
        self.catch_ups = 0
        self.errors = 0

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
            self._stop.wait(random.uniform(RECONNECT_MIN_S / 2, cap))  # noqa: S311 - jitter

    def _went_down(self) -> None:
        if self.connected.is_set():
            self.down_since = time.monotonic()
        self.connected.clear()
        self.caught_up.clear()
        self._ws = None
        self.risk.breaker.trip(self.venue, "user_stream",
                               f"{self.name} disconnected: order updates may be missed")

    # ------------------------------------------------------------ session

    def _new_key(self) -> str:
        reply = self.session.call(self.driver.listen_key("POST"))
        if reply.kind != "ok" or not isinstance(reply.body, dict) or "listenKey" not in reply.body:
            raise ConnectionError(f"listenKey refused: {reply.status} {reply.code} {reply.message}")
        return str(reply.body["listenKey"])

    def _session_once(self) -> None:
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
        last_frame = last_keepalive = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if now - last_keepalive >= self.settings.listen_key_keepalive_s:
                reply = self.session.call(self.driver.listen_key("PUT", self.listen_key))
                if reply.kind == "rejected":
                    raise ConnectionError(f"listenKey keepalive refused: {reply.message}")
                last_keepalive = now
            if now - last_frame > self.settings.user_stream_stall_s:
                raise TimeoutError(f"no frame for {now - last_frame:.0f}s")
            try:
                opcode, frame = ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                continue
            last_frame = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                raise ConnectionError("venue closed the user stream")
            if opcode in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
                if not self.on_frame(frame.data, time.time_ns()):
                    raise ConnectionError("listenKey expired")

    def on_frame(self, data: bytes | str, recv_ns: int) -> bool:
        """Apply one frame; False when the stream must be renewed."""
        self.frames += 1
        event = self.driver.parse_user(data, recv_ns)
        if event.error:
            self.errors += 1
            log.warning("bad user-stream frame venue={} reason={}", self.venue, event.error)
        if event.updates or event.fills:
            self.store.apply(event.updates, event.fills)
        if event.balances:
            self.positions.set_balances(self.venue, event.balances)
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
        return {"connected": self.connected.is_set(), "connects": self.connects,
                "frames": self.frames, "catch_ups": self.catch_ups, "errors": self.errors}

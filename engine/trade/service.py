"""The trader's execution side as one lifecycle Component: opens the order
store (task DB, migrated), rebuilds positions from its fills, connects each
trading venue, loads instrument rules, reconciles with the venue, and only
then starts the executor and the user streams. Also the halt switch (the
authenticated API call: cancel everything of ours, stop new orders).

  start: migrate ─► OrderStore.load ─► PositionBook(fills) ─► per venue: session,
         time sync, exchangeInfo ─► Reconciler.run(apply) ─► halt if drift too big
         ─► Executor.start ─► UserStream.start ─► book watcher (breaker, marks)
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from engine.book.reader import BookReader
from engine.config import Config, Secret
from engine.lifecycle import Health
from engine.model import Market, book_key
from engine.store.migrations import migrate
from engine.store.taskdb import TaskDb
from engine.trade.executor import Executor
from engine.trade.instruments import Instrument, Instruments
from engine.trade.orders import OrderRecord, OrderStore
from engine.trade.positions import PositionBook
from engine.trade.reconcile import Reconciler, ReconcileReport
from engine.trade.risk import BookState, RiskGuard
from engine.trade.session import VenueSession, WeightBudget
from engine.trade.settings import TraderConfig, trader_settings
from engine.trade.userstream import UserStream
from engine.venues.binance_trade import BinanceTrade, Fill

log = logger.bind(component="trader")

TRADING_DRIVERS = {"binance": BinanceTrade}  # venue -> Sans-I/O trading driver
HALT_FLAG = "halt:*"
# How often the book watcher samples each traded pair's book (breaker: stale,
# resyncing, price jumps; marks for unrealized PnL). Faster catches a jump
# sooner; each sample is one lock-free book read.
BOOK_SAMPLE_S = 0.25

# start() waits this long for each user stream's first connect + catch-up, so
# the daemon is ready to trade when it reports started. Longer delays a start
# on a venue outage (orders stay stopped until the stream is up either way).
STREAM_START_WAIT_S = 10.0

WeightBudgetFor = Callable[[str, Market, int], WeightBudget]  # venue, market, weight/min


class TraderService:
    name = "trader"

    def __init__(self, config: Config, daemon_id: str, weight_budget_for: WeightBudgetFor,
                 books: Callable[[], BookReader | None] | None = None,
                 settings: TraderConfig | None = None, db: TaskDb | None = None,
                 slots_for: Callable[[str], int] | None = None) -> None:
        """``weight_budget_for`` hands out the venue's shared REST weight budget
        (app.py: the feed's limiter for that venue host). ``books`` gives the
        BookStore reader; None turns the book checks off (tests, tools).
        ``slots_for(venue)``: the grid slots on that venue, the denominator of
        the reconcile tolerance (default: our tracked orders)."""
        self.config = config
        self.daemon_id = daemon_id
        self.settings = settings or trader_settings(config)
        self.weight_budget_for = weight_budget_for
        self.books = books
        self.slots_for = slots_for
        self._extra_pairs: dict[str, set[str]] = {}  # venue -> pairs added by ensure_pair
        self.db = db or TaskDb.from_config(config)
        self.store = OrderStore(self.db, daemon_id)
        self.positions = PositionBook()
        self.instruments = Instruments()
        self.sessions: dict[str, VenueSession] = {}
        self.risk = RiskGuard(self.settings.risk, self.positions, self.store.live_orders,
                              self.store.live_count)
        self.executor: Executor | None = None
        self.streams: list[UserStream] = []
        self.reports: dict[str, ReconcileReport] = {}
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # ------------------------------------------------------------ building

    def pairs(self, venue: str) -> tuple[str, ...]:
        configured = {p.split(":", 1)[1] for p in self.settings.pairs
                      if p.split(":", 1)[0] == venue}
        return tuple(sorted(configured | self._extra_pairs.get(venue, set())))

    def ensure_pair(self, venue: str, pair: str) -> None:
        """Trade ``pair`` on ``venue`` from now on (the strategy pool calls this
        for each TRADE task it takes): instrument rules, user-stream catch-up
        and the book watcher cover it. Makes a REST call if the rules are new."""
        session = self.sessions[venue]
        if self.instruments.find(venue, pair) is None:
            self._load_instruments(session, (pair,))
        self._extra_pairs = {**self._extra_pairs,  # replaced whole: readers never see it move
                             venue: self._extra_pairs.get(venue, set()) | {pair}}
        for stream in self.streams:
            if stream.venue == venue:
                stream.add_pair(pair)

    def _session(self, venue: str) -> VenueSession:
        exchange = self.config.exchanges.get(venue)
        if exchange is None or not exchange.enabled:
            raise ValueError(f"trader.venues: {venue!r} is not an enabled exchange")
        driver_class = TRADING_DRIVERS.get(venue)
        if driver_class is None:
            raise ValueError(f"trader.venues: no trading driver for {venue!r} (have: "
                             f"{', '.join(TRADING_DRIVERS)})")
        if exchange.paper and not exchange.spot.rest:
            raise ValueError(f"exchanges.{venue}.paper is true but spot.rest points at the live "
                             f"venue: point spot.rest/spot.ws at the local venue, or set paper: "
                             f"false to trade real money")
        key, secret = Secret(exchange.api_key_env), Secret(exchange.api_secret_env)
        if not key or not secret:
            raise ValueError(f"exchanges.{venue}: api_key_env {exchange.api_key_env!r} and "
                             f"api_secret_env {exchange.api_secret_env!r} must name set "
                             f"environment variables")
        driver = driver_class(exchange.spot.rest, exchange.spot.ws, key.get(), secret.get())
        weight = int(6000 * self.settings.rest_weight_fraction)  # Binance spot: 6000/min
        return VenueSession(driver, self.weight_budget_for(venue, Market.SPOT, weight),
                            self.settings.request_timeout_s)

    def _load_instruments(self, session: VenueSession, pairs: tuple[str, ...]) -> None:
        if not pairs:
            return
        reply = session.call(session.driver.exchange_info(list(pairs)))
        if reply.kind != "ok":
            raise RuntimeError(f"{session.name}: exchangeInfo failed: {reply.status} "
                               f"{reply.code} {reply.message}")
        rules = session.driver.parse_exchange_info(reply.body)
        found = [Instrument.from_rules(session.driver.venue, pair, r) for pair, r in rules.items()]
        self.instruments.update(found)
        for instrument in found:
            self.positions.set_assets(instrument.venue, instrument.pair, instrument.base,
                                      instrument.quote)

    # ----------------------------------------------------------- lifecycle

    def start(self) -> None:
        Path(self.config.daemon.data_dir).mkdir(parents=True, exist_ok=True)
        migrate(self.db)
        self.store.load()
        for fill in self.store.fills():
            self.positions.on_fill(fill)
        self.store.listeners.append(self._on_order_change)  # from here on: each new fill
        flags = self.store.flags()
        if HALT_FLAG in flags:
            self.risk.halt(f"halted (persisted): {flags[HALT_FLAG]}")
        for venue in self.settings.venues:
            session = self.sessions[venue] = self._session(venue)
            session.sync_time()
            pairs = tuple(sorted(set(self.pairs(venue)) |
                                 {r.pair for r in self.store.live_orders(venue)}))
            self._load_instruments(session, pairs)
            report = Reconciler(session, self.store, self.settings.reconcile_tolerance, pairs,
                                fill_lookback_s=self.settings.reconcile_fill_lookback_s
                                ).run(apply=True, slots=self.slots_for(venue)
                                      if self.slots_for else 0)
            self.reports[venue] = report
            if not report.ok:
                self.risk.breaker.trip(venue, "reconcile", f"reconcile found too much drift; "
                                       f"see /status trader.reconcile ({len(report.drift)} "
                                       f"differences, {len(report.errors)} errors)")
        self.executor = Executor(self.sessions, self.store, self.risk, self.instruments,
                                 self.settings)
        self.executor.start()
        for venue, session in self.sessions.items():
            stream = UserStream(session, self.store, self.positions, self.risk, self.settings,
                                self.pairs(venue))
            stream.start()
            self.streams.append(stream)
        for stream in self.streams:  # trading waits for them anyway (breaker trip)
            if not stream.caught_up.wait(STREAM_START_WAIT_S):
                log.error("user stream not up after {}s venue={}; new orders stay stopped "
                          "until it is", STREAM_START_WAIT_S, stream.venue)
        if self.books is not None:
            self._watcher = threading.Thread(target=self._watch, name="trader-books", daemon=True)
            self._watcher.start()

    def _on_order_change(self, record: OrderRecord, fills: list[Fill]) -> None:
        for fill in fills:  # each committed fill arrives here exactly once
            self.positions.on_fill(fill)

    def stop(self, timeout_s: float) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        share = timeout_s / 3
        if self.executor is not None:
            self.executor.stop(share)
        for stream in self.streams:
            stream.stop(share / max(1, len(self.streams)))
        if self._watcher is not None:
            self._watcher.join(share)
        self.db.close()

    def _watch(self) -> None:
        assert self.books is not None
        while not self._stop.wait(BOOK_SAMPLE_S):
            reader = self.books()
            for venue in self.sessions:
                for pair in self.pairs(venue):
                    state = _book_state(reader, venue, pair)
                    self.risk.on_book(venue, pair, state)
                    if state is not None and state.synced and state.mid == state.mid:
                        self.positions.mark(venue, pair, Decimal(repr(state.mid)), time.time_ns())

    # ---------------------------------------------------------------- halt

    def authorized(self, presented: str) -> bool:
        """The admin key from ``http.admin_key_env``; unset refuses everyone."""
        expected = Secret(self.config.http.admin_key_env).get()
        return bool(expected) and hmac.compare_digest(expected.encode(), presented.encode())

    def halt(self, reason: str) -> dict[str, Any]:
        """Stop new orders (persisted across restarts) and cancel all of ours."""
        self.store.set_flag(HALT_FLAG, reason[:255] or "halted")
        self.risk.halt(f"halted: {reason}")
        dropped = self.executor.drop_new_orders() if self.executor else 0
        canceled = self.executor.cancel_all() if self.executor else 0
        log.warning("trader halted reason={} cancels_queued={} dropped={}", reason, canceled,
                    dropped)
        return {"halted": True, "reason": reason, "cancels_queued": canceled,
                "queued_orders_dropped": dropped}

    def resume(self) -> dict[str, Any]:
        was_halted = self.risk.halted
        self.store.set_flag(HALT_FLAG, None)
        self.risk.resume()
        log.warning("trader resumed by hand was_halted={}", was_halted)
        return {"halted": False}

    # --------------------------------------------------------------- views

    def health(self) -> list[Health]:
        out = self.risk.health()
        if self.executor is not None:
            out += self.executor.health()
        for stream in self.streams:
            out += stream.health()
        return out

    def status(self) -> dict:
        return {"executor": self.executor.status() if self.executor else None,
                "risk": self.risk.status(), "positions": self.positions.status(),
                "user_streams": {s.name: s.status() for s in self.streams},
                "live_orders": {v: self.store.live_count(v) for v in self.sessions},
                "reconcile": {v: r.text() for v, r in self.reports.items()}}


def _book_state(reader: BookReader | None, venue: str, pair: str) -> BookState | None:
    if reader is None:
        return None
    try:
        view = reader.read(book_key(venue, Market.SPOT, pair), 1)
    except Exception:  # noqa: BLE001 - unknown book: reported as missing
        return None
    return BookState(view.synced, view.recv_ns, view.mid)

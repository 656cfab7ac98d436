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
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from loguru import logger

from engine.book.reader import BookReader
from engine.config import Config, Secret
from engine.lifecycle import Health
from engine.model import Market, book_key
from engine.model_trade import (
    Fill,
    RateLimitKind,
    RateLimitRule,
    TradingDriver,
    TradingEndpoints,
    tightest_rate,
    venue_market,
)
from engine.store.migrations import migrate
from engine.store.taskdb import TaskDb
from engine.trade.executor import Executor
from engine.trade.futures import FuturesAccount, FuturesSettings
from engine.trade.instruments import Instrument, Instruments
from engine.trade.orders import OrderRecord, OrderStore
from engine.trade.positions import PositionBook
from engine.trade.ratelimit import OrderRateLimiter
from engine.trade.reconcile import Reconciler, ReconcileReport
from engine.trade.risk import BookState, RiskGuard
from engine.trade.session import VenueSession, WeightBudget
from engine.trade.settings import TraderConfig, trader_settings
from engine.trade.userstream import UserStream
from engine.trade.wsorders import OrderSocketKeeper

log = logger.bind(component="trader")

# (venue, market, endpoints, api key, api secret) -> the venue's Sans-I/O
# trading driver: engine.venues.make_trading_driver, handed in by app.py (the
# trade package never imports a venue module).
DriverFactory = Callable[..., TradingDriver]  # (..., passphrase=) where the venue has one
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
                 make_driver: DriverFactory,
                 books: Callable[[], BookReader | None] | None = None,
                 settings: TraderConfig | None = None, db: TaskDb | None = None,
                 slots_for: Callable[[str], int] | None = None,
                 credentials: Mapping[str, tuple[str, ...]] | None = None) -> None:
        """``weight_budget_for`` hands out the venue's shared REST weight budget
        (app.py: the feed's limiter for that venue host). ``books`` gives the
        BookStore reader; None turns the book checks off (tests, tools).
        ``slots_for(venue)``: the grid slots on that venue, the denominator of
        the reconcile tolerance (default: our tracked orders). ``credentials``:
        exchange -> (API key, secret) of a local venue the daemon runs itself
        (--demo, paper), used instead of the exchange's *_env variables."""
        self.config = config
        self._credentials = dict(credentials or {})
        self.daemon_id = daemon_id
        self.settings = settings or trader_settings(config)
        self.weight_budget_for = weight_budget_for
        self.make_driver = make_driver
        self.books = books
        self.slots_for = slots_for
        self._extra_pairs: dict[str, set[str]] = {}  # venue -> pairs added by ensure_pair
        self.db = db or TaskDb.from_config(config)
        self.store = OrderStore(self.db, daemon_id)
        self.positions = PositionBook()
        self.instruments = Instruments()
        self.sessions: dict[str, VenueSession] = {}
        self.rate_limits: dict[str, list] = {}  # venue -> its exchangeInfo rate limits
        self.risk = RiskGuard(self.settings.risk, self.positions, self.store.live_orders,
                              self.store.live_count)
        self.executor: Executor | None = None
        self.streams: list[UserStream] = []
        self.reports: dict[str, ReconcileReport] = {}
        self.futures: dict[str, FuturesAccount] = {}  # venue -> its futures account
        self.order_sockets: list[OrderSocketKeeper] = []  # WS API order sockets (USD-M)
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
        name, market = venue_market(venue)  # "binance_futures": binance's futures market
        exchange = self.config.exchanges.get(name)
        if exchange is None or not exchange.enabled:
            raise ValueError(f"trader.venues: {venue!r}: {name!r} is not an enabled exchange")
        ends = exchange.futures if market == Market.FUTURES else exchange.spot
        if exchange.paper and not ends.rest:
            raise ValueError(f"exchanges.{name}.paper is true but {market.value}.rest points at "
                             f"the live venue: point {market.value}.rest/ws at the local venue, "
                             f"or set paper: false to trade real money")
        # A passphrase (OKX keys have one) only where the exchange or the local
        # credentials name one: a driver factory for a venue without passphrases
        # never sees the keyword.
        extra: dict[str, str] = {}
        if name in self._credentials:  # a local venue of this daemon: no env var
            api_key, api_secret, *more = self._credentials[name]
            if more:
                extra["passphrase"] = more[0]
        else:
            key, secret = Secret(exchange.api_key_env), Secret(exchange.api_secret_env)
            if not key or not secret:
                raise ValueError(f"exchanges.{name}: api_key_env {exchange.api_key_env!r} and "
                                 f"api_secret_env {exchange.api_secret_env!r} must name set "
                                 f"environment variables")
            api_key, api_secret = key.get(), secret.get()
            if exchange.passphrase_env:
                extra["passphrase"] = Secret(exchange.passphrase_env).get()
        try:
            driver = self.make_driver(name, market, TradingEndpoints(
                ends.rest, ends.ws, ends.ws_api), api_key, api_secret, **extra)
        except ValueError as exc:
            raise ValueError(f"trader.venues: {exc}") from None
        per_minute = tightest_rate(driver.default_rate_limits, RateLimitKind.REQUEST_WEIGHT) * 60
        weight = int((per_minute if per_minute != float("inf") else 1200)
                     * self.settings.rest_weight_fraction)
        return VenueSession(driver, self.weight_budget_for(name, market, weight),
                            self.settings.request_timeout_s,
                            use_ws_api=self.settings.order_transport == "ws_api")

    def _load_instruments(self, session: VenueSession, pairs: tuple[str, ...]) -> None:
        if not pairs:
            return
        reply = session.call(session.driver.exchange_info(list(pairs)))
        if reply.kind != "ok":
            raise RuntimeError(f"{session.name}: exchangeInfo failed: {reply.status} "
                               f"{reply.code} {reply.message}")
        rules = session.driver.instrument_rules(reply.body)
        found = [Instrument.from_rules(session.driver.venue, r) for r in rules.values()]
        limits = session.driver.rate_limits(reply.body)
        if limits:
            self.rate_limits[session.driver.venue] = limits
        weights = [r for r in limits if r.kind == RateLimitKind.REQUEST_WEIGHT and r.interval_s > 0]
        if weights:  # the venue's own figure, once connected, over the documented default
            tightest = min(weights, key=lambda r: r.limit / r.interval_s)
            if session.limiter.limit_to(int(tightest.limit), tightest.interval_s):
                log.info("{}: REST weight budget lowered to the venue's exchangeInfo limit "
                         "{} per {:g}s", session.name, tightest.limit, tightest.interval_s)
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
            if session.driver.has_positions:
                self._futures(venue, session, pairs)
            if not report.ok:
                self.risk.breaker.trip(venue, "reconcile", f"reconcile found too much drift; "
                                       f"see /status trader.reconcile ({len(report.drift)} "
                                       f"differences, {len(report.errors)} errors)")
        self.executor = Executor(self.sessions, self.store, self.risk, self.instruments,
                                 self.settings)
        for venue, session in self.sessions.items():
            cap = order_rate_cap(self.rate_limits.get(venue) or
                                 list(session.driver.default_rate_limits))
            if cap < self.settings.orders_per_s:  # the venue allows fewer: never exceed it
                self.executor.rates[venue] = OrderRateLimiter(cap, self.settings.order_burst,
                                                              venue)
        self.executor.start()
        for venue, session in self.sessions.items():
            stream = UserStream(session, self.store, self.positions, self.risk, self.settings,
                                self.pairs(venue))
            if venue in self.futures:
                stream.on_positions = self.futures[venue].on_event
            stream.start()
            self.streams.append(stream)
        for stream in self.streams:  # trading waits for them anyway (breaker trip)
            if not stream.caught_up.wait(STREAM_START_WAIT_S):
                log.error("user stream not up after {}s venue={}; new orders stay stopped "
                          "until it is", STREAM_START_WAIT_S, stream.venue)
        for account in self.futures.values():
            account.start()
        for session in self.sessions.values():  # WS API for orders apart from the stream
            if session.use_ws_api and session.driver.user_stream != "ws_api":
                sock = OrderSocketKeeper(session)
                sock.start()
                self.order_sockets.append(sock)
        if self.books is not None:
            self._watcher = threading.Thread(target=self._watch, name="trader-books", daemon=True)
            self._watcher.start()

    def _futures(self, venue: str, session: VenueSession, pairs: tuple[str, ...]) -> None:
        """A futures account: mode, leverage, margin; funding and forced closes;
        positions reconciled with the fills (after the order reconcile)."""
        f = self.settings.futures
        account = self.futures[venue] = FuturesAccount(
            session, self.db.sibling(), self.store, self.positions, self.risk,
            FuturesSettings(f.position_mode, f.leverage, f.margin_type, f.poll_s), pairs)
        account.setup()
        account.load()
        account.catch_up()
        account.reconcile()

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
        for account in self.futures.values():
            account.stop(1.0)
        for sock in self.order_sockets:
            sock.stop(1.0)
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
        for account in self.futures.values():
            account.resume()  # a liquidation's stop ends here too
        log.warning("trader resumed by hand was_halted={}", was_halted)
        return {"halted": False}

    # --------------------------------------------------------------- views

    def health(self) -> list[Health]:
        out = self.risk.health()
        if self.executor is not None:
            out += self.executor.health()
        for stream in self.streams:
            out += stream.health()
        for account in self.futures.values():
            out += account.health()
        for sock in self.order_sockets:
            out += sock.health()
        return out

    def status(self) -> dict:
        return {"executor": self.executor.status() if self.executor else None,
                "risk": self.risk.status(), "positions": self.positions.status(),
                "user_streams": {s.name: s.status() for s in self.streams},
                "live_orders": {v: self.store.live_count(v) for v in self.sessions},
                "reconcile": {v: r.text() for v, r in self.reports.items()},
                **({"futures": {v: a.status() for v, a in self.futures.items()}}
                   if self.futures else {}),
                **({"order_sockets": {s.name: s.status() for s in self.order_sockets}}
                   if self.order_sockets else {})}


def order_rate_cap(rules: list[RateLimitRule]) -> float:
    """The sustained new-order rate the venue's ORDERS rules allow, from windows
    up to a minute (a daily count is a budget, not a rate); inf if none."""
    return tightest_rate([r for r in rules if r.interval_s <= 60], RateLimitKind.ORDERS)


def _book_state(reader: BookReader | None, venue: str, pair: str) -> BookState | None:
    if reader is None:
        return None
    try:
        view = reader.read(book_key(*venue_market(venue), pair), 1)
    except Exception:  # noqa: BLE001 - unknown book: reported as missing
        return None
    return BookState(view.synced, view.recv_ns, view.mid)

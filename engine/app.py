"""Role wiring: the only module that imports every part. Builds the components
a role needs, starts them in order, serves HTTP, and stops them in reverse
within the shutdown budget. Holds no domain logic of its own."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loguru import logger

from engine import __version__
from engine.api import front
from engine.api.http import HttpServer
from engine.api.metrics import HealthCollector, new_registry
from engine.api.streams import StreamHub
from engine.api_views import TasksFromDb, TraderView
from engine.book.core import check_core, core_name, make_writer
from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config import Config, EndpointConfig, ExchangeConfig, SubscriptionConfig, to_public_dict
from engine.feed.limiter import RestLimiter
from engine.feed.service import FeedService
from engine.lifecycle import Component, Health
from engine.model import Market
from engine.model_trade import TradingEndpoints, trading_venue
from engine.store.history import HistoryStore
from engine.store.recorder import Recorder
from engine.store.taskdb import TaskDb
from engine.store.tasks import TaskFetcher
from engine.trade.metrics import TraderMetrics
from engine.trade.paper import PaperVenue, live_pairs
from engine.trade.pool import StrategyPool, pool_settings
from engine.trade.service import TraderService
from engine.trade.slots import SlotManager
from engine.trade.sources import StrategySource, rules_from
from engine.venues import DRIVERS, make_trading_driver

log = logger.bind(component="app")

# --demo: the local venue's first account (config venue.accounts, else a
# throwaway "demo" one) is handed to the trader by env var name, like any key.
DEMO_ACCOUNT, DEMO_KEY_ENV, DEMO_SECRET_ENV = "demo", "ENGINE_DEMO_KEY", "ENGINE_DEMO_SECRET"

ROLES = ("monitor", "trader", "both", "venue")

# What each role is meant to run, and which of those parts exist in this build.
ROLE_PARTS = {
    "monitor": ("books", "feed", "recorder", "task-db"),
    "trader": ("books", "feed", "strategy-pool", "executor", "positions", "task-db"),
    "both": ("books", "feed", "recorder", "strategy-pool", "executor", "positions", "task-db"),
    "venue": ("venue",),
}


def daemon_id(config: Config) -> str:
    return config.daemon.id or f"{socket.gethostname()}-{os.getpid()}"


def segment_name(config: Config) -> str:
    if config.books.segment_name:
        return config.books.segment_name
    return "engine_books_" + re.sub(r"[^A-Za-z0-9_]", "_", daemon_id(config))[:200]


class BooksComponent:
    """Owns the shared-memory BookStore and its writer for the daemon's life."""

    name = "books"

    def __init__(self, config: Config) -> None:
        self.config = config
        self.store: BookStore | None = None
        self.writer: BookWriter | None = None
        self.reader: BookReader | None = None
        check_core(config.books.core)  # fail before anything starts, saying how to fix it
        self.core = "compiled" if config.books.core == "compiled" else "python (reference)"

    def start(self) -> None:
        b = self.config.books
        self.store = BookStore.create(segment_name(self.config), b.capacity, b.depth, b.lock_stripes)
        self.writer = make_writer(self.store, b.core)
        self.core = core_name(self.writer)
        self.reader = BookReader(self.store)

    def started_writer(self) -> BookWriter:
        assert self.writer is not None, "books component not started"
        return self.writer

    def stop(self, timeout_s: float) -> None:
        if self.store is not None:
            self.store.close()

    def health(self) -> list[Health]:
        if self.store is None:
            return [Health(self.name, False, "not started")]
        used, cap = self.store.count(), self.store.capacity
        if used >= cap:
            return [Health(self.name, False, f"store full: {used}/{cap} books")]
        return [Health(self.name, True, "")]

    def status(self) -> dict:
        if self.store is None:
            return {"state": "stopped"}
        return {"state": "running", "segment": self.store.name, "books": self.store.count(),
                "capacity": self.store.capacity, "depth": self.store.depth, "core": self.core}


@dataclass
class Daemon:
    config: Config
    role: str
    fresh: bool = False
    demo: bool = False  # run.py --demo: local venue + synthetic market in this process
    components: list[Component] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.role in ROLES, self.role
        self.id = daemon_id(self.config)
        self.started_monotonic = time.monotonic()
        self.registry = new_registry(self.started_monotonic)
        self.http: HttpServer | None = None
        self.books: BooksComponent | None = None
        self.feed: FeedService | None = None
        self.tasks: TaskFetcher | None = None
        self.history: HistoryStore | None = None
        self.trader: TraderService | None = None
        self.slots: SlotManager | None = None
        self.pool: StrategyPool | None = None
        self.strategies: StrategySource | None = None
        self.paper: dict[str, PaperVenue] = {}
        self._trade_limiters: dict[tuple[str, str], RestLimiter] = {}
        self.recorder: Recorder | None = None
        self._trading_view: TraderView | None = None
        self._view_lock = threading.Lock()
        self.hub: StreamHub = front.hub_for(self, self.trading_view)
        self._build()

    # ---------------------------------------------------------------- build

    def _build(self) -> None:
        built: set[str] = set()
        if self.demo and self.role != "venue":
            self._build_demo_venue()  # first: the feed and the trader connect to it
        if self.role != "venue":
            self.books = BooksComponent(self.config)
            self.components.append(self.books)
            built.add("books")
            listeners: list[Callable[[Any], None]] = [self.hub.on_event]  # /ws trades
            if self.role in ("monitor", "both") and self.config.storage.history.backend != "none":
                # Before the feed: started first, stopped after it (nothing recorded is lost).
                self.history = HistoryStore(self.config)
                self.recorder = Recorder(self.config, self.registry, self.history)
                self.components += [self.history, self.recorder]
                listeners.append(self.recorder.record)
                built.add("recorder")
            if self.role in ("trader", "both"):
                # Built before the feed (they take its live trades), started after it.
                self.paper = self._paper_venues()
                listeners += [paper.on_event for paper in self.paper.values()]
            on_event = _fan_out(listeners)
            self.feed = FeedService(self.config, self.books.started_writer, self.registry,
                                    on_event=on_event)
            self.components.append(self.feed)
            built.add("feed")
            # After the feed: starts after it, stops before it.
            exchanges = {n for n, ex in self.config.exchanges.items() if ex.enabled and n in DRIVERS}
            self.tasks = TaskFetcher(self.config, self.id, self.feed, exchanges=exchanges)
            self.components.append(self.tasks)
            built.add("task-db")
        if self.role in ("trader", "both"):
            self._build_trader()
            built |= {"strategy-pool", "executor", "positions"}
        if self.role == "venue":
            from engine.sim.ratelimit import Limits  # venue role only
            from engine.sim.server import LocalVenue

            v = self.config.venue
            limits = Limits(weight_per_minute=v.weight_per_minute, orders_per_10s=v.orders_per_10s,
                            orders_per_day=v.orders_per_day)
            venue = LocalVenue(v, Path(self.config.daemon.data_dir), fresh=self.fresh, limits=limits)
            self.components.append(_VenueComponent(venue))
            built.add("venue")
        self.missing = [p for p in ROLE_PARTS[self.role] if p not in built]
        self.registry.register(HealthCollector(self.health))

    # ---------------------------------------------------------- trader role

    def _trade_venues(self) -> tuple[str, ...]:
        t = self.config.trader
        return tuple(dict.fromkeys(t.venues + tuple(trading_venue(s.exchange, s.market)
                                                    for s in t.strategies)))

    def _trade_pairs(self, venue: str) -> list[str]:
        t = self.config.trader
        return sorted({p.split(":", 1)[1] for p in t.pairs if p.split(":", 1)[0] == venue} |
                      {s.pair for s in t.strategies
                       if trading_venue(s.exchange, s.market) == venue})

    def _build_trader(self) -> None:
        """Paper venues, then the TraderService (executor, orders, positions,
        risk, reconcile), the slot manager, the strategy pool and the source
        of strategies (config + leased TRADE rows): started in that order,
        stopped in reverse."""
        cfg = self.config
        exchanges = dict(cfg.exchanges)
        for venue, paper in self.paper.items():  # the trader talks to the paper venue
            key_env, secret_env = f"ENGINE_PAPER_{venue.upper()}_KEY", \
                f"ENGINE_PAPER_{venue.upper()}_SECRET"
            os.environ[key_env], os.environ[secret_env] = paper.api_key, paper.api_secret
            exchanges[venue] = dataclasses.replace(
                exchanges[venue], spot=EndpointConfig(paper.url, paper.ws), api_key_env=key_env,
                api_secret_env=secret_env)
        pairs = tuple(dict.fromkeys(cfg.trader.pairs + tuple(
            f"{trading_venue(s.exchange, s.market)}:{s.pair}" for s in cfg.trader.strategies)))
        trading = dataclasses.replace(cfg, exchanges=exchanges, trader=dataclasses.replace(
            cfg.trader, venues=self._trade_venues(), pairs=pairs))
        self.slots = SlotManager(TaskDb.from_config(cfg))
        self.trader = TraderService(trading, self.id, self._weight_budget, make_trading_driver,
                                    books=self.book_reader,
                                    slots_for=self.slots.slots_for)
        self.slots.service = self.trader
        self.pool = StrategyPool(segment_name(cfg), self.slots, pool_settings(cfg))
        self.slots.on_change = self.pool.notify
        self.strategies = StrategySource(
            cfg.trader.strategies, self.pool.set_strategies, rules_from(self.trader), self.id,
            trade_tasks=self.tasks.trade_tasks if self.tasks is not None else None,
            db=TaskDb.from_config(cfg), ensure_book=self._ensure_book)
        metrics = TraderMetrics(self.registry, self.trader, self.slots.status)
        self.components += [*self.paper.values(), self.trader, metrics, self.slots, self.pool,
                            self.strategies]

    def _paper_venues(self) -> dict[str, PaperVenue]:
        """A paper venue per traded venue with ``paper: true`` whose endpoint is
        the live one: the live book and trades (from the feed) are mirrored into
        a local matching engine, and nothing reaches the real venue."""
        cfg, out = self.config, {}
        for venue in self._trade_venues():
            ex = cfg.exchanges.get(venue)
            if ex is None or not ex.paper or _is_local(ex.spot.rest):
                continue  # live trading, or already a local venue (--demo, tests)
            p = cfg.trader.paper
            out[venue] = PaperVenue(
                venue, "spot", partial(live_pairs, make_trading_driver(
                    venue, Market.SPOT, TradingEndpoints(ex.spot.rest), "", ""),
                    self._trade_pairs(venue),
                                       p.maker_fee, p.taker_fee, cfg.venue.symbols),
                self.book_reader, Path(cfg.daemon.data_dir), dict(p.balances), port=_free_port())
        return out

    def _ensure_book(self, venue: str, market: str, pair: str) -> None:
        """A strategy's pair is carried by the feed (a no-op once it is)."""
        if self.feed is not None and self.feed.pool is not None:
            self.feed.subscribe([SubscriptionConfig(venue, pair, market)])  # type: ignore[arg-type]

    def _build_demo_venue(self) -> None:
        """--demo: the local venue (config ``venue:``, forced to its synthetic
        market on a free port) in this process; the feed and the trader are
        pointed at it, trading its first account (throwaway local keys)."""
        from engine.sim.ratelimit import Limits  # demo only
        from engine.sim.server import LocalVenue
        from engine.sim.testkit import DEFAULT_PRICES, account_config, symbol_config

        cfg, v = self.config, self.config.venue
        pairs = {s.pair for s in cfg.feed.subscriptions if s.exchange == "binance"} | \
            {s.pair for s in cfg.trader.strategies if s.exchange == "binance"} or {"BTC/USDT"}
        symbols = v.symbols or tuple(symbol_config(p.replace("/", "")) for p in sorted(pairs))
        prices = {s.symbol: DEFAULT_PRICES.get(s.symbol, "100") for s in symbols}
        # A futures strategy (or venue.usdm.enabled): the USD-M dialect too, on its port.
        usdm = v.usdm.enabled or any(s.market == "futures" for s in cfg.trader.strategies)
        venue_config = dataclasses.replace(
            v, port=_free_port(), market="synthetic", symbols=symbols,
            usdm=dataclasses.replace(v.usdm, enabled=usdm, port=_free_port()),
            accounts=v.accounts or (account_config(DEMO_ACCOUNT),),
            synthetic=dataclasses.replace(v.synthetic, start_prices={
                **prices, **v.synthetic.start_prices}))
        limits = Limits(weight_per_minute=v.weight_per_minute, orders_per_10s=v.orders_per_10s,
                        orders_per_day=v.orders_per_day)
        venue = LocalVenue(venue_config, Path(cfg.daemon.data_dir), fresh=self.fresh,
                           limits=limits)
        self.components.append(_VenueComponent(venue))
        account = venue_config.accounts[0]
        os.environ[DEMO_KEY_ENV], os.environ[DEMO_SECRET_ENV] = account.api_key, account.api_secret
        local = EndpointConfig(f"http://127.0.0.1:{venue_config.port}",
                               f"ws://127.0.0.1:{venue_config.port}")
        futures = EndpointConfig(f"http://127.0.0.1:{venue_config.usdm.port}",
                                 f"ws://127.0.0.1:{venue_config.usdm.port}") if usdm else \
            EndpointConfig()
        binance = dataclasses.replace(cfg.exchanges.get("binance", ExchangeConfig()), enabled=True,
                                      spot=local, futures=futures, api_key_env=DEMO_KEY_ENV,
                                      api_secret_env=DEMO_SECRET_ENV)
        self.config = dataclasses.replace(cfg, exchanges={**cfg.exchanges, "binance": binance})

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        Path(self.config.daemon.data_dir).mkdir(parents=True, exist_ok=True)
        started: list[Component] = []
        try:
            for c in self.components:
                c.start()
                started.append(c)
            if self.config.http.enabled:
                self.http = front.build(self, self.trading_view, self.tasks_view, self.hub)
                self.http.start()
                self.hub.start()
        except BaseException:
            for c in reversed(started):
                _stop_component(c, 2.0, [])
            raise

    def stop(self) -> bool:
        """Stop everything within the budget; False if something overran."""
        deadline = time.monotonic() + self.config.daemon.shutdown_timeout_s
        ok = True
        if self.http is not None:
            self.hub.stop(1.0)
            self.http.stop(1.0)
            self.http = None
        failed: list[str] = []
        for c in reversed(self.components):
            left = max(0.1, deadline - time.monotonic())
            t = threading.Thread(target=_stop_component, args=(c, left, failed), name=f"stop-{c.name}",
                                 daemon=True)
            t.start()
            t.join(left)
            if t.is_alive():
                log.error("component {} did not stop within {:.1f}s", c.name, left)
                ok = False
        return ok and not failed

    def _weight_budget(self, venue: str, market: str, weight_per_minute: int) -> RestLimiter:
        """The venue host's one REST weight budget: the feed's limiter when the
        feed carries that venue, else one the trader keeps (never two counters
        for one host while both run)."""
        shared = None
        if venue not in self.paper and self.feed is not None and self.feed.pool is not None:
            try:
                shared = self.feed.pool.rest_limiter(venue, market)
            except KeyError:
                shared = None
        if shared is not None:
            return shared
        return self._trade_limiters.setdefault(
            (venue, market), RestLimiter(weight_per_minute, 60.0, f"{venue} trader", fraction=1.0))

    # --------------------------------------------------------------- views

    def book_reader(self) -> BookReader | None:
        return self.books.reader if self.books is not None else None

    def trading_view(self) -> TraderView | None:
        """engine.api.views.TradingView of the started trader (None before)."""
        with self._view_lock:  # one view (one store listener), whoever asks first
            if self._trading_view is None and self.trader is not None and \
                    self.trader.executor is not None:
                self._trading_view = TraderView(self.trader, self.slots, self.pool)
        return self._trading_view

    def tasks_view(self) -> TasksFromDb | None:
        return TasksFromDb(self.tasks, self.id) if self.tasks is not None else None

    def health(self) -> list[Health]:
        out: list[Health] = []
        for c in self.components:
            try:
                out.extend(c.health())
            except Exception as e:  # noqa: BLE001 - a broken check is itself unhealthy
                out.append(Health(c.name, False, f"health check failed: {e}"))
        return out

    def status(self) -> dict:
        return {
            "role": self.role, "daemon_id": self.id, "version": __version__,
            "uptime_s": round(time.monotonic() - self.started_monotonic, 3),
            "http": self.http.status() if self.http else None,
            "components": {c.name: c.status() for c in self.components},
            "not_built_yet": self.missing,
            "config": to_public_dict(self.config),
        }

    def summary(self) -> str:
        cfg = self.config
        subs = cfg.feed.subscriptions
        venues = sorted({s.exchange for s in subs}) or sorted(cfg.exchanges) or ["none"]
        lines = [
            f"engine {__version__} role={self.role} daemon_id={self.id}",
            f"  config:   {cfg.source or '(defaults)'}",
        ]
        if self.role != "venue":
            lines += [
                f"  venues:   {', '.join(venues)}",
                f"  pairs:    {', '.join(f'{s.exchange}:{s.market}:{s.pair}' for s in subs) or 'none'}",
                f"  storage:  tasks={cfg.storage.tasks.backend} history={cfg.storage.history.backend}",
                f"  books:    segment={segment_name(cfg)} capacity={cfg.books.capacity} "
                f"depth={cfg.books.depth} core={self.books.core if self.books else cfg.books.core}",
            ]
        if self.role in ("trader", "both"):
            lines += [f"  trading:  {line}" for line in self._trading_lines()]
        for c in self.components:
            if isinstance(c, _VenueComponent):
                lines.append(f"  venue:    REST {c.venue.rest_url}  WebSocket {c.venue.ws_url}")
                usdm = getattr(c.venue, "usdm", None)
                if usdm is not None:  # Binance USD-M dialect, its own port
                    lines.append(f"  usd-m:    REST {usdm.url}/fapi  streams {usdm.ws_url}/public "
                                 f"{usdm.ws_url}/market {usdm.ws_url}/private  "
                                 f"WS API {usdm.ws_url}/ws-fapi/v1")
        if self.missing:
            lines.append(f"  NOT BUILT YET (this role runs without them): {', '.join(self.missing)}")
        lines.append(f"  http:     {self.http.url if self.http else 'disabled'}")
        return "\n".join(lines)


    def _trading_lines(self) -> list[str]:
        """Each configured strategy and where its orders go: paper (a local copy
        of the live venue), the local venue (--demo, tests) or LIVE."""
        out = []
        for s in self.config.trader.strategies:
            ex = self.config.exchanges.get(s.exchange)
            where = ("PAPER: matched locally against the live book, nothing sent"
                     if s.exchange in self.paper else
                     "local venue" if ex is not None and _is_local(ex.spot.rest) else
                     "LIVE: real orders")
            out.append(f"{s.id} {s.strategy} {s.exchange} {s.pair} ({where})")
        return out or ["no strategy configured (TRADE rows may add some)"]


class _VenueComponent:
    """Adapts the local venue (engine.sim) to the Component protocol."""

    name = "venue"

    def __init__(self, venue) -> None:
        self.venue = venue

    def start(self) -> None:
        try:
            self.venue.start()
        except OSError as e:
            c = self.venue.config
            raise OSError(f"cannot listen on {c.host}:{c.port} (set by venue.host/venue.port): "
                          f"{e.strerror or e}") from e

    def stop(self, timeout_s: float) -> None:
        self.venue.stop(timeout_s)

    def health(self) -> list[Health]:
        ok, reason = self.venue.health()
        return [Health(self.name, ok, reason)]

    def status(self) -> dict:
        usdm = getattr(self.venue, "usdm", None)
        return {"rest": self.venue.rest_url, "ws": self.venue.ws_url,
                **({"usdm_rest": usdm.url, "usdm_ws": usdm.ws_url} if usdm else {})}


def _fan_out(listeners: list[Callable[[Any], None]]) -> Callable[[Any], None] | None:
    """One on_event hook for the feed from several (recorder, paper venues)."""
    if len(listeners) <= 1:
        return listeners[0] if listeners else None

    def each(event: Any) -> None:
        for listener in listeners:
            listener(event)
    return each


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _is_local(url: str) -> bool:
    """An endpoint on this host: the local venue (demo, tests), never a live one."""
    return bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def _stop_component(component: Component, timeout_s: float, failed: list[str]) -> None:
    """One component's stop; an error is logged (no traceback) and makes the stop unclean."""
    try:
        component.stop(timeout_s)
    except Exception as exc:  # noqa: BLE001 - reported; the other components still stop
        failed.append(component.name)
        log.error("component {} stopped with an error: {}: {}", component.name, type(exc).__name__, exc)

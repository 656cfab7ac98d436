"""Role wiring: the only module that imports every part. Builds the components
a role needs, starts them in order, serves HTTP, and stops them in reverse
within the shutdown budget. Holds no domain logic of its own."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from engine import __version__
from engine.api import market, routes
from engine.api.http import HttpServer, Router
from engine.api.metrics import new_registry
from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config import Config, to_public_dict
from engine.feed.limiter import RestLimiter
from engine.feed.service import FeedService
from engine.lifecycle import Component, Health
from engine.store.history import HistoryStore
from engine.store.recorder import Recorder
from engine.store.tasks import TaskFetcher
from engine.trade.service import TraderService
from engine.venues import DRIVERS

log = logger.bind(component="app")

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

    def start(self) -> None:
        b = self.config.books
        self.store = BookStore.create(segment_name(self.config), b.capacity, b.depth, b.lock_stripes)
        self.writer = BookWriter(self.store)
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
                "capacity": self.store.capacity, "depth": self.store.depth}


@dataclass
class Daemon:
    config: Config
    role: str
    fresh: bool = False
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
        self._trade_limiters: dict[tuple[str, str], RestLimiter] = {}
        self.recorder: Recorder | None = None
        self._build()

    # ---------------------------------------------------------------- build

    def _build(self) -> None:
        built: set[str] = set()
        if self.role != "venue":
            self.books = BooksComponent(self.config)
            self.components.append(self.books)
            built.add("books")
            on_event = None
            if self.role in ("monitor", "both") and self.config.storage.history.backend != "none":
                # Before the feed: started first, stopped after it (nothing recorded is lost).
                self.history = HistoryStore(self.config)
                self.recorder = Recorder(self.config, self.registry, self.history)
                self.components += [self.history, self.recorder]
                on_event = self.recorder.record
                built.add("recorder")
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
            self.trader = TraderService(self.config, self.id, self._weight_budget,
                                        books=self.book_reader)
            self.components.append(self.trader)
            built |= {"executor", "positions"}
        if self.role == "venue":
            from engine.sim.ratelimit import Limits  # noqa: PLC0415 - venue role only
            from engine.sim.server import LocalVenue  # noqa: PLC0415

            v = self.config.venue
            limits = Limits(weight_per_minute=v.weight_per_minute, orders_per_10s=v.orders_per_10s,
                            orders_per_day=v.orders_per_day)
            venue = LocalVenue(v, Path(self.config.daemon.data_dir), fresh=self.fresh, limits=limits)
            self.components.append(_VenueComponent(venue))
            built.add("venue")
        self.missing = [p for p in ROLE_PARTS[self.role] if p not in built]

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        Path(self.config.daemon.data_dir).mkdir(parents=True, exist_ok=True)
        started: list[Component] = []
        try:
            for c in self.components:
                c.start()
                started.append(c)
            if self.config.http.enabled:
                router = Router()
                routes.install(router, self)
                if self.role in ("monitor", "both"):
                    market.install(router, self.history)  # 503s when history is off
                self.http = HttpServer(self.config.http.host, self.config.http.port, router)
                self.http.start()
        except BaseException:
            for c in reversed(started):
                c.stop(2.0)
            raise

    def stop(self) -> bool:
        """Stop everything within the budget; False if something overran."""
        deadline = time.monotonic() + self.config.daemon.shutdown_timeout_s
        ok = True
        if self.http is not None:
            self.http.stop(1.0)
            self.http = None
        for c in reversed(self.components):
            left = max(0.1, deadline - time.monotonic())
            t = threading.Thread(target=c.stop, args=(left,), name=f"stop-{c.name}", daemon=True)
            t.start()
            t.join(left)
            if t.is_alive():
                log.error("component {} did not stop within {:.1f}s", c.name, left)
                ok = False
        return ok

    def _weight_budget(self, venue: str, market: str, weight_per_minute: int) -> RestLimiter:
        """The venue host's one REST weight budget: the feed's limiter when the
        feed carries that venue, else one the trader keeps (never two counters
        for one host while both run)."""
        shared = None
        if self.feed is not None and self.feed.pool is not None:
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
            "http": self.http.url if self.http else None,
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
                f"depth={cfg.books.depth}",
            ]
        for c in self.components:
            if isinstance(c, _VenueComponent):
                lines.append(f"  venue:    REST {c.venue.rest_url}  WebSocket {c.venue.ws_url}")
        if self.missing:
            lines.append(f"  NOT BUILT YET (this role runs without them): {', '.join(self.missing)}")
        lines.append(f"  http:     {self.http.url if self.http else 'disabled'}")
        return "\n".join(lines)


class _VenueComponent:
    """Adapts the local venue (engine.sim) to the Component protocol."""

    name = "venue"

    def __init__(self, venue) -> None:
        self.venue = venue

    def start(self) -> None:
        self.venue.start()

    def stop(self, timeout_s: float) -> None:
        self.venue.stop(timeout_s)

    def health(self) -> list[Health]:
        ok, reason = self.venue.health()
        return [Health(self.name, ok, reason)]

    def status(self) -> dict:
        return {"rest": self.venue.rest_url, "ws": self.venue.ws_url}

"""The feed as the daemon runs it: builds drivers from config (endpoint
overrides included), the capture recorder, and the FeedPool, and applies the
work list (static subscriptions from config, task-database diffs at run time).
Owns no protocol or sync logic; FeedPool and FeedRouter do."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from loguru import logger
from prometheus_client import CollectorRegistry

from engine.book.writer import BookWriter
from engine.config import Config
from engine.feed.capture import CaptureWriter
from engine.feed.pool import FeedPool, PoolFull
from engine.feed.venue_feed import InstrumentsUnavailable
from engine.lifecycle import Health
from engine.model import Market
from engine.venues import make_driver
from engine.venues.base import Subscription

log = logger.bind(component="feed")


class WorkItem(Protocol):
    """What the feed needs of a subscription, from config or the task DB."""

    @property
    def exchange(self) -> str: ...

    @property
    def market(self) -> str: ...

    @property
    def pair(self) -> str: ...

    @property
    def depth(self) -> int: ...


class FeedService:
    """A lifecycle Component around FeedPool. ``writer_of`` is called at
    start() because the BookStore exists only once the books component ran."""

    name = "feed"

    def __init__(self, config: Config, writer_of: Callable[[], BookWriter],
                 registry: CollectorRegistry | None = None,
                 on_event: Callable[[Any], None] | None = None) -> None:
        self.config = config
        self.writer_of = writer_of
        self.registry = registry
        self.on_event = on_event
        self.pool: FeedPool | None = None
        self.capture: CaptureWriter | None = None

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        feed = self.config.feed
        if feed.record_dir:
            directory = Path(self.config.daemon.data_dir) / feed.record_dir
            self.capture = CaptureWriter(directory, feed.record_rotate_mb << 20,
                                         float(feed.record_rotate_s))
        self.pool = FeedPool(feed, self.writer_of(), self.registry, capture=self.capture,
                             on_event=self.on_event)
        self.pool.start()
        self.subscribe(feed.subscriptions)

    def stop(self, timeout_s: float) -> None:
        if self.pool is not None:
            self.pool.stop(timeout_s)
        if self.capture is not None:
            self.capture.close()

    def health(self) -> list[Health]:
        if self.pool is None:
            return [Health(self.name, False, "not started")]
        return self.pool.health()

    def status(self) -> dict:
        return self.pool.status() if self.pool is not None else {"state": "stopped"}

    # ----------------------------------------------------------------- work

    def _ensure_feed(self, exchange: str, market: Market) -> None:
        assert self.pool is not None, "feed not started"
        try:
            self.pool.feed(exchange, market)
            return
        except KeyError:
            pass
        ex = self.config.exchanges.get(exchange)
        if ex is None:
            raise ValueError(f"exchange {exchange!r} is not configured under exchanges")
        if not ex.enabled:
            raise ValueError(f"exchange {exchange!r} is disabled in config")
        endpoints = ex.spot if market == Market.SPOT else ex.futures
        driver = make_driver(exchange, market, endpoints.rest, endpoints.ws)
        self.pool.add_feed(driver, ex.max_pairs_per_connection)
        log.info("feed added venue={} market={} ws={} rest={}", exchange, market.value,
                 driver.ws_base, driver.rest_base)

    def subscribe(self, items: Iterable[WorkItem]) -> None:
        """Start books (and trades where asked) for ``items``; bad items are
        logged with what was wrong and skipped."""
        assert self.pool is not None, "feed not started"
        groups: dict[tuple[str, Market], list[Subscription]] = {}
        for item in items:
            try:
                market = Market(item.market)
                self._ensure_feed(item.exchange, market)
            except (ValueError, KeyError) as e:
                log.error("cannot subscribe exchange={} market={} pair={}: {}",
                          item.exchange, item.market, item.pair, e)
                continue
            trades = bool(getattr(item, "trades", True))
            groups.setdefault((item.exchange, market), []).append(
                Subscription(item.pair, item.depth, trades))
        for (exchange, market), subs in groups.items():
            try:
                self.pool.subscribe(exchange, market, subs)
            except (PoolFull, InstrumentsUnavailable) as e:
                # Nothing of this group was subscribed; the rest keep running.
                log.error("cannot subscribe venue={} market={} pairs={}: {}", exchange,
                          market.value, ",".join(s.pair for s in subs), e)

    def unsubscribe(self, items: Iterable[WorkItem]) -> None:
        assert self.pool is not None, "feed not started"
        groups: dict[tuple[str, Market], list[str]] = {}
        for item in items:
            groups.setdefault((item.exchange, Market(item.market)), []).append(item.pair)
        for (exchange, market), pairs in groups.items():
            self.pool.unsubscribe(exchange, market, pairs)

    def apply_tasks(self, added: list, removed: list, changed: list) -> None:
        """TaskSink for the task-database fetcher: a changed depth re-subscribes."""
        if removed or changed:
            self.unsubscribe([*removed, *changed])
        if added or changed:
            self.subscribe([*added, *changed])

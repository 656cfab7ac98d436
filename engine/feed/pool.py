"""The feed pool: which pair rides which connection. Packs subscriptions up to
the venue's per-connection limit, keeps the daemon under its connection cap,
opens and closes connections at run time without touching other pairs, tells
each connection when to rotate before its venue's lifetime cut, wires each
venue+market to its router and REST snapshot fetcher, and reports health and
metrics. Never parses frames or touches books itself.

  subscribe(venue, market, subs) ──► Feed (one per driver) ──► Connection threads
                                          │ router = FeedRouter(driver, writer, hook)
  router.request_snapshot(pair) ──► REST venue: SnapshotFetcher ─► RestLimiter (per venue host)
                                    WS-snapshot venue: connection.resubscribe(pair)
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from loguru import logger
from prometheus_client import CollectorRegistry

from engine.book.writer import BookWriter
from engine.config import FeedConfig
from engine.feed.connection import MAX_FRAME_BYTES, Connection, ConnectionSettings
from engine.feed.health import (
    ConnState,
    FeedCollector,
    MetricRows,
    ResyncTracker,
    connection_health,
    is_synced,
)
from engine.feed.limiter import RestLimiter, WindowLimiter
from engine.feed.snapshots import SnapshotFetcher
from engine.feed.sync import FeedRouter
from engine.feed.venue_feed import Feed, rotation_plan, vet_instruments
from engine.lifecycle import Health
from engine.model import Market
from engine.venues.base import Driver, Subscription

log = logger.bind(component="feed")

# How often the watchdog samples book states and reaps closed connections.
# Shorter makes "resyncing since" sharper; each pass reads every book's stats.
WATCHDOG_INTERVAL_S = 0.5
# A book not synced for longer than this makes /health fail. A REST resync
# storm paced by the limiter legitimately takes a while on big venues, so this
# is minutes-scale; shorter pages sooner, and falsely during storms.
RESYNC_STUCK_S = 60.0
class PoolFull(RuntimeError):
    """Subscribing would need more connections than feed.max_connections."""


class FeedPool:
    """All market-data connections of the daemon (a lifecycle Component)."""

    name = "feed"

    def __init__(self, config: FeedConfig, writer: BookWriter,
                 registry: CollectorRegistry | None = None, capture: Any = None,
                 on_event: Callable[[Any], None] | None = None,
                 resync_stuck_s: float = RESYNC_STUCK_S, rest_window_s: float = 60.0,
                 max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self.config = config
        self.writer = writer
        self.capture = capture
        self.on_event = on_event
        self.resync_stuck_s = resync_stuck_s
        self.rest_window_s = rest_window_s
        self.settings = ConnectionSettings(stall_timeout_s=config.stall_timeout_s,
                                           reconnect_min_s=config.reconnect_min_s,
                                           reconnect_max_s=config.reconnect_max_s,
                                           max_frame_bytes=max_frame_bytes)
        self._lock = threading.RLock()  # guards feeds, lanes, subscriptions
        self._feeds: dict[tuple[str, Market], Feed] = {}
        self._by_id: dict[str, Connection] = {}
        self._rest_limiters: dict[tuple[str, str], RestLimiter] = {}
        self._connect_limiters: dict[str, WindowLimiter] = {}
        self._closing: list[Connection] = []
        self._conn_seq = 0
        self._started = False
        self._stop = threading.Event()
        self._tracker = ResyncTracker()
        self._stuck_logged: set[str] = set()  # books warned about, until they sync
        self._watchdog = threading.Thread(target=self._watch, name="feed-watchdog", daemon=True)
        if registry is not None:
            registry.register(FeedCollector(self))

    # ------------------------------------------------------------ wiring

    def add_feed(self, driver: Driver, max_pairs_per_connection: int = 0) -> FeedRouter:
        """Serve ``driver``'s venue+market; returns its router.
        ``max_pairs_per_connection`` 0 = the driver's default."""
        key = (driver.venue, driver.market)
        with self._lock:
            assert key not in self._feeds, f"feed {key} added twice"
            feed = Feed(driver, None,
                        max_pairs_per_connection or driver.limits.max_streams_per_connection)
            feed.router = FeedRouter(
                driver, self.writer,
                request_snapshot=lambda pair: self._fetch_snapshot(feed, pair),
                request_resubscribe=lambda pair: self._resubscribe(feed, pair),
                request_reconnect=self._reconnect,
                on_event=self.on_event)
            if type(driver).snapshot_request is not Driver.snapshot_request:
                feed.limiter = self._rest_limiter(driver)
                feed.fetcher = SnapshotFetcher(
                    driver, feed.limiter, deliver=feed.router.on_snapshot_response,
                    failed=feed.router.on_snapshot_failed,
                    depth_of=lambda pair: self._depth_of(feed, pair), capture=self.capture)
                if self._started:
                    feed.fetcher.start()
            self._feeds[key] = feed
            if driver.venue not in self._connect_limiters:
                lim = driver.limits
                self._connect_limiters[driver.venue] = WindowLimiter(
                    lim.max_connects_per_window, lim.connect_window_s, f"{driver.venue} connects")
        return feed.router

    def _rest_limiter(self, driver: Driver) -> RestLimiter:
        """One limiter per venue REST host: Binance spot and futures have separate
        budgets (different hosts), Bybit's and OKX's markets share one."""
        key = (driver.venue, urlsplit(driver.rest_base).netloc)
        limiter = self._rest_limiters.get(key)
        if limiter is None:
            limiter = self._rest_limiters[key] = RestLimiter(
                max(1, driver.limits.rest_weight_per_minute), self.rest_window_s,
                f"{key[0]} {key[1]}")
        return limiter

    def feed(self, venue: str, market: Market | str) -> Feed:
        return self._feeds[(venue, Market(market))]

    def rest_limiter(self, venue: str, market: Market | str) -> RestLimiter | None:
        return self.feed(venue, market).limiter

    # ------------------------------------------------------- subscriptions

    def subscribe(self, venue: str, market: Market | str, subs: Iterable[Subscription]) -> None:
        """Carry these pairs; pairs already carried are left alone. Raises
        PoolFull (and changes nothing) if the connection cap would be exceeded."""
        feed = self.feed(venue, market)
        subs = list(subs)
        vet_instruments(feed)
        refused = feed.driver.refused(subs)
        if refused:
            for pair, why in refused.items():
                log.error("not subscribing venue={} market={} pair={}: {}", venue,
                          Market(market).value, pair, why)
            feed.refused.update(refused)
            subs = [s for s in subs if s.pair not in refused]
        fresh: list[Connection] = []
        with self._lock:
            new = list({s.pair: s for s in subs if s.pair not in feed.subs}.values())
            if not new:
                return
            plan = feed.driver.endpoints(new)
            needed = 0
            for url, lane_subs in plan.items():
                free = sum(feed.limit - c.count() for c in feed.lanes.get(url, []))
                needed += max(0, -(-(len(lane_subs) - free) // feed.limit))
            total = self._connection_count()
            if total + needed > self.config.max_connections:
                raise PoolFull(
                    f"{venue} {Market(market).value}: {len(new)} more pairs need {needed} more "
                    f"connections; {total} of feed.max_connections={self.config.max_connections} "
                    f"in use ({feed.limit} pairs per connection)")
            for s in new:
                feed.subs[s.pair] = s
                feed.router.add_book(s.pair)  # before any frame of it can arrive
            again = [s.pair for s in new if s.pair in feed.known]
            if again:  # subscribed before: forget what the router remembers of that run
                feed.router.on_reconnect(again)
                for pair in again:
                    if feed.fetcher is not None:
                        feed.fetcher.resume(pair)
            feed.known.update(s.pair for s in new)
            for url, lane_subs in plan.items():
                fresh += self._place(feed, url, lane_subs)
            if self._started:
                for conn in fresh:
                    conn.start()
        log.info("subscribed venue={} market={} pairs={} new_connections={}", venue,
                 Market(market).value, len(new), len(fresh))

    def _place(self, feed: Feed, url: str, subs: list[Subscription]) -> list[Connection]:
        """Fill the lane's connections up to the limit, then open new ones."""
        lane = feed.lanes.setdefault(url, [])
        fresh: list[Connection] = []
        queue = subs
        for conn in list(lane):
            room = feed.limit - conn.count()
            if room > 0 and queue:
                batch, queue = queue[:room], queue[room:]
                self._assign(feed, conn, batch)
        while queue:
            batch, queue = queue[:feed.limit], queue[feed.limit:]
            conn = self._new_connection(feed, url)
            lane.append(conn)
            fresh.append(conn)
            self._assign(feed, conn, batch)
        return fresh

    @staticmethod
    def _assign(feed: Feed, conn: Connection, batch: list[Subscription]) -> None:
        for s in batch:
            if s.book:
                feed.book_conn[s.pair] = conn
        conn.add(batch)

    def unsubscribe(self, venue: str, market: Market | str, pairs: Iterable[str]) -> None:
        """Stop carrying these pairs; a connection left empty is closed. Their
        books are marked resyncing: nothing keeps them current any more."""
        feed = self.feed(venue, market)
        with self._lock:
            removed = [p for p in dict.fromkeys(pairs) if feed.subs.pop(p, None) is not None]
            for p in removed:
                feed.book_conn.pop(p, None)
            for lane in feed.lanes.values():
                for conn in list(lane):
                    conn.remove(removed)
                    if conn.count() == 0:
                        lane.remove(conn)
                        self._by_id.pop(conn.conn_id, None)
                        conn.request_stop()
                        self._closing.append(conn)
        if removed:
            feed.router.on_reconnect(removed)
            for pair in removed:
                if feed.fetcher is not None:
                    feed.fetcher.cancel(pair)
                self._tracker.forget(feed.key(pair))
        log.info("unsubscribed venue={} market={} pairs={}", venue, Market(market).value,
                 len(removed))

    def _new_connection(self, feed: Feed, url: str) -> Connection:
        self._conn_seq += 1
        driver = feed.driver
        settings = dataclasses.replace(
            self.settings, rotation=rotation_plan(driver.limits.max_connection_lifetime_s))
        conn = Connection(f"{driver.venue}-{driver.market.value}-{self._conn_seq}", url, driver,
                          feed.router, settings, self._connect_limiters[driver.venue],
                          self.capture, rest_limiter=feed.limiter)
        self._by_id[conn.conn_id] = conn
        return conn

    def _connection_count(self) -> int:
        return sum(len(f.connections()) for f in self._feeds.values())

    # ---------------------------------------------------- router hooks

    def _depth_of(self, feed: Feed, pair: str) -> int | None:
        sub = feed.subs.get(pair)
        return None if sub is None else sub.depth

    def _fetch_snapshot(self, feed: Feed, pair: str) -> None:
        """request_snapshot: queue a REST snapshot (never blocks a WS thread)."""
        if feed.fetcher is not None:
            feed.fetcher.request(pair)
        else:  # a WS-snapshot venue without REST books
            self._resubscribe(feed, pair)

    def _resubscribe(self, feed: Feed, pair: str) -> None:
        """request_resubscribe: the socket carrying the book asks for a new snapshot."""
        conn = feed.book_conn.get(pair)
        if conn is not None:
            conn.resubscribe([pair])

    def _reconnect(self, conn_id: str) -> None:
        """request_reconnect: the venue announced it will close ``conn_id``."""
        conn = self._by_id.get(conn_id)
        if conn is not None:
            conn.reconnect_now()

    # ---------------------------------------------------------- lifecycle

    def start(self) -> None:
        with self._lock:
            assert not self._started, "FeedPool.start called twice"
            self._started = True
            for feed in self._feeds.values():
                if feed.fetcher is not None:
                    feed.fetcher.start()
                for conn in feed.connections():
                    conn.start()
        self._watchdog.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close every connection cleanly and stop the REST workers."""
        deadline = time.monotonic() + timeout_s
        self._stop.set()
        with self._lock:
            conns = [c for f in self._feeds.values() for c in f.connections()] + self._closing
            for limiter in self._rest_limiters.values():
                limiter.close()
        for conn in conns:
            conn.request_stop()
        for conn in conns:
            if conn.alive and not conn.join(max(0.0, deadline - time.monotonic())):
                log.warning("connection did not stop in time conn={}", conn.conn_id)
        for feed in self._feeds.values():
            if feed.fetcher is not None:
                feed.fetcher.stop(max(0.1, deadline - time.monotonic()))
        if self._watchdog.is_alive():
            self._watchdog.join(max(0.1, deadline - time.monotonic()))

    def _watch(self) -> None:
        while not self._stop.wait(WATCHDOG_INTERVAL_S):
            try:
                self.sample_books()
                with self._lock:
                    self._closing = [c for c in self._closing if c.alive]
            except Exception:  # the watchdog must keep watching
                log.exception("feed watchdog pass failed")

    def sample_books(self) -> None:
        """Note which subscribed books are not synced (and since when); a book
        the venue never sent anything for counts too. Log each book once per
        episode when it passes resync_stuck_s unsynced, saying why if we can."""
        now = time.monotonic()
        for feed in list(self._feeds.values()):
            for pair in list(feed.subs):
                key = feed.key(pair)
                try:
                    stats = feed.router.stats(pair)
                except KeyError:  # no message for this book yet
                    stats = {"state": "empty", "messages": 0}
                synced = is_synced(stats["state"])
                self._tracker.observe(key, synced, now)
                if synced:
                    self._stuck_logged.discard(key)
                elif key not in self._stuck_logged and \
                        self._tracker.resyncing_for(key, now) > self.resync_stuck_s:
                    self._stuck_logged.add(key)
                    why = ("no message at all since it was subscribed: does the venue list "
                           "this pair? (--demo serves only venue.symbols)"
                           if not stats["messages"] else f"state {stats['state']}")
                    log.warning("book not synced venue={} market={} pair={} for_s={:.0f} "
                                "reason={}", feed.driver.venue, feed.driver.market.value, pair,
                                self._tracker.resyncing_for(key, now), why)

    # ------------------------------------------------------------- reports

    def connections(self) -> list[Connection]:
        with self._lock:
            return [c for f in self._feeds.values() for c in f.connections()]

    def health(self) -> list[Health]:
        """One entry per connection, one per feed's books, one per stuck book."""
        now = time.monotonic()
        out: list[Health] = []
        with self._lock:
            feeds = list(self._feeds.values())
            conns = [(c, c.count()) for f in feeds for c in f.connections()]
        for conn, n in conns:
            out.append(connection_health(f"feed.{conn.conn_id}", conn.stats, n, now,
                                         self.config.stall_timeout_s))
        self.sample_books()
        stuck = dict(self._tracker.stuck(now, self.resync_stuck_s))
        for feed in feeds:
            keys = [feed.key(p) for p in list(feed.subs)]
            bad = [k for k in keys if k in stuck]
            synced = sum(1 for k in keys if self._tracker.synced(k))
            name = f"feed.{feed.driver.venue}.{feed.driver.market.value}.books"
            reason = f"{synced}/{len(keys)} books synced"
            if bad:
                reason += f"; {len(bad)} resyncing over {self.resync_stuck_s:.0f}s"
            out.append(Health(name, not bad, reason))
            for k in bad:
                out.append(Health(f"feed.book.{k}", False, f"resyncing for {stuck[k]:.0f}s"))
        return out

    def status(self) -> dict:
        now = time.monotonic()
        conns = []
        for conn in self.connections():
            st = conn.stats
            conns.append({
                "id": conn.conn_id, "venue": conn.driver.venue,
                "market": conn.driver.market.value, "state": ConnState(st.state).name.lower(),
                "pairs": conn.count(), "messages": st.messages, "bytes": st.bytes,
                "reconnects": st.reconnects, "rotations": st.rotations,
                "last_disconnect": st.last_disconnect,
                "last_message_age_s": round(now - st.last_message, 3) if st.last_message else None,
                "receive_to_book_p99_ms": st.latency.quantile_s(0.99) * 1e3,
                "backlog_bytes": conn.backlog_bytes()})
        feeds = []
        for feed in list(self._feeds.values()):
            feeds.append({
                "venue": feed.driver.venue, "market": feed.driver.market.value,
                "pairs": len(feed.subs), "pairs_per_connection": feed.limit,
                "connections": len(feed.connections()),
                "rest": dict(feed.fetcher.counts) if feed.fetcher else None,
                "rest_paused_s": feed.limiter.banned_for() if feed.limiter else 0.0,
                "refused": dict(feed.refused)})
        return {"connections": conns, "feeds": feeds,
                "max_connections": self.config.max_connections}

    def metric_rows(self) -> MetricRows:
        now = time.monotonic()
        with self._lock:
            feeds = list(self._feeds.values())
            conns = [(f.driver, c) for f in feeds for c in f.connections()]
        rows = MetricRows([], [], [])
        for driver, c in conns:
            rows.connections.append((driver.venue, driver.market.value, c.conn_id, c.stats,
                                     c.count(), c.backlog_bytes()))
        for feed in feeds:
            for pair in list(feed.subs):
                try:
                    stats = feed.router.stats(pair)
                except KeyError:
                    continue
                key = feed.key(pair)
                rows.books.append((key, stats, self._tracker.resyncing_for(key, now)))
            if feed.fetcher is not None and feed.limiter is not None:
                lim = feed.limiter
                rows.rest.append((feed.driver.venue, feed.driver.market.value,
                                  dict(feed.fetcher.counts), feed.fetcher.pending(),
                                  urlsplit(feed.driver.rest_base).netloc, lim.used(),
                                  lim.banned_for(), dict(lim.penalties)))
        return rows

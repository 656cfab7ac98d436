"""Feed observability: per-connection counters (written only by the owning
connection thread), which frames count as data for the stall clock, a socket's
unread backlog, a cheap latency histogram, the resyncing-since tracker for
books, the health verdicts and the Prometheus collector that reads all of it at
scrape time. Owns no I/O and never changes feed state."""

from __future__ import annotations

import enum
import fcntl
import math
import socket
import termios
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from engine.lifecycle import Health

# Log-spaced histogram buckets 5% wide: quantiles within 5% from ~600 ints per
# connection; finer costs memory per connection, coarser blurs the p99.
_GROWTH = 1.05
_INV_LOG_GROWTH = 1.0 / math.log(_GROWTH)
_BUCKETS = 600  # up to ~1.05**600 ns, i.e. hours
# Bucket bounds exported to Prometheus (seconds): around the 5 ms target.
EXPORT_BOUNDS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5)


class ConnState(enum.IntEnum):
    """A connection's state (ConnectionStats.state), also the exported gauge value."""

    CONNECTING = 0
    LIVE = 1
    BACKOFF = 2  # disconnected, waiting before the next attempt
    STOPPED = 3


class LatencyHistogram:
    """Counts of durations in 5%-wide log buckets; one writer thread, any reader."""

    __slots__ = ("counts", "count", "sum_ns")

    def __init__(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.sum_ns = 0

    def observe_ns(self, ns: int) -> None:
        i = int(math.log(ns) * _INV_LOG_GROWTH) if ns > 1 else 0
        self.counts[i if i < _BUCKETS else _BUCKETS - 1] += 1
        self.count += 1
        self.sum_ns += ns

    def quantile_s(self, q: float) -> float:
        """Upper bound (seconds) of the bucket holding quantile ``q``; nan if empty."""
        if self.count == 0:
            return math.nan
        rank = q * self.count
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if c and seen >= rank:
                return _GROWTH ** (i + 1) / 1e9
        return _GROWTH ** _BUCKETS / 1e9

    def cumulative(self, bounds_s: Iterable[float]) -> list[tuple[str, int]]:
        """Prometheus buckets: (le, count of observations at or under it), then +Inf."""
        out = []
        counts = self.counts
        i, seen = 0, 0
        for bound in bounds_s:
            while i < _BUCKETS and _GROWTH ** (i + 1) <= bound * 1e9:
                seen += counts[i]
                i += 1
            out.append((repr(bound), seen))
        out.append(("+Inf", self.count))
        return out

    def merge(self, other: LatencyHistogram) -> None:
        for i, c in enumerate(other.counts):
            self.counts[i] += c
        self.count += other.count
        self.sum_ns += other.sum_ns

    def reset(self) -> None:
        self.counts = [0] * _BUCKETS
        self.count = 0
        self.sum_ns = 0


@dataclass(slots=True)
class ConnectionStats:
    """Plain counters of one connection. Only its thread writes; readers get a
    slightly stale but never torn value (single int/float stores under the GIL)."""

    state: int = ConnState.CONNECTING
    messages: int = 0
    bytes: int = 0
    sent: int = 0
    oversized: int = 0
    reconnects: int = 0
    rotations: int = 0  # planned replacements before the venue's lifetime cut
    created: float = field(default_factory=time.monotonic)
    connected_since: float = 0.0  # monotonic, start of the current/last session
    last_message: float = 0.0  # monotonic, last frame carrying data (router.on_frame says); 0 = none yet
    last_disconnect: str = ""
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    # monotonic times of recent data-stall verdicts: what the stall clock decided
    stalls: deque[float] = field(default_factory=lambda: deque(maxlen=64))


def socket_backlog_bytes(sock: socket.socket | None) -> int:
    """Bytes the kernel received on ``sock`` that nobody has read yet (FIONREAD)."""
    if sock is None:
        return 0
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
        return int.from_bytes(buf, "little")
    except (OSError, ValueError):
        return 0


def connection_health(component: str, stats: ConnectionStats, pairs: int, now: float,
                      stall_timeout_s: float) -> Health:
    """Unhealthy when no data arrived for longer than the stall timeout, across
    reconnects: a socket that connects, stalls and reconnects forever never
    looks healthy just because it is briefly live."""
    state = ConnState(stats.state).name.lower()
    age = now - (stats.last_message or stats.created)
    what = "no data yet" if not stats.last_message else f"last data {age:.1f}s ago"
    reason = f"{state}, {pairs} pairs, {what}, {stats.reconnects} reconnects"
    if stats.last_disconnect and stats.state != ConnState.LIVE:
        reason += f"; last disconnect: {stats.last_disconnect}"
    if stats.state == ConnState.STOPPED:
        return Health(component, False, "stopped; " + reason)
    if age > stall_timeout_s:
        return Health(component, False, f"stalled: {reason}")
    return Health(component, True, reason)


class ResyncTracker:
    """When each book entered a not-synced state, from periodic observations
    (the pool's watchdog and health() both observe; a lock keeps them apart)."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._seen: set[str] = set()  # books observed at least once
        self._lock = threading.Lock()

    def observe(self, book: str, synced: bool, now: float) -> None:
        with self._lock:
            self._seen.add(book)
            if synced:
                self._since.pop(book, None)
            else:
                self._since.setdefault(book, now)

    def forget(self, book: str) -> None:
        with self._lock:
            self._since.pop(book, None)
            self._seen.discard(book)

    def synced(self, book: str) -> bool:
        with self._lock:
            return book in self._seen and book not in self._since

    def resyncing_for(self, book: str, now: float) -> float:
        with self._lock:
            since = self._since.get(book)
        return 0.0 if since is None else now - since

    def stuck(self, now: float, threshold_s: float) -> list[tuple[str, float]]:
        with self._lock:
            late = [(b, now - t) for b, t in self._since.items() if now - t > threshold_s]
        return sorted(late, key=lambda bt: -bt[1])


class FeedSource(Protocol):
    """What the collector reads (engine.feed.pool.FeedPool)."""

    def metric_rows(self) -> MetricRows: ...


@dataclass
class MetricRows:
    # (venue, market, conn_id, stats, pairs, backlog_bytes)
    connections: list[tuple[str, str, str, ConnectionStats, int, int]]
    # (book key, router stats dict, seconds resyncing)
    books: list[tuple[str, dict, float]]
    # (venue, market, fetcher counts, pending, limiter host, used, pause, penalties)
    rest: list[tuple[str, str, dict, int, str, int, float, dict[int, int]]]


def is_synced(state: Any) -> bool:
    """Router stats report the SyncState (enum or name); only SYNCED is synced."""
    name = getattr(state, "name", state)
    return str(name).upper() == "SYNCED"


class FeedCollector:
    """Prometheus collector over a FeedSource; everything is read at scrape time."""

    def __init__(self, source: FeedSource) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        rows = self.source.metric_rows()
        now = time.monotonic()
        cl = ["venue", "market", "connection"]
        state = GaugeMetricFamily("engine_feed_connection_state",
                                  "0 connecting, 1 live, 2 backoff, 3 stopped", labels=cl)
        pairs = GaugeMetricFamily("engine_feed_connection_pairs", "Pairs carried", labels=cl)
        msgs = CounterMetricFamily("engine_feed_connection_messages", "Frames received", labels=cl)
        nbytes = CounterMetricFamily("engine_feed_connection_bytes", "Payload bytes received",
                                     labels=cl)
        sent = CounterMetricFamily("engine_feed_connection_sent_frames", "Frames sent", labels=cl)
        big = CounterMetricFamily("engine_feed_connection_oversized_frames",
                                  "Frames dropped for size", labels=cl)
        recon = CounterMetricFamily("engine_feed_connection_reconnects", "Sessions lost",
                                    labels=cl)
        rotated = CounterMetricFamily("engine_feed_connection_rotations",
                                      "Planned replacements before the venue's lifetime cut",
                                      labels=cl)
        age = GaugeMetricFamily("engine_feed_connection_last_message_age_seconds",
                                "Seconds since the last frame carrying market data", labels=cl)
        backlog = GaugeMetricFamily("engine_feed_connection_backlog_bytes",
                                    "Received by the kernel, not yet read", labels=cl)
        lat = HistogramMetricFamily("engine_feed_receive_to_book_seconds",
                                    "Frame receive to book written", labels=cl)
        for venue, market, conn_id, st, n, queued in rows.connections:
            lv = [venue, market, conn_id]
            state.add_metric(lv, st.state)
            pairs.add_metric(lv, n)
            msgs.add_metric(lv, st.messages)
            nbytes.add_metric(lv, st.bytes)
            sent.add_metric(lv, st.sent)
            big.add_metric(lv, st.oversized)
            recon.add_metric(lv, st.reconnects)
            rotated.add_metric(lv, st.rotations)
            age.add_metric(lv, now - st.last_message if st.last_message else math.nan)
            backlog.add_metric(lv, queued)
            lat.add_metric(lv, st.latency.cumulative(EXPORT_BOUNDS_S), st.latency.sum_ns / 1e9)
        yield from (state, pairs, msgs, nbytes, sent, big, recon, rotated, age, backlog, lat)

        bl = ["book"]
        synced = GaugeMetricFamily("engine_feed_book_synced", "1 synced, 0 resyncing/empty",
                                   labels=bl)
        resyncing = GaugeMetricFamily("engine_feed_book_resyncing_seconds",
                                      "Seconds since the book stopped being synced", labels=bl)
        families = {k: CounterMetricFamily(f"engine_feed_book_{k}", f"Book {k}", labels=bl)
                    for k in ("messages", "gaps", "resyncs", "errors")}
        buffered = GaugeMetricFamily("engine_feed_book_buffered", "Deltas held during resync",
                                     labels=bl)
        for key, s, since in rows.books:
            synced.add_metric([key], 1.0 if is_synced(s.get("state")) else 0.0)
            resyncing.add_metric([key], since)
            for k, fam in families.items():
                fam.add_metric([key], s.get(k, 0))
            buffered.add_metric([key], s.get("buffered", 0))
        yield from (synced, resyncing, *families.values(), buffered)

        rest = CounterMetricFamily("engine_feed_rest_snapshots", "REST snapshot requests by result",
                                   labels=["venue", "market", "result"])
        pending = GaugeMetricFamily("engine_feed_rest_pending", "Snapshots queued or in flight",
                                    labels=["venue", "market"])
        hl = ["venue", "host"]  # one limiter per venue REST host, shared by its markets
        used = GaugeMetricFamily("engine_feed_rest_weight_used", "Weight spent in the window",
                                 labels=hl)
        pause = GaugeMetricFamily("engine_feed_rest_pause_seconds", "Left of a 429/418 pause",
                                  labels=hl)
        penal = CounterMetricFamily("engine_feed_rest_penalties", "429/418 answers",
                                    labels=[*hl, "status"])
        seen: set[tuple[str, str]] = set()
        for venue, market, counts, n_pending, host, w_used, w_pause, penalties in rows.rest:
            for result, value in counts.items():
                rest.add_metric([venue, market, result], value)
            pending.add_metric([venue, market], n_pending)
            if (venue, host) not in seen:
                seen.add((venue, host))
                used.add_metric([venue, host], w_used)
                pause.add_metric([venue, host], w_pause)
                # 429 and 418 always present (0 until the first), so an alert
                # on their increase reads a real series from the start
                for status, value in sorted({429: 0, 418: 0, **penalties}.items()):
                    penal.add_metric([venue, host, str(status)], value)
        yield from (rest, pending, used, pause, penal)

"""REST book snapshots for one venue+market feed: a de-duplicating queue of
pairs served by a few worker threads, every request paced by the venue's
shared RestLimiter. Owns the HTTP fetch only; deciding when a book needs a
snapshot and applying it is the router's (engine.feed.sync).

  router ── request(pair) ──► queue (one entry per pair) ──► worker: limiter.acquire
                                                               │ GET driver.snapshot_request
        on_snapshot_response / on_snapshot_failed ◄────────────┘ (429/418 -> limiter.penalize)
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import requests
from loguru import logger

from engine.feed.backoff import Backoff
from engine.feed.limiter import RestLimiter, parse_retry_after
from engine.venues.base import Driver

log = logger.bind(component="feed")

# Concurrent snapshot requests per feed. The limiter bounds the *rate*; this
# bounds requests in flight. More hides REST latency when the budget is large
# (local venue, tests); each worker is an idle thread otherwise.
SNAPSHOT_WORKERS = 4
# Per-request timeout: long enough for a 5000-level book over a slow link,
# short enough that a hung request does not keep a book resyncing for long.
REST_TIMEOUT_S = 10.0
# Retry pacing for failures that are not rate limits (5xx, refused, timeout):
# per pair, capped exponential with jitter.
RETRY_FLOOR_S = 0.5
RETRY_CAP_S = 30.0

Deliver = Callable[[str, "str | bytes", int, str], None]
Failed = Callable[[str, str], None]


class SnapshotFetcher:
    """Fetches snapshots for ``driver``'s pairs and hands bodies to ``deliver``.

    ``depth_of(pair)`` returns the subscribed depth, or None once the pair is
    no longer subscribed (its request is then dropped). ``capture`` is an
    optional CaptureWriter that records every body received.
    """

    def __init__(self, driver: Driver, limiter: RestLimiter, deliver: Deliver, failed: Failed,
                 depth_of: Callable[[str], int | None], capture: Any = None,
                 workers: int = SNAPSHOT_WORKERS, timeout_s: float = REST_TIMEOUT_S) -> None:
        self.driver = driver
        self.limiter = limiter
        self._deliver = deliver
        self._failed = failed
        self._depth_of = depth_of
        self._capture = capture
        self._timeout_s = timeout_s
        self._label = f"rest-{driver.venue}-{driver.market.value}"
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []  # (not_before, order, pair)
        self._order = itertools.count()
        self._queued: set[str] = set()
        self._in_flight: set[str] = set()
        self._stale: set[str] = set()  # in flight, but asked again: discard that answer
        # Asked for while the pair was unsubscribed: the router still waits for an
        # answer, so the request resumes if the pair comes back (resume()).
        self._parked: set[str] = set()
        self._retry: dict[str, Backoff] = {}
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"{self._label}-{i}", daemon=True)
                         for i in range(workers)]
        # Counters for metrics/status; written under the condition lock.
        self.counts: dict[str, int] = {"requested": 0, "coalesced": 0, "ok": 0, "rate_limited": 0,
                                       "failed": 0, "discarded": 0}

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            if t.is_alive():
                t.join(max(0.0, deadline - time.monotonic()))

    # -------------------------------------------------------------- requests

    def request(self, pair: str) -> None:
        """Queue a snapshot of ``pair``; never blocks (router hook)."""
        with self._cond:
            self.counts["requested"] += 1
            if pair in self._in_flight:
                # Asked again while a fetch runs: the book was reset (reconnect)
                # after that fetch began, so its answer may predate the reset.
                self._stale.add(pair)
                return
            if pair in self._queued:
                self.counts["coalesced"] += 1
                return
            backoff = self._retry.get(pair)  # present after a failure that was not a 429/418
            delay = backoff.next_delay() if backoff is not None else 0.0
            self._push(pair, time.monotonic() + delay)

    def cancel(self, pair: str) -> None:
        """``pair`` was unsubscribed: park its queued request, drop an answer in flight."""
        with self._cond:
            if pair in self._queued:
                self._queued.discard(pair)
                self._parked.add(pair)
            self._retry.pop(pair, None)
            if pair in self._in_flight:
                self._stale.add(pair)

    def resume(self, pair: str) -> None:
        """``pair`` is subscribed again: a request parked while it was away runs now."""
        with self._cond:
            if pair in self._parked:
                self._parked.discard(pair)
                self._push(pair, time.monotonic())

    def pending(self) -> int:
        with self._cond:
            return len(self._queued) + len(self._in_flight)

    def _push(self, pair: str, not_before: float) -> None:
        self._queued.add(pair)
        heapq.heappush(self._heap, (not_before, next(self._order), pair))
        self._cond.notify()

    def _next(self) -> str | None:
        """Block until a pair is due; None when stopping."""
        with self._cond:
            while not self._stopping:
                if not self._heap:
                    self._cond.wait()
                    continue
                not_before, _, pair = self._heap[0]
                if pair not in self._queued:  # cancelled or a duplicate entry
                    heapq.heappop(self._heap)
                    continue
                wait = not_before - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                self._queued.discard(pair)
                self._in_flight.add(pair)
                return pair
        return None

    # ---------------------------------------------------------------- worker

    def _work(self) -> None:
        session = requests.Session()
        try:
            while (pair := self._next()) is not None:
                try:
                    self._fetch(session, pair)
                except Exception:  # a worker must survive any one pair
                    log.exception("snapshot fetch crashed venue={} pair={}", self.driver.venue, pair)
                    self._finish(pair)
                    self._fail(pair, "internal error")
        finally:
            session.close()

    def _finish(self, pair: str) -> bool:
        """Leave in-flight; True if the answer is still wanted."""
        with self._cond:
            self._in_flight.discard(pair)
            if pair in self._stale:
                self._stale.discard(pair)
                self.counts["discarded"] += 1
                if self._depth_of(pair) is not None:  # asked again after a reset
                    self._push(pair, time.monotonic())
                else:
                    self._parked.add(pair)
                return False
            return True

    def _fetch(self, session: requests.Session, pair: str) -> None:
        depth = self._depth_of(pair)
        if depth is None:  # unsubscribed since it was asked for
            with self._cond:
                self._in_flight.discard(pair)
                self._stale.discard(pair)
                self._parked.add(pair)
            return
        req = self.driver.snapshot_request(pair, depth)
        if req is None:
            self._finish(pair)
            self._fail(pair, f"{self.driver.venue} has no REST snapshot")
            return
        if not self.limiter.acquire(req.weight):
            self._finish(pair)  # limiter closed: shutting down
            return
        try:
            resp = session.request(req.method, req.url, params=req.params or None,
                                   timeout=self._timeout_s)
        except requests.RequestException as e:
            recv_ok = self._finish(pair)
            if recv_ok:
                self._fail(pair, f"request error: {type(e).__name__}: {e}")
            return
        recv_ns = time.time_ns()
        if not self._finish(pair):
            return
        if resp.status_code in (429, 418):
            pause = self.limiter.penalize(resp.status_code,
                                          parse_retry_after(resp.headers.get("Retry-After")))
            with self._cond:
                self.counts["rate_limited"] += 1
            log.warning("rest rate limited venue={} pair={} status={} pause_s={:.1f}",
                        self.driver.venue, pair, resp.status_code, pause)
            self._failed(pair, f"http {resp.status_code}")  # re-request waits out the pause
            return
        if resp.status_code != 200:
            self._fail(pair, f"http {resp.status_code}")
            return
        body: str | bytes
        try:
            body = resp.content.decode("utf-8")
        except UnicodeDecodeError:
            body = resp.content  # binary body (gzip/protobuf venues): hand it over as bytes
        if self._capture is not None:
            self._capture.write(recv_ns, "rest", self._label, resp.url, body)
        with self._cond:
            self.counts["ok"] += 1
            self._retry.pop(pair, None)
        self._deliver(pair, body, recv_ns, resp.url)

    def _fail(self, pair: str, reason: str) -> None:
        with self._cond:
            self.counts["failed"] += 1
            self._retry.setdefault(pair, Backoff(RETRY_FLOOR_S, RETRY_CAP_S))
        log.warning("snapshot failed venue={} pair={} reason={}", self.driver.venue, pair, reason)
        self._failed(pair, reason)

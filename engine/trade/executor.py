"""The executor: one thread that takes strategy actions, spends each venue's
order tokens and REST weight, and hands every job to the dispatcher (what goes
on the wire and how replies settle orders). Owns the queue and the schedule;
owns no order state (OrderStore does) and no limits (RiskGuard does).

  submit(action) ─► per-venue FIFO ─┐       delayed heap (retries, lookups) ─┐
                                    ▼                                        ▼
         _next(): due retries first, then round-robin over venues whose head may go
                  (risk check ─► OrderRateLimiter.take) ─► Dispatcher ─► venue REST
  results ─► on_result listeners;  order changes + fills ─► OrderStore listeners
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from loguru import logger

from engine.lifecycle import Health
from engine.model import Market
from engine.model_trade import Fill
from engine.trade.actions import Action, ActionResult, AmendOrder, CancelOrder, Outcome, PlaceOrder
from engine.trade.dispatch import Dispatcher, Job
from engine.trade.instruments import Instruments
from engine.trade.orders import OrderRecord, OrderStore
from engine.trade.ratelimit import OrderRateLimiter
from engine.trade.risk import RiskGuard
from engine.trade.session import VenueSession
from engine.trade.settings import TraderConfig

log = logger.bind(component="executor")

# Actions waiting per venue before submit() refuses more (a runaway strategy
# must not eat memory). Higher absorbs bigger bursts; a full queue is an error
# the strategy sees at once rather than orders sent minutes late.
MAX_QUEUED = 100_000


class QueueFull(RuntimeError):
    pass


class Executor:
    """A lifecycle Component. ``submit`` is thread-safe; everything else that
    touches the venue happens on the one executor thread."""

    name = "executor"

    def __init__(self, sessions: dict[str, VenueSession], store: OrderStore, risk: RiskGuard,
                 instruments: Instruments, settings: TraderConfig,
                 monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.sessions = sessions
        self.store = store
        self.risk = risk
        self.settings = settings
        self.monotonic = monotonic
        self.rates = {venue: OrderRateLimiter(settings.orders_per_s, settings.order_burst, venue)
                      for venue in sessions}
        self._queues: dict[str, deque[Job]] = {venue: deque() for venue in sessions}
        self._delayed: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._rr = 0
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._busy = False
        self.failed: BaseException | None = None
        self._result_listeners: list[Callable[[ActionResult], None]] = []
        # Called on the executor thread just before an order request goes out:
        # (action, monotonic s). For wire-latency figures (decision_to_wire).
        self.on_wire: Callable[[Action, float], None] | None = None
        self.rejected_reasons: dict[str, int] = {}  # why REJECTED results were rejected
        self.dispatch = Dispatcher(sessions, store, risk, instruments, settings,
                                   front=self._push_front, later=self._push_later,
                                   report=self._report, pause_orders=self._pause_orders,
                                   take_token=self._take_token, on_wire=self._wire, rng=rng)

    # ---------------------------------------------------------------- API

    def submit(self, action: Action) -> None:
        """Queue one action; returns at once. Raises QueueFull, or ValueError for
        a venue this executor has no session for."""
        self.submit_many((action,))

    def submit_many(self, actions: Iterable[Action]) -> None:
        """Queue actions in order. Binance spot has no batch order endpoint, so
        they go one request each (within the same rate); a venue driver that
        declares ``supports_batch_place`` is where batching would plug in."""
        jobs = [self._job(a) for a in actions]
        with self._cond:
            for job in jobs:
                queue = self._queues[job.venue]
                if len(queue) >= MAX_QUEUED:
                    raise QueueFull(f"{job.venue}: {MAX_QUEUED} actions already waiting")
                queue.append(job)
            self._cond.notify()

    def _job(self, action: Action) -> Job:
        if action.venue not in self._queues:
            raise ValueError(f"no trading session for venue {action.venue!r}")
        if isinstance(action, PlaceOrder):
            return Job(action, "place", order=action)
        if isinstance(action, CancelOrder):
            return Job(action, "cancel")
        if isinstance(action, AmendOrder):
            return Job(action, "amend", order=action.replacement)
        raise TypeError(f"not an action: {action!r}")

    def on_result(self, listener: Callable[[ActionResult], None]) -> None:
        """``listener(result)`` once per action when it settles (executor thread)."""
        self._result_listeners.append(listener)

    def on_update(self, listener: Callable[[OrderRecord, list[Fill]], None]) -> None:
        """``listener(record, new_fills)`` after every committed order change
        (executor or user-stream thread)."""
        self.store.listeners.append(listener)

    def add_wire_listener(self, listener: Callable[[str, str, float], None]) -> None:
        """``listener(venue, path, seconds)`` as each new order is written: the
        seconds since this executor took the action (executor thread)."""
        self.dispatch.wire_listeners.append(listener)

    def cancel_all(self, venue: str | None = None) -> int:
        """Queue a cancel for every live order of ours, ahead of everything
        else; orders of anyone else are never touched. Returns how many."""
        live = self.store.live_orders(venue)
        with self._cond:
            for record in live:
                self._queues[record.venue].appendleft(Job(CancelOrder(
                    record.client_order_id, record.venue, Market(record.market), record.pair,
                    record.strategy_id, record.slot_id), "cancel"))
            self._cond.notify()
        return len(live)

    def drop_new_orders(self) -> int:
        """Forget every place/amend not yet on the wire, queued or waiting for a
        retry (a halt): reported REJECTED; their intents, if any, are absent.
        Cancels and lookups of uncertain orders stay."""
        dropped: list[Job] = []
        with self._cond:
            for venue, queue in self._queues.items():
                keep: deque[Job] = deque()
                for job in queue:
                    (dropped if job.kind in ("place", "amend") else keep).append(job)
                self._queues[venue] = keep
            later = [entry for entry in self._delayed if entry[2].kind not in ("place", "amend")]
            dropped += [entry[2] for entry in self._delayed if entry[2].kind in ("place", "amend")]
            heapq.heapify(later)
            self._delayed = later
        for job in dropped:
            self.dispatch.drop_prepared(job, "dropped before sending: halted")
            self._report(ActionResult(job.action, Outcome.REJECTED, reason="halted"))
        return len(dropped)

    # ----------------------------------------------------------- schedule

    def _push_front(self, job: Job) -> None:
        with self._cond:
            self._queues[job.venue].appendleft(job)
            self._cond.notify()

    def _push_later(self, job: Job, delay_s: float) -> None:
        with self._cond:
            heapq.heappush(self._delayed, (self.monotonic() + delay_s, next(self._seq), job))
            self._cond.notify()

    def _take_token(self, venue: str) -> float:
        """Spend one order token now; the monotonic time it was spent at."""
        assert threading.current_thread() is self._thread, "executor thread only"
        now = self.monotonic()
        taken = self.rates[venue].take(now)
        assert taken, "_next checked the token; only this thread spends them"
        return now

    def _pause_orders(self, venue: str, seconds: float) -> None:
        self.rates[venue].pause(self.monotonic(), seconds)

    def _report(self, result: ActionResult) -> None:
        if result.outcome == Outcome.REJECTED:
            reason = result.reason or f"code {result.code}"
            self.rejected_reasons[reason] = self.rejected_reasons.get(reason, 0) + 1
            if reason != "halted":  # a halt drops the queue: logged once, by the halt
                action = result.action
                log.warning("order rejected venue={} pair={} client_order_id={} code={} reason={}",
                            action.venue, getattr(action, "pair", ""),
                            getattr(action, "client_order_id", ""), result.code, reason)
        for listener in self._result_listeners:
            try:
                listener(result)
            except Exception:  # a listener bug must not stop order flow
                log.exception("result listener failed")

    def _wire(self, action: Action, mono: float) -> None:
        if self.on_wire is not None:
            self.on_wire(action, mono)

    def _next(self) -> Job | None:
        """The next job allowed to run now; blocks until there is one."""
        assert threading.current_thread() is self._thread, "executor thread only"
        with self._cond:
            while not self._stopping:
                now = self.monotonic()
                while self._delayed and self._delayed[0][0] <= now:
                    job = heapq.heappop(self._delayed)[2]
                    self._queues[job.venue].appendleft(job)
                wait = float("inf")
                venues = list(self._queues)
                for i in range(len(venues)):
                    venue = venues[(self._rr + i) % len(venues)]
                    queue = self._queues[venue]
                    if not queue:
                        continue
                    job = queue[0]
                    if job.needs_order_token:
                        if not job.checked and job.order is not None:
                            job.refused = self.risk.check_place(job.order) or ""
                            job.checked = True
                        if job.needs_preparing:  # commit the intent while the token is not due
                            queue.popleft()
                            self._busy = True
                            return job
                        # The token itself is taken right before the request is
                        # written (_take_token), so the limit holds at the wire.
                        token_wait = 0.0 if job.refused else self.rates[venue].wait_needed(now)
                        if token_wait > 0.0:
                            wait = min(wait, token_wait)
                            continue
                    queue.popleft()
                    self._rr = (self._rr + i + 1) % len(venues)
                    self._busy = True
                    return job
                if self._delayed:
                    wait = min(wait, self._delayed[0][0] - now)
                self._busy = False
                self._cond.wait(None if wait == float("inf") else max(wait, 0.0005))
        return None

    def _run(self) -> None:
        handlers = {"place": self.dispatch.place, "cancel": self.dispatch.cancel,
                    "amend": self.dispatch.amend, "resolve": self.dispatch.resolve}
        while True:
            job = self._next()
            if job is None:
                return
            try:
                if job.needs_preparing:
                    if self.dispatch.prepare(job):
                        self._push_front(job)  # to the head again: sent when its token is due
                    continue
                handlers[job.kind](job)
            except Exception as exc:  # keep trading; the order is looked up
                log.exception("executor job failed kind={} client_order_id={}", job.kind,
                              job.action.client_order_id)
                self.risk.record_send(job.venue, False, f"executor error: {exc}")
                if job.kind in ("place", "amend", "resolve") and job.order is not None:
                    self._push_later(Job(job.action, "resolve", order=job.order,
                                         on_absent="report"), self.settings.backoff_max_s)

    # ---------------------------------------------------------- lifecycle

    def start(self) -> None:
        assert self._thread is None, "executor started twice"
        self._thread = threading.Thread(target=self._guarded, name="executor", daemon=True)
        self._thread.start()

    def _guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # recorded for health()
            self.failed = exc
            log.exception("executor thread died")

    def stop(self, timeout_s: float) -> None:
        """Stop after the job in hand. Queued new orders are dropped (never
        sent, no DB rows); uncertain orders stay 'unknown' in the DB and are
        reconciled at the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self._thread is None or not self._thread.is_alive():
            with self._cond:
                waiting = [job for queue in self._queues.values() for job in queue]
            for job in waiting:  # at most one per venue: a prepared order never sent
                self.dispatch.drop_prepared(job, "dropped before sending: executor stopped")
        for session in self.sessions.values():
            session.close()

    def idle(self) -> bool:
        """Nothing queued, delayed or in hand (tests and benchmarks wait on it)."""
        with self._cond:
            return not self._busy and not self._delayed and not any(self._queues.values())

    def queued(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._queues.values()) + len(self._delayed)

    def health(self) -> list[Health]:
        if self.failed is not None:
            return [Health(self.name, False, f"executor thread died: {self.failed!r}")]
        if self._thread is None or not self._thread.is_alive():
            return [Health(self.name, False, "not running")]
        unknown = [r.client_order_id for r in self.store.live_orders() if r.state == "unknown"]
        if unknown:
            return [Health(self.name, False, f"{len(unknown)} orders in unknown state, being "
                                             f"looked up: {', '.join(unknown[:5])}")]
        return [Health(self.name, True, "")]

    def status(self) -> dict:
        return {"queued": self.queued(), "counts": dict(self.dispatch.counts),
                "post_only_fallbacks": dict(self.dispatch.fallbacks),
                "rejected_reasons": dict(self.rejected_reasons),
                "orders_sent_by_rate_limiter": {v: r.acquired for v, r in self.rates.items()},
                "venues": {v: s.status() for v, s in self.sessions.items()}}



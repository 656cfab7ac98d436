"""What one executor job does on the wire and how each reply settles it: place
(with the post-only fallback), cancel, cancel-replace, and the lookup that
resolves an uncertain send. Runs only on the executor thread; scheduling,
rate limits and the queue are executor.py's.

Every send ends as ACKNOWLEDGED, REJECTED (definitive: not retried) or
UNKNOWN. An UNKNOWN order is looked up by client id; only a lookup that
finds nothing *after* the signed timestamp + recvWindow (the venue can no
longer accept that request) proves it ABSENT, and only then is it re-sent,
under the same client id. Retries use capped exponential backoff with full
jitter within a bounded number of attempts and seconds.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from loguru import logger

from engine.model_trade import AmendResult, OrderSpec, Reply, SignedRequest
from engine.trade import orders as st
from engine.trade.actions import (
    Action,
    ActionResult,
    AmendOrder,
    CancelOrder,
    Outcome,
    PlaceOrder,
    wire_decimal,
)
from engine.trade.instruments import Instruments, OffGrid
from engine.trade.orders import OrderRecord, OrderStore
from engine.trade.risk import RiskGuard
from engine.trade.session import VenueSession
from engine.trade.settings import TraderConfig

log = logger.bind(component="executor")

# Past sent timestamp + recvWindow, wait this much more before a lookup that
# finds nothing counts as proof: covers the error in our venue-clock offset.
# Longer delays the re-send of a lost order; shorter risks a late acceptance.
PROOF_MARGIN_MS = 1000
# A prepared request waits for its order token with the timestamp it was
# signed with; older than this it is re-signed (and SENT_MS moved) before it
# goes, so it never nears recvWindow. Longer saves a DB write per stale order.
PREPARED_MAX_AGE_MS = 1000
RESOLVE_MAX_S = 30.0  # lookups of an uncertain order never stop; this caps their spacing


@dataclass
class Job:
    action: Action
    kind: str  # place | cancel | amend | resolve
    order: PlaceOrder | None = None  # the order as it will be sent (after fallbacks)
    attempts: int = 0  # sends of this job so far
    lookups: int = 0
    reprices: int = 0
    fallback: str = ""
    first_mono: float = field(default_factory=time.monotonic)
    request: SignedRequest | None = None  # prepared (intent committed), not yet sent
    refused: str = ""  # risk's reason, decided before a token was spent
    checked: bool = False  # risk looked at this job (once per send, before its token)
    prepared_ms: int = 0  # the timestamp ``request`` is signed with (= SENT_MS)
    on_absent: str = "resend"  # resolve jobs: resend | report | split (an amend)

    @property
    def venue(self) -> str:
        return self.action.venue

    @property
    def needs_preparing(self) -> bool:
        """A place whose intent is not yet committed (or that risk refused: the
        refusal is reported there). Done before its token is due, so the token
        is spent right at the wire, not after a commit."""
        return self.kind == "place" and self.request is None

    @property
    def needs_order_token(self) -> bool:
        return self.kind in ("place", "amend") and not self.refused


class Dispatcher:
    def __init__(self, sessions: dict[str, VenueSession], store: OrderStore, risk: RiskGuard,
                 instruments: Instruments, settings: TraderConfig,
                 front: Callable[[Job], None], later: Callable[[Job, float], None],
                 report: Callable[[ActionResult], None],
                 pause_orders: Callable[[str, float], None],
                 take_token: Callable[[str], float],
                 on_wire: Callable[[Action, float], None] | None = None,
                 rng: random.Random | None = None) -> None:
        self.sessions = sessions
        self.store = store
        self.risk = risk
        self.instruments = instruments
        self.settings = settings
        self.front, self.later, self.report = front, later, report
        self.pause_orders = pause_orders  # (venue, seconds): the venue said -1015
        self.take_token = take_token  # venue -> when the order token was spent
        self.on_wire = on_wire
        # (venue, path, seconds from the executor taking the action to its write)
        self.wire_listeners: list[Callable[[str, str, float], None]] = []
        self.rng = rng or random.Random()
        self.counts: Counter[str] = Counter()  # sent, acknowledged, rejected, unknown, ...
        self.fallbacks: Counter[str] = Counter()  # limit | reprice | none

    # ------------------------------------------------------------- helpers

    def backoff(self, attempt: int) -> float:
        s = self.settings
        return self.rng.uniform(0.0, min(s.backoff_max_s, s.backoff_min_s * 2 ** max(0, attempt - 1)))

    def within_budget(self, job: Job) -> bool:
        s = self.settings
        return job.attempts < s.retry_attempts and \
            time.monotonic() - job.first_mono < s.retry_budget_s

    def _result(self, job: Job, outcome: Outcome, reply: Reply | None = None, reason: str = "",
                venue_order_id: str = "") -> None:
        self.counts[outcome.value] += 1
        code = reply.code if reply is not None else 0
        text = reason or (f"{reply.code} {reply.message}".strip() if reply is not None else "")
        self.report(ActionResult(job.action, outcome, code, text, venue_order_id, job.fallback,
                                 max(1, job.attempts),
                                 job.request.transport if job.request is not None else ""))

    def _send(self, job: Job, request: SignedRequest) -> Reply:
        session = self.sessions[job.venue]
        job.attempts += 1
        self.counts["sent"] += 1
        if request.counts_order:  # a new order: spend its token at the wire
            stamp = self.take_token(job.venue)
            if self.on_wire is not None:
                self.on_wire(job.action, stamp)
            for listener in self.wire_listeners:  # decision (taken) to wire, per venue/path
                listener(job.venue, request.transport, stamp - job.first_mono)
        reply = session.call(request)
        self.risk.record_send(job.venue, reply.kind == "ok" or reply.would_take or
                              reply.not_found, reply.message)
        return reply

    def _apply_order(self, session: VenueSession, body: dict) -> OrderRecord | None:
        update = session.driver.order_update(body, time.time_ns())
        changed = self.store.apply([update])
        return changed[0] if changed else self.store.get(update.venue, update.client_order_id)

    def _record_outcome(self, job: Job, record: OrderRecord | None) -> None:
        """Report an order whose venue state we now know."""
        if record is None or record.state in (st.REJECTED, st.ABSENT):
            self._result(job, Outcome.REJECTED, reason=record.reason if record else "not found")
        else:
            self._result(job, Outcome.ACKNOWLEDGED, venue_order_id=record.venue_order_id)

    # --------------------------------------------------------------- place

    def prepare(self, job: Job) -> bool:
        """Check, commit the intent and sign the request; True if it should go
        (the executor then waits for its token), False if the job settled."""
        order = job.order
        assert order is not None
        if job.refused:
            self._result(job, Outcome.REJECTED, reason=job.refused)
            return False
        instrument = self.instruments.find(order.venue, order.pair)
        try:
            if instrument is not None:
                instrument.check(order.price, order.quantity)
        except OffGrid as exc:
            self._result(job, Outcome.REJECTED, reason=f"local: {exc}")
            return False
        session = self.sessions[order.venue]
        session.maybe_sync_time()  # due every TIME_SYNC_S and after a -1021; before signing
        sent_ms = session.now_ms()
        replaces = job.action.client_order_id if isinstance(job.action, AmendOrder) else ""
        record, fresh = self.store.record_intent(order, sent_ms, replaces=replaces)
        if not fresh:  # that id was sent before: never twice
            log.warning("duplicate intent not sent client_order_id={} state={}",
                        order.client_order_id, record.state)
            if record.state in (st.INTENT, st.UNKNOWN):
                self.later(dataclasses.replace(job, kind="resolve", on_absent="report"), 0.0)
            else:
                self._record_outcome(job, record)
            return False
        job.request = self._new_order_request(order, sent_ms)
        job.prepared_ms = sent_ms
        return True

    def _new_order_request(self, order: PlaceOrder, sent_ms: int) -> SignedRequest:
        return self.sessions[order.venue].new_order(order_spec(order), sent_ms)

    def place(self, job: Job) -> None:
        """Send a prepared order (its token is due)."""
        order = job.order
        assert order is not None and job.request is not None, "place() needs prepare() first"
        session = self.sessions[order.venue]
        now_ms = session.now_ms()
        if now_ms - job.prepared_ms > PREPARED_MAX_AGE_MS:  # waited long: sign afresh
            self.store.restamp(order.venue, order.client_order_id, now_ms)
            job.request, job.prepared_ms = self._new_order_request(order, now_ms), now_ms
        elif (job.request.transport == "ws") != session.ws_ready():  # socket went up or down
            job.request = self._new_order_request(order, job.prepared_ms)
        request, job.request = job.request, None
        self.after_place(job, self._send(job, request))

    def drop_prepared(self, job: Job, reason: str) -> None:
        """A prepared order that will not be sent: its intent never left."""
        if job.order is not None and job.request is not None:
            self.store.settle(job.order.venue, job.order.client_order_id, st.ABSENT, reason)
            job.request = None

    def after_place(self, job: Job, reply: Reply) -> None:
        order = job.order
        assert order is not None
        session = self.sessions[order.venue]
        if reply.kind == "ok":
            record = self._apply_order(session, reply.body)
            self._result(job, Outcome.ACKNOWLEDGED, venue_order_id=record.venue_order_id
                         if record else "")
        elif reply.kind == "rejected" and reply.would_take and order.post_only:
            self.fallback(job, reply)
        elif reply.kind == "rejected" and not reply.duplicate:
            self.store.settle(order.venue, order.client_order_id, st.REJECTED,
                              f"{reply.code} {reply.message}")
            self._result(job, Outcome.REJECTED, reply)
        elif reply.kind == "retry":  # not processed: safe to send again
            self.store.settle(order.venue, order.client_order_id, st.ABSENT,
                              f"not processed: {reply.status} {reply.code} {reply.message}")
            if reply.code == -1015:
                self.pause_orders(order.venue, reply.retry_after_s or 10.0)
            self.retry_or_give_up(job, reply)
        else:  # unknown (timeout, 5xx, -1007) or "duplicate": the venue may hold it
            self.counts["unknown"] += 1
            self.store.settle(order.venue, order.client_order_id, st.UNKNOWN,
                              f"uncertain: {reply.status} {reply.code} {reply.message}")
            log.warning("uncertain send, looking up client_order_id={} reason={}",
                        order.client_order_id, reply.message)
            self.later(dataclasses.replace(job, kind="resolve"), self.settings.backoff_min_s)

    def retry_or_give_up(self, job: Job, reply: Reply) -> None:
        if self.within_budget(job):
            self.counts["retries"] += 1
            wait = max(self.backoff(job.attempts), reply.retry_after_s or 0.0)
            self.later(dataclasses.replace(job, kind="place" if job.kind == "resolve" else job.kind),
                       wait)
        else:
            self._result(job, Outcome.REJECTED, reply, reason=f"retry budget exhausted after "
                         f"{job.attempts} attempts: {reply.status} {reply.code} {reply.message}")

    def fallback(self, job: Job, reply: Reply) -> None:
        """A post-only order would take: limit, reprice a tick away, or give up."""
        order = job.order
        assert order is not None
        mode = self.settings.post_only_fallback
        instrument = self.instruments.find(order.venue, order.pair)
        if mode == "reprice" and (instrument is None or job.reprices >= self.settings.reprice_max):
            mode = "none"
        self.fallbacks[mode] += 1
        if mode == "none":
            self.store.settle(order.venue, order.client_order_id, st.REJECTED,
                              f"post-only would take: {reply.message}")
            self._result(job, Outcome.REJECTED, reply)
            return
        if mode == "limit":
            new = dataclasses.replace(order, post_only=False)
        else:
            assert instrument is not None
            new = dataclasses.replace(order, price=instrument.tick_away(order.price, order.side))
            job.reprices += 1
        self.store.settle(order.venue, order.client_order_id, st.ABSENT,
                          "post-only would take", fallback=mode)
        log.info("post-only fallback client_order_id={} mode={} price={}",
                 order.client_order_id, mode, new.price)
        self.front(dataclasses.replace(job, order=new, fallback=mode, kind="place", checked=False))

    # ------------------------------------------------------------- resolve

    def resolve(self, job: Job) -> None:
        order = job.order
        assert order is not None
        session = self.sessions[order.venue]
        record = self.store.get(order.venue, order.client_order_id)
        if record is not None and record.state not in (st.INTENT, st.UNKNOWN):
            self._record_outcome(job, record)  # the user stream settled it meanwhile
            return
        job.lookups += 1
        self.counts["lookups"] += 1
        session.maybe_sync_time()  # the proof below compares venue times
        reply = session.query_order(order.pair, order.client_order_id)
        if reply.kind == "ok":
            self._record_outcome(job, self._apply_order(session, reply.body))
        elif reply.not_found:
            sent_ms = record.sent_ms if record is not None else 0
            proof_at = sent_ms + session.driver.recv_window_ms + PROOF_MARGIN_MS
            wait_ms = proof_at - session.now_ms()
            if wait_ms > 0:
                self.later(job, wait_ms / 1000)
                return
            self.counts["absent"] += 1
            self.store.settle(order.venue, order.client_order_id, st.ABSENT,
                              "lookup after recvWindow: never accepted")
            if job.on_absent == "resend":
                self.retry_or_give_up(job, reply)
            elif job.on_absent == "split":
                self.split_amend(job)
            else:
                self._result(job, Outcome.REJECTED, reply, reason="never accepted")
        else:
            self.later(job, min(RESOLVE_MAX_S, self.backoff(job.lookups + 1) + 0.05))

    # -------------------------------------------------------------- cancel

    def cancel(self, job: Job) -> None:
        action = job.action
        assert isinstance(action, CancelOrder)
        record = self.store.get(action.venue, action.client_order_id)
        if record is None:
            self._result(job, Outcome.REJECTED, reason="not our order")
            return
        if record.state in st.TERMINAL:
            self._result(job, Outcome.REJECTED, reason=f"already {record.state}")
            return
        session = self.sessions[action.venue]
        session.maybe_sync_time()
        reply = self._send(job, session.cancel_order(action.pair, action.client_order_id))
        if reply.kind == "ok":
            self._apply_order(session, reply.body)
            self._result(job, Outcome.ACKNOWLEDGED, venue_order_id=record.venue_order_id)
        elif reply.kind == "rejected":
            if reply.not_found:
                self.lookup_once(record)  # filled or canceled meanwhile: learn which
            self._result(job, Outcome.REJECTED, reply)
        elif self.within_budget(job):  # a cancel is idempotent: just send it again
            self.counts["retries"] += 1
            self.later(job, max(self.backoff(job.attempts), reply.retry_after_s or 0.0))
        else:
            self._result(job, Outcome.UNKNOWN, reply, reason="cancel not confirmed")

    def lookup_once(self, record: OrderRecord) -> OrderRecord | None:
        session = self.sessions[record.venue]
        reply = session.query_order(record.pair, record.client_order_id)
        return self._apply_order(session, reply.body) if reply.kind == "ok" else None

    # --------------------------------------------------------------- amend

    def amend(self, job: Job) -> None:
        action = job.action
        assert isinstance(action, AmendOrder) and job.order is not None
        new = job.order
        old = self.store.get(action.venue, action.client_order_id)
        if job.refused or old is None or old.state in st.TERMINAL:
            self._result(job, Outcome.REJECTED, reason=job.refused or
                         f"nothing to amend: {old.state if old else 'not our order'}")
            return
        session = self.sessions[action.venue]
        session.maybe_sync_time()
        sent_ms = session.now_ms()
        record, fresh = self.store.record_intent(new, sent_ms, replaces=old.client_order_id)
        if not fresh:
            self._record_outcome(job, record)
            return
        reply = self._send(job, session.cancel_replace(old.client_order_id, order_spec(new),
                                                       sent_ms))
        parts = session.driver.amend_result(reply)
        if parts.known:
            self.amend_parts(job, old, parts, reply)
        elif reply.kind == "rejected":
            self.store.settle(new.venue, new.client_order_id, st.REJECTED,
                              f"{reply.code} {reply.message}")
            self._result(job, Outcome.REJECTED, reply)
        elif reply.kind == "retry":
            self.store.settle(new.venue, new.client_order_id, st.ABSENT, "not processed")
            if self.within_budget(job):
                self.later(job, max(self.backoff(job.attempts), reply.retry_after_s or 0.0))
            else:
                self._result(job, Outcome.REJECTED, reply, reason="retry budget exhausted")
        else:
            self.store.settle(new.venue, new.client_order_id, st.UNKNOWN, reply.message)
            self.lookup_once(old)
            self.later(dataclasses.replace(job, kind="resolve", on_absent="split"),
                       self.settings.backoff_min_s)

    def amend_parts(self, job: Job, old: OrderRecord, parts: AmendResult, reply: Reply) -> None:
        """A cancel-replace's two halves, as the driver read them."""
        new = job.order
        assert new is not None
        session = self.sessions[new.venue]
        if parts.cancel_ok and parts.cancel is not None:
            self._apply_order(session, parts.cancel)
        else:
            self.lookup_once(old)  # filled meanwhile, most likely
        if parts.placed is not None:
            record = self._apply_order(session, parts.placed)
            self._result(job, Outcome.ACKNOWLEDGED,
                         venue_order_id=record.venue_order_id if record else "")
            return
        inner = parts.new_failure
        if inner is not None and inner.would_take and new.post_only:
            self.fallback(job, inner)  # the cancel went through: place the fallback alone
            return
        state = st.REJECTED if inner is not None else st.ABSENT
        self.store.settle(new.venue, new.client_order_id, state,
                          f"{inner.code} {inner.message}" if inner is not None else
                          f"not attempted: cancel failed ({reply.message})")
        self._result(job, Outcome.REJECTED, inner if inner is not None else reply)

    def split_amend(self, job: Job) -> None:
        """An uncertain cancel-replace proven never accepted: cancel the old
        order (idempotent) and place the replacement as a new order."""
        action = job.action
        assert isinstance(action, AmendOrder) and job.order is not None
        self.front(dataclasses.replace(job, kind="place", attempts=0))
        self.front(Job(CancelOrder(action.client_order_id, action.venue, action.market,
                                   action.pair, action.strategy_id), "cancel"))  # goes first


def order_spec(order: PlaceOrder) -> OrderSpec:
    """The venue-neutral order the driver encodes (exact strings, on tick and lot)."""
    return OrderSpec(order.pair, order.side, wire_decimal(order.price),
                     wire_decimal(order.quantity), order.client_order_id, order.post_only,
                     order.time_in_force, order.reduce_only, order.position_side)

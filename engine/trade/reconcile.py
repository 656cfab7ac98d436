"""Reconciliation of the order store with the venue, run before any trading
(and on demand by tools/reconcile.py): our live orders against the venue's open
orders and order lookups, and our fills against its trade history. Decides
which differences are drift and whether they are small enough to correct.

  store.load() ─► venue openOrders per pair ─► each: ours? (id scheme + strategy)
      ├ not ours ─────────────────────────► left alone (counted as foreign)
      └ ours ─► compare with the DB row ─► match | adopt | drift
  DB-live orders the venue does not list ─► lookup by client id ─► catch-up | drift
  myTrades since the last fill held ─► missing fills added (idempotent)
  drift / slots < tolerance ─► corrections applied, logged;  else ─► halt + report

Catch-up (the venue's own record explains it, never drift): an intent or
uncertain send found on the venue or proven never accepted, an order filled
while we were away, fills we had not seen. Drift (counted against the
tolerance): an order with our id and no intent (orphan: canceled when
correcting), an order the DB thinks finished or never accepted but the venue
has open (canceled / adopted), a live order the venue does not know
(vanished), a live order canceled or expired by someone else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from loguru import logger

from engine.model import OrderStatus
from engine.trade import orders as st
from engine.trade.actions import parse_client_order_id
from engine.trade.dispatch import PROOF_MARGIN_MS
from engine.trade.orders import OrderRecord, OrderStore
from engine.trade.session import VenueSession
from engine.trade.userstream import CATCH_UP_OVERLAP_MS, fetch_fills

log = logger.bind(component="reconcile")

DRIFT = frozenset({"orphan", "finished_but_open", "absent_but_open", "vanished",
                   "canceled_elsewhere", "lookup_failed"})


@dataclass(frozen=True)
class Difference:
    kind: str
    pair: str
    client_order_id: str
    detail: str
    correction: str = ""  # what was (or would be) done

    @property
    def drift(self) -> bool:
        return self.kind in DRIFT


@dataclass
class ReconcileReport:
    venue: str
    tolerance: float
    slots: int = 0  # the denominator: slots (or our tracked orders) on this venue
    tracked: int = 0  # our live orders in the DB before
    venue_open: int = 0  # our orders open on the venue
    foreign_open: int = 0  # open orders that are not ours: left alone
    fills_added: int = 0
    differences: list[Difference] = field(default_factory=list)
    applied: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def drift(self) -> list[Difference]:
        return [d for d in self.differences if d.drift]

    @property
    def fraction(self) -> float:
        return len(self.drift) / max(1, self.slots)

    @property
    def ok(self) -> bool:
        return not self.errors and (not self.drift or self.fraction < self.tolerance)

    def text(self) -> str:
        verdict = "OK" if self.ok else "HALT"
        lines = [f"reconcile {self.venue}: {verdict} — drift {len(self.drift)} of {self.slots} "
                 f"slots ({self.fraction:.1%}, tolerance {self.tolerance:.1%}); tracked "
                 f"{self.tracked}, ours open on venue {self.venue_open}, foreign open "
                 f"{self.foreign_open} (left alone), fills added {self.fills_added}, "
                 f"corrections {'applied' if self.applied else 'not applied'}"]
        for d in self.differences:
            tag = "DRIFT" if d.drift else "catch-up"
            lines.append(f"  {tag:8} {d.kind:18} {d.pair:12} {d.client_order_id:36} {d.detail}"
                         + (f" -> {d.correction}" if d.correction else ""))
        lines += [f"  ERROR    {e}" for e in self.errors]
        return "\n".join(lines)


class Reconciler:
    def __init__(self, session: VenueSession, store: OrderStore, tolerance: float,
                 pairs: tuple[str, ...] = (), strategies: set[str] | None = None,
                 fill_lookback_s: float = 86_400.0) -> None:
        self.session = session
        self.driver = session.driver
        self.venue = session.driver.venue
        self.store = store
        self.tolerance = tolerance
        self.pairs = set(pairs)
        self.strategies = strategies  # None: every id of our scheme is ours
        self.fill_lookback_s = fill_lookback_s

    def ours(self, client_order_id: str) -> bool:
        parsed = parse_client_order_id(client_order_id)
        return parsed is not None and (self.strategies is None or
                                       parsed.strategy_id in self.strategies)

    def run(self, apply: bool, slots: int = 0) -> ReconcileReport:
        """Compare (and with ``apply``, correct what the tolerance allows).
        State the venue reports is always recorded when applying; cancels of
        orphans only when the drift is within tolerance."""
        live = {r.client_order_id: r for r in self.store.live_orders(self.venue)}
        report = ReconcileReport(self.venue, self.tolerance, tracked=len(live))
        pairs = sorted(self.pairs | {r.pair for r in live.values()})
        updates: list = []
        cancels: list[tuple[str, str]] = []
        settles: list[tuple[OrderRecord, str, str]] = []
        seen: set[str] = set()
        for pair in pairs:
            reply = self.session.open_orders(pair)
            if reply.kind != "ok":
                report.errors.append(f"openOrders {pair}: {reply.status} {reply.code} "
                                     f"{reply.message}")
                continue
            for body in self.driver.order_list(reply.body):
                update = self.driver.order_update(body, time.time_ns())
                cid = update.client_order_id
                if not self.ours(cid):
                    report.foreign_open += 1
                    continue
                report.venue_open += 1
                seen.add(cid)
                self._compare_open(report, update, live.get(cid) or
                                   self.store.get(self.venue, cid), updates, cancels)
        missing = [r for cid, r in live.items() if cid not in seen]
        self._wait_for_proof(missing)
        for record in missing:
            self._compare_missing(report, record, updates, settles)
        report.slots = slots or max(len(live), report.venue_open, 1)
        if apply:
            self.store.apply(updates)
            for record, state, reason in settles:
                self.store.settle(self.venue, record.client_order_id, state, reason)
            if report.ok:
                for pair, cid in cancels:
                    reply = self.session.call(self.session.cancel_order(pair, cid))
                    if reply.kind == "ok":
                        self.store.apply([self.driver.order_update(reply.body, time.time_ns())])
                    else:
                        report.errors.append(f"cancel {cid}: {reply.code} {reply.message}")
            report.fills_added = self._fills(pairs)
            report.applied = True
        (log.info if report.ok else log.error)("{}", report.text())
        return report

    def _compare_open(self, report: ReconcileReport, update, record: OrderRecord | None,
                      updates: list, cancels: list) -> None:
        cid, pair = update.client_order_id, update.pair
        if record is None:
            report.differences.append(Difference("orphan", pair, cid, "open on the venue, "
                                                 "no intent recorded", "cancel"))
            cancels.append((pair, cid))
        elif record.state in (st.INTENT, st.UNKNOWN):
            report.differences.append(Difference("adopted", pair, cid, f"{record.state} -> "
                                                 f"{update.status.value} on the venue", "record"))
            updates.append(update)
        elif record.state == st.ABSENT:
            report.differences.append(Difference("absent_but_open", pair, cid, "proven absent, "
                                                 "yet open on the venue", "record"))
            updates.append(update)
        elif record.state in st.TERMINAL:
            report.differences.append(Difference("finished_but_open", pair, cid, f"DB says "
                                                 f"{record.state}, venue has it open", "cancel"))
            cancels.append((pair, cid))
        elif st.merged(record, update) is not None:
            report.differences.append(Difference("filled_while_away", pair, cid, f"filled "
                                                 f"{record.filled} -> {update.filled}", "record"))
            updates.append(update)

    def _wait_for_proof(self, missing: list[OrderRecord]) -> None:
        """An intent sent moments ago (a crash mid-send, then a quick restart)
        may still reach the venue: wait until every such request is past its
        recvWindow, so a lookup that finds nothing proves it never arrived."""
        uncertain = [r.sent_ms for r in missing if r.state in (st.INTENT, st.UNKNOWN)]
        window = self.driver.recv_window_ms
        if uncertain:
            wait_ms = max(uncertain) + window + PROOF_MARGIN_MS - self.session.now_ms()
            if wait_ms > 0:
                log.info("reconcile waits {:.1f}s for recent sends to pass recvWindow",
                         wait_ms / 1000)
                time.sleep(min(wait_ms, window + PROOF_MARGIN_MS) / 1000)

    def _compare_missing(self, report: ReconcileReport, record: OrderRecord, updates: list,
                         settles: list[tuple[OrderRecord, str, str]]) -> None:
        """A live order of ours that the venue does not list as open."""
        cid, pair = record.client_order_id, record.pair
        reply = self.session.query_order(pair, cid)
        if reply.kind == "ok":
            update = self.driver.order_update(reply.body, time.time_ns())
            updates.append(update)
            if record.state in (st.INTENT, st.UNKNOWN):
                kind = "adopted"
            elif update.status in (OrderStatus.CANCELED, OrderStatus.EXPIRED):
                # Ours if we had sent a cancel (it landed while we were away).
                kind = "canceled_by_us" if self.store.cancel_sent(self.venue, cid) \
                    else "canceled_elsewhere"
            else:
                kind = "filled_while_away"
            report.differences.append(Difference(kind, pair, cid, f"{record.state} -> "
                                                 f"{update.status.value}", "record"))
        elif reply.not_found and record.state in (st.INTENT, st.UNKNOWN):
            if self.session.now_ms() < record.sent_ms + self.driver.recv_window_ms + \
                    PROOF_MARGIN_MS:
                report.errors.append(f"{cid}: sent {record.sent_ms}, too recent to prove absent")
                return
            report.differences.append(Difference("never_sent", pair, cid, "no such order past "
                                                 "recvWindow", "mark absent"))
            settles.append((record, st.ABSENT, "reconcile: never accepted"))
        elif reply.not_found:
            report.differences.append(Difference("vanished", pair, cid, f"DB says "
                                                 f"{record.state}, venue does not know it"))
        else:
            report.differences.append(Difference("lookup_failed", pair, cid, f"{reply.status} "
                                                 f"{reply.code} {reply.message}"))

    def _fills(self, pairs: list[str]) -> int:
        added = 0
        lookback = self.session.now_ms() - int(self.fill_lookback_s * 1000)
        for pair in pairs:
            since = max(lookback, self.store.last_fill_ms(self.venue, pair) - CATCH_UP_OVERLAP_MS)
            before = self.store.fills_inserted
            self.store.apply([], fetch_fills(self.session, pair, since))
            added += self.store.fills_inserted - before
        return added

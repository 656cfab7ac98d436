"""Futures accounts (drivers with ``has_positions``): position mode, leverage
and margin type set at start; funding payments and the venue's forced closes
(liquidation, auto-deleveraging) made durable and booked into positions; the
venue's position reports kept; positions reconciled with what our fills give;
a liquidation or margin call seen, logged, shown and stopping new orders.
Venue-neutral: talks to the venue only through the session's driver.

  start: setup (mode, leverage, margin) ─► load (funding, liquidations from the DB)
         ─► catch_up (funding since the last held; positions) ─► reconcile positions
  stream: positions ─► PositionBook.on_report | funding_due ─► catch_up (thread)
          liquidation fill ─► TRADER_LIQUIDATIONS ─► PositionBook ─► breaker "liquidation"
          margin call ─► log + /health
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal

from loguru import logger

from engine.lifecycle import Health
from engine.model import Market, Side
from engine.model_trade import Fill, MarginType, PositionMode, PositionReport, UserEvent
from engine.store.taskdb import TaskDb
from engine.trade.orders import OrderStore
from engine.trade.positions import PositionBook
from engine.trade.risk import RiskGuard
from engine.trade.session import VenueSession

log = logger.bind(component="futures")

# Funding fetched before the last payment held: a payment stamped slightly
# earlier than one already stored is still found. Duplicates are no-ops.
FUNDING_OVERLAP_MS = 3_600_000
FUNDING_LOOKBACK_MS = 7 * 86_400_000  # first start: this far back
WARNING_SHOW_S = 300.0  # a margin call stays on /health this long


@dataclass
class FuturesSettings:
    """``trader.futures`` (engine/config.py FuturesTradeConfig), read by name."""

    position_mode: str = "one_way"  # one_way | hedge | "": leave the account's (one-way orders)
    leverage: int = 0  # 0: leave the account's
    margin_type: str = ""  # cross | isolated | "": leave the account's
    poll_s: float = 60.0  # funding + positions refreshed this often (and on a funding push)


@dataclass
class PositionCheck:
    """Reconciliation of one pair: the venue's net quantity against our fills'."""

    pair: str
    venue_quantity: Decimal
    our_quantity: Decimal

    @property
    def ok(self) -> bool:
        return self.venue_quantity == self.our_quantity

    def text(self) -> str:
        return f"{self.pair}: venue {self.venue_quantity}, fills {self.our_quantity}"


@dataclass
class FuturesAccount:
    session: VenueSession
    db: TaskDb  # its own connection: the stream and the poller write under _lock
    store: OrderStore
    positions: PositionBook
    risk: RiskGuard
    settings: FuturesSettings
    pairs: tuple[str, ...] = ()
    checks: list[PositionCheck] = field(default_factory=list)
    liquidations: list[str] = field(default_factory=list)  # human lines, newest last
    warnings: list[tuple[float, str]] = field(default_factory=list)
    funding_inserted: int = 0
    errors: int = 0

    def __post_init__(self) -> None:
        self.venue = self.session.driver.venue
        self._due = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------- start

    def setup(self) -> None:
        """Position mode (account-wide), then leverage and margin type per pair.
        A refusal stops the start with the venue's reason: trading with a mode
        the orders do not match would be refused order by order."""
        s, session, driver = self.settings, self.session, self.session.driver
        mode = PositionMode.HEDGE if s.position_mode == "hedge" else PositionMode.ONE_WAY
        calls = [("position mode", driver.set_position_mode(mode, session.now_ms()))] \
            if s.position_mode else []
        for pair in self.pairs:
            if s.leverage:
                calls.append((f"leverage {pair}",
                              driver.set_leverage(pair, s.leverage, session.now_ms())))
            if s.margin_type:
                calls.append((f"margin type {pair}", driver.set_margin_type(
                    pair, MarginType(s.margin_type), session.now_ms())))
        for what, request in calls:
            reply = session.call(request)
            if reply.kind != "ok":
                raise RuntimeError(f"{self.venue}: setting {what} refused: {reply.status} "
                                   f"{reply.code} {reply.message}")
        log.info("futures account set venue={} mode={} leverage={} margin={}", self.venue,
                 s.position_mode or "as is", s.leverage or "as is", s.margin_type or "as is")

    def load(self) -> None:
        """Funding and liquidation fills from the DB into the position book."""
        for pair, amount, ms in self.db.query(
                "SELECT TRADE_PAIR, AMOUNT, EXCH_MS FROM TRADER_FUNDING WHERE VENUE = ? "
                "ORDER BY EXCH_MS", (self.venue,)):
            self.positions.on_funding(self.venue, str(pair), Decimal(str(amount)), int(ms) * 1_000_000)
        for row in self.db.query(
                "SELECT TRADE_PAIR, TRADE_ID, SIDE, VENUE_ORDER_ID, CLIENT_ORDER_ID, PRICE, "
                "QUANTITY, FEE, FEE_ASSET, EXCH_MS FROM TRADER_LIQUIDATIONS WHERE VENUE = ? "
                "ORDER BY EXCH_MS", (self.venue,)):
            pair, trade_id, side, order_id, cid, price, qty, fee, fee_asset, ms = row
            self.positions.on_fill(Fill(self.venue, Market.FUTURES, str(pair), str(cid),
                                        str(order_id), str(trade_id), Side(side), str(price),
                                        str(qty), str(fee), str(fee_asset), False,
                                        int(ms) * 1_000_000, liquidation=True))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"futures:{self.venue}",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        self._due.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        with self._lock:
            self.db.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.wait(self.settings.poll_s)
            self._due.clear()
            if self._stop.is_set():
                return
            try:
                self.catch_up()
            except Exception as exc:  # noqa: BLE001 - the next pass tries again
                self.errors += 1
                log.warning("futures catch-up failed venue={} error={!r}", self.venue, exc)

    # ---------------------------------------------------------- catch-up

    def catch_up(self) -> None:
        """Funding payments since the last one held, then the venue's positions."""
        session, driver = self.session, self.session.driver
        rows = self.db.query("SELECT MAX(EXCH_MS) FROM TRADER_FUNDING WHERE VENUE = ?",
                             (self.venue,))
        last = int(rows[0][0] or 0) if rows else 0
        start = max(last - FUNDING_OVERLAP_MS, session.now_ms() - FUNDING_LOOKBACK_MS)
        reply = session.call(driver.funding_fees(session.now_ms(), start))
        if reply.kind == "ok":
            self.add_funding(driver.funding_list(reply.body))
        reply = session.call(driver.positions(session.now_ms()))
        if reply.kind == "ok":
            for report in driver.position_reports(reply.body):
                self.on_report(report)

    def add_funding(self, fees: list) -> int:
        """Store each new payment once (keyed by the venue's id) and book it."""
        added = 0
        now = int(time.time() * 1000)
        with self._lock:
            for fee in fees:
                key = fee.funding_id or f"{fee.pair}:{fee.exch_ns}:{fee.amount}"
                inserted = self.db.execute(
                    "{insert_ignore} INTO TRADER_FUNDING (VENUE, FUNDING_ID, TRADE_PAIR, AMOUNT, "
                    "ASSET, EXCH_MS, CREATED_MS) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (self.venue, key, fee.pair, fee.amount, fee.asset,
                     fee.exch_ns // 1_000_000, now))
                if inserted:
                    self.positions.on_funding(self.venue, fee.pair, Decimal(fee.amount),
                                              fee.exch_ns)
                    added += 1
        self.funding_inserted += added
        return added

    def on_report(self, report: PositionReport) -> None:
        self.positions.on_report(report)
        with self._lock, self.db.transaction():  # the stream and the poller both report
            self._save_report(report)

    def _save_report(self, report: PositionReport) -> None:
        self.db.execute("DELETE FROM TRADER_POSITIONS WHERE VENUE = ? AND TRADE_PAIR = ? AND "
                        "POSITION_SIDE = ?", (self.venue, report.pair, report.position_side.value))
        self.db.execute(
            "INSERT INTO TRADER_POSITIONS (VENUE, TRADE_PAIR, POSITION_SIDE, QUANTITY, "
            "ENTRY_PRICE, MARK_PRICE, UNREALIZED_PNL, LIQUIDATION_PRICE, LEVERAGE, MARGIN_TYPE, "
            "EXCH_MS, UPDATED_MS) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.venue, report.pair, report.position_side.value, report.quantity,
             report.entry_price, report.mark_price, report.unrealized_pnl,
             report.liquidation_price, report.leverage,
             report.margin_type.value if report.margin_type else "",
             report.exch_ns // 1_000_000, int(time.time() * 1000)))

    # ------------------------------------------------------ reconciliation

    def reconcile(self) -> list[PositionCheck]:
        """After the order reconcile (fills caught up): the venue's net position
        per pair against our fills'. A difference trips the breaker: the fills
        do not explain the position (a manual trade, a missed liquidation)."""
        session, driver = self.session, self.session.driver
        reply = session.call(driver.positions(session.now_ms()))
        if reply.kind != "ok":
            raise RuntimeError(f"{self.venue}: positions not readable: {reply.status} "
                               f"{reply.code} {reply.message}")
        venue_net: dict[str, Decimal] = {}
        for report in driver.position_reports(reply.body):
            self.on_report(report)
            venue_net[report.pair] = venue_net.get(report.pair, Decimal(0)) + \
                Decimal(report.quantity)
        pairs = set(venue_net) | set(self.pairs)
        self.checks = [PositionCheck(p, venue_net.get(p, Decimal(0)),
                                     self.positions.position(self.venue, p).quantity)
                       for p in sorted(pairs)]
        bad = [c.text() for c in self.checks if not c.ok]
        if bad:
            self.risk.breaker.trip(self.venue, "position", "positions differ from our fills: "
                                   + "; ".join(bad))
            log.error("position reconcile drift venue={} {}", self.venue, "; ".join(bad))
        return self.checks

    # ------------------------------------------------------------ stream

    def on_event(self, event: UserEvent) -> None:
        """The private stream's futures parts (called by the user stream, whose
        socket must not die of a failure here: counted and logged)."""
        try:
            self._on_event(event)
        except Exception as exc:  # noqa: BLE001 - the next catch-up repairs it
            self.errors += 1
            log.warning("futures event not applied venue={} error={!r}", self.venue, exc)
            self._due.set()

    def _on_event(self, event: UserEvent) -> None:
        for report in event.positions:
            self.on_report(report)
        if event.funding or event.funding_due:
            self.add_funding(event.funding)
            self._due.set()  # the funding list is the record: read it
        for text in event.warnings:
            self.warn(text)
        for fill in event.fills:
            if fill.liquidation:
                self.on_liquidation(fill)

    def warn(self, text: str) -> None:
        with self._lock:
            self.warnings = [(t, w) for t, w in self.warnings
                             if time.monotonic() - t < WARNING_SHOW_S] + [(time.monotonic(), text)]
        log.error("futures warning venue={} {}", self.venue, text)

    def on_liquidation(self, fill: Fill) -> None:
        """A forced close: durable (once), into the position, and new orders stop."""
        with self._lock:
            inserted = self.db.execute(
                "{insert_ignore} INTO TRADER_LIQUIDATIONS (VENUE, TRADE_PAIR, TRADE_ID, SIDE, "
                "VENUE_ORDER_ID, CLIENT_ORDER_ID, PRICE, QUANTITY, FEE, FEE_ASSET, EXCH_MS, "
                "CREATED_MS) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.venue, fill.pair, fill.trade_id, fill.side.value, fill.venue_order_id,
                 fill.client_order_id, fill.price, fill.quantity, fill.fee, fill.fee_asset,
                 fill.exch_ns // 1_000_000, int(time.time() * 1000)))
            if not inserted:
                return
            self.positions.on_fill(fill)
            text = (f"LIQUIDATION {fill.pair}: venue closed {fill.side.value} {fill.quantity} "
                    f"at {fill.price} (order {fill.venue_order_id} {fill.client_order_id})")
            self.liquidations = self.liquidations[-49:] + [text]
        self.risk.breaker.trip(self.venue, "liquidation", f"{text}; new orders stopped until "
                               f"the trader is resumed")
        log.error("{} venue={}", text, self.venue)
        self._due.set()  # positions and funding afresh

    def resume(self) -> None:
        self.risk.breaker.clear(self.venue, "liquidation")

    # -------------------------------------------------------------- views

    def health(self) -> list[Health]:
        now = time.monotonic()
        recent = [w for t, w in self.warnings if now - t < WARNING_SHOW_S]
        if recent:
            return [Health(f"futures:{self.venue}", False, "; ".join(recent[-3:]))]
        return [Health(f"futures:{self.venue}", True, "")]

    def status(self) -> dict:
        return {"position_mode": self.settings.position_mode,
                "leverage": self.settings.leverage, "margin_type": self.settings.margin_type,
                "reconcile": [c.text() for c in self.checks],
                "position_drift": [c.text() for c in self.checks if not c.ok],
                "liquidations": list(self.liquidations), "funding_payments": self.funding_inserted,
                "warnings": [w for _, w in self.warnings], "errors": self.errors}

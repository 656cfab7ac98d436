"""The durable order and fill store: every order intent, state change and fill
is committed to the task DB (TRADER_ORDERS, TRADER_FILLS) before the in-memory
view changes. Applying an update is a monotonic merge, so a duplicate, replayed
or out-of-order update changes nothing. Owns no I/O with venues.

  executor ─ record_intent (before send) ─ settle (after reply) ─┐
  user stream / catch-up / reconcile ─ apply(updates, fills) ────┤ lock
                                                                 ▼
                                  TaskDb transaction ─► memory (_orders, _by_venue_id)
"""

from __future__ import annotations

import dataclasses
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from engine.clock import SYSTEM, Clock
from engine.model import Market, OrderStatus, OrderUpdate, Side
from engine.model_trade import Fill
from engine.store.taskdb import SQLITE, TaskDb
from engine.trade.actions import PlaceOrder

# States, in the order an order moves through them. An update never moves an
# order back (rank), and terminal states end it.
INTENT, UNKNOWN, ABSENT = "intent", "unknown", "absent"
OPEN, PARTIAL = "open", "partially_filled"
FILLED, CANCELED, REJECTED, EXPIRED = "filled", "canceled", "rejected", "expired"
TERMINAL = frozenset({FILLED, CANCELED, REJECTED, EXPIRED, ABSENT})
LIVE = frozenset({INTENT, UNKNOWN, OPEN, PARTIAL})  # may be (or become) on the book
_RANK = {INTENT: 0, ABSENT: 1, UNKNOWN: 1, OPEN: 2, PARTIAL: 3,
         FILLED: 4, CANCELED: 4, REJECTED: 4, EXPIRED: 4}
_FROM_STATUS = {OrderStatus.NEW: OPEN, OrderStatus.PARTIALLY_FILLED: PARTIAL,
                OrderStatus.FILLED: FILLED, OrderStatus.CANCELED: CANCELED,
                OrderStatus.REJECTED: REJECTED, OrderStatus.EXPIRED: EXPIRED}
# Terminal orders kept in memory for fast duplicate checks; older ones are read
# back from the DB on demand. More costs memory; fewer costs a query per late update.
TERMINAL_KEPT = 20_000

_COLUMNS = ("VENUE, CLIENT_ORDER_ID, MARKET_TYPE, TRADE_PAIR, STRATEGY_ID, SLOT_ID, SIDE, "
            "POST_ONLY, TIME_IN_FORCE, PRICE, QUANTITY, STATE, VENUE_ORDER_ID, FILLED, "
            "AVERAGE_PRICE, FALLBACK, REPLACES, REASON, SENT_MS, CREATED_MS, UPDATED_MS")


@dataclass(frozen=True, slots=True)
class OrderRecord:
    venue: str
    client_order_id: str
    market: str
    pair: str
    strategy_id: str
    slot_id: int | None
    side: Side
    post_only: bool
    time_in_force: str
    price: str
    quantity: str
    state: str
    venue_order_id: str = ""
    filled: str = "0"
    average_price: str = "0"
    fallback: str = ""
    replaces: str = ""
    reason: str = ""
    sent_ms: int = 0
    created_ms: int = 0
    updated_ms: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return (self.venue, self.client_order_id)

    @property
    def live(self) -> bool:
        return self.state in LIVE

    @classmethod
    def from_row(cls, row: tuple) -> OrderRecord:
        (venue, cid, market, pair, strategy, slot, side, post_only, tif, price, qty, state,
         venue_id, filled, avg, fallback, replaces, reason, sent, created, updated) = row
        return cls(venue, cid, market, pair, strategy or "", None if slot is None else int(slot),
                   Side(side), bool(post_only), tif, price, qty, state, venue_id or "",
                   filled or "0", avg or "0", fallback or "", replaces or "", reason or "",
                   int(sent or 0), int(created), int(updated))


def merged(record: OrderRecord, update: OrderUpdate) -> OrderRecord | None:
    """``record`` advanced by ``update``, or None if the update adds nothing
    (a duplicate, a replay, or older than what we hold)."""
    state = _FROM_STATUS[update.status]
    more_filled = Decimal(update.filled) > Decimal(record.filled)
    later = _RANK[state] > _RANK[record.state] or (record.state == ABSENT and state != ABSENT)
    if not more_filled and not later:
        if not record.venue_order_id and update.venue_order_id:
            return dataclasses.replace(record, venue_order_id=update.venue_order_id)
        return None
    return dataclasses.replace(
        record, state=state if later else record.state,
        venue_order_id=record.venue_order_id or update.venue_order_id,
        filled=update.filled if more_filled else record.filled,
        average_price=update.average_price if more_filled else record.average_price)


def _plain(value: Decimal) -> str:
    """As written, without an exponent: Decimal("1E-8") -> "0.00000001"."""
    return format(value, "f")


class OrderStore:
    """Thread-safe: the executor and the user stream both write through it."""

    def __init__(self, db: TaskDb, daemon_id: str = "", clock: Clock = SYSTEM) -> None:
        self.db = db
        self.daemon_id = daemon_id
        self.clock = clock
        self._lock = threading.RLock()
        self._orders: dict[tuple[str, str], OrderRecord] = {}
        self._by_venue_id: dict[tuple[str, str, str], str] = {}  # (venue, pair, order id) -> cid
        self._terminal: deque[tuple[str, str]] = deque()
        self._live: dict[str, set[str]] = {}  # venue -> client ids of live orders
        self.duplicates = 0  # updates and fills that changed nothing
        self.fills_inserted = 0
        # Called (outside the lock) after a committed change: (record, new fills).
        self.listeners: list[Callable[[OrderRecord, list[Fill]], None]] = []

    def _now_ms(self) -> int:
        return self.clock.now_ns() // 1_000_000

    # ------------------------------------------------------------- loading

    def load(self) -> list[OrderRecord]:
        """Read every live order (and nothing else) into memory; returns them."""
        if self.db.dialect is SQLITE:
            # WAL + synchronous=NORMAL: a COMMIT has reached the WAL file (the OS
            # page cache) when it returns, so every intent survives a kill of
            # this process (SIGKILL, OOM, crash); only power loss or a kernel
            # crash can lose the last commits, never corrupting the file (docs/
            # trading.md "Durability"). FULL adds an fsync to every intent on the
            # decision-to-wire path: ~0.2 ms idle, 10-30 ms p99 on a busy disk.
            # Per connection: a reconnect falls back to FULL (slower, safe).
            self.db.execute("PRAGMA synchronous=NORMAL")
        rows = self.db.query(f"SELECT {_COLUMNS} FROM TRADER_ORDERS WHERE STATE IN (?, ?, ?, ?)",
                             tuple(sorted(LIVE)))
        with self._lock:
            for row in rows:
                self._remember(OrderRecord.from_row(row))
            return [r for r in self._orders.values() if r.live]

    def _remember(self, record: OrderRecord) -> None:
        """Caller holds the lock."""
        before = self._orders.get(record.key)
        self._orders[record.key] = record
        live = self._live.setdefault(record.venue, set())
        if record.live:
            live.add(record.client_order_id)
        else:
            live.discard(record.client_order_id)
        if record.venue_order_id:
            self._by_venue_id[(record.venue, record.pair, record.venue_order_id)] = \
                record.client_order_id
        if record.state in TERMINAL and (before is None or before.state not in TERMINAL):
            self._terminal.append(record.key)
            while len(self._terminal) > TERMINAL_KEPT:
                old = self._terminal.popleft()
                gone = self._orders.get(old)
                if gone is not None and gone.state in TERMINAL:
                    del self._orders[old]
                    self._by_venue_id.pop((gone.venue, gone.pair, gone.venue_order_id), None)

    def get(self, venue: str, client_order_id: str) -> OrderRecord | None:
        with self._lock:
            found = self._orders.get((venue, client_order_id))
            if found is not None:
                return found
            rows = self.db.query(f"SELECT {_COLUMNS} FROM TRADER_ORDERS WHERE VENUE = ? AND "
                                 f"CLIENT_ORDER_ID = ?", (venue, client_order_id))
            if not rows:
                return None
            record = OrderRecord.from_row(rows[0])
            self._remember(record)
            return record

    def client_id_for(self, venue: str, pair: str, venue_order_id: str) -> str | None:
        with self._lock:
            cid = self._by_venue_id.get((venue, pair, venue_order_id))
            if cid is not None:
                return cid
            rows = self.db.query("SELECT CLIENT_ORDER_ID FROM TRADER_ORDERS WHERE VENUE = ? AND "
                                 "TRADE_PAIR = ? AND VENUE_ORDER_ID = ?", (venue, pair,
                                                                          venue_order_id))
            return rows[0][0] if rows else None

    def live_orders(self, venue: str | None = None) -> list[OrderRecord]:
        with self._lock:
            venues = [venue] if venue is not None else list(self._live)
            return [self._orders[(v, cid)] for v in venues for cid in self._live.get(v, ())]

    def live_count(self, venue: str) -> int:
        with self._lock:
            return len(self._live.get(venue, ()))

    # ------------------------------------------------------------- writing

    def record_intent(self, order: PlaceOrder, sent_ms: int, replaces: str = "",
                      also: Callable[[TaskDb], None] | None = None
                      ) -> tuple[OrderRecord, bool]:
        """Commit the intent (state ``intent``, the timestamp its request will be
        signed with) before the request leaves; (record, True) means "send it".

        A known id is re-armed only from ABSENT (proven never accepted: a
        post-only fallback, a re-send after 429 or a lookup past recvWindow);
        in any other state it returns (record, False): that order may be on
        the venue already and must never be sent twice. ``also`` runs in the
        same transaction (the slot change that caused the intent)."""
        now = self._now_ms()
        with self._lock:
            existing = self.get(order.venue, order.client_order_id)
            if existing is not None and existing.state != ABSENT:
                return existing, False
            record = OrderRecord(order.venue, order.client_order_id, order.market.value,
                                 order.pair, order.strategy_id, order.slot_id, order.side,
                                 order.post_only, order.time_in_force.value, _plain(order.price),
                                 _plain(order.quantity), INTENT, replaces=replaces, sent_ms=sent_ms,
                                 fallback=existing.fallback if existing else "",
                                 created_ms=existing.created_ms if existing else now,
                                 updated_ms=now)
            with self.db.transaction():
                if existing is None:
                    self.db.execute(
                        f"INSERT INTO TRADER_ORDERS ({_COLUMNS}, DAEMON_ID) VALUES "
                        f"({', '.join('?' * 22)})", self._row(record) + (self.daemon_id,))
                else:
                    self.db.execute("UPDATE TRADER_ORDERS SET STATE = ?, SENT_MS = ?, PRICE = ?, "
                                    "POST_ONLY = ?, UPDATED_MS = ? WHERE VENUE = ? AND "
                                    "CLIENT_ORDER_ID = ?", (INTENT, sent_ms, record.price,
                                                            record.post_only, now, *record.key))
                if also is not None:
                    also(self.db)
            self._remember(record)
            return record, True

    def restamp(self, venue: str, client_order_id: str, sent_ms: int) -> None:
        """A prepared intent is about to be sent with a newer signed timestamp."""
        with self._lock:
            record = self.get(venue, client_order_id)
            if record is None or record.state != INTENT:
                return
            self.db.execute("UPDATE TRADER_ORDERS SET SENT_MS = ? WHERE VENUE = ? AND "
                            "CLIENT_ORDER_ID = ? AND STATE = ?",
                            (sent_ms, venue, client_order_id, INTENT))
            self._remember(dataclasses.replace(record, sent_ms=sent_ms))

    @staticmethod
    def _row(r: OrderRecord) -> tuple:
        return (r.venue, r.client_order_id, r.market, r.pair, r.strategy_id, r.slot_id,
                r.side.value, r.post_only, r.time_in_force, r.price, r.quantity, r.state,
                r.venue_order_id, r.filled, r.average_price, r.fallback, r.replaces, r.reason,
                r.sent_ms, r.created_ms, r.updated_ms)

    def settle(self, venue: str, client_order_id: str, state: str, reason: str = "",
               fallback: str = "", price: str = "", post_only: bool | None = None
               ) -> OrderRecord | None:
        """Set a state the venue did not send as an update: rejected, unknown,
        absent (proven never accepted), or a fallback re-price. Never moves a
        live-on-venue or finished order back to unknown/absent."""
        with self._lock:
            record = self.get(venue, client_order_id)
            if record is None:
                return None
            if state in (UNKNOWN, ABSENT, REJECTED) and _RANK[record.state] >= _RANK[OPEN]:
                return record
            changed = dataclasses.replace(
                record, state=state, reason=reason[:255] or record.reason,
                fallback=fallback or record.fallback, price=price or record.price,
                post_only=record.post_only if post_only is None else post_only,
                updated_ms=self._now_ms())
            self.db.execute("UPDATE TRADER_ORDERS SET STATE = ?, REASON = ?, FALLBACK = ?, "
                            "PRICE = ?, POST_ONLY = ?, UPDATED_MS = ? WHERE VENUE = ? AND "
                            "CLIENT_ORDER_ID = ?",
                            (changed.state, changed.reason, changed.fallback, changed.price,
                             changed.post_only, changed.updated_ms, venue, client_order_id))
            self._remember(changed)
        self._notify(changed, [])
        return changed

    def apply(self, updates: Iterable[OrderUpdate], fills: Iterable[Fill] = ()
              ) -> list[OrderRecord]:
        """Apply venue updates and fills of our orders in one transaction; the
        records that changed. Updates and fills of orders we never recorded
        (someone else's) are ignored; duplicates change nothing (and, when
        nothing is new, cost no write at all)."""
        changed: dict[tuple[str, str], OrderRecord] = {}
        new_fills: dict[tuple[str, str], list[Fill]] = {}
        with self._lock:
            now = self._now_ms()
            for update in updates:  # merge in memory first: a duplicate writes nothing
                key = (update.venue, update.client_order_id)
                record = changed.get(key) or self.get(*key)
                after = merged(record, update) if record is not None else None
                if after is None:
                    self.duplicates += record is not None
                    continue
                changed[key] = dataclasses.replace(after, updated_ms=now)
            owned: list[tuple[Fill, OrderRecord]] = []
            for fill in fills:
                cid = fill.client_order_id or self.client_id_for(
                    fill.venue, fill.pair, fill.venue_order_id)
                owner = changed.get((fill.venue, cid or "")) or (
                    self.get(fill.venue, cid) if cid else None)
                if owner is not None:
                    owned.append((fill, owner))
            if not changed and not owned:
                return []
            with self.db.transaction():
                for after in changed.values():
                    self.db.execute(
                        "UPDATE TRADER_ORDERS SET STATE = ?, VENUE_ORDER_ID = ?, FILLED = ?, "
                        "AVERAGE_PRICE = ?, UPDATED_MS = ? WHERE VENUE = ? AND CLIENT_ORDER_ID = ?",
                        (after.state, after.venue_order_id, after.filled, after.average_price,
                         now, *after.key))
                for fill, owner in owned:
                    inserted = self.db.execute(
                        "{insert_ignore} INTO TRADER_FILLS (VENUE, TRADE_PAIR, TRADE_ID, SIDE, "
                        "CLIENT_ORDER_ID, VENUE_ORDER_ID, STRATEGY_ID, PRICE, QUANTITY, FEE, "
                        "FEE_ASSET, IS_MAKER, EXCH_MS, CREATED_MS) VALUES "
                        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (fill.venue, fill.pair, fill.trade_id, fill.side.value,
                         owner.client_order_id, fill.venue_order_id, owner.strategy_id,
                         fill.price, fill.quantity, fill.fee, fill.fee_asset, fill.is_maker,
                         fill.exch_ns // 1_000_000, now))
                    if inserted:
                        new_fills.setdefault(owner.key, []).append(
                            dataclasses.replace(fill, client_order_id=owner.client_order_id))
                        changed.setdefault(owner.key, owner)
                    else:
                        self.duplicates += 1
            self.fills_inserted += sum(len(f) for f in new_fills.values())
            for record in changed.values():
                self._remember(record)
        for key, record in changed.items():
            self._notify(record, new_fills.get(key, []))
        return list(changed.values())

    def _notify(self, record: OrderRecord, fills: list[Fill]) -> None:
        for listener in self.listeners:
            listener(record, fills)

    # ------------------------------------------------------------ queries

    def fills(self, venue: str | None = None, since_ms: int = 0) -> list[Fill]:
        """Fills from the DB (positions rebuild from these at start)."""
        sql = ("SELECT VENUE, MARKET_TYPE, F.TRADE_PAIR, F.CLIENT_ORDER_ID, F.VENUE_ORDER_ID, "
               "TRADE_ID, F.SIDE, F.PRICE, F.QUANTITY, FEE, FEE_ASSET, IS_MAKER, EXCH_MS "
               "FROM TRADER_FILLS F JOIN TRADER_ORDERS O USING (VENUE, CLIENT_ORDER_ID) "
               "WHERE F.EXCH_MS >= ?")
        params: tuple = (since_ms,)
        if venue is not None:
            sql += " AND VENUE = ?"
            params += (venue,)
        with self._lock:
            rows = self.db.query(sql + " ORDER BY EXCH_MS, TRADE_ID", params)
        return [Fill(v, Market(m), p, c, vo, t, Side(s), px, q, fee, fa, bool(mk), int(ms) * 1_000_000)
                for v, m, p, c, vo, t, s, px, q, fee, fa, mk, ms in rows]

    def last_fill_ms(self, venue: str, pair: str) -> int:
        with self._lock:
            rows = self.db.query("SELECT MAX(EXCH_MS) FROM TRADER_FILLS WHERE VENUE = ? AND "
                                 "TRADE_PAIR = ?", (venue, pair))
        return int(rows[0][0] or 0) if rows else 0

    def set_flag(self, name: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self.db.execute("DELETE FROM TRADER_FLAGS WHERE NAME = ?", (name,))
                return
            with self.db.transaction():
                self.db.execute("DELETE FROM TRADER_FLAGS WHERE NAME = ?", (name,))
                self.db.execute("INSERT INTO TRADER_FLAGS (NAME, VALUE, UPDATED_MS) VALUES "
                                "(?, ?, ?)", (name, value, self._now_ms()))

    def flags(self) -> dict[str, str]:
        with self._lock:
            return dict(self.db.query("SELECT NAME, VALUE FROM TRADER_FLAGS"))

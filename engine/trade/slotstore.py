"""The slot tables of the task DB (sql/taskdb/*/0003_grid_slots.sql): one
slot row per grid slot, the fills applied to slots (keyed like TRADER_FILLS,
so applying one twice is impossible), the booked cycles, and per strategy
its order generation and last activity. Owns that SQL only; the caller owns
the transaction boundaries and the order of "DB, then memory".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.model import Side
from engine.store.migrations import migrate
from engine.store.taskdb import SQLITE, TaskDb
from engine.strategies.base import ZERO, SlotInfo, SlotState

COLUMNS = ("STRATEGY_ID, SLOT_ID, VENUE, TRADE_PAIR, STATE, GENERATION, CLIENT_ORDER_ID, "
           "ENTRY_SIDE, ENTRY_PRICE, EXIT_PRICE, QUANTITY, ORDER_FILLED, BOUGHT, HELD, COST, "
           "SOLD, PROCEEDS, REALIZED, CYCLES, REARM_MS, REASON, UPDATED_MS")
_DECIMALS = ("entry_price", "exit_price", "quantity", "order_filled", "bought", "held", "cost",
             "sold", "proceeds", "realized")


@dataclass(frozen=True, slots=True)
class Slot:
    """One slot as committed (a row of TRADER_GRID_SLOTS); replaced, never mutated."""

    strategy_id: str
    slot_id: int
    venue: str
    pair: str
    state: SlotState = SlotState.FREE
    generation: int = 0
    client_order_id: str = ""  # current order; "" = none (LOCKED: exit waiting to re-arm)
    entry_side: Side = Side.BUY
    entry_price: Decimal = ZERO
    exit_price: Decimal = ZERO
    quantity: Decimal = ZERO
    order_filled: Decimal = ZERO  # base applied from the current order's fills
    bought: Decimal = ZERO  # this cycle's entry fills, gross base
    held: Decimal = ZERO  # base to exit: net of base fees, plus the last cycle's carry
    cost: Decimal = ZERO  # quote paid for `held` (quote fees included)
    sold: Decimal = ZERO
    proceeds: Decimal = ZERO  # quote received, net of quote fees
    realized: Decimal = ZERO
    cycles: int = 0
    rearm_ms: int = 0
    reason: str = ""
    updated_ms: int = 0

    def info(self) -> SlotInfo:
        """What the strategy's worker sees of this slot."""
        return SlotInfo(self.slot_id, self.state, self.entry_side, self.entry_price,
                        self.exit_price, self.quantity, self.order_filled
                        if self.state == SlotState.PENDING else self.bought, self.held,
                        self.client_order_id, self.reason == "closing",
                        self.rearm_ms * 1_000_000, self.cycles, self.realized)

    def row(self) -> tuple:
        return (self.strategy_id, self.slot_id, self.venue, self.pair, self.state.value,
                self.generation, self.client_order_id, self.entry_side.value,
                *(format(getattr(self, name), "f") for name in _DECIMALS), self.cycles,
                self.rearm_ms, self.reason[:255], self.updated_ms)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> Slot:
        sid, slot_id, venue, pair, state, gen, cid, side = row[:8]
        money = dict(zip(_DECIMALS, (Decimal(str(v or "0")) for v in row[8:18])))
        cycles, rearm, reason, updated = row[18:]
        return cls(str(sid), int(slot_id), str(venue), str(pair), SlotState(state), int(gen),
                   str(cid or ""), Side(side), cycles=int(cycles or 0), rearm_ms=int(rearm or 0),
                   reason=str(reason or ""), updated_ms=int(updated), **money)


class SlotStore:
    """Statements on one TaskDb connection; not thread-safe (the slot
    manager's lock serializes every caller)."""

    def __init__(self, db: TaskDb) -> None:
        self.db = db
        self._migrated = False

    def ensure_schema(self) -> None:
        if not self._migrated:
            migrate(self.db)
            if self.db.dialect is SQLITE:  # kill-safe without an fsync per slot change,
                self.db.execute("PRAGMA synchronous=NORMAL")  # as the order intents (orders.py)
            self._migrated = True

    def close(self) -> None:
        self.db.close()

    # ---------------------------------------------------------------- reads

    def strategy(self, strategy_id: str, name: str, venue: str, pair: str,
                 now_ms: int) -> tuple[int, int]:
        """(generation, activity ms) of a strategy; its row is created on first use."""
        rows = self.db.query("SELECT GENERATION, ACTIVITY_MS FROM TRADER_STRATEGIES WHERE "
                             "STRATEGY_ID = ?", (strategy_id,))
        if rows:
            return int(rows[0][0]), int(rows[0][1]) or now_ms
        self.db.execute("INSERT INTO TRADER_STRATEGIES (STRATEGY_ID, NAME, VENUE, TRADE_PAIR, "
                        "GENERATION, ACTIVITY_MS, UPDATED_MS) VALUES (?, ?, ?, ?, 0, ?, ?)",
                        (strategy_id, name, venue, pair, now_ms, now_ms))
        return 0, now_ms

    def slots(self, strategy_id: str) -> dict[int, Slot]:
        rows = self.db.query(f"SELECT {COLUMNS} FROM TRADER_GRID_SLOTS WHERE STRATEGY_ID = ?",
                             (strategy_id,))
        return {s.slot_id: s for s in map(Slot.from_row, rows)}

    def count(self, venue: str) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM TRADER_GRID_SLOTS WHERE VENUE = ?",
                                 (venue,))[0][0])

    # --------------------------------------------------------------- writes

    def write(self, slot: Slot, insert: bool) -> None:
        if insert:
            self.db.execute(f"INSERT INTO TRADER_GRID_SLOTS ({COLUMNS}) VALUES "
                            f"({', '.join('?' * 22)})", slot.row())
            return
        row = slot.row()
        self.db.execute(
            "UPDATE TRADER_GRID_SLOTS SET STATE = ?, GENERATION = ?, CLIENT_ORDER_ID = ?, "
            "ENTRY_SIDE = ?, ENTRY_PRICE = ?, EXIT_PRICE = ?, QUANTITY = ?, ORDER_FILLED = ?, "
            "BOUGHT = ?, HELD = ?, COST = ?, SOLD = ?, PROCEEDS = ?, REALIZED = ?, CYCLES = ?, "
            "REARM_MS = ?, REASON = ?, UPDATED_MS = ? WHERE STRATEGY_ID = ? AND SLOT_ID = ?",
            row[4:] + row[:2])

    def add_fill(self, slot: Slot, fill: Any, now_ms: int) -> bool:
        """Record that ``fill`` went into ``slot``; False if it already had."""
        inserted = self.db.execute(
            "{insert_ignore} INTO TRADER_SLOT_FILLS (VENUE, TRADE_PAIR, TRADE_ID, SIDE, "
            "STRATEGY_ID, SLOT_ID, CYCLE, CLIENT_ORDER_ID, PRICE, QUANTITY, FEE, FEE_ASSET, "
            "CREATED_MS) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (fill.venue, fill.pair, fill.trade_id, fill.side.value, slot.strategy_id,
             slot.slot_id, slot.cycles + 1, slot.client_order_id, fill.price, fill.quantity,
             fill.fee, fill.fee_asset, now_ms))
        return bool(inserted)

    def touch(self, strategy_id: str, now_ms: int) -> None:
        self.db.execute("UPDATE TRADER_STRATEGIES SET ACTIVITY_MS = ? WHERE STRATEGY_ID = ?",
                        (now_ms, strategy_id))

    def set_generation(self, strategy_id: str, generation: int, now_ms: int) -> None:
        self.db.execute("UPDATE TRADER_STRATEGIES SET GENERATION = ?, UPDATED_MS = ? WHERE "
                        "STRATEGY_ID = ?", (generation, now_ms, strategy_id))

    def book_cycle(self, slot: Slot, carry: Decimal, carry_cost: Decimal, profit: Decimal,
                   now_ms: int) -> None:
        """``slot`` as it was when its exit completed (before it went FREE)."""
        self.db.execute(
            "INSERT INTO TRADER_SLOT_CYCLES (STRATEGY_ID, SLOT_ID, CYCLE, VENUE, TRADE_PAIR, "
            "BOUGHT, COST, SOLD, PROCEEDS, CARRY, CARRY_COST, PROFIT, COMPLETED_MS) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (slot.strategy_id, slot.slot_id, slot.cycles + 1, slot.venue, slot.pair,
             *(format(v, "f") for v in (slot.bought, slot.cost, slot.sold, slot.proceeds,
                                        carry, carry_cost, profit)), now_ms))

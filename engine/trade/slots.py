"""The position-manager side of the strategy pool: durable grid slots and the
intents that move them. Turns a strategy's intents into executor actions
(client ids, quantizing, refusing a second order on a busy level), commits
every slot change to the task DB before memory changes and before its order
reaches the executor, follows each slot's orders through their fills to the
exit and the booked profit, and resumes all of it after a crash. Owns the
TRADER_GRID_SLOTS / SLOT_FILLS / SLOT_CYCLES / STRATEGIES tables; never talks
to a venue (the executor does).

  intents (pool router thread) ─► handle ─► COMMIT slot | generation ─► executor.submit
  executor.on_update(record, fills) ─► COMMIT fills into the slot ─► _advance(slot)
  executor.on_result(REJECTED)      ─► the slot's order is dead  ─► _advance(slot)
    _advance: entry over + all its fills in ─► LOCKED (COMMIT, place exit) | FREE
              exit over + all its fills in  ─► book the cycle, FREE | re-arm the exit
  keeper thread: re-arms exits whose rearm time came; start: recover every busy slot
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from loguru import logger

from engine.clock import SYSTEM, Clock
from engine.lifecycle import Health
from engine.model import Side
from engine.store.taskdb import TaskDb
from engine.strategies.base import (
    ZERO,
    OrderInfo,
    PositionInfo,
    SlotState,
)
from engine.trade import orders as st
from engine.trade.actions import (
    ActionResult,
    AmendOrder,
    Outcome,
    PlaceOrder,
    make_client_order_id,
    parse_client_order_id,
)
from engine.trade.executor import Executor
from engine.trade.instruments import Instruments
from engine.trade.orders import OrderRecord, OrderStore
from engine.trade.positions import PositionBook
from engine.trade.slot_intents import Duplicate, ManagedStrategy, SlotIntents
from engine.trade.slotstore import Slot, SlotStore
from engine.trade.strategy import OwnState, StrategySpec, setting

log = logger.bind(component="slots")

FREE, PENDING, LOCKED = SlotState.FREE, SlotState.PENDING, SlotState.LOCKED
OVER = frozenset({st.FILLED, st.CANCELED, st.EXPIRED, st.REJECTED})  # the venue is done
# How often the keeper re-arms exits whose wait is over. Shorter re-arms
# sooner after a rejection; each pass is one scan of the slots in memory.
KEEPER_S = 0.2
# A slot whose order ended but whose fills have not all arrived after this
# long shows on /health (the user stream's catch-up should bring them).
FILLS_WAIT_ALERT_S = 60.0
class SlotManager(SlotIntents):
    """A lifecycle Component (start after the TraderService). Thread-safe:
    intents come from the pool's router thread, order changes from the
    executor and user-stream threads; one lock serializes them with the DB."""

    name = "slots"

    def __init__(self, db: TaskDb, orders: OrderStore, positions: PositionBook,
                 instruments: Instruments, executor: Callable[[], Executor | None],
                 clock: Clock = SYSTEM) -> None:
        """The trader's collaborators (TraderService.store, .positions,
        .instruments); ``executor`` gives the trader's executor, which exists
        once the TraderService started (before this one starts)."""
        self.store = SlotStore(db)
        self.db = db
        self.orders = orders
        self.positions = positions
        self.instruments = instruments
        self._executor = executor
        self.clock = clock
        self._lock = threading.RLock()
        self._strategies: dict[str, ManagedStrategy] = {}
        self._given_up: set[str] = set()  # client ids the executor reported REJECTED
        self._waiting: dict[tuple[str, int], int] = {}  # slot -> since when fills are missing
        self._order_infos: dict[str, tuple[OrderRecord, OrderInfo]] = {}
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self._listeners: tuple[Callable[[str], None], ...] = ()  # replaced whole, read lock-free
        self.cycles_booked = 0

    # ------------------------------------------------------------- lifecycle

    def _now_ms(self) -> int:
        return self.clock.now_ns() // 1_000_000

    def start(self) -> None:
        executor = self._executor()
        assert executor is not None, "start the TraderService first"
        self.store.ensure_schema()
        executor.on_update(self.on_update)
        executor.on_result(self.on_result)
        self._keeper = threading.Thread(target=self._keep, name="slot-keeper", daemon=True)
        self._keeper.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        if self._keeper is not None:
            self._keeper.join(timeout_s)
        with self._lock:
            self.store.close()

    def _keep(self) -> None:
        while not self._stop.wait(KEEPER_S):
            try:
                self.tick()
            except Exception:  # the keeper outlives one bad pass
                log.exception("slot keeper pass failed")

    # ------------------------------------------------------------ strategies

    def attach(self, spec: StrategySpec) -> None:
        """Start managing ``spec``'s slots: load them and resume each busy one."""
        with self._lock:
            self.store.ensure_schema()
            generation, activity = self.store.strategy(spec.strategy_id, spec.name, spec.account,
                                                       spec.pair, self._now_ms())
            slots = self.store.slots(spec.strategy_id)
            base, _, quote = spec.pair.partition("/")
            instrument = self.instruments.find(spec.account, spec.pair)
            if instrument is not None:
                base, quote = instrument.base, instrument.quote
            strategy = self._strategies[spec.strategy_id] = ManagedStrategy(
                spec, base, quote, {}, generation, activity,
                int(setting(spec, "rearm_s", 5.0) * 1000),
                int(setting(spec, "idle_alert_s", 3600.0) * 1000))
            for slot in sorted(slots.values(), key=lambda x: x.slot_id):
                strategy.remember(slot)
            for slot in list(slots.values()):
                if slot.state != FREE:
                    self._recover(slot)
        log.info("slots attached strategy={} slots={} busy={}", spec.strategy_id, len(slots),
                 sum(s.state != FREE for s in slots.values()))

    def detach(self, strategy_id: str) -> None:
        """Stop managing a strategy (its lease moved on); its orders stay."""
        with self._lock:
            self._strategies.pop(strategy_id, None)

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(strategy_id)`` after each change of a strategy's slots
        or orders (the strategy pool's notify, while it runs)."""
        self._listeners = (*self._listeners, listener)

    def unlisten(self, listener: Callable[[str], None]) -> None:
        self._listeners = tuple(x for x in self._listeners if x != listener)

    def _changed(self, strategy_id: str) -> None:
        for listener in self._listeners:
            listener(strategy_id)

    def slots_for(self, venue: str) -> int:
        """Slots on ``venue`` (reconcile's tolerance denominator); works before start()."""
        with self._lock:
            self.store.ensure_schema()
            return self.store.count(venue)

    def slots(self, strategy_id: str) -> list[Slot]:
        with self._lock:
            found = self._strategies.get(strategy_id)
            return sorted(found.slots.values(), key=lambda s: s.slot_id) if found else []

    def slot(self, strategy_id: str, slot_id: int) -> Slot | None:
        """One slot from memory (the hot read: no lock needed, dict reads are atomic)."""
        found = self._strategies.get(strategy_id)
        return found.slots.get(slot_id) if found is not None else None

    # ----------------------------------------------------------- persistence

    def _commit(self, strategy: ManagedStrategy, slot: Slot, insert: bool = False,
                also: Callable[[], None] | None = None) -> None:
        """Write the slot (and ``also``'s statements) in one transaction, then memory."""
        with self.db.transaction():
            self.store.write(slot, insert)
            if also is not None:
                also()
        strategy.remember(slot)
        self._changed(slot.strategy_id)

    # -------------------------------------------------------- order changes

    def on_update(self, record: OrderRecord, fills: list) -> None:
        """Executor listener: a committed order change and its new fills."""
        parts = parse_client_order_id(record.client_order_id)
        if parts is None:
            return
        with self._lock:
            strategy = self._strategies.get(parts.strategy_id)
            if strategy is None or strategy.spec.account != record.venue:
                return
            slot = strategy.slots.get(parts.slot_id) if parts.slot_id is not None else None
            if slot is not None and slot.client_order_id == record.client_order_id:
                for fill in fills:
                    slot = self._apply_fill(strategy, slot, fill)
                self._advance(strategy, slot, record)
            elif fills:
                if parts.slot_id is not None:
                    log.warning("fills for a slot order that is not current client_order_id={}",
                                record.client_order_id)
                self._touch(strategy)
            self._changed(parts.strategy_id)  # its orders changed, whatever else did

    def on_result(self, result: ActionResult) -> None:
        """Executor listener: a REJECTED place means the order is dead for good."""
        action = result.action
        order = action.replacement if isinstance(action, AmendOrder) else action
        if result.outcome != Outcome.REJECTED or not isinstance(order, PlaceOrder):
            return
        with self._lock:
            strategy = self._strategies.get(order.strategy_id)
            if strategy is None or order.slot_id is None:
                return
            slot = strategy.slots.get(order.slot_id)
            if slot is not None and slot.client_order_id == order.client_order_id:
                self._given_up.add(order.client_order_id)
                self._advance(strategy, slot, self.orders.get(slot.venue,
                                                                     order.client_order_id),
                              reason=result.reason)

    def _touch(self, strategy: ManagedStrategy) -> None:
        now = self._now_ms()
        self.store.touch(strategy.spec.strategy_id, now)
        strategy.activity_ms = now

    def _apply_fill(self, strategy: ManagedStrategy, slot: Slot, fill: Any) -> Slot:
        """Book one fill of the slot's current order (once: keyed by trade id)."""
        price, qty, fee = Decimal(fill.price), Decimal(fill.quantity), Decimal(fill.fee)
        base_fee = fee if fill.fee_asset == strategy.base else ZERO
        quote_fee = fee if fill.fee_asset == strategy.quote else ZERO
        # Quote flows signed by the fill's side (a sell brings quote in), so a
        # short slot (sell entry, buy exit) books proceeds - cost like a long one.
        flow = price * qty if fill.side == Side.BUY else -price * qty
        if slot.state == PENDING:
            after = dataclasses.replace(slot, order_filled=slot.order_filled + qty,
                                        bought=slot.bought + qty,
                                        held=slot.held + qty - base_fee,
                                        cost=slot.cost + flow + quote_fee)
        else:
            after = dataclasses.replace(slot, order_filled=slot.order_filled + qty,
                                        sold=slot.sold + qty, held=slot.held - qty - base_fee,
                                        proceeds=slot.proceeds - flow - quote_fee)
        now = self._now_ms()
        after = dataclasses.replace(after, updated_ms=now)

        def record_fill() -> None:
            if not self.store.add_fill(slot, fill, now):
                raise Duplicate
            self.store.touch(slot.strategy_id, now)
        try:
            self._commit(strategy, after, also=record_fill)
        except Duplicate:
            return slot
        strategy.activity_ms = now
        return after

    def _advance(self, strategy: ManagedStrategy, slot: Slot, record: OrderRecord | None,
                 reason: str = "") -> None:
        """Move ``slot`` on if its current order is over and all its fills are in."""
        if slot.state == FREE or not slot.client_order_id:
            return
        cid = slot.client_order_id
        if record is not None and record.state in OVER:
            filled = Decimal(record.filled)
        elif cid in self._given_up and (record is None or record.state == st.ABSENT):
            filled = ZERO
        else:
            return  # still live (or still being resolved by the executor)
        key = (slot.strategy_id, slot.slot_id)
        if slot.order_filled < filled:
            self._waiting.setdefault(key, self._now_ms())
            return
        self._waiting.pop(key, None)
        self._given_up.discard(cid)
        why = reason or (record.reason if record is not None else "") or \
            (record.state if record is not None else "not sent")
        rules, now = strategy.spec.rules, self._now_ms()
        exit_qty = rules.quantity(slot.held)
        sellable = rules.tradable(slot.exit_price, exit_qty)
        if slot.state == PENDING and sellable:
            self._place_exit(strategy, slot)
        elif slot.state == PENDING:
            refused = record is None or record.state in (st.REJECTED, st.ABSENT)
            self._commit(strategy, dataclasses.replace(
                slot, state=FREE, client_order_id="", order_filled=ZERO, updated_ms=now,
                rearm_ms=now + strategy.rearm_ms if refused and not slot.bought else 0,
                reason=why if refused else ("dust carried" if slot.bought else "")))
        elif sellable:  # an exit ended with base left to sell: re-arm it
            self._commit(strategy, dataclasses.replace(
                slot, client_order_id="", order_filled=ZERO, reason=why, updated_ms=now,
                rearm_ms=now + (strategy.rearm_ms if record is None or
                                record.state != st.FILLED else 0)))
        else:
            self._book_cycle(strategy, slot)

    def _place_exit(self, strategy: ManagedStrategy, slot: Slot) -> None:
        generation = slot.generation + 1
        locked = dataclasses.replace(
            slot, state=LOCKED, generation=generation, order_filled=ZERO, rearm_ms=0, reason="",
            client_order_id=make_client_order_id(slot.strategy_id, slot.slot_id, generation),
            updated_ms=self._now_ms())
        self._commit(strategy, locked)
        side = Side.SELL if slot.entry_side == Side.BUY else Side.BUY
        # A plain limit: one already through the market fills at once, at a better price.
        self._submit(self._order(locked, side, slot.exit_price,
                                 strategy.spec.rules.quantity(slot.held), post_only=False))

    def _book_cycle(self, strategy: ManagedStrategy, slot: Slot) -> None:
        """The exit sold all it could: book proceeds - cost of what was sold."""
        carry = slot.held
        carry_cost = (slot.cost * carry / (carry + slot.sold)).quantize(Decimal("1e-12")) \
            if carry > 0 else ZERO
        profit = slot.proceeds - (slot.cost - carry_cost)
        cycle, now = slot.cycles + 1, self._now_ms()
        done = dataclasses.replace(
            slot, state=FREE, client_order_id="", order_filled=ZERO, bought=ZERO, held=carry,
            cost=carry_cost, sold=ZERO, proceeds=ZERO, realized=slot.realized + profit,
            cycles=cycle, rearm_ms=0, reason="", updated_ms=now)

        def book() -> None:
            self.store.book_cycle(slot, carry, carry_cost, profit, now)
        self._commit(strategy, done, also=book)
        self.cycles_booked += 1
        log.info("cycle booked strategy={} slot={} cycle={} profit={}", slot.strategy_id,
                 slot.slot_id, cycle, profit)

    # ---------------------------------------------------------------- keeper

    def tick(self) -> None:
        """Re-arm exits whose wait is over."""
        with self._lock:
            now = self._now_ms()
            for strategy in list(self._strategies.values()):
                for slot in list(strategy.slots.values()):
                    if slot.state == LOCKED and not slot.client_order_id and \
                            slot.rearm_ms <= now:
                        if strategy.spec.rules.tradable(
                                slot.exit_price, strategy.spec.rules.quantity(slot.held)):
                            self._place_exit(strategy, slot)
                        else:
                            self._book_cycle(strategy, slot)

    def _recover(self, slot: Slot) -> None:
        """After a restart: fills committed by the order store but not yet in
        the slot, and an order committed here that never reached the executor
        (sent again under the same id: the executor refuses a second send)."""
        strategy = self._strategies[slot.strategy_id]
        if not slot.client_order_id:
            return  # a LOCKED slot waiting to re-arm its exit: the keeper does it
        store = self.orders
        record = store.get(slot.venue, slot.client_order_id)
        if record is not None and Decimal(record.filled) > slot.order_filled:
            since = max(0, (record.created_ms or slot.updated_ms) - 60_000)
            for fill in store.fills(slot.venue, since_ms=since):
                if fill.client_order_id == slot.client_order_id:
                    slot = self._apply_fill(strategy, slot, fill)
        if record is None or record.state == st.ABSENT:
            log.warning("re-sending a slot order that never reached the venue "
                        "client_order_id={} state={}", slot.client_order_id,
                        record.state if record else "none")
            side = slot.entry_side if slot.state == PENDING else \
                (Side.SELL if slot.entry_side == Side.BUY else Side.BUY)
            price = slot.entry_price if slot.state == PENDING else slot.exit_price
            quantity = slot.quantity if slot.state == PENDING else \
                strategy.spec.rules.quantity(slot.held)
            self._submit(self._order(slot, side, price, quantity,
                                     post_only=slot.state == PENDING))
            return
        self._advance(strategy, slot, record)

    # ------------------------------------------------------------------ views

    def snapshot(self, strategy_id: str) -> OwnState:
        """The strategy's slots, live orders and position, for its worker."""
        with self._lock:
            strategy = self._strategies.get(strategy_id)
            if strategy is None:
                return OwnState()
            spec = strategy.spec
            infos = strategy.infos
            slots = tuple(infos[k] for k in sorted(infos))
            orders = []
            cache = self._order_infos
            for r in self.orders.live_orders(spec.account):
                if r.strategy_id != strategy_id:
                    continue
                cached = cache.get(r.client_order_id)
                if cached is None or cached[0] is not r:  # records are replaced on change
                    cached = cache[r.client_order_id] = (r, OrderInfo(
                        r.client_order_id, r.side, Decimal(r.price), Decimal(r.quantity),
                        Decimal(r.filled), r.state, r.slot_id))
                orders.append(cached[1])
            if len(cache) > 4 * len(orders) + 1000:
                live = {o.client_order_id for o in orders}
                self._order_infos = {c: v for c, v in cache.items() if c in live}
        p = self.positions.position(spec.account, spec.pair)
        return OwnState(tuple(orders), slots,
                        PositionInfo(p.quantity, p.average_price, p.realized_pnl))

    def health(self) -> list[Health]:
        out: list[Health] = []
        now = self._now_ms()
        with self._lock:
            for sid, strategy in self._strategies.items():
                idle = now - strategy.activity_ms
                if strategy.idle_alert_ms and idle > strategy.idle_alert_ms:
                    out.append(Health(f"strategy:{sid}", False,
                                      f"grid idle: no fill for {idle // 1000}s (idle_alert_s="
                                      f"{strategy.idle_alert_ms // 1000})"))
            stuck = [f"{sid}/{slot}" for (sid, slot), since in self._waiting.items()
                     if now - since > FILLS_WAIT_ALERT_S * 1000]
        if stuck:
            out.append(Health(self.name, False, f"slots waiting for fills of finished orders: "
                                                f"{', '.join(stuck[:5])}"))
        return out or [Health(self.name, True, "")]

    def status(self) -> dict:
        with self._lock:
            return {sid: {
                "strategy": s.spec.name, "pair": f"{s.spec.account}:{s.spec.pair}",
                "slots": {state.value: sum(x.state == state for x in s.slots.values())
                          for state in SlotState},
                "cycles": sum(x.cycles for x in s.slots.values()),
                "realized": str(sum((x.realized for x in s.slots.values()), ZERO)),
                "held": str(sum((x.held for x in s.slots.values()), ZERO)),
                "refused": s.refused, "last_refusal": s.last_refusal,
                "idle_s": (self._now_ms() - s.activity_ms) // 1000}
                for sid, s in self._strategies.items()}

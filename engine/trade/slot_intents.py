"""The intent side of the slot manager: a strategy's intents (place with an
exit = open a slot, plain place, cancel, amend) become executor actions with
client ids, quantized prices and sizes, refusing a second order on a busy
level. A base class of slots.SlotManager, which owns the slots, the lock and
the order changes; every slot change here is committed before it is sent."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from loguru import logger

from engine.model import Market, Side
from engine.model_trade import PositionSide
from engine.strategies.base import ZERO, Amend, Cancel, Intent, Place, SlotInfo, SlotState
from engine.trade.actions import (
    AmendOrder,
    CancelOrder,
    PlaceOrder,
    make_client_order_id,
    parse_client_order_id,
)
from engine.trade.executor import Executor
from engine.trade.orders import OrderRecord, OrderStore
from engine.trade.slotstore import Slot, SlotStore
from engine.trade.strategy import StrategySpec

log = logger.bind(component="slots")

FREE, PENDING = SlotState.FREE, SlotState.PENDING
MAX_SLOTS = 10_000  # per strategy: a runaway strategy cannot fill the table


@dataclass
class ManagedStrategy:
    spec: StrategySpec
    base: str
    quote: str
    slots: dict[int, Slot]
    generation: int
    activity_ms: int
    rearm_ms: int  # spec's rearm_s
    idle_alert_ms: int
    refused: int = 0
    last_refusal: str = ""
    # Derived from `slots`, kept in step by remember: what each slot looks
    # like to the worker, which slot holds each level, and the free slots.
    infos: dict[int, SlotInfo] = field(default_factory=dict)
    levels: dict[Decimal, int] = field(default_factory=dict)
    free: set[int] = field(default_factory=set)

    def remember(self, slot: Slot) -> None:
        before = self.slots.get(slot.slot_id)
        if before is not None and self.levels.get(before.entry_price) == slot.slot_id:
            del self.levels[before.entry_price]
        self.slots[slot.slot_id] = slot
        self.infos[slot.slot_id] = slot.info()
        if slot.state != FREE or slot.rearm_ms:
            self.levels[slot.entry_price] = slot.slot_id
        (self.free.add if slot.state == FREE else self.free.discard)(slot.slot_id)


class Refused(Exception):
    """An intent the slot manager will not carry out; the message says why."""


class Duplicate(Exception):
    """A fill already booked (same trade id): its transaction is rolled back."""


class SlotIntents:
    # SlotManager's state these steps use (set in its __init__).
    store: SlotStore
    orders: OrderStore
    _executor: Callable[[], Executor | None]
    _lock: threading.RLock
    _strategies: dict[str, ManagedStrategy]

    def _now_ms(self) -> int:
        raise NotImplementedError

    def _commit(self, strategy: ManagedStrategy, slot: Slot, insert: bool = False,
                also: Callable[[], None] | None = None) -> None:
        raise NotImplementedError

    def handle(self, strategy_id: str, intents: Iterable[Intent]) -> list[str]:
        """Carry out a strategy's intents; the refusals, as reasons (logged, counted)."""
        refusals: list[str] = []
        with self._lock:
            strategy = self._strategies.get(strategy_id)
            if strategy is None:
                return [f"strategy {strategy_id} is not attached"]
            for intent in intents:
                try:
                    if isinstance(intent, Place) and intent.exit_price is not None:
                        self._open_slot(strategy, intent)
                    elif isinstance(intent, Place):
                        self._place_plain(strategy, intent)
                    elif isinstance(intent, Cancel):
                        self._cancel(strategy, intent)
                    elif isinstance(intent, Amend):
                        self._amend(strategy, intent)
                    else:
                        raise Refused(f"not an intent: {intent!r}")
                except Refused as refusal:
                    strategy.refused += 1
                    strategy.last_refusal = str(refusal)
                    refusals.append(str(refusal))
        for reason in refusals:
            log.debug("intent refused strategy={} reason={}", strategy_id, reason)
        return refusals

    def _open_slot(self, strategy: ManagedStrategy, intent: Place) -> None:
        spec, rules = strategy.spec, strategy.spec.rules
        assert intent.exit_price is not None
        price = rules.price(intent.price, intent.side)
        exit_side = Side.SELL if intent.side == Side.BUY else Side.BUY
        exit_price = rules.price(intent.exit_price, exit_side)
        quantity = rules.quantity(intent.quantity)
        if not rules.tradable(price, quantity):
            raise Refused(f"{quantity} at {price} is below the venue's minimums")
        now = self._now_ms()
        holder = strategy.slots.get(strategy.levels.get(price, -1))
        if holder is not None and holder.entry_price == price and \
                (holder.state != FREE or holder.rearm_ms > now):
            raise Refused(f"level {price} is busy (slot {holder.slot_id} {holder.state.value})")
        free = strategy.slots[min(strategy.free)] if strategy.free else None
        if free is None:
            if len(strategy.slots) >= MAX_SLOTS:
                raise Refused(f"{MAX_SLOTS} slots already")
            slot_id = max(strategy.slots, default=-1) + 1
            free = Slot(spec.strategy_id, slot_id, spec.account, spec.pair)
        generation = free.generation + 1
        cid = make_client_order_id(spec.strategy_id, free.slot_id, generation)
        opened = dataclasses.replace(
            free, state=PENDING, generation=generation, client_order_id=cid,
            entry_side=intent.side, entry_price=price, exit_price=exit_price, quantity=quantity,
            order_filled=ZERO, bought=ZERO, sold=ZERO, proceeds=ZERO, rearm_ms=0, reason="",
            updated_ms=now)
        self._commit(strategy, opened, insert=free.slot_id not in strategy.slots)
        self._submit(self._order(opened, intent.side, price, quantity, intent.post_only))

    def _place_plain(self, strategy: ManagedStrategy, intent: Place) -> None:
        rules = strategy.spec.rules
        price, quantity = rules.price(intent.price, intent.side), rules.quantity(intent.quantity)
        if not rules.tradable(price, quantity):
            raise Refused(f"{quantity} at {price} is below the venue's minimums")
        cid = self._next_plain_id(strategy)
        spec = strategy.spec
        self._submit(PlaceOrder(cid, spec.account, Market(spec.market), spec.pair, intent.side,
                                price, quantity, post_only=intent.post_only,
                                strategy_id=spec.strategy_id))

    def _next_plain_id(self, strategy: ManagedStrategy) -> str:
        generation = strategy.generation + 1
        self.store.set_generation(strategy.spec.strategy_id, generation, self._now_ms())
        strategy.generation = generation
        return make_client_order_id(strategy.spec.strategy_id, None, generation)

    def _owned(self, strategy: ManagedStrategy, cid: str) -> OrderRecord:
        record = self.orders.get(strategy.spec.account, cid)
        if record is None or record.strategy_id != strategy.spec.strategy_id:
            raise Refused(f"{cid} is not an order of this strategy")
        if not record.live:
            raise Refused(f"{cid} is already {record.state}")
        return record

    def _cancel(self, strategy: ManagedStrategy, intent: Cancel) -> None:
        cid = intent.client_order_id
        parts = parse_client_order_id(cid)
        spec = strategy.spec
        if parts is not None and parts.slot_id is not None:
            slot = strategy.slots.get(parts.slot_id)
            if slot is None or slot.client_order_id != cid:
                raise Refused(f"{cid} is not a slot's current order")
            if slot.state != PENDING:
                raise Refused(f"{cid} is slot {slot.slot_id}'s exit; exits are the slot's")
            if slot.reason == "closing":
                return  # already asked
            self._commit(strategy, dataclasses.replace(slot, reason="closing",
                                                       updated_ms=self._now_ms()))
        else:
            self._owned(strategy, cid)
        self._submit(CancelOrder(cid, spec.account, Market(spec.market), spec.pair,
                                 spec.strategy_id, parts.slot_id if parts else None))

    def _amend(self, strategy: ManagedStrategy, intent: Amend) -> None:
        parts = parse_client_order_id(intent.client_order_id)
        if parts is not None and parts.slot_id is not None:
            raise Refused("slot orders are not amended: cancel the entry, open another slot")
        record = self._owned(strategy, intent.client_order_id)
        rules, spec = strategy.spec.rules, strategy.spec
        price = rules.price(intent.price, record.side)
        quantity = rules.quantity(intent.quantity)
        if not rules.tradable(price, quantity):
            raise Refused(f"{quantity} at {price} is below the venue's minimums")
        replacement = PlaceOrder(self._next_plain_id(strategy), spec.account, Market(spec.market),
                                 spec.pair, record.side, price, quantity,
                                 post_only=intent.post_only, strategy_id=spec.strategy_id)
        self._submit(AmendOrder(intent.client_order_id, replacement))

    def _order(self, slot: Slot, side: Side, price: Decimal, quantity: Decimal,
               post_only: bool) -> PlaceOrder:
        """Futures: a slot is its entry's position side; its exit is reduce-only
        unless the grid is neutral (long and short slots net out in one-way mode)."""
        spec = self._strategies[slot.strategy_id].spec
        futures = Market(spec.market) == Market.FUTURES
        return PlaceOrder(slot.client_order_id, slot.venue, Market(spec.market), slot.pair, side,
                          price, quantity, post_only=post_only, strategy_id=slot.strategy_id,
                          slot_id=slot.slot_id, reduce_only=futures and side != slot.entry_side
                          and spec.params.get("direction", "long") != "neutral",
                          position_side=(PositionSide.LONG if slot.entry_side == Side.BUY else
                                         PositionSide.SHORT) if futures else PositionSide.BOTH)

    def _submit(self, action: PlaceOrder | CancelOrder | AmendOrder) -> None:
        """Hand to the executor; only ever after the slot change is committed."""
        executor = self._executor()
        assert executor is not None, "the slot manager starts after the TraderService"
        executor.submit(action)

"""Grid slots against the local venue through a real TraderService: every
transition committed to the task DB, fills booked once, the cycle's profit
equal to what the venue's own trade list says, and a restart that resumes
slots (an order committed but never sent, fills that arrived while the slot
manager was away) without a duplicate order."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal as D

import pytest

from engine.model import Side
from engine.store.taskdb import TaskDb
from engine.strategies.base import Cancel, Place, Rules, SlotState
from engine.trade.service import TraderService
from engine.trade.slots import SlotManager
from engine.trade.slotstore import Slot
from engine.trade.strategy import StrategySpec, make_spec
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.rig import open_orders, venue_orders

PARAMS = {"order_size": "0.01", "interval": "100", "rearm_s": 0.5}


def spec_for(trader: TraderService, strategy_id: str = "g1", **params: object) -> StrategySpec:
    i = trader.instruments.get("binance", "BTC/USDT")
    rules = Rules(i.tick_size, i.step_size, i.min_qty, i.min_notional)
    return make_spec(strategy_id, "grid", "binance", "spot", "BTC/USDT", {**PARAMS, **params},
                     rules)


@pytest.fixture
def slots_for(start_trader: Callable[..., TraderService]
              ) -> Iterator[Callable[..., tuple[TraderService, SlotManager]]]:
    started: list[SlotManager] = []

    def start(trader: TraderService | None = None, **params: object
              ) -> tuple[TraderService, SlotManager]:
        trader = trader or start_trader(direct=True)
        manager = SlotManager(TaskDb.from_config(trader.config), trader.store, trader.positions,
                              trader.instruments, lambda: trader.executor)
        manager.start()
        manager.attach(spec_for(trader, **params))
        started.append(manager)
        return trader, manager

    yield start
    for manager in started:
        manager.stop(2.0)


def db_slot(manager: SlotManager, slot_id: int = 0) -> Slot:
    rows = manager.db.query("SELECT STRATEGY_ID, SLOT_ID, VENUE, TRADE_PAIR, STATE, GENERATION, "
                            "CLIENT_ORDER_ID, ENTRY_SIDE, ENTRY_PRICE, EXIT_PRICE, QUANTITY, "
                            "ORDER_FILLED, BOUGHT, HELD, COST, SOLD, PROCEEDS, REALIZED, CYCLES, "
                            "REARM_MS, REASON, UPDATED_MS FROM TRADER_GRID_SLOTS WHERE "
                            "STRATEGY_ID = 'g1' AND SLOT_ID = ?", (slot_id,))
    return Slot.from_row(rows[0])


def venue_trades(client: BinanceClient) -> list[dict]:
    reply = client.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT", limit=1000)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_slot_full_cycle_books_the_profit_the_venue_trade_list_shows(slots_for, alice, bob):
    trader, manager = slots_for()
    assert manager.handle("g1", [Place(Side.BUY, D("29000"), D("0.01"),
                                       exit_price=D("29100"))]) == []
    row = db_slot(manager)  # committed before the order could exist
    assert (row.state, row.client_order_id, row.generation) == (SlotState.PENDING, "Eg1-0-1", 1)
    eventually(lambda: [o["clientOrderId"] for o in open_orders(alice)] == ["Eg1-0-1"])
    assert bob.limit("SELL", "0.01", "29000").status_code == 200
    eventually(lambda: manager.slot("g1", 0).state == SlotState.LOCKED)
    locked = db_slot(manager)
    assert locked.client_order_id == "Eg1-0-2" and locked.held == D("0.00999")  # 0.1% fee in BTC
    eventually(lambda: [(o["clientOrderId"], o["side"], o["price"], o["origQty"])
                        for o in open_orders(alice)] ==
               [("Eg1-0-2", "SELL", "29100.00000000", "0.00999000")])
    assert bob.limit("BUY", "0.00999", "29100").status_code == 200
    eventually(lambda: manager.slot("g1", 0).state == SlotState.FREE)
    done = db_slot(manager)
    trades = venue_trades(alice)
    buys = sum(D(t["price"]) * D(t["qty"]) for t in trades if t["isBuyer"])
    sells = sum(D(t["price"]) * D(t["qty"]) for t in trades if not t["isBuyer"])
    quote_fees = sum(D(t["commission"]) for t in trades if t["commissionAsset"] == "USDT")
    assert done.cycles == 1 and done.held == 0
    # 0.00999 x 29100 - 0.01 x 29000 - 0.1% of the sale in USDT (the buy's fee was in BTC)
    assert done.realized == sells - buys - quote_fees == D("0.418291")
    cycles = manager.db.query("SELECT PROFIT, BOUGHT, SOLD FROM TRADER_SLOT_CYCLES")
    assert [tuple(map(D, row)) for row in cycles] == [(D("0.418291"), D("0.01"), D("0.00999"))]
    fills = manager.db.query("SELECT COUNT(*) FROM TRADER_SLOT_FILLS WHERE CYCLE = 1")
    assert fills == [(2,)]


def test_slot_refuses_a_second_order_on_a_busy_level(slots_for):
    _, manager = slots_for()
    place = Place(Side.BUY, D("29000"), D("0.01"), exit_price=D("29100"))
    assert manager.handle("g1", [place]) == []
    assert "busy" in manager.handle("g1", [place])[0]
    assert [s.slot_id for s in manager.slots("g1")] == [0]


def test_slot_cancelled_entry_frees_the_slot_and_partial_fill_goes_to_exit(slots_for, alice,
                                                                           bob):
    trader, manager = slots_for()
    manager.handle("g1", [Place(Side.BUY, D("29000"), D("0.01"), exit_price=D("29100")),
                          Place(Side.BUY, D("28900"), D("0.01"), exit_price=D("29000"))])
    eventually(lambda: len(open_orders(alice)) == 2)
    assert bob.limit("SELL", "0.004", "29000").status_code == 200  # slot 0 partly filled
    eventually(lambda: manager.slot("g1", 0).bought == D("0.004"))
    manager.handle("g1", [Cancel("Eg1-0-1"), Cancel("Eg1-1-1")])
    eventually(lambda: manager.slot("g1", 1).state == SlotState.FREE)
    eventually(lambda: manager.slot("g1", 0).state == SlotState.LOCKED)
    assert manager.slot("g1", 0).held == D("0.003996")
    # 0.00399 at 29100 is 116 USDT: above the 5 USDT minimum, so the exit rests
    eventually(lambda: [(o["clientOrderId"], o["origQty"]) for o in open_orders(alice)] ==
               [("Eg1-0-2", "0.00399000")])
    assert "exit" in manager.handle("g1", [Cancel("Eg1-0-2")])[0]


def test_slot_rejected_entry_is_freed_and_its_level_rearmed_after_the_wait(slots_for, alice):
    trader, manager = slots_for()
    manager.handle("g1", [Place(Side.BUY, D("29000"), D("1000"), exit_price=D("29100"))])
    # 29 million USDT: more than the account holds, the venue rejects it
    eventually(lambda: manager.slot("g1", 0).state == SlotState.FREE, timeout=20)
    slot = manager.slot("g1", 0)
    assert slot.rearm_ms > 0 and "insufficient" in slot.reason.lower()
    place = Place(Side.BUY, D("29000"), D("0.01"), exit_price=D("29100"))
    assert "busy" in manager.handle("g1", [place])[0]  # still waiting
    eventually(lambda: manager.handle("g1", [place]) == [], timeout=5)
    eventually(lambda: [o["clientOrderId"] for o in open_orders(alice)] == ["Eg1-0-2"])


def test_slot_restart_resends_a_committed_order_once_and_catches_up_fills(
        slots_for, start_trader, alice, bob):
    trader, manager = slots_for()
    manager.handle("g1", [Place(Side.BUY, D("29000"), D("0.01"), exit_price=D("29100"))])
    eventually(lambda: len(open_orders(alice)) == 1)
    manager.detach("g1")  # the slot manager is away: the fill reaches only the order store
    assert bob.limit("SELL", "0.01", "29000").status_code == 200
    eventually(lambda: trader.store.get("binance", "Eg1-0-1").state == "filled")
    # ... and a second slot was committed but its order never reached the executor
    pending = Slot("g1", 1, "binance", "BTC/USDT", SlotState.PENDING, 1, "Eg1-1-1",
                   entry_price=D("28800"), exit_price=D("28900"), quantity=D("0.01"),
                   updated_ms=1)
    manager.db.execute("INSERT INTO TRADER_GRID_SLOTS VALUES "
                       f"({', '.join('?' * 22)})", pending.row())
    manager.stop(2.0)
    trader.stop(3.0)
    trader2, manager2 = slots_for(start_trader(direct=True))
    eventually(lambda: manager2.slot("g1", 0).state == SlotState.LOCKED)
    assert manager2.slot("g1", 0).held == D("0.00999")
    eventually(lambda: sorted(o["clientOrderId"] for o in open_orders(alice)) ==
               ["Eg1-0-2", "Eg1-1-1"])
    ids = [o["clientOrderId"] for o in venue_orders(alice)]
    assert len(ids) == len(set(ids)) == 3  # no order twice
    manager2.detach("g1")
    manager2.attach(spec_for(trader2))  # attaching again changes nothing
    ids = [o["clientOrderId"] for o in venue_orders(alice)]
    assert len(ids) == 3

"""A graceful end of trading books every answer still in flight: the grid
stack against the local venue's synthetic market, one new order answered
late with a definitive rejection while trading is being drained. The slot
that sent it must end free, not pointing at a dead order (what the SIGKILL
suite's last, graceful round found over the WebSocket API: a detached
strategy's slot left PENDING on a rejected order the venue never held)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.store.taskdb import TaskDb
from engine.strategies.base import SlotState
from engine.trade.actions import parse_client_order_id
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.fault_proxy import NEW_ORDER_CALLS, RESPOND, Fault, FaultProxy, on_any
from tests.trade.rig import venue_orders
from tests.trade.test_grid_e2e import Stack, synthetic_venue

REFUSAL = b'{"code":-2010,"msg":"Account has insufficient balance for requested action."}'
LATE_S = 0.8  # the answer comes this late (the Stack waits request_timeout_s = 2 s)


@pytest.mark.parametrize("transport", ["rest", "ws_api"])
def test_drain_books_a_rejection_that_lands_after_decisions_stopped(tmp_path: Path,
                                                                  transport: str) -> None:
    venue = synthetic_venue(tmp_path / "venue")
    proxy = FaultProxy(venue.rest_url)
    stack = Stack(tmp_path / "trader", proxy.url, proxy.ws_url, transport=transport)
    try:
        stack.start()
        eventually(lambda: any(s.state != SlotState.FREE for s in stack.slots.slots("grid1")),
                   timeout=60)
        proxy.add(Fault(on_any(NEW_ORDER_CALLS), RESPOND, status=400, body=REFUSAL,
                        delay_s=LATE_S))
        eventually(lambda: any(action == RESPOND for _, _, action in list(proxy.log)),
                   timeout=60)
        assert stack.drain(30.0), stack.trader.executor.status()  # the answer is still on its way
        db = TaskDb.from_config(stack.config)
        refused = db.query("SELECT CLIENT_ORDER_ID, STATE FROM TRADER_ORDERS "
                           "WHERE REASON LIKE '%insufficient balance%'")
        assert [state for _, state in refused] == ["rejected"], refused
        cid = refused[0][0]
        parts = parse_client_order_id(cid)
        assert parts is not None and parts.slot_id is not None
        slot = db.query("SELECT STATE, CLIENT_ORDER_ID FROM TRADER_GRID_SLOTS WHERE "
                        "STRATEGY_ID = 'grid1' AND SLOT_ID = ?", (parts.slot_id,))
        assert slot and slot[0][1] != cid, (cid, slot)  # freed (or moved on), as committed
        stack.stop()
        # At rest: every busy slot's order is one the venue knows, or one proven never sent.
        on_venue = {o["clientOrderId"] for o in venue_orders(
            BinanceClient(venue.rest_url, "alice-key", "alice-secret"))}
        rows = dict(db.query("SELECT CLIENT_ORDER_ID, STATE FROM TRADER_ORDERS"))
        for sid, slot_id, state, busy_cid in db.query(
                "SELECT STRATEGY_ID, SLOT_ID, STATE, CLIENT_ORDER_ID FROM TRADER_GRID_SLOTS"):
            if state != "free" and busy_cid:
                assert busy_cid in on_venue or rows.get(busy_cid) in (None, "absent"), \
                    (sid, slot_id, state, busy_cid, rows.get(busy_cid))
    finally:
        stack.stop()
        proxy.stop()
        venue.stop()

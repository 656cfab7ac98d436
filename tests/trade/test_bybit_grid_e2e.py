"""The grid end to end on Bybit, spot and linear USDT perpetuals, no internet:
the local venue's Bybit v5 dialect, a counterparty quoting through its REST, the
daemon's real Bybit feed (public spot / linear streams) keeping a shared-memory
book, spawned workers running the grid, the slot manager and the executor
trading ``bybit`` / ``bybit_futures`` over the trade socket, the private stream
settling orders and fills. The profit the slots booked equals what the venue's
own execution list gives for those cycles (signed notional minus fees)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from engine import config as config_mod
from engine.store.taskdb import TaskDb
from engine.trade.settings import RiskConfig, TraderConfig
from engine.trade.sources import ConfiguredStrategy
from tests.support.eventually import eventually
from tests.trade.bybit_rig import (
    SYMBOL,
    BybitClient,
    BybitMarket,
    client,
    start_venue,
    use_keys,
)
from tests.trade.rig import KEY_ENV, SECRET_ENV
from tests.trade.test_grid_futures_e2e import FuturesStack, slot_pnl_from_venue

GRID = {"order_size": "0.01", "interval": "30", "window": 3, "max_inventory": "0.3",
        "rearm_s": 1.0, "idle_alert_s": 600}


def executions(c: BybitClient, category: str) -> list[dict]:
    """Every execution of the account on BTCUSDT, paged, in the shape
    ``slot_pnl_from_venue`` reads (id, side, price, qty, commission)."""
    rows: list[dict] = []
    cursor = ""
    while True:
        page = c.call("GET", "/v5/execution/list", category=category, symbol=SYMBOL, limit=100,
                      **({"cursor": cursor} if cursor else {}))
        rows += page["list"]
        cursor = page.get("nextPageCursor") or ""
        if len(page["list"]) < 100 or not cursor:
            break
    return [{"id": r["execId"], "side": r["side"].upper(), "price": r["execPrice"],
             "qty": r["execQty"], "commission": r["execFee"],
             "asset": r.get("feeCurrency") or "USDT"} for r in rows
            if r.get("execType", "Trade") == "Trade"]


def bybit_stack(data_dir: Path, venue: Any, market: str, strategy: ConfiguredStrategy,
                transport: str) -> FuturesStack:
    """The futures grid rig (test_grid_futures_e2e.py) pointed at exchange bybit."""
    venue_id = "bybit" if market == "spot" else "bybit_futures"
    settings = TraderConfig(venues=(venue_id,), pairs=(f"{venue_id}:BTC/USDT",),
                            request_timeout_s=2.0, order_transport=transport,  # type: ignore[arg-type]
                            risk=RiskConfig(error_burst=1000, max_order_notional="",
                                            max_open_orders=1000))
    stack = FuturesStack(data_dir, "", "", [strategy], settings)
    category = "spot" if market == "spot" else "linear"
    ends = {"rest": venue.bybit.url, "ws": f"{venue.bybit.ws_url}/v5/public/{category}"}
    stack.config = config_mod.parse({
        "daemon": {"data_dir": str(data_dir), "id": "bybit-grid-e2e"},
        "books": {"capacity": 8, "depth": 20},
        "exchanges": {"bybit": {market: ends, "api_key_env": KEY_ENV,
                                "api_secret_env": SECRET_ENV}},
        "feed": {"subscriptions": [{"exchange": "bybit", "pair": "BTC/USDT", "market": market,
                                    "depth": 50}]}})
    return stack


@pytest.mark.parametrize(("market", "transport"), [("futures", "ws_api"), ("spot", "ws_api"),
                                                   ("futures", "rest")],
                         ids=["linear-ws", "spot-ws", "linear-rest"])
def test_bybit_grid_books_what_the_venue_execution_list_gives(tmp_path: Path, monkeypatch: Any,
                                                              market: str,
                                                              transport: str) -> None:
    venue = start_venue(tmp_path / "venue")
    use_keys(monkeypatch, venue)
    category = "spot" if market == "spot" else "linear"
    quotes = BybitMarket(client(venue, "bob"), category).start()
    direction = {} if market == "spot" else {"direction": "neutral"}
    stack = bybit_stack(tmp_path / "trader", venue, market, ConfiguredStrategy(
        "gb1", "grid", "bybit", market, "BTC/USDT", {**GRID, **direction}), transport)
    cycles = 6
    try:
        stack.start()
        try:
            eventually(lambda: stack.slots.cycles_booked >= cycles, timeout=300, interval=0.5)
        except AssertionError:
            raise AssertionError(f"fewer than {cycles} cycles: {stack.slots.status()} "
                                 f"{stack.trader.status()} market errors "
                                 f"{quotes.errors[:3]}") from None
        stack.pool.set_strategies([])  # no new decisions; what is booked stays booked
        eventually(stack.trader.executor.idle, timeout=10)
        quotes.stop()
        venue_id = stack.settings.venues[0]
        sent = stack.trader.sessions[venue_id].calls_by_transport
        assert (sent["ws"] > 0) == (transport == "ws_api"), sent
        mine = client(venue)
        trades = executions(mine, category)
        position = stack.trader.positions.position(venue_id, "BTC/USDT")
        if market == "futures":
            eventually(lambda: position.quantity == mine.position(), timeout=20)
            # The whole account: cash from the venue's executions and fees plus
            # the open position valued at a price P equals our realized PnL
            # plus that position against its average cost at P (no funding
            # here: the dialect lists none yet, and we booked none).
            assert position.funding == 0
            cash = sum((D(t["price"]) * D(t["qty"]) * (1 if t["side"] == "SELL" else -1) -
                        D(t["commission"]) for t in trades), D(0))
            price = D(trades[-1]["price"])
            ours = position.realized_pnl + (price - position.average_price) * position.quantity
            assert abs(ours - (cash + position.quantity * price)) < D("1e-12"), (ours, cash)
    finally:
        quotes.stop()
        stack.stop()
    db = TaskDb.from_config(stack.config)
    try:
        profit, venue_pnl, booked = slot_pnl_from_venue(db, [_Row(**t).as_quote_fee()
                                                             for t in trades])
        carried = carried_cost(db)
    finally:
        db.close()
        venue.stop()
    assert booked >= cycles
    if market == "futures":
        assert profit == venue_pnl, (profit, venue_pnl)
    else:
        # Spot buys pay their fee in BTC, leaving dust below one lot that each
        # slot carries (at cost) into its next cycle: the venue's cash from the
        # booked cycles is the booked profit less that carried cost, exactly.
        assert any(t["asset"] == "BTC" for t in trades)
        assert venue_pnl == profit - carried, (profit, venue_pnl, carried)


def carried_cost(db: TaskDb) -> D:
    """Dust carried out of each slot's last booked cycle, at cost."""
    return sum((D(c) for (c,) in db.query(
        "SELECT CARRY_COST FROM TRADER_SLOT_CYCLES c WHERE CYCLE = (SELECT MAX(CYCLE) FROM "
        "TRADER_SLOT_CYCLES d WHERE d.STRATEGY_ID = c.STRATEGY_ID AND d.SLOT_ID = c.SLOT_ID)")),
        D(0))


@dataclasses.dataclass
class _Row:
    id: str
    side: str
    price: str
    qty: str
    commission: str
    asset: str

    def as_quote_fee(self) -> dict:
        """A fee paid in the base coin (spot buys) counts 0 quote here."""
        fee = self.commission if self.asset == "USDT" else "0"
        return {"id": self.id, "side": self.side, "price": self.price, "qty": self.qty,
                "commission": fee}

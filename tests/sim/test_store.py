"""The state store: rows survive a reopen; history queries see every write
queued before them; one file, one venue."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.sim import history
from engine.sim import orders as o
from engine.sim.orders import Order, Trade
from engine.sim.store import Batch, StateStore, order_row, trade_row


def order(order_id: int, status: str = o.NEW, account: str = "alice") -> Order:
    made = Order("BTCUSDT", order_id, account, f"c{order_id}", o.BUY, o.LIMIT, o.GTC, 100, 5, 0,
                 0, o.STP_NONE, 1000 + order_id)
    made.status = status
    made.locked = 10**30  # bigger than SQLite's INTEGER: stored as text
    return made


def test_rows_round_trip_and_open_orders_reload(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "v.sqlite")
    store.start()
    trade = Trade("BTCUSDT", 1, 100, 5, 500, 1001, 1, 2, "alice", "bob", True, 3, 4, 2)
    store.submit(Batch(orders=[order_row(order(1)), order_row(order(2, o.FILLED))],
                       trades=[trade_row(trade)], balances=[("alice", "BTC", "7", "3")],
                       fees=[("BTC", "3")],
                       counters=[("BTCUSDT", 3, 2, 0, 2, 9, "100")]))
    found = store.query(lambda conn: history.find_order(conn, "alice", "BTCUSDT", None, "c2"))
    assert found.status == o.FILLED and found.locked == 10**30
    store.stop()
    again = StateStore(tmp_path / "v.sqlite")
    saved = again.load(recent_trades=10)
    assert [x.order_id for x in saved.open_orders] == [1]
    assert saved.balances == [("alice", "BTC", 7, 3)] and saved.fees == {"BTC": 3}
    assert saved.counters["BTCUSDT"] == (3, 2, 0, 2, 9, 100)
    assert saved.recent_trades["BTCUSDT"] == [trade]
    again.close()


def test_my_trades_lists_each_side_of_a_self_trade(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "v.sqlite")
    store.start()
    self_trade = Trade("BTCUSDT", 1, 100, 5, 500, 1001, 1, 2, "alice", "alice", False, 3, 4, 2)
    store.submit(Batch(trades=[trade_row(self_trade)]))
    rows = store.query(lambda conn: history.my_trades(conn, "alice", "BTCUSDT", None, None,
                                                      None, None, 10))
    assert [is_buyer for _, is_buyer in rows] == [True, False]
    store.stop()


def test_all_orders_from_id_ascending_else_most_recent(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "v.sqlite")
    store.start()
    store.submit(Batch(orders=[order_row(order(i)) for i in range(1, 8)]))
    recent = store.query(lambda c: history.all_orders(c, "alice", "BTCUSDT", None, None, None, 3))
    assert [x.order_id for x in recent] == [5, 6, 7]
    start = store.query(lambda c: history.all_orders(c, "alice", "BTCUSDT", 2, None, None, 3))
    assert [x.order_id for x in start] == [2, 3, 4]
    store.stop()


def test_second_store_on_the_same_file_is_refused(tmp_path: Path) -> None:
    first = StateStore(tmp_path / "v.sqlite")
    with pytest.raises(RuntimeError, match="in use"):
        StateStore(tmp_path / "v.sqlite")
    first.close()
    StateStore(tmp_path / "v.sqlite").close()

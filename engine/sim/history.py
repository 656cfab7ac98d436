"""Read queries over the state store: the "Database" data source of Binance's
allOrders, myTrades, historicalTrades and order lookups that left memory.

Each function takes the store's connection and runs on its writer thread
(StateStore.query), so it sees every operation queued before it.
"""

from __future__ import annotations

import sqlite3

from engine.sim.orders import Order, Trade
from engine.sim.store import order_from_row, trade_from_row


def find_order(conn: sqlite3.Connection, account: str, symbol: str, order_id: int | None,
               client_order_id: str | None) -> Order | None:
    if order_id is not None:
        row = conn.execute("SELECT * FROM orders WHERE symbol = ? AND order_id = ? AND "
                           "account = ?", (symbol, order_id, account)).fetchone()
    else:
        row = conn.execute("SELECT * FROM orders WHERE account = ? AND symbol = ? AND "
                           "client_order_id = ? ORDER BY order_id DESC LIMIT 1",
                           (account, symbol, client_order_id)).fetchone()
    return order_from_row(row) if row is not None else None


def all_orders(conn: sqlite3.Connection, account: str, symbol: str, from_id: int | None,
               start_ms: int | None, end_ms: int | None, limit: int) -> list[Order]:
    """Binance: orderId given -> orders >= it, oldest first; else the most recent."""
    where = ["account = ?", "symbol = ?"]
    args: list = [account, symbol]
    if from_id is not None:
        where.append("order_id >= ?")
        args.append(from_id)
    if start_ms is not None:
        where.append("time_ms >= ?")
        args.append(start_ms)
    if end_ms is not None:
        where.append("time_ms <= ?")
        args.append(end_ms)
    ascending = from_id is not None or (start_ms is not None and end_ms is None)
    order = "ASC" if ascending else "DESC"
    rows = conn.execute(f"SELECT * FROM orders WHERE {' AND '.join(where)} "
                        f"ORDER BY order_id {order} LIMIT ?", (*args, limit)).fetchall()
    found = [order_from_row(r) for r in rows]
    return found if ascending else found[::-1]


def my_trades(conn: sqlite3.Connection, account: str, symbol: str, order_id: int | None,
              from_id: int | None, start_ms: int | None, end_ms: int | None,
              limit: int) -> list[tuple[Trade, bool]]:
    """(trade, is_buyer) pairs, oldest first; a self-trade appears once per side."""
    parts = []
    args: list = []
    for role, is_buyer in (("buyer", 1), ("seller", 0)):
        where = [f"{role}_account = ?", "symbol = ?"]
        part_args: list = [account, symbol]
        if order_id is not None:
            where.append(f"{role}_order_id = ?")
            part_args.append(order_id)
        if from_id is not None:
            where.append("trade_id >= ?")
            part_args.append(from_id)
        if start_ms is not None:
            where.append("time_ms >= ?")
            part_args.append(start_ms)
        if end_ms is not None:
            where.append("time_ms <= ?")
            part_args.append(end_ms)
        parts.append(f"SELECT *, {is_buyer} AS is_buyer FROM trades WHERE {' AND '.join(where)}")
        args.extend(part_args)
    ascending = from_id is not None or (start_ms is not None and end_ms is None)
    # buyer side first within one trade, whichever way the ids run
    direction, buyer_first = ("ASC", "DESC") if ascending else ("DESC", "ASC")
    rows = conn.execute(f"{' UNION ALL '.join(parts)} ORDER BY trade_id {direction}, "
                        f"is_buyer {buyer_first} LIMIT ?", (*args, limit)).fetchall()
    found = [(trade_from_row(r), bool(r["is_buyer"])) for r in rows]
    return found if ascending else found[::-1]


def trades_from(conn: sqlite3.Connection, symbol: str, from_id: int | None,
                limit: int) -> list[Trade]:
    """Public trades from an id (historicalTrades), oldest first."""
    if from_id is None:
        rows = conn.execute("SELECT * FROM trades WHERE symbol = ? ORDER BY trade_id DESC "
                            "LIMIT ?", (symbol, limit)).fetchall()[::-1]
    else:
        rows = conn.execute("SELECT * FROM trades WHERE symbol = ? AND trade_id >= ? "
                            "ORDER BY trade_id LIMIT ?", (symbol, from_id, limit)).fetchall()
    return [trade_from_row(r) for r in rows]

"""SQL access to the user-facing task tables MONITORING and TRADE: the reads
the fetcher polls, and the add / list / enable / disable / set behind
``tools/tasks.py``. Writes are validated with taskrows first, so the CLI never
stores a row the daemon would skip. TRADE_HISTORY belongs to the trader."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from engine.store import taskrows
from engine.store.taskdb import TaskDb

TABLES = ("MONITORING", "TRADE")
MONITORING_COLUMNS = ("ID", "EXCHANGE_ID", "MARKET_TYPE", "TRADE_PAIR", "ORDERBOOK_DEPTH",
                      "DAEMON_PRIORITY", "ENABLED")
TRADE_COLUMNS = ("ID", "EXCHANGE_ID", "MARKET_TYPE", "TRADE_PAIR", "STRATEGY_ID", "STRATEGY_PARAMS",
                 "DAEMON_PRIORITY", "ENABLED")
_COLUMNS = {"MONITORING": MONITORING_COLUMNS, "TRADE": TRADE_COLUMNS}


def _table(table: str) -> str:
    name = table.upper()
    if name not in TABLES:
        raise ValueError(f"task table {table!r} is not one of {', '.join(TABLES)}")
    return name


def read(db: TaskDb, table: str) -> list[dict[str, Any]]:
    """Every row of MONITORING or TRADE as ``{COLUMN: value}``, by id."""
    name = _table(table)
    columns = _COLUMNS[name]
    rows = db.query(f"SELECT {', '.join(columns)} FROM {name} ORDER BY ID")
    return [dict(zip(columns, row)) for row in rows]


def listing(db: TaskDb, table: str) -> list[dict[str, Any]]:
    """Rows for people: every column of ``read`` plus who holds the lease and
    for how many more seconds (negative: lapsed)."""
    name = _table(table)
    columns = ", ".join(f"t.{c}" for c in _COLUMNS[name])
    rows = db.query(
        f"SELECT {columns}, l.DAEMON_ID, l.EXPIRES_MS - {{now_ms}} FROM {name} t"
        " LEFT JOIN TASK_LEASES l ON l.TASK_KIND = ? AND l.TASK_ID = t.ID ORDER BY t.ID", (name,))
    keys = (*_COLUMNS[name], "LEASED_BY", "LEASE_LEFT_MS")
    return [dict(zip(keys, row)) for row in rows]


def add_monitoring(db: TaskDb, exchange: str, pair: str, *, market: str = "spot", depth: int = 20,
                   priority: int = 0, enabled: bool = True) -> int:
    """Insert a MONITORING row (validated as the daemon will); its new id."""
    task = taskrows.MonitorTask(0, taskrows.exchange_id(exchange), taskrows.market_type(market),
                                taskrows.trade_pair(pair), taskrows.book_depth(depth),
                                taskrows.priority_of(priority))
    return db.insert(
        "INSERT INTO MONITORING (EXCHANGE_ID, MARKET_TYPE, TRADE_PAIR, ORDERBOOK_DEPTH, DAEMON_PRIORITY,"
        " ENABLED) VALUES (?, ?, ?, ?, ?, ?)",
        (task.exchange, task.market, task.pair, task.depth, task.priority, bool(enabled)))


def add_trade(db: TaskDb, exchange: str, pair: str, strategy: str, params: dict[str, Any] | str, *,
              market: str = "spot", priority: int = 0, enabled: bool = True) -> int:
    """Insert a TRADE row; ``params`` a dict or JSON object text. Its new id."""
    task = taskrows.trade_task({"ID": 0, "EXCHANGE_ID": exchange, "MARKET_TYPE": market,
                                "TRADE_PAIR": pair, "STRATEGY_ID": strategy, "STRATEGY_PARAMS": params,
                                "DAEMON_PRIORITY": priority})
    return db.insert(
        "INSERT INTO TRADE (EXCHANGE_ID, MARKET_TYPE, TRADE_PAIR, STRATEGY_ID, STRATEGY_PARAMS,"
        " DAEMON_PRIORITY, ENABLED) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (task.exchange, task.market, task.pair, task.strategy, json.dumps(dict(task.params)),
         task.priority, bool(enabled)))


def set_enabled(db: TaskDb, table: str, ids: Iterable[int], enabled: bool) -> list[int]:
    """Enable or disable rows; the ids that do not exist (nothing is changed for them)."""
    name = _table(table)
    wanted = sorted(set(ids))
    if not wanted:
        return []
    marks = ", ".join("?" for _ in wanted)
    with db.transaction():
        found = {int(r[0]) for r in db.query(f"SELECT ID FROM {name} WHERE ID IN ({marks})", wanted)}
        db.execute(f"UPDATE {name} SET ENABLED = ? WHERE ID IN ({marks})", (bool(enabled), *wanted))
    return [i for i in wanted if i not in found]


def set_monitoring(db: TaskDb, task_id: int, *, depth: int | None = None,
                   priority: int | None = None) -> bool:
    """Change a MONITORING row's depth and/or priority; False if no such row."""
    changes: dict[str, Any] = {}
    if depth is not None:
        changes["ORDERBOOK_DEPTH"] = taskrows.book_depth(depth)
    if priority is not None:
        changes["DAEMON_PRIORITY"] = taskrows.priority_of(priority)
    if not changes:
        raise ValueError("nothing to change: give a depth or a priority")
    with db.transaction():
        if not db.query("SELECT ID FROM MONITORING WHERE ID = ?", (task_id,)):
            return False
        assignments = ", ".join(f"{column} = ?" for column in changes)
        db.execute(f"UPDATE MONITORING SET {assignments} WHERE ID = ?", (*changes.values(), task_id))
    return True


def delete(db: TaskDb, table: str, ids: Iterable[int]) -> int:
    """Delete rows (and their leases); how many rows went."""
    name = _table(table)
    wanted = sorted(set(ids))
    if not wanted:
        return 0
    marks = ", ".join("?" for _ in wanted)
    with db.transaction():
        db.execute(f"DELETE FROM TASK_LEASES WHERE TASK_KIND = ? AND TASK_ID IN ({marks})", (name, *wanted))
        return db.execute(f"DELETE FROM {name} WHERE ID IN ({marks})", wanted)

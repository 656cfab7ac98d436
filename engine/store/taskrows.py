"""Rows of the user-facing task tables as validated values: MonitorTask and
TradeTask, or a BadRow naming the row and what is wrong with it. Pure: no SQL,
no I/O. Exchange ids are validated against engine.model.EXCHANGE_IDS, which
engine.venues keeps equal to its driver registries."""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.model import EXCHANGE_IDS, book_key

# Venue ids a task row may name: the venue registries' ids (store/ may not
# import venues/, engine.LAYERS; engine.venues checks at import that
# EXCHANGE_IDS is exactly its DRIVERS + TRADING_DRIVERS ids). app.py passes the
# narrower set of enabled venues with a driver (TaskFetcher's ``exchanges``) so
# rows for the others are reported instead of handed to a feed that cannot serve them.
KNOWN_EXCHANGES = EXCHANGE_IDS
MARKETS = ("spot", "futures")
# BASE/QUOTE in upper case; digits allowed (1000PEPE/USDT), nothing else.
PAIR_PATTERN = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}$")
MIN_DEPTH, MAX_DEPTH = 1, 5000  # the BookStore's and the venues' widest book


@dataclass(frozen=True)
class MonitorTask:
    """One MONITORING row the daemon may run: watch this book to this depth."""

    id: int
    exchange: str
    market: str  # spot | futures
    pair: str  # BASE/QUOTE
    depth: int
    priority: int = 0

    @property
    def book(self) -> str:
        return book_key(self.exchange, self.market, self.pair)


@dataclass(frozen=True)
class TradeTask:
    """One TRADE row: run strategy ``strategy`` with ``params`` on this pair."""

    id: int
    exchange: str
    market: str
    pair: str
    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    priority: int = 0


@dataclass(frozen=True)
class BadRow:
    table: str  # MONITORING | TRADE
    id: int
    reason: str

    def __str__(self) -> str:
        return f"{self.table}#{self.id}: {self.reason}"


class RowError(ValueError):
    """A field value no task may have; the message says which and why."""


def exchange_id(value: Any, exchanges: Collection[str] = KNOWN_EXCHANGES) -> str:
    text = str(value or "").strip().lower()
    if text not in exchanges:
        raise RowError(f"unknown exchange {value!r} (known: {', '.join(sorted(exchanges))})")
    return text


def market_type(value: Any) -> str:
    text = str(value or "").strip().lower()
    if text not in MARKETS:
        raise RowError(f"market type {value!r} is not one of {', '.join(MARKETS)}")
    return text


def trade_pair(value: Any) -> str:
    text = str(value or "").strip().upper()
    if not PAIR_PATTERN.match(text):
        raise RowError(f"malformed pair {value!r} (expected BASE/QUOTE, e.g. BTC/USDT)")
    return text


def book_depth(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_DEPTH <= value <= MAX_DEPTH:
        raise RowError(f"order-book depth {value!r} is not an integer in {MIN_DEPTH}..{MAX_DEPTH}")
    return value


def strategy_params(value: Any) -> dict[str, Any]:
    """STRATEGY_PARAMS as a dict: a JSON object (text, or already decoded)."""
    if value is None or value == "":
        return {}
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise RowError(f"invalid JSON params: {e}") from None
    if not isinstance(value, dict):
        raise RowError(f"JSON params must be an object, got {type(value).__name__}")
    return value


def priority_of(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise RowError(f"priority {value!r} is not an integer")
    return value


def monitor_task(row: Mapping[str, Any], exchanges: Collection[str] = KNOWN_EXCHANGES) -> MonitorTask:
    """A MONITORING row (column names as in the table) as a task; RowError if bad."""
    return MonitorTask(int(row["ID"]), exchange_id(row["EXCHANGE_ID"], exchanges),
                       market_type(row["MARKET_TYPE"]), trade_pair(row["TRADE_PAIR"]),
                       book_depth(row["ORDERBOOK_DEPTH"]), priority_of(row["DAEMON_PRIORITY"]))


def trade_task(row: Mapping[str, Any], exchanges: Collection[str] = KNOWN_EXCHANGES) -> TradeTask:
    strategy = str(row["STRATEGY_ID"] or "").strip()
    if not strategy:
        raise RowError("no STRATEGY_ID")
    return TradeTask(int(row["ID"]), exchange_id(row["EXCHANGE_ID"], exchanges),
                     market_type(row["MARKET_TYPE"]), trade_pair(row["TRADE_PAIR"]), strategy,
                     strategy_params(row["STRATEGY_PARAMS"]), priority_of(row["DAEMON_PRIORITY"]))


def runnable_monitoring(rows: Iterable[Mapping[str, Any]], exchanges: Collection[str] = KNOWN_EXCHANGES,
                        ) -> tuple[list[MonitorTask], list[BadRow]]:
    """The enabled rows that make valid tasks, best priority first, and the
    enabled rows that do not. Of two rows for the same book the lower id wins,
    so every daemon picks the same one."""
    tasks: list[MonitorTask] = []
    bad: list[BadRow] = []
    seen: dict[str, int] = {}
    for row in sorted(rows, key=lambda r: int(r["ID"])):
        if not row["ENABLED"]:
            continue
        try:
            task = monitor_task(row, exchanges)
        except RowError as e:
            bad.append(BadRow("MONITORING", int(row["ID"]), str(e)))
            continue
        if task.book in seen:
            bad.append(BadRow("MONITORING", task.id, f"duplicate of task {seen[task.book]} ({task.book})"))
            continue
        seen[task.book] = task.id
        tasks.append(task)
    tasks.sort(key=lambda t: (-t.priority, t.id))
    return tasks, bad


def runnable_trade(rows: Iterable[Mapping[str, Any]], exchanges: Collection[str] = KNOWN_EXCHANGES,
                   ) -> tuple[list[TradeTask], list[BadRow]]:
    tasks: list[TradeTask] = []
    bad: list[BadRow] = []
    for row in sorted(rows, key=lambda r: int(r["ID"])):
        if not row["ENABLED"]:
            continue
        try:
            tasks.append(trade_task(row, exchanges))
        except RowError as e:
            bad.append(BadRow("TRADE", int(row["ID"]), str(e)))
    tasks.sort(key=lambda t: (-t.priority, t.id))
    return tasks, bad

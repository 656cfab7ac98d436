"""The venue's own SQLite file: orders, trades, balances, fees and id
counters, so a restart resumes where the venue stopped.

One writer thread owns the connection. The exchange hands it row batches
(built under the exchange lock, so they are consistent) and never waits;
history queries run on the same thread after every write queued before
them, so a query always sees the operations that preceded it. A crash can
lose the batches still queued (milliseconds of activity): acceptable for a
paper venue, and the reason writes never block matching.
"""

from __future__ import annotations

import fcntl
import queue
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from loguru import logger

from engine.sim.orders import Order, Trade

log = logger.bind(component="venue")
T = TypeVar("T")

SCHEMA_VERSION = "1"
# Rows per transaction at most: larger batches amortize commits, smaller ones
# bound how long a history query waits behind writes.
MAX_BATCH_ITEMS = 2_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS balances(account TEXT, asset TEXT, free TEXT, locked TEXT,
    PRIMARY KEY(account, asset));
CREATE TABLE IF NOT EXISTS fees(asset TEXT PRIMARY KEY, amount TEXT);
CREATE TABLE IF NOT EXISTS orders(symbol TEXT, order_id INTEGER, account TEXT,
    client_order_id TEXT, side TEXT, type TEXT, time_in_force TEXT, price TEXT,
    orig_qty TEXT, orig_quote_qty TEXT, stop_price TEXT, executed_qty TEXT, cum_quote TEXT,
    remaining TEXT, quote_remaining TEXT, status TEXT, stp_mode TEXT, time_ms INTEGER,
    update_ms INTEGER, working_ms INTEGER, locked TEXT, prevented_qty TEXT,
    prevented_match_id INTEGER, is_open INTEGER, PRIMARY KEY(symbol, order_id));
CREATE INDEX IF NOT EXISTS orders_by_account ON orders(account, symbol, order_id);
CREATE INDEX IF NOT EXISTS orders_open ON orders(is_open) WHERE is_open = 1;
CREATE TABLE IF NOT EXISTS trades(symbol TEXT, trade_id INTEGER, price TEXT, qty TEXT,
    quote_qty TEXT, time_ms INTEGER, buyer_order_id INTEGER, seller_order_id INTEGER,
    buyer_account TEXT, seller_account TEXT, buyer_is_maker INTEGER, buyer_fee TEXT,
    seller_fee TEXT, taker_order_id INTEGER, PRIMARY KEY(symbol, trade_id));
CREATE INDEX IF NOT EXISTS trades_by_buyer ON trades(buyer_account, symbol, trade_id);
CREATE INDEX IF NOT EXISTS trades_by_seller ON trades(seller_account, symbol, trade_id);
CREATE TABLE IF NOT EXISTS counters(symbol TEXT PRIMARY KEY, next_order_id INTEGER,
    next_trade_id INTEGER, next_prevented_id INTEGER, next_agg_id INTEGER,
    update_id INTEGER, last_price TEXT);
"""

_ORDER_COLUMNS = ("symbol", "order_id", "account", "client_order_id", "side", "type",
                  "time_in_force", "price", "orig_qty", "orig_quote_qty", "stop_price",
                  "executed_qty", "cum_quote", "remaining", "quote_remaining", "status",
                  "stp_mode", "time_ms", "update_ms", "working_ms", "locked", "prevented_qty",
                  "prevented_match_id")
_INT_COLUMNS = frozenset(_ORDER_COLUMNS[7:15]) | {"locked", "prevented_qty"}


def order_row(order: Order) -> tuple:
    values = [getattr(order, name) for name in _ORDER_COLUMNS]
    row = [str(v) if name in _INT_COLUMNS else v for name, v in zip(_ORDER_COLUMNS, values)]
    return (*row, 1 if order.is_open else 0)


def order_from_row(row: sqlite3.Row) -> Order:
    order = Order(row["symbol"], row["order_id"], row["account"], row["client_order_id"],
                  row["side"], row["type"], row["time_in_force"], int(row["price"]),
                  int(row["orig_qty"]), int(row["orig_quote_qty"]), int(row["stop_price"]),
                  row["stp_mode"], row["time_ms"])
    for name in _ORDER_COLUMNS[11:]:
        value = row[name]
        setattr(order, name, int(value) if name in _INT_COLUMNS else value)
    return order


def trade_row(trade: Trade) -> tuple:
    return (trade.symbol, trade.trade_id, str(trade.price), str(trade.qty),
            str(trade.quote_qty), trade.time_ms, trade.buyer_order_id, trade.seller_order_id,
            trade.buyer_account, trade.seller_account, int(trade.buyer_is_maker),
            str(trade.buyer_fee), str(trade.seller_fee), trade.taker_order_id)


def trade_from_row(row: sqlite3.Row) -> Trade:
    return Trade(row["symbol"], row["trade_id"], int(row["price"]), int(row["qty"]),
                 int(row["quote_qty"]), row["time_ms"], row["buyer_order_id"],
                 row["seller_order_id"], row["buyer_account"], row["seller_account"],
                 bool(row["buyer_is_maker"]), int(row["buyer_fee"]), int(row["seller_fee"]),
                 row["taker_order_id"])


@dataclass
class Batch:
    """One operation's (or several's) changes, as rows."""

    orders: list[tuple] = field(default_factory=list)
    trades: list[tuple] = field(default_factory=list)
    balances: list[tuple] = field(default_factory=list)  # account, asset, free, locked
    fees: list[tuple] = field(default_factory=list)  # asset, amount
    counters: list[tuple] = field(default_factory=list)


@dataclass
class SavedState:
    meta: dict[str, str]
    balances: list[tuple[str, str, int, int]]
    fees: dict[str, int]
    open_orders: list[Order]
    counters: dict[str, tuple[int, int, int, int, int, int | None]]
    recent_trades: dict[str, list[Trade]]


class StateStore:
    def __init__(self, path: Path, fresh: bool = False) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Two venues on one file would each believe they own the balances.
        self._lock_file = open(f"{path}.lock", "a+")  # noqa: SIM115 - held for our lifetime
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise RuntimeError(f"venue state {path} is in use by another venue") from None
        if fresh:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._queue: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None

    # ------------------------------------------------------------- lifecycle

    def load(self, recent_trades: int) -> SavedState:
        """Read everything a restart needs (before start(); same thread)."""
        conn = self._conn
        meta = {r["key"]: r["value"] for r in conn.execute("SELECT key, value FROM meta")}
        balances = [(r["account"], r["asset"], int(r["free"]), int(r["locked"]))
                    for r in conn.execute("SELECT * FROM balances")]
        fees = {r["asset"]: int(r["amount"]) for r in conn.execute("SELECT * FROM fees")}
        open_orders = [order_from_row(r) for r in conn.execute(
            "SELECT * FROM orders WHERE is_open = 1 ORDER BY symbol, order_id")]
        counters = {r["symbol"]: (r["next_order_id"], r["next_trade_id"],
                                  r["next_prevented_id"], r["next_agg_id"], r["update_id"],
                                  int(r["last_price"]) if r["last_price"] else None)
                    for r in conn.execute("SELECT * FROM counters")}
        trades: dict[str, list[Trade]] = {}
        for symbol in counters:
            rows = conn.execute("SELECT * FROM trades WHERE symbol = ? ORDER BY trade_id DESC "
                                "LIMIT ?", (symbol, recent_trades)).fetchall()
            trades[symbol] = [trade_from_row(r) for r in reversed(rows)]
        return SavedState(meta, balances, fees, open_orders, counters, trades)

    def write_meta(self, meta: dict[str, str]) -> None:
        self._conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="venue-store", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        if self._thread is None:
            if not self._lock_file.closed:
                self.close()
            return
        self._queue.put(("stop",))
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("venue state store did not stop in time path={}", self.path)
            return
        self._thread = None
        self.close()

    def close(self) -> None:
        """Release the file (also for a store that was never started)."""
        self._conn.close()
        fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        self._lock_file.close()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self.failed is None

    # ------------------------------------------------------------ producers

    def submit(self, batch: Batch) -> None:
        self._queue.put(("write", batch))

    def query(self, fn: Callable[[sqlite3.Connection], T], timeout_s: float = 10.0) -> T:
        """Run ``fn`` on the writer thread after all writes queued so far."""
        if self._thread is None:  # not started (tests, tools): run inline
            return fn(self._conn)
        future: Future[T] = Future()
        self._queue.put(("call", fn, future))
        return future.result(timeout_s)

    # ---------------------------------------------------------------- writer

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                pending = [item]
                while len(pending) < MAX_BATCH_ITEMS and item[0] == "write":
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    pending.append(item)
                writes = [x[1] for x in pending if x[0] == "write"]
                if writes:
                    self._write(writes)
                for x in pending:
                    if x[0] == "call":
                        self._call(x[1], x[2])
                    elif x[0] == "stop":
                        return
        except BaseException as exc:  # recorded, health reports it
            self.failed = exc
            log.exception("venue state store failed path={}", self.path)

    def _call(self, fn: Callable[[sqlite3.Connection], Any], future: Future) -> None:
        try:
            future.set_result(fn(self._conn))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            future.set_exception(exc)

    def _write(self, batches: list[Batch]) -> None:
        conn = self._conn
        conn.execute("BEGIN")
        marks = ",".join("?" * (len(_ORDER_COLUMNS) + 1))
        for batch in batches:
            if batch.orders:
                conn.executemany(f"INSERT OR REPLACE INTO orders VALUES ({marks})", batch.orders)
            if batch.trades:
                conn.executemany("INSERT OR REPLACE INTO trades VALUES "
                                 "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", batch.trades)
            if batch.balances:
                conn.executemany("INSERT OR REPLACE INTO balances VALUES (?,?,?,?)",
                                 batch.balances)
            if batch.fees:
                conn.executemany("INSERT OR REPLACE INTO fees VALUES (?,?)", batch.fees)
            if batch.counters:
                conn.executemany("INSERT OR REPLACE INTO counters VALUES (?,?,?,?,?,?,?)",
                                 batch.counters)
        conn.execute("COMMIT")

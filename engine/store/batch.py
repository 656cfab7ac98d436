"""History rows in columns: the tables' insert columns, a builder that turns
normalized events into column lists, and the Batch the recorder hands to the
store (and to the spill file, as bytes). Owns no I/O and no thread.

A batch is the unit of exactly-once: every row carries its ``batch_id`` and
its position ``ord`` inside the batch (record order across all tables; the
levels of one delta get consecutive positions). Rows of one table are
grouped by day (the tables' partition) because one insert into one partition
is one part on the server, which appears whole or not at all.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from engine.model import BookDelta, Level, Side, Trade

DAY_NS = 86_400 * 1_000_000_000

# Insert columns per table, in the order of sql/clickhouse/history.sql.
TABLES: dict[str, tuple[str, ...]] = {
    "trades": ("venue", "market", "pair", "trade_id", "price", "size", "taker_side",
               "exch_ns", "recv_ns", "batch_id", "ord"),
    "book_deltas": ("venue", "market", "pair", "side", "price", "size", "first_seq", "last_seq",
                    "exch_ns", "recv_ns", "batch_id", "ord"),
    "book_snapshots": ("venue", "market", "pair", "reason", "seq", "exch_ns", "recv_ns",
                       "bid_prices", "bid_sizes", "ask_prices", "ask_sizes", "batch_id", "ord"),
    "history_losses": ("venue", "market", "pair", "kind", "reason", "events", "first_recv_ns",
                       "last_recv_ns", "recv_ns", "batch_id", "ord"),
}
# The column a table is partitioned by (trades: the materialized ts_ns, which
# is exch_ns when set, else recv_ns) and how the store counts a day's rows.
TIME_COLUMN = {"trades": "ts_ns", "book_deltas": "recv_ns", "book_snapshots": "recv_ns",
               "history_losses": "recv_ns"}
BID, ASK = 1, -1
BUY, SELL = 1, -1


@dataclass
class Batch:
    """Rows of several tables cut together. ``maybe_sent`` is set before the
    first insert attempt: from then on the store must check what already
    arrived before writing again."""

    batch_id: int
    tables: dict[str, list[list]]  # table -> columns (lists), in TABLES order
    maybe_sent: bool = False
    events: int = 0
    # Rebuilt from the journal after a kill: its whole books may differ from
    # the first build, so a (table, day) with any of its rows stored is done.
    rebuilt: bool = False

    def rows(self, table: str | None = None) -> int:
        if table is not None:
            columns = self.tables.get(table)
            return len(columns[0]) if columns else 0
        return sum(len(columns[0]) for columns in self.tables.values() if columns)

    def days(self, table: str) -> Iterator[tuple[int, list[list]]]:
        """(day, columns) per day of the table's partition; no copy when the
        batch lies within one day (nearly always)."""
        columns = self.tables[table]
        names = TABLES[table]
        if table == "trades":
            exch, recv = columns[names.index("exch_ns")], columns[names.index("recv_ns")]
            times = [e if e > 0 else r for e, r in zip(exch, recv)]
        else:
            times = columns[names.index("recv_ns")]
        first, last = min(times) // DAY_NS, max(times) // DAY_NS
        if first == last:
            yield first, columns
            return
        for day in range(first, last + 1):
            keep = [i for i, t in enumerate(times) if t // DAY_NS == day]
            if keep:
                yield day, [[column[i] for i in keep] for column in columns]


# Spill encoding: a small header then the columns as JSON (orjson: exact
# round trip of int64 and float64, no pickle, ~10x faster than json).
_HEADER = struct.Struct("<QI")  # batch_id, events


def encode(batch: Batch) -> bytes:
    return _HEADER.pack(batch.batch_id, batch.events) + orjson.dumps(batch.tables)


def decode(payload: bytes, maybe_sent: bool) -> Batch:
    batch_id, events = _HEADER.unpack_from(payload)
    tables = orjson.loads(payload[_HEADER.size:])
    for table, columns in tables.items():
        if table not in TABLES or len(columns) != len(TABLES[table]):
            raise ValueError(f"spilled batch {batch_id}: unknown table or columns {table!r}")
    return Batch(batch_id, tables, maybe_sent, events)


@dataclass
class BatchBuilder:
    """Collects rows until cut. ``add_*`` return the event's ``ord``.
    Single-threaded: only the recorder thread calls it."""

    trades: list[list] = field(default_factory=lambda: [[] for _ in TABLES["trades"]])
    deltas: list[list] = field(default_factory=lambda: [[] for _ in TABLES["book_deltas"]])
    snapshots: list[list] = field(default_factory=lambda: [[] for _ in TABLES["book_snapshots"]])
    losses: list[list] = field(default_factory=lambda: [[] for _ in TABLES["history_losses"]])
    rows: int = 0
    events: int = 0
    next_ord: int = 0  # record position of the next row, shared by all tables

    def add_trade(self, t: Trade) -> int:
        ord_ = self.next_ord
        c = self.trades
        c[0].append(t.venue)
        c[1].append(t.market.value)
        c[2].append(t.pair)
        c[3].append(t.trade_id)
        c[4].append(t.price)
        c[5].append(t.size)
        c[6].append(BUY if t.taker_side is Side.BUY else SELL)
        c[7].append(t.exch_ns)
        c[8].append(t.recv_ns)
        c[10].append(ord_)
        self.rows += 1
        self.events += 1
        self.next_ord += 1
        return ord_

    def add_delta(self, d: BookDelta) -> int:
        ord_ = self.next_ord
        n = len(d.bids) + len(d.asks)
        c = self.deltas
        c[0].extend([d.venue] * n)
        c[1].extend([d.market.value] * n)
        c[2].extend([d.pair] * n)
        c[3].extend([BID] * len(d.bids) + [ASK] * len(d.asks))
        for price, size in d.bids:
            c[4].append(price)
            c[5].append(size)
        for price, size in d.asks:
            c[4].append(price)
            c[5].append(size)
        c[6].extend([d.first_seq] * n)
        c[7].extend([d.last_seq] * n)
        c[8].extend([d.exch_ns] * n)
        c[9].extend([d.recv_ns] * n)
        c[11].extend(range(ord_, ord_ + n))  # one ord per level: a repeated price resolves in order
        self.rows += n
        self.events += 1
        self.next_ord += n
        return ord_

    def add_snapshot(self, venue: str, market: str, pair: str, reason: str, seq: int,
                     exch_ns: int, recv_ns: int, bids: list[Level], asks: list[Level]) -> int:
        """A whole book (best first) as of ``recv_ns``."""
        ord_ = self.next_ord
        c = self.snapshots
        for column, value in zip(c, (venue, market, pair, reason, seq, exch_ns, recv_ns,
                                     [p for p, _ in bids], [s for _, s in bids],
                                     [p for p, _ in asks], [s for _, s in asks])):
            column.append(value)
        c[12].append(ord_)
        self.rows += 1
        self.events += 1
        self.next_ord += 1
        return ord_

    def add_loss(self, venue: str, market: str, pair: str, kind: str, reason: str, events: int,
                 first_recv_ns: int, last_recv_ns: int, recv_ns: int) -> int:
        ord_ = self.next_ord
        for column, value in zip(self.losses, (venue, market, pair, kind, reason, events,
                                               first_recv_ns, last_recv_ns, recv_ns)):
            column.append(value)
        self.losses[10].append(ord_)
        self.rows += 1
        self.events += 1
        self.next_ord += 1
        return ord_

    def cut(self, batch_id: int) -> Batch:
        """The rows so far as a Batch; the builder starts empty again."""
        tables = {}
        for table, columns in (("trades", self.trades), ("book_deltas", self.deltas),
                               ("book_snapshots", self.snapshots), ("history_losses", self.losses)):
            n = len(columns[-1])
            if n:
                columns[TABLES[table].index("batch_id")].extend([batch_id] * n)
                tables[table] = columns
        batch = Batch(batch_id, tables, events=self.events)
        fresh = BatchBuilder()
        self.trades, self.deltas, self.snapshots, self.losses = (
            fresh.trades, fresh.deltas, fresh.snapshots, fresh.losses)
        self.rows = self.events = self.next_ord = 0
        return batch

-- Order-book and trade history: the same DDL for the ClickHouse server
-- (clickhouse-driver; Debian's 18.16 and newer) and chdb (embedded, modern).
-- Only the SQL both accept (tests/support/servers.py): MergeTree, Int64 ns
-- timestamps, no LowCardinality/DateTime64/CODEC/TTL. engine/store/history.py
-- runs the statements one by one (chdb takes one per query) with {database}
-- replaced; every statement is idempotent, so it runs at every connect.
--
-- Common columns
--   exch_ns, recv_ns  venue clock and our receive clock, integer ns since epoch
--   batch_id          the recorder batch that wrote the row: the unit of
--                     exactly-once (see history_batches) and, with ord, the
--                     record order
--   ord               the row's position in its batch, in record order across
--                     all tables (a delta's levels get consecutive positions);
--                     (batch_id, ord) is the record order of every row
-- Day partitions (intDiv(<time>, 86400e9)): dropping old history is
-- ALTER TABLE .. DROP PARTITION <days since epoch>.

CREATE DATABASE IF NOT EXISTS {database};

-- One row per trade. ts_ns is the time axis of candles, trade pages and
-- 24-hour statistics: the venue's trade time when it sends one, else ours.
CREATE TABLE IF NOT EXISTS {database}.trades (
    venue String,
    market String,
    pair String,
    trade_id String,
    price Float64,
    size Float64,
    taker_side Int8 COMMENT '1 buy, -1 sell',
    exch_ns Int64,
    recv_ns Int64,
    ts_ns Int64 MATERIALIZED if(exch_ns > 0, exch_ns, recv_ns),
    batch_id UInt64,
    ord UInt32
) ENGINE = MergeTree()
PARTITION BY intDiv(ts_ns, 86400000000000)
ORDER BY (venue, market, pair, ts_ns);

-- One row per level change of a book delta (size 0 deletes the level). The
-- book axis is recv_ns: what we saw, in the order we saw it.
CREATE TABLE IF NOT EXISTS {database}.book_deltas (
    venue String,
    market String,
    pair String,
    side Int8 COMMENT '1 bid, -1 ask',
    price Float64,
    size Float64,
    first_seq Int64,
    last_seq Int64,
    exch_ns Int64,
    recv_ns Int64,
    batch_id UInt64,
    ord UInt32
) ENGINE = MergeTree()
PARTITION BY intDiv(recv_ns, 86400000000000)
ORDER BY (venue, market, pair, recv_ns);

-- One row per whole book: the complete book as recorded up to this row
-- (record order), best first. reason: resync (a venue snapshot, bridged with
-- the deltas the venue says follow it) or periodic (the recorder's replica).
-- The book at time t = the last snapshot with recv_ns <= t, then the deltas
-- recorded after it (by batch_id, ord) with recv_ns <= t and last_seq > seq.
CREATE TABLE IF NOT EXISTS {database}.book_snapshots (
    venue String,
    market String,
    pair String,
    reason Enum8('resync' = 1, 'periodic' = 2),
    seq Int64,
    exch_ns Int64,
    recv_ns Int64,
    bid_prices Array(Float64),
    bid_sizes Array(Float64),
    ask_prices Array(Float64),
    ask_sizes Array(Float64),
    batch_id UInt64,
    ord UInt32
) ENGINE = MergeTree()
PARTITION BY intDiv(recv_ns, 86400000000000)
ORDER BY (venue, market, pair, recv_ns);

-- Events the recorder could not keep (queue full, spill full), per book and
-- kind, so a rebuilt book or a candle over the span can say it is incomplete.
CREATE TABLE IF NOT EXISTS {database}.history_losses (
    venue String,
    market String,
    pair String,
    kind String COMMENT 'trade, delta or snapshot',
    reason String,
    events UInt64,
    first_recv_ns Int64,
    last_recv_ns Int64,
    recv_ns Int64 COMMENT 'when the recorder noted the loss',
    batch_id UInt64,
    ord UInt32
) ENGINE = MergeTree()
PARTITION BY intDiv(recv_ns, 86400000000000)
ORDER BY (venue, market, pair, first_recv_ns);

-- Exactly-once markers: one row per (batch, table, day) insert, written after
-- that insert succeeded. A batch that may have reached the store before (a
-- retry, a spilled batch whose write was cut short) is checked against these
-- and, where a marker is missing, against the rows themselves.
CREATE TABLE IF NOT EXISTS {database}.history_batches (
    batch_id UInt64,
    table_name String,
    day Int64,
    rows UInt64,
    writer String,
    written_ns Int64
) ENGINE = MergeTree()
ORDER BY (batch_id, table_name, day);

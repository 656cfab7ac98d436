-- Task database, MySQL / MariaDB dialect, version 3: the strategy pool's
-- durable state (engine/trade/slots.py). Keep the SQLite twin
-- (../sqlite/0003_grid_slots.sql) column for column in step:
-- tests/trade/test_slots_schema.py compares them. Money columns are VARCHAR
-- (exact decimal strings, never floats); *_MS columns are epoch milliseconds.
-- Idempotent (IF NOT EXISTS): MySQL DDL is not transactional, a migration cut
-- short is simply run again.

-- One row per grid slot. A slot moves FREE -> PENDING (entry sent) -> LOCKED
-- (entry filled, exit resting) -> FREE (exit filled, profit booked). Every
-- change is committed here before memory changes and before the order it
-- causes is handed to the executor. GENERATION is the last generation used in
-- the slot's client order ids (engine.trade.actions); CLIENT_ORDER_ID the
-- slot's current order. ORDER_FILLED is the base applied from the current
-- order's fills; BOUGHT/COST/SOLD/PROCEEDS the running cycle; HELD the base
-- held for the exit (net of base fees, plus any dust carried from the last
-- cycle, whose cost stays in COST).
CREATE TABLE IF NOT EXISTS TRADER_GRID_SLOTS (
    STRATEGY_ID VARCHAR(100) NOT NULL,
    SLOT_ID BIGINT NOT NULL,
    VENUE VARCHAR(50) NOT NULL,
    TRADE_PAIR VARCHAR(50) NOT NULL,
    STATE VARCHAR(20) NOT NULL,
    GENERATION BIGINT NOT NULL DEFAULT 0,
    CLIENT_ORDER_ID VARCHAR(64) DEFAULT '',
    ENTRY_SIDE VARCHAR(10) DEFAULT 'buy',
    ENTRY_PRICE VARCHAR(64) DEFAULT '0',
    EXIT_PRICE VARCHAR(64) DEFAULT '0',
    QUANTITY VARCHAR(64) DEFAULT '0',
    ORDER_FILLED VARCHAR(64) DEFAULT '0',
    BOUGHT VARCHAR(64) DEFAULT '0',
    HELD VARCHAR(64) DEFAULT '0',
    COST VARCHAR(64) DEFAULT '0',
    SOLD VARCHAR(64) DEFAULT '0',
    PROCEEDS VARCHAR(64) DEFAULT '0',
    REALIZED VARCHAR(64) DEFAULT '0',
    CYCLES BIGINT DEFAULT 0,
    REARM_MS BIGINT DEFAULT 0,
    REASON VARCHAR(255) DEFAULT '',
    UPDATED_MS BIGINT NOT NULL,
    PRIMARY KEY (STRATEGY_ID, SLOT_ID),
    KEY TRADER_GRID_SLOTS_VENUE (VENUE, STATE)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per fill applied to a slot, in the slot's transaction: the key (the
-- TRADER_FILLS key) makes a replayed fill a no-op, and CYCLE groups each
-- cycle's own trade list.
CREATE TABLE IF NOT EXISTS TRADER_SLOT_FILLS (
    VENUE VARCHAR(50) NOT NULL,
    TRADE_PAIR VARCHAR(50) NOT NULL,
    TRADE_ID VARCHAR(64) NOT NULL,
    SIDE VARCHAR(10) NOT NULL,
    STRATEGY_ID VARCHAR(100) NOT NULL,
    SLOT_ID BIGINT NOT NULL,
    CYCLE BIGINT NOT NULL,
    CLIENT_ORDER_ID VARCHAR(64) NOT NULL,
    PRICE VARCHAR(64) NOT NULL,
    QUANTITY VARCHAR(64) NOT NULL,
    FEE VARCHAR(64) DEFAULT '0',
    FEE_ASSET VARCHAR(20) DEFAULT '',
    CREATED_MS BIGINT NOT NULL,
    PRIMARY KEY (VENUE, TRADE_PAIR, TRADE_ID, SIDE),
    KEY TRADER_SLOT_FILLS_SLOT (STRATEGY_ID, SLOT_ID, CYCLE)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per completed cycle: the profit booked when the exit filled.
-- PROFIT = PROCEEDS - (COST - CARRY_COST); CARRY is base left below one lot,
-- carried (with CARRY_COST) into the slot's next cycle.
CREATE TABLE IF NOT EXISTS TRADER_SLOT_CYCLES (
    STRATEGY_ID VARCHAR(100) NOT NULL,
    SLOT_ID BIGINT NOT NULL,
    CYCLE BIGINT NOT NULL,
    VENUE VARCHAR(50) NOT NULL,
    TRADE_PAIR VARCHAR(50) NOT NULL,
    BOUGHT VARCHAR(64) NOT NULL,
    COST VARCHAR(64) NOT NULL,
    SOLD VARCHAR(64) NOT NULL,
    PROCEEDS VARCHAR(64) NOT NULL,
    CARRY VARCHAR(64) DEFAULT '0',
    CARRY_COST VARCHAR(64) DEFAULT '0',
    PROFIT VARCHAR(64) NOT NULL,
    COMPLETED_MS BIGINT NOT NULL,
    PRIMARY KEY (STRATEGY_ID, SLOT_ID, CYCLE),
    KEY TRADER_SLOT_CYCLES_TIME (STRATEGY_ID, COMPLETED_MS)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Per strategy: the generation counter of its orders outside slots (client
-- ids E<strategy>-x-<generation>) and when it last had a fill (idle alert).
CREATE TABLE IF NOT EXISTS TRADER_STRATEGIES (
    STRATEGY_ID VARCHAR(100) PRIMARY KEY,
    NAME VARCHAR(50) NOT NULL,
    VENUE VARCHAR(50) NOT NULL,
    TRADE_PAIR VARCHAR(50) NOT NULL,
    GENERATION BIGINT NOT NULL DEFAULT 0,
    ACTIVITY_MS BIGINT NOT NULL DEFAULT 0,
    UPDATED_MS BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Task database, MySQL / MariaDB dialect, version 2: the trader's durable
-- state. Keep the SQLite twin (../sqlite/0002_trader.sql) column for column
-- in step: tests/store/test_taskdb.py and tests/trade/test_orders.py compare them.
-- Money columns are VARCHAR: the exact decimal strings the venue sent, never
-- floats. All *_MS columns are epoch milliseconds. Idempotent (IF NOT EXISTS):
-- MySQL DDL is not transactional, a migration cut short is simply run again.

-- One row per order we ever meant to place, written (STATE 'intent') before
-- the request leaves, then moved forward only: intent -> sent -> open ->
-- partially_filled -> filled | canceled | rejected | expired; 'unknown' while
-- a send's fate is being looked up, 'absent' once proven never accepted.
CREATE TABLE IF NOT EXISTS TRADER_ORDERS (
    ID BIGINT PRIMARY KEY AUTO_INCREMENT,
    VENUE VARCHAR(50) NOT NULL,
    CLIENT_ORDER_ID VARCHAR(64) NOT NULL,
    MARKET_TYPE VARCHAR(20) DEFAULT 'spot',
    TRADE_PAIR VARCHAR(50) NOT NULL,
    STRATEGY_ID VARCHAR(100),
    SLOT_ID BIGINT NULL,
    SIDE VARCHAR(10) NOT NULL,
    POST_ONLY BOOLEAN DEFAULT FALSE,
    TIME_IN_FORCE VARCHAR(10) DEFAULT 'GTC',
    PRICE VARCHAR(64) NOT NULL,
    QUANTITY VARCHAR(64) NOT NULL,
    STATE VARCHAR(20) NOT NULL,
    VENUE_ORDER_ID VARCHAR(64) DEFAULT '',
    FILLED VARCHAR(64) DEFAULT '0',
    AVERAGE_PRICE VARCHAR(64) DEFAULT '0',
    FALLBACK VARCHAR(20) DEFAULT '',
    REPLACES VARCHAR(64) DEFAULT '',
    REASON VARCHAR(255) DEFAULT '',
    DAEMON_ID VARCHAR(100),
    SENT_MS BIGINT DEFAULT 0,
    CREATED_MS BIGINT NOT NULL,
    UPDATED_MS BIGINT NOT NULL,
    UNIQUE KEY TRADER_ORDERS_CLIENT (VENUE, CLIENT_ORDER_ID),
    KEY TRADER_ORDERS_STATE (STATE),
    KEY TRADER_ORDERS_STRATEGY (STRATEGY_ID)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per execution of our orders; the key makes a replayed fill a no-op
-- (trade ids are per symbol; SIDE tells two of our accounts' halves apart).
CREATE TABLE IF NOT EXISTS TRADER_FILLS (
    VENUE VARCHAR(50) NOT NULL,
    TRADE_PAIR VARCHAR(50) NOT NULL,
    TRADE_ID VARCHAR(64) NOT NULL,
    SIDE VARCHAR(10) NOT NULL,
    CLIENT_ORDER_ID VARCHAR(64) NOT NULL,
    VENUE_ORDER_ID VARCHAR(64) DEFAULT '',
    STRATEGY_ID VARCHAR(100),
    PRICE VARCHAR(64) NOT NULL,
    QUANTITY VARCHAR(64) NOT NULL,
    FEE VARCHAR(64) DEFAULT '0',
    FEE_ASSET VARCHAR(20) DEFAULT '',
    IS_MAKER BOOLEAN DEFAULT FALSE,
    EXCH_MS BIGINT DEFAULT 0,
    CREATED_MS BIGINT NOT NULL,
    PRIMARY KEY (VENUE, TRADE_PAIR, TRADE_ID, SIDE),
    KEY TRADER_FILLS_ORDER (VENUE, CLIENT_ORDER_ID),
    KEY TRADER_FILLS_TIME (VENUE, TRADE_PAIR, EXCH_MS)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Trader switches that must survive a restart (a halt from the API stays a
-- halt until someone resumes it): NAME 'halt:<venue>' or 'halt:*'.
CREATE TABLE IF NOT EXISTS TRADER_FLAGS (
    NAME VARCHAR(100) PRIMARY KEY,
    VALUE VARCHAR(255) NOT NULL,
    UPDATED_MS BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- Task database, MySQL / MariaDB dialect, version 4: futures positions
-- (engine/trade/futures.py). Keep the SQLite twin (../sqlite/0004_futures.sql)
-- column for column in step: tests/trade/test_futures_schema.py compares them.
-- Money columns are VARCHAR (exact decimal strings); *_MS are epoch ms.
-- Idempotent (IF NOT EXISTS).

-- One row per funding payment the venue made or took (income FUNDING_FEE);
-- FUNDING_ID is the venue's id (Binance tranId), so a payment read twice is
-- stored once. AMOUNT is signed: < 0 paid, > 0 received. Positions' realized
-- PnL includes these.
CREATE TABLE IF NOT EXISTS TRADER_FUNDING (
    VENUE VARCHAR(50) NOT NULL,
    FUNDING_ID VARCHAR(64) NOT NULL,
    TRADE_PAIR VARCHAR(50) NOT NULL,
    AMOUNT VARCHAR(64) NOT NULL,
    ASSET VARCHAR(20) NOT NULL,
    EXCH_MS BIGINT NOT NULL,
    CREATED_MS BIGINT NOT NULL,
    PRIMARY KEY (VENUE, FUNDING_ID),
    KEY TRADER_FUNDING_TIME (VENUE, TRADE_PAIR, EXCH_MS)
);

-- Fills of the venue's own closing orders on our account (liquidation,
-- auto-deleveraging): not our orders, so not in TRADER_FILLS, but they move
-- our position and PnL. Keyed like TRADER_FILLS.
CREATE TABLE IF NOT EXISTS TRADER_LIQUIDATIONS (
    VENUE VARCHAR(50) NOT NULL,
    TRADE_PAIR VARCHAR(50) NOT NULL,
    TRADE_ID VARCHAR(64) NOT NULL,
    SIDE VARCHAR(10) NOT NULL,
    VENUE_ORDER_ID VARCHAR(64) DEFAULT '',
    CLIENT_ORDER_ID VARCHAR(64) DEFAULT '',
    PRICE VARCHAR(64) NOT NULL,
    QUANTITY VARCHAR(64) NOT NULL,
    FEE VARCHAR(64) DEFAULT '0',
    FEE_ASSET VARCHAR(20) DEFAULT '',
    EXCH_MS BIGINT DEFAULT 0,
    CREATED_MS BIGINT NOT NULL,
    PRIMARY KEY (VENUE, TRADE_PAIR, TRADE_ID, SIDE)
);

-- The venue's last report of each position leg (positionRisk or the private
-- stream): what /status shows and reconciliation compares with the fills.
CREATE TABLE IF NOT EXISTS TRADER_POSITIONS (
    VENUE VARCHAR(50) NOT NULL,
    TRADE_PAIR VARCHAR(50) NOT NULL,
    POSITION_SIDE VARCHAR(10) NOT NULL,
    QUANTITY VARCHAR(64) NOT NULL,
    ENTRY_PRICE VARCHAR(64) DEFAULT '0',
    MARK_PRICE VARCHAR(64) DEFAULT '',
    UNREALIZED_PNL VARCHAR(64) DEFAULT '0',
    LIQUIDATION_PRICE VARCHAR(64) DEFAULT '0',
    LEVERAGE VARCHAR(20) DEFAULT '',
    MARGIN_TYPE VARCHAR(20) DEFAULT '',
    EXCH_MS BIGINT DEFAULT 0,
    UPDATED_MS BIGINT NOT NULL,
    PRIMARY KEY (VENUE, TRADE_PAIR, POSITION_SIDE)
);

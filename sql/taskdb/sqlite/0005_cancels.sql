-- Task database, SQLite dialect, version 5: the twin of ../mysql/0005_cancels.sql
-- (same table, same columns; the MySQL file says what it is for).

CREATE TABLE IF NOT EXISTS TRADER_CANCELS (
    VENUE VARCHAR(50) NOT NULL,
    CLIENT_ORDER_ID VARCHAR(64) NOT NULL,
    SENT_MS BIGINT NOT NULL,
    PRIMARY KEY (VENUE, CLIENT_ORDER_ID)
);

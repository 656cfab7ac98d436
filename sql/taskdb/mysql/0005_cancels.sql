-- Task database, MySQL / MariaDB dialect, version 5: cancels we sent.
-- Keep the SQLite twin (../sqlite/0005_cancels.sql) column for column in step.
-- Idempotent (IF NOT EXISTS).

-- One row per order of ours we asked the venue to cancel, committed before the
-- request leaves: after a kill, reconcile tells an order the venue canceled at
-- our request (in flight when we died) from one canceled elsewhere (drift).
CREATE TABLE IF NOT EXISTS TRADER_CANCELS (
    VENUE VARCHAR(50) NOT NULL,
    CLIENT_ORDER_ID VARCHAR(64) NOT NULL,
    SENT_MS BIGINT NOT NULL,
    PRIMARY KEY (VENUE, CLIENT_ORDER_ID)
);

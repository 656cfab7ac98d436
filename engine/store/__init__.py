"""Persistence: the task database (SQLite | MySQL) and the history store
(chdb | ClickHouse). No market-data logic."""

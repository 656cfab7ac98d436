"""The storage: section of config.yaml: where the task DB (SQLite or MySQL)
and the order-book history (chdb or ClickHouse) live, and the recorder's
queue, batch and spill tunables. Schema only; engine/config.py loads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class TaskDbConfig:
    backend: Literal["sqlite", "mysql"] = "sqlite"
    path: str = "tasks.sqlite"  # relative to data_dir
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "engine"
    database: str = "engine"
    password_env: str = "ENGINE_MYSQL_PASSWORD"
    poll_s: float = 5.0
    # Renewed every min(poll_s, lease_s/3): shorter = faster takeover of a dead
    # daemon's tasks, but more renew writes and leases lost over short DB hiccups.
    lease_s: float = 30.0
    capacity: int = 0  # most MONITORING tasks this daemon claims; 0 = books.capacity
    retry_max_s: float = 30.0  # backoff cap while the DB is down
    timeout_s: float = 10.0  # MySQL connect/read/write timeout, SQLite busy wait


@dataclass(frozen=True)
class HistoryConfig:
    backend: Literal["chdb", "clickhouse", "none"] = "chdb"
    path: str = "history.chdb"  # chdb directory, relative to data_dir
    host: str = "127.0.0.1"
    port: int = 9000
    user: str = "default"
    database: str = "engine"
    password_env: str = "ENGINE_CLICKHOUSE_PASSWORD"
    # Recorder: events wait in a bounded queue; a full queue drops (counted,
    # alerted) rather than slowing the feed. Bigger = more memory, fewer drops.
    queue_events: int = 100_000
    batch_rows: int = 50_000  # rows per insert; bigger = faster, longer at risk
    batch_interval_s: float = 1.0  # flush at least this often
    snapshot_interval_s: float = 60.0  # periodic book snapshots; 0 = only at resyncs
    spill_dir: str = "spill"  # relative to data_dir: batches wait here while the store is down
    spill_max_mb: int = 1024  # spill bound; past it events are dropped (counted)
    spill_alert_fraction: float = 0.8  # health degrades when the spill is this full
    memory_batches: int = 4  # batches held in memory before spilling
    retry_min_s: float = 0.5  # store retry backoff
    retry_max_s: float = 10.0
    # Write-ahead journal: a killed process loses only events still queued
    # (docs/history.md, Crash loss); off, also the batch being built and those
    # in memory. fsync every journal_fsync_s (0: every write) for power loss.
    journal: bool = True
    journal_fsync_s: float = 1.0


@dataclass(frozen=True)
class StorageConfig:
    tasks: TaskDbConfig = TaskDbConfig()
    history: HistoryConfig = HistoryConfig()

"""A recording process SIGKILLed mid-batch, then started again: what it
spilled is written, exactly once, also when the kill lands while it spills
(a torn last record) or while it replays its spill into the server.

The expectation is read from the spill files themselves, by this test's own
decoder of the documented record format, before the restart replays them."""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from engine import config as cfg
from engine.store.history import HistoryStore
from engine.store.spill import MAGIC, SUFFIX
from tests.store.test_history import PASSWORD_ENV, history_config
from tests.store.test_recorder import private_server
from tests.support.eventually import eventually
from tests.support.servers import ClickHouseServer

__all__ = ["private_server"]  # the fixture, imported for pytest

ROOT = Path(__file__).resolve().parents[2]
HEADER = struct.Struct("<4sIIIQ")  # magic, flags, length, crc32, batch id (engine/store/spill.py)

# The recording process: the real HistoryStore and Recorder, fed a steady stream.
CHILD = """
import json, sys, time
from prometheus_client import CollectorRegistry
from engine import config as cfg
from engine.store.history import HistoryStore
from engine.store.recorder import Recorder, RecorderSettings
from tests.store.test_recorder import events

config = cfg.parse(json.loads(sys.argv[1]))
store = HistoryStore(config)
store.start()
recorder = Recorder(config, CollectorRegistry(), store, RecorderSettings(
    batch_rows=1500, batch_interval_s=0.02, memory_batches=1, retry_min_s=0.05, retry_max_s=0.2,
    journal=False))  # the spill alone: tests/store/test_recorder_journal.py covers the journal
recorder.start()
print("started", flush=True)
if sys.argv[2] == "record":
    started = time.monotonic()
    for i, event in enumerate(events(sys.argv[3], 10**9, pairs=10)):
        if i % 200 == 0:
            time.sleep(max(0.0, i / 20000 - (time.monotonic() - started)))
        recorder.record(event)
else:
    while not recorder.idle():
        time.sleep(0.02)
    print("idle", flush=True)
    time.sleep(3600)
"""


def start_child(tmp_path: Path, config: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, str(script), json.dumps(config), *args], cwd=ROOT, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    return child


def kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(10)


def spilled(spill_dir: Path) -> tuple[set[str], dict[tuple[str, int], int], int]:
    """Trade ids, delta rows per (pair, last_seq) and whole records in the
    spill; a record cut short at a file's end is not counted."""
    trades: set[str] = set()
    deltas: dict[tuple[str, int], int] = {}
    records = 0
    for path in sorted(spill_dir.glob(f"*{SUFFIX}")):
        data = path.read_bytes()
        offset = 0
        while offset + HEADER.size <= len(data):
            magic, _, length, _, _ = HEADER.unpack_from(data, offset)
            end = offset + HEADER.size + length
            if magic != MAGIC or end > len(data):
                break
            tables = orjson.loads(data[offset + HEADER.size + 12:end])  # 12: batch id, events
            if "trades" in tables:
                trades.update(tables["trades"][3])
            if "book_deltas" in tables:
                columns = tables["book_deltas"]
                for pair, last_seq in zip(columns[2], columns[7]):
                    deltas[(pair, last_seq)] = deltas.get((pair, last_seq), 0) + 1
            records += 1
            offset = end
    return trades, deltas, records


def stored(store: Any) -> tuple[list[tuple[Any, ...]], dict[tuple[str, int], int]]:
    trade_rows = store.query("SELECT count(), uniqExact(trade_id) FROM {db}.trades")
    delta_rows = {(p, s): int(n) for p, s, n in store.query(
        "SELECT pair, last_seq, count() FROM {db}.book_deltas GROUP BY pair, last_seq")}
    return trade_rows, delta_rows


def open_store(raw: dict[str, Any]) -> HistoryStore:
    """This process's view of the child's store (same config)."""
    store = HistoryStore(cfg.parse(raw))
    store.start()
    return store


def spill_records(spill_dir: Path) -> int:
    return spilled(spill_dir)[2]


@pytest.fixture
def setup(private_server: ClickHouseServer, tmp_path: Path) -> tuple[ClickHouseServer, dict[str, Any], Path]:
    config = history_config(tmp_path, "clickhouse", private_server)
    raw = {"daemon": {"data_dir": config.daemon.data_dir, "id": "crash-test"},
           "storage": {"history": {"backend": "clickhouse", "host": private_server.host,
                                   "port": private_server.port, "user": private_server.user,
                                   "database": config.storage.history.database,
                                   "password_env": PASSWORD_ENV}}}
    return private_server, raw, Path(config.daemon.data_dir) / "spill"


def test_recorder_killed_while_spilling_replays_its_spill_once(
        setup: tuple[ClickHouseServer, dict[str, Any], Path], tmp_path: Path) -> None:
    server, raw, spill_dir = setup
    server.stop()  # everything the child records must spill
    child = start_child(tmp_path, raw, "record", "spilling")
    eventually(lambda: spill_records(spill_dir) >= 30, timeout=60)
    kill(child)  # mid-stream: appends every ~20 ms, so often mid-record
    segments = sorted(spill_dir.glob(f"*{SUFFIX}"))
    # Make sure a torn record is there: half of one more record at the end.
    with open(segments[-1], "ab") as f:
        f.write(HEADER.pack(MAGIC, 0, 5000, 0, 2**62) + b"x" * 1000)
    want_trades, want_deltas, records = spilled(spill_dir)
    assert records >= 30 and want_trades
    server.start()
    store = open_store(raw)
    replay = start_child(tmp_path, raw, "replay")
    assert replay.stdout is not None and replay.stdout.readline().strip() == "idle"
    kill(replay)
    (trade_count, unique), deltas = stored(store)[0][0], stored(store)[1]
    assert trade_count == unique == len(want_trades)
    assert deltas == want_deltas
    assert not list(spill_dir.glob(f"*{SUFFIX}")), "a replayed spill leaves no files"
    store.stop(2.0)


def test_recorder_killed_while_replaying_its_spill_writes_each_batch_once(
        setup: tuple[ClickHouseServer, dict[str, Any], Path], tmp_path: Path) -> None:
    server, raw, spill_dir = setup
    server.stop()
    child = start_child(tmp_path, raw, "record", "replaying")
    eventually(lambda: spill_records(spill_dir) >= 150, timeout=90)
    kill(child)
    want_trades, want_deltas, records = spilled(spill_dir)
    server.start()
    store = open_store(raw)
    store.ensure_schema()
    kills = interrupted = 0
    for attempt in range(12):  # SIGKILL each replay at a later moment than the last
        replay = start_child(tmp_path, raw, "replay")
        done = count_markers(store)
        try:
            # Waiting for progress alone misses a fast replay (markers land in
            # groups, the last when it goes idle), so the kill time is forced.
            time.sleep(0.05 + 0.08 * attempt)
        finally:
            kill(replay)
        kills += 1
        if not list(spill_dir.glob(f"*{SUFFIX}")):
            break
        if count_markers(store) > done:
            interrupted += 1  # it wrote part of the spill, then died
    final = start_child(tmp_path, raw, "replay")
    assert final.stdout is not None and final.stdout.readline().strip() == "idle"
    kill(final)
    assert kills >= 2, "the spill must outlast at least two killed replays"
    assert interrupted >= 1, "no replay was killed after writing part of the spill"
    (trade_count, unique), deltas = stored(store)[0][0], stored(store)[1]
    assert trade_count == unique == len(want_trades)
    assert deltas == want_deltas
    assert records >= 150
    store.stop(2.0)


def count_markers(store: Any) -> int:
    try:
        return int(store.query("SELECT uniqExact(batch_id) FROM {db}.history_batches")[0][0])
    except RuntimeError:
        return 0

"""The ClickHouse server killed (SIGKILL) or stopped mid-run while the
recorder writes a steady stream, then started again: every row sent is
stored exactly once, and the feed never lost an event."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from engine.store.recorder import Recorder, RecorderSettings
from tests.store.test_history import count
from tests.store.test_recorder import Sent, assert_exactly_once, events, feed, private_server, server_history
from tests.support.eventually import eventually
from tests.support.servers import ClickHouseServer

__all__ = ["private_server"]  # the fixture, imported for pytest

CYCLES = 3  # kills per run: each may land inside an insert


@pytest.mark.parametrize("halt", ["kill", "stop"])
def test_recorder_server_halted_mid_run_keeps_every_row_exactly_once(
        private_server: ClickHouseServer, tmp_path: Path, halt: str) -> None:
    store = server_history(tmp_path, private_server)
    store.ensure_schema()
    registry = CollectorRegistry()
    recorder = Recorder(store.config, registry, store,
                        RecorderSettings(batch_rows=3_000, batch_interval_s=0.03, snapshot_interval_s=2.0,
                                         retry_min_s=0.05, retry_max_s=0.3))
    recorder.start()
    sent = Sent()
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(recorder, events(halt, 10**9, pairs=20), sent,
                                                 15_000.0, stop), daemon=True)
    feeder.start()
    try:
        for _ in range(CYCLES):
            written = count(store, "trades")
            eventually(lambda w=written: count(store, "trades") > w, timeout=20)  # writing now
            getattr(private_server, halt)()
            time.sleep(0.7)  # the feed goes on; batches spill
            private_server.start()
        time.sleep(0.5)
    finally:
        stop.set()
        feeder.join(10)
    eventually(recorder.idle, timeout=120)
    assert recorder.status()["dropped"] == {}
    assert len(sent.trades) > 10_000
    assert_exactly_once(store, sent)
    assert registry.get_sample_value("engine_history_write_failures_total") > 0
    # A kill cuts a write short at least once: that batch was checked, not rewritten.
    assert registry.get_sample_value("engine_history_checked_batches_total") > 0
    recorder.stop(5.0)
    store.stop(2.0)

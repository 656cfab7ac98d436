"""Nothing dies silently: a journal directory removed under a recording
recorder, or a spill that cannot be written while the store is down, is
counted (engine_recorder_errors_total), logged, shown in /health, and
recording goes on; a daemon whose recorder could not keep everything at stop
does not say it stopped cleanly."""

from __future__ import annotations

import shutil
from pathlib import Path

from loguru import logger
from prometheus_client import CollectorRegistry

from engine.app import Daemon
from engine.config import Config
from engine.store.history import HistoryStore
from engine.store.recorder import Recorder, RecorderSettings
from tests.store.test_recorder import (
    FAST,
    Sent,
    assert_exactly_once,
    chdb_history,
    events,
    feed,
    private_server,
    server_history,
)
from tests.support.eventually import eventually
from tests.support.servers import ClickHouseServer

__all__ = ["chdb_history", "private_server"]  # fixtures, imported for pytest


def errors(registry: CollectorRegistry, where: str) -> float:
    return registry.get_sample_value("engine_recorder_errors_total", {"where": where}) or 0.0


def test_recorder_journal_directory_removed_counts_logs_degrades_and_records_on(
        chdb_history: HistoryStore) -> None:
    registry = CollectorRegistry()
    recorder = Recorder(chdb_history.config, registry, chdb_history, FAST)
    journal_dir = Path(chdb_history.config.daemon.data_dir) / "journal"
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="ERROR")
    recorder.start()
    sent = Sent()
    stream = events("j", 30_000)
    try:
        feed(recorder, (next(stream) for _ in range(5_000)), sent)
        eventually(recorder.idle, timeout=30)
        shutil.rmtree(journal_dir)  # an operator's mistake, a full disk: the journal cannot be written
        feed(recorder, (next(stream) for _ in range(5_000)), sent)
        eventually(lambda: errors(registry, "journal") > 0, timeout=30)
        eventually(recorder.idle, timeout=30)
        health = recorder.health()[0]
        assert not health.ok and "internal errors" in health.reason and "journal" in health.reason
        assert any("recorder error where=journal" in line for line in lines)
        journal_dir.mkdir()
        feed(recorder, stream, sent)
        eventually(recorder.idle, timeout=30)
        assert recorder.status()["state"] == "running"
        assert_exactly_once(chdb_history, sent)  # the journal is a safety net; recording never stopped
    finally:
        logger.remove(sink)
    recorder.stop(5.0)


def test_recorder_spill_unwritable_while_store_down_counts_drops_and_goes_on(
        private_server: ClickHouseServer, tmp_path: Path) -> None:
    store = server_history(tmp_path, private_server)
    private_server.stop()
    registry = CollectorRegistry()
    recorder = Recorder(store.config, registry, store, RecorderSettings(
        batch_rows=2_000, batch_interval_s=0.02, memory_batches=1, retry_min_s=0.05, retry_max_s=0.2))
    spill_dir = Path(store.config.daemon.data_dir) / "spill"
    shutil.rmtree(spill_dir)
    spill_dir.write_text("not a directory")  # every spill append fails
    recorder.start()
    sent = Sent()
    feed(recorder, events("u", 10_000), sent)
    eventually(lambda: errors(registry, "spill") > 0, timeout=30)
    eventually(lambda: recorder.status()["queue_events"] == 0, timeout=30)
    assert recorder.delivery.alive() and recorder.status()["state"] == "running"
    health = recorder.health()[0]
    assert not health.ok and "internal errors" in health.reason
    dropped = registry.get_sample_value("engine_recorder_dropped_events_total",
                                        {"kind": "trade", "reason": "spill_error"})
    assert dropped and dropped > 0
    spill_dir.unlink()
    spill_dir.mkdir()
    private_server.start()
    eventually(recorder.idle, timeout=60)
    lost = {kind: int(n) for kind, n in store.query(
        "SELECT kind, sum(events) FROM {db}.history_losses WHERE reason = 'spill_error' GROUP BY kind")}
    stored = int(store.query("SELECT count() FROM {db}.trades")[0][0])
    assert stored + lost["trade"] == len(sent.trades), "every trade stored or accounted as lost"
    recorder.stop(5.0)
    store.stop(2.0)


def test_daemon_stop_after_a_recorder_failure_is_not_clean(
        private_server: ClickHouseServer, tmp_path: Path) -> None:
    store_config = server_history(tmp_path, private_server).config
    private_server.stop()  # batches must go to the spill at stop
    config = Config(daemon=store_config.daemon, http=store_config.http.__class__(port=0),
                    storage=store_config.storage)
    daemon = Daemon(config, "monitor")
    daemon.start()
    assert daemon.recorder is not None
    sent = Sent()
    feed(daemon.recorder, events("stop", 3_000), sent)
    eventually(lambda: daemon.recorder is not None and daemon.recorder.status()["queue_events"] == 0)
    spill_dir = Path(config.daemon.data_dir) / "spill"
    shutil.rmtree(spill_dir)
    spill_dir.write_text("not a directory")
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="ERROR")
    try:
        assert daemon.stop() is False
    finally:
        logger.remove(sink)
    assert any("component recorder stopped with an error" in line for line in lines), \
        [line.splitlines()[0] for line in lines]


def test_recorder_poison_batch_is_quarantined_and_later_batches_flow(chdb_history: HistoryStore) -> None:
    """A batch no store call can take (here built past the admission check,
    as only a bug could) is quarantined after a few tries; it does not block
    the batches behind it."""
    from engine.model import Market, Side, Trade
    from engine.store.batch import BatchBuilder

    registry = CollectorRegistry()
    recorder = Recorder(chdb_history.config, registry, chdb_history, FAST)
    recorder.start()
    builder = BatchBuilder()
    builder.add_trade(Trade("binance", Market.SPOT, "BTC/USDT", 1.0, 1.0, Side.BUY, "poison", 2 ** 70, 1))
    poison = builder.cut(recorder.batch_ids.next())
    recorder.delivery.submit(poison)
    sent = Sent()
    feed(recorder, events("after", 3_000), sent)
    eventually(recorder.idle, timeout=60)
    assert_exactly_once(chdb_history, sent)
    quarantined = Path(chdb_history.config.daemon.data_dir) / "dead_letter" / f"batch-{poison.batch_id}.json"
    assert quarantined.exists() and "poison" in quarantined.read_text()
    assert errors(registry, "quarantined") == 1 and errors(registry, "write") >= 3
    assert recorder.delivery.alive()
    recorder.stop(5.0)

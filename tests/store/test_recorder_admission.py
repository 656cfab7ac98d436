"""No venue frame can stop recording: every venue parser is driven with
random and boundary values (integers at and past 2^63, NaN, ±inf, huge
strings) into the recorder and on into chdb and the ClickHouse server. The
recorder is alive afterwards, every event that fits the tables is stored
exactly once, every one that does not is in the dead-letter file (counted
per venue and field, logged), and the operator can replay a fixed one.

Whether an event fits is decided here by this file's own rules (``fits``),
not by engine/store/admission.py, so a hole in one cannot hide in both."""

from __future__ import annotations

import base64
import gzip
import json
import math
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loguru import logger
from prometheus_client import CollectorRegistry

from engine.model import BookDelta, BookSnapshot, Market, Side, Trade
from engine.store.history import HistoryStore
from engine.store.recorder import Recorder, RecorderSettings
from engine.venues import DRIVERS, make_driver
from tests.store.test_history import count, history

__all__ = ["history"]  # the fixture (chdb and the ClickHouse server), imported for pytest
from tests.support.eventually import eventually
from tests.venues.reference import DATA, read_records

ROOT = Path(__file__).resolve().parents[2]
NS = 1_000_000_000
SETTINGS = RecorderSettings(batch_rows=5_000, batch_interval_s=0.05, snapshot_interval_s=0.0,
                            retry_min_s=0.05, retry_max_s=0.5)


# -- this file's own idea of what the tables hold ---------------------------------------

def _int64(value: Any, low: int = 0) -> bool:
    return type(value) is int and low <= value < 2 ** 63


def _float64(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if isinstance(value, int) and not -2 ** 63 <= value < 2 ** 63:
        return False
    return math.isfinite(value) and value >= 0


def _string(value: Any, limit: int) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _levels(levels: Any) -> bool:
    # a list of pairs, or the C decoder's immutable Levels sequence (wire.fast_levels)
    return (isinstance(levels, list) or type(levels).__name__ == "Levels") and all(
        isinstance(level, (tuple, list)) and len(level) == 2 and _float64(level[0]) and _float64(level[1])
        for level in levels)


def fits(event: Any) -> bool:
    common = (_string(event.venue, 32) and _string(event.pair, 64) and isinstance(event.market, Market)
              and _int64(event.exch_ns) and _int64(event.recv_ns))
    if isinstance(event, Trade):
        return (common and _string(event.trade_id, 128) and _float64(event.price) and _float64(event.size)
                and isinstance(event.taker_side, Side))
    if isinstance(event, BookDelta):
        return (common and _int64(event.first_seq) and _int64(event.last_seq) and _int64(event.prev_seq, -1)
                and _levels(event.bids) and _levels(event.asks))
    return common and _int64(event.seq) and _levels(event.bids) and _levels(event.asks)


# -- what was sent, what must be stored -------------------------------------------------

class Expected:
    def __init__(self) -> None:
        self.trades: Counter[tuple[Any, ...]] = Counter()
        self.delta_rows: Counter[tuple[Any, ...]] = Counter()
        self.snapshots = 0
        self.unfit = 0

    def add(self, event: Any) -> None:
        if not fits(event):
            self.unfit += 1
        elif isinstance(event, Trade):
            self.trades[(event.venue, event.pair, event.trade_id, event.price, event.size, event.exch_ns)] += 1
        elif isinstance(event, BookDelta):
            for side, levels in ((1, event.bids), (-1, event.asks)):
                for price, size in levels:
                    self.delta_rows[(event.venue, event.pair, event.last_seq, side, float(price),
                                     float(size))] += 1
        else:
            self.snapshots += 1


def assert_stored_once(store: HistoryStore, expected: Expected) -> None:
    trades = Counter({tuple(row[:-1]): int(row[-1]) for row in store.query(
        "SELECT venue, pair, trade_id, price, size, exch_ns, count() FROM {db}.trades"
        " GROUP BY venue, pair, trade_id, price, size, exch_ns")})
    assert trades == expected.trades
    deltas = Counter({tuple(row[:-1]): int(row[-1]) for row in store.query(
        "SELECT venue, pair, last_seq, side, price, size, count() FROM {db}.book_deltas"
        " GROUP BY venue, pair, last_seq, side, price, size")})
    assert deltas == expected.delta_rows
    assert count(store, "book_snapshots", "reason = 'resync'") == expected.snapshots


def dead_letters(data_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for path in sorted((data_dir / "dead_letter").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


# -- real frames of every venue, and their numeric leaves ------------------------------

def _frame_text(record: dict[str, Any]) -> tuple[str, bool] | None:
    """The frame as JSON text, and whether the venue gzips it; None for a
    binary frame that is not gzipped JSON (MEXC's protobuf: not mutated here)."""
    data = record["data"]
    zipped = record.get("enc") == "b64"
    try:
        text = gzip.decompress(base64.b64decode(data)).decode() if zipped else data
        json.loads(text)
    except (OSError, ValueError):
        return None
    return text, zipped


def _samples() -> list[tuple[str, str, str, bool]]:
    """(venue, market, frame text, gzip it) of a trade, a delta and a snapshot frame per venue."""
    out = []
    for venue in sorted(DRIVERS):
        found: dict[type, tuple[str, str, str, bool]] = {}
        for path in sorted((DATA / venue).glob("*.capture.jsonl*")):
            records = [r for r in read_records(path) if r.get("src") == "ws"][:3000]
            for market in DRIVERS[venue].markets:
                driver = make_driver(venue, market)
                for record in records:
                    decoded = _frame_text(record)
                    if decoded is None:
                        continue
                    text, zipped = decoded
                    frame: str | bytes = gzip.compress(text.encode()) if zipped else text
                    kinds = {type(e) for e in driver.parse(frame, 1).events}
                    for kind in kinds & {Trade, BookDelta, BookSnapshot}:
                        found.setdefault(kind, (venue, market.value, text, zipped))
        out += list(found.values())
    return out


SAMPLES = _samples()


def _leaves(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of numbers and numeric strings (the fields parsers turn into columns)."""
    out = []
    if isinstance(obj, dict):
        for key, value in obj.items():
            out += _leaves(value, (*prefix, key))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:3]):
            out += _leaves(value, (*prefix, i))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out.append(prefix)
    elif isinstance(obj, str):
        try:
            float(obj)
            out.append(prefix)
        except ValueError:
            if len(prefix) and prefix[-1] in ("s", "symbol", "instId", "product_id", "coin", "trade_id",
                                               "tradeId", "i", "t", "id"):
                out.append(prefix)
    return out


def _replace(obj: Any, path: tuple[Any, ...], value: Any) -> Any:
    node = obj
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return obj


BOUNDARY = st.sampled_from([
    2 ** 63 - 1, 2 ** 63, 2 ** 64, 2 ** 64 + 1, 10 ** 30, -1, -2 ** 63, -2 ** 63 - 1, 0,
    100_000_000_000_000, 1e308, -1e308, 5e-324, math.nan, math.inf, -math.inf,
    "NaN", "nan", "inf", "-inf", "Infinity", "1e400", "-1e400", "9" * 40, "-0", "0x10",
    "x" * 10_000, "\ud800", "",
])
VALUES = BOUNDARY | st.integers() | st.floats() | st.text(max_size=300) | st.integers().map(str) \
    | st.floats().map(repr)


def test_recorder_fuzzed_venue_frames_store_what_fits_and_dead_letter_the_rest(
        history: HistoryStore) -> None:
    assert {venue for venue, *_ in SAMPLES} == set(DRIVERS), "a frame of every venue"
    registry = CollectorRegistry()
    recorder = Recorder(history.config, registry, history, SETTINGS)
    recorder.start()
    expected = Expected()
    drivers = {(venue, market): make_driver(venue, market) for venue, market, _, _ in SAMPLES}
    recv = [1_700_000_000 * NS]

    @settings(max_examples=400, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.sampled_from(SAMPLES), st.data())
    def run(sample: tuple[str, str, str, bool], data: st.DataObject) -> None:
        venue, market, text, zipped = sample
        frame = json.loads(text)
        for _ in range(data.draw(st.integers(1, 3))):
            path = data.draw(st.sampled_from(_leaves(frame)))
            frame = _replace(frame, path, data.draw(VALUES))
        body = json.dumps(frame)
        parsed = drivers[(venue, market)].parse(gzip.compress(body.encode()) if zipped else body,
                                                recv[0])
        recv[0] += 1000
        for event in parsed.events:
            if isinstance(event, (Trade, BookDelta, BookSnapshot)):
                expected.add(event)
                recorder.record(event)

    run()
    eventually(recorder.idle, timeout=60)
    assert recorder.health()[0].ok, recorder.health()
    assert recorder.errors.count == 0, recorder.errors.last
    assert recorder.status()["state"] == "running"
    assert expected.unfit > 20 and sum(expected.trades.values()) > 20 and expected.delta_rows
    assert_stored_once(history, expected)
    letters = dead_letters(Path(history.config.daemon.data_dir))
    assert len(letters) == expected.unfit
    rejected = sum(s.value for m in registry.collect() if m.name == "engine_recorder_rejected_events"
                   for s in m.samples if s.name.endswith("_total"))
    assert rejected == expected.unfit
    recorder.stop(5.0)


def test_recorder_trade_past_64_bits_is_dead_lettered_and_the_next_17_are_stored(
        history: HistoryStore, tmp_path: Path) -> None:
    """The issue's frame: a Binance trade with T = 1e14 ms (1e20 ns, past 2^63)."""
    data_dir = Path(history.config.daemon.data_dir)
    registry = CollectorRegistry()
    recorder = Recorder(history.config, registry, history, SETTINGS)
    recorder.start()
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="WARNING")
    driver = make_driver("binance", "spot")
    try:
        def trade(i: int, t_ms: int) -> str:
            return json.dumps({"stream": "btcusdt@trade", "data": {
                "e": "trade", "E": t_ms, "s": "BTCUSDT", "t": 1000 + i, "p": "100.5", "q": "0.25",
                "T": t_ms, "m": bool(i % 2), "M": True}})
        frames = [trade(0, 100_000_000_000_000)] + [trade(i, 1_700_000_000_000 + i) for i in range(1, 18)]
        for n, frame in enumerate(frames):
            for event in driver.parse(frame, 1_700_000_000 * NS + n).events:
                recorder.record(event)
        eventually(recorder.idle, timeout=30)
        stored = sorted(int(t) for (t,) in history.query("SELECT trade_id FROM {db}.trades"))
        assert stored == list(range(1001, 1018))
        assert recorder.health()[0].ok and recorder.errors.count == 0
        letters = dead_letters(data_dir)
        assert [(x["kind"], x["field"], x["event"]["exch_ns"]) for x in letters] == [
            ("trade", "exch_ns", 100_000_000_000_000 * 1_000_000)]
        assert registry.get_sample_value("engine_recorder_rejected_events_total",
                                         {"venue": "binance", "field": "exch_ns"}) == 1
        logged = [line for line in lines if "does not fit the history store" in line]
        assert len(logged) == 1 and "venue=binance pair=BTC/USDT field=exch_ns" in logged[0]
    finally:
        logger.remove(sink)
    recorder.stop(5.0)
    # The operator fixes the time (ms, not the garbage) and replays the file: stored once.
    path = next((data_dir / "dead_letter").glob("*.jsonl"))
    line = json.loads(path.read_text())
    line["event"]["exch_ns"] = 1_700_000_000_000 * 1_000_000
    path.write_text(json.dumps(line) + "\n")
    config = tmp_path / "replay.yaml"
    h = history.config.storage.history
    config.write_text(json.dumps({  # JSON is YAML
        "daemon": {"data_dir": str(data_dir), "id": history.config.daemon.id},
        "storage": {"history": {"backend": h.backend, "path": h.path, "host": h.host, "port": h.port,
                                "user": h.user, "database": h.database, "password_env": h.password_env}}}))
    history.stop(2.0)  # chdb: one process per data path
    result = subprocess.run([sys.executable, "-m", "engine.store.deadletter", "replay", str(path),
                             "--config", str(config)], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "1 fit now" in result.stdout
    assert path.with_name(path.name + ".replayed").exists() and not path.exists()
    history.start()
    assert count(history, "trades", "trade_id = '1000'") == 1
    assert count(history, "trades") == 18


def test_admission_takes_the_c_decoders_levels_and_still_checks_their_values():
    """Binance frames carry wire.fast_levels' immutable ``Levels`` (the compiled
    decoder), not lists: they are admitted, and a bad value inside is still refused."""
    from engine.store.admission import Unfit, check
    from engine.venues.wire import fast_levels

    bids = fast_levels(b'[["30000.5","1.25"],["29999","0"]]')
    asks = fast_levels(b'[["30001","2"]]')
    assert type(bids) is not list  # the compiled path is what this covers
    check(BookSnapshot("binance", Market.SPOT, "BTC/USDT", bids, asks, seq=7, recv_ns=1))
    check(BookDelta("binance", Market.SPOT, "BTC/USDT", bids, asks, first_seq=8, last_seq=9,
                    recv_ns=1))
    bad = fast_levels(b'[["-1","2"]]')
    try:
        check(BookSnapshot("binance", Market.SPOT, "BTC/USDT", bad, asks, seq=7, recv_ns=1))
    except Unfit as refused:
        assert "negative" in str(refused)
    else:
        raise AssertionError("a negative price inside Levels was admitted")


def test_journal_writes_and_reads_back_events_carrying_levels(tmp_path: Path):
    """The write-ahead journal takes the same Levels the feed hands the recorder."""
    import orjson

    from engine.store import journal
    from engine.venues.wire import fast_levels

    bids = fast_levels(b'[["30000.5","1.25"],["29999","0"]]')
    event = BookSnapshot("binance", Market.SPOT, "BTC/USDT", bids, fast_levels(b"[]"), seq=7,
                         recv_ns=1)
    line = orjson.dumps([journal._encode(event)], default=journal._plain)
    back = journal._decode(orjson.loads(line)[0])
    assert [tuple(x) for x in back.bids] == [(30000.5, 1.25), (29999.0, 0.0)] and not back.asks

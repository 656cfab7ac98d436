"""Dead letters: events the history tables cannot hold (engine/store/admission.py),
kept in ``data_dir/dead_letter/<UTC day>.jsonl`` for the operator to inspect
and replay, counted per venue and field, and logged at a rate limit. Owns
those files and the replay tool; never touches a batch.

  record() ── admission.check fails ──► DeadLetters.reject(event, why)
      ├─ engine_recorder_rejected_events_total{venue,field} += 1
      ├─ log (at most one line per venue and field every LOG_INTERVAL_S, with
      │       the event's values and how many were suppressed)
      └─ one JSON line: {"recv_ns", "kind", "field", "reason", "event": {...}}

The line is written with the standard json module: it keeps integers of any
size, NaN and infinities (as NaN/Infinity) and escapes lone surrogates, so
the values are exactly those the parser produced.

Replay (the daemon stopped when its store is chdb):
  python -m engine.store.deadletter show   data/dead_letter/20260101.jsonl
  python -m engine.store.deadletter replay data/dead_letter/20260101.jsonl --config config.yaml
replays the events that fit now (fixed by hand, or by a newer parser) as one
batch, exactly once: the file is renamed to ``*.replayed`` after the write.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from loguru import logger

from engine.model import BookDelta, BookSnapshot, Market, Side, Trade
from engine.store.admission import MAX_NAME_CHARS, Unfit, check

log = logger.bind(component="recorder.dead_letter")

KINDS = {Trade: "trade", BookDelta: "delta", BookSnapshot: "snapshot"}
BY_NAME = {name: cls for cls, name in KINDS.items()}
# One log line per (venue, field) at most this often; the rest are counted
# into the next line. Shorter shows more examples, longer keeps a flood of
# garbage frames from drowning the log.
LOG_INTERVAL_S = 10.0
# Dead-letter files stop growing past this (the events are still counted and
# logged): a flood must not fill the disk the spill and the journal need.
MAX_BYTES = 256 << 20


def _plain(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float)):
        return value
    return repr(value)  # whatever else a parser put there: shown, not replayable


def event_fields(event: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(event, f.name)) for f in dataclasses.fields(event)}


def _venue_label(event: Any) -> str:
    venue = getattr(event, "venue", "")
    return venue if isinstance(venue, str) and 0 < len(venue) <= MAX_NAME_CHARS else "invalid"


class DeadLetters:
    def __init__(self, directory: Path, rejected: Any, errors: Any) -> None:
        """``rejected``: Counter labelled (venue, field); ``errors``: Counter labelled (where)."""
        self.directory = directory
        self.rejected = rejected
        self.errors = errors
        self.counts: Counter[tuple[str, str]] = Counter()  # (venue, field) since start
        self.written_bytes = 0
        self._lock = threading.Lock()
        self._file: Any = None
        self._day = ""
        self._logged: dict[tuple[str, str], tuple[float, int]] = {}  # key -> (last log, suppressed)

    def reject(self, event: Any, unfit: Unfit) -> None:
        """Any thread; never raises."""
        venue = _venue_label(event)
        key = (venue, unfit.field)
        self.rejected.labels(venue, unfit.field).inc()
        fields: dict[str, Any] = {}
        try:
            fields = event_fields(event)
            line = json.dumps({"recv_ns": time.time_ns(), "kind": KINDS[event.__class__],
                               "field": unfit.field, "reason": unfit.reason, "event": fields})
        except Exception as exc:  # noqa: BLE001 - an event even json cannot hold: log it, count it
            line = ""
            self._error("encode", exc)
        with self._lock:
            self.counts[key] += 1
            if line:
                self._write(line)
            last, suppressed = self._logged.get(key, (0.0, 0))
            now = time.monotonic()
            if last and now - last < LOG_INTERVAL_S:
                self._logged[key] = (last, suppressed + 1)
                return
            self._logged[key] = (now, 0)
        shown = repr(fields or event)[:600]
        log.warning("event does not fit the history store: venue={} pair={} field={} reason={} "
                    "(+{} more like it since the last line) event={}", venue,
                    str(getattr(event, "pair", ""))[:64], unfit.field, unfit.reason, suppressed, shown)

    def _write(self, line: str) -> None:
        """Caller holds the lock."""
        if self.written_bytes >= MAX_BYTES:
            return
        try:
            day = time.strftime("%Y%m%d", time.gmtime())
            if self._file is None or day != self._day:
                if self._file is not None:
                    self._file.close()
                self.directory.mkdir(parents=True, exist_ok=True)
                self._file = open(self.directory / f"{day}.jsonl", "a", encoding="utf-8")  # noqa: SIM115
                self._day = day
            self._file.write(line + "\n")
            self._file.flush()  # a kill loses nothing written; inspectable at once
            self.written_bytes += len(line) + 1
        except OSError as exc:
            self._error("write", exc)

    def _error(self, where: str, exc: Exception) -> None:
        self.errors.labels(f"dead_letter_{where}").inc()
        log.error("dead letter not kept ({}): {}: {}", where, type(exc).__name__, exc)

    def total(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


# ------------------------------------------------------------------ the tool

def read(path: Path) -> list[tuple[dict[str, Any], Any]]:
    """(line, event or None when it cannot be rebuilt) per line of ``path``."""
    out: list[tuple[dict[str, Any], Any]] = []
    for text in path.read_text(encoding="utf-8").splitlines():
        if not text.strip():
            continue
        line = json.loads(text)
        out.append((line, rebuild(line.get("kind", ""), line.get("event", {}))))
    return out


def rebuild(kind: str, fields: dict[str, Any]) -> Any:
    cls = BY_NAME.get(kind)
    if cls is None:
        return None
    try:
        values = dict(fields)
        values["market"] = Market(values["market"])
        if cls is Trade:
            values["taker_side"] = Side(values["taker_side"])
        else:
            values["bids"] = [tuple(level) for level in values["bids"]]
            values["asks"] = [tuple(level) for level in values["asks"]]
        return cls(**values)
    except (KeyError, TypeError, ValueError):
        return None


def fitting(events: list[Any]) -> list[Any]:
    keep = []
    for event in events:
        if event is None:
            continue
        try:
            check(event)
        except Unfit:
            continue
        keep.append(event)
    return keep


def _replay(path: Path, config_path: str) -> int:
    from engine import config as config_mod  # the tool only
    from engine.store.batch import BatchBuilder
    from engine.store.batch_ids import BatchIds
    from engine.store.history import HistoryStore

    config = config_mod.load(config_path)
    lines = read(path)
    events = fitting([event for _, event in lines])
    print(f"{path}: {len(lines)} dead letters, {len(events)} fit now, "
          f"{len(lines) - len(events)} still do not")
    if events:
        builder = BatchBuilder()
        for event in events:
            if isinstance(event, Trade):
                builder.add_trade(event)
            elif isinstance(event, BookDelta):
                builder.add_delta(event)
            else:
                builder.add_snapshot(event.venue, event.market.value, event.pair, "resync", event.seq,
                                     event.exch_ns, event.recv_ns, event.bids, event.asks)
        store = HistoryStore(config)
        store.start()
        ids = BatchIds(store.writer, path.parent / "last_batch_id")
        ids.raise_to(store.max_batch_id())
        batch = builder.cut(ids.next())
        store.write_batch(batch)
        store.stop(5.0)
    path.rename(path.with_name(path.name + ".replayed"))
    print(f"replayed {len(events)} events; file renamed to {path.name}.replayed")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.store.deadletter",
                                description="Inspect or replay the recorder's dead letters.")
    p.add_argument("action", choices=["show", "replay"])
    p.add_argument("file", type=Path)
    p.add_argument("--config", default="config.yaml")
    args = p.parse_args(argv)
    if args.action == "replay":
        return _replay(args.file, args.config)
    lines = read(args.file)
    by = Counter((line["event"].get("venue"), line["field"]) for line, _ in lines)
    for (venue, field), n in sorted(by.items(), key=lambda item: -item[1]):
        print(f"{n:8d}  venue={venue} field={field}")
    for line, _ in lines[:20]:
        print(json.dumps(line)[:400])
    return 0


if __name__ == "__main__":
    sys.exit(main())

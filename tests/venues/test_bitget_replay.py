"""Bitget captures through ``tools/replay.py book`` as a user runs it: every
sequence replays with no gap and with every real checksum verified, books equal
level by level to the independent reference (tests/venues/reference.py); a lost
update shows as a resyncing book. The v2-style captures are reproducible from
the real 2022 recordings and keep their real checksums."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scripts_bitget import CAPTURES, CURRENT, SOURCES, derive, derive_current, read_lines
from tests.venues.reference import bitget_books, read_records

ROOT = Path(__file__).resolve().parents[2]
ALL = [("spot", CAPTURES["spot"]), ("futures", CAPTURES["futures"]),
       ("spot", CURRENT["spot"]), ("futures", CURRENT["futures"])]
QUOTES = ("USDT", "BTC", "ETH", "EUR")


def replay(market: str, path: Path, *extra: str) -> list[dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "replay.py"), "book", "--exchange", "bitget",
                           "--market", market, "--input", str(path), *extra],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def pair_of(symbol: str) -> str:
    quote = next(q for q in QUOTES if symbol.endswith(q))
    return f"{symbol[:-len(quote)]}/{quote}"


@pytest.mark.parametrize("market,path", ALL, ids=[p.name for _, p in ALL])
def test_bitget_replay_cli_no_gap_books_match_reference(market, path):
    books, verified = bitget_books(read_records(path))
    expected = {pair_of(s): b for s, b in books.items()}
    if path in CAPTURES.values():
        assert verified == sum(b.applied + 1 for b in books.values())  # every message had a checksum
    reports = replay(market, path, "--depth", "5000")
    assert sorted(r["pair"] for r in reports) == sorted(expected)
    for report in reports:
        ref = expected[report["pair"]]
        assert report["synced"] is True, report["pair"]
        assert (report["gaps"], report["resyncs"], report["errors"]) == (0, 0, 0)
        assert report["deltas_applied"] == ref.applied and report["seq"] == ref.last
        assert [report["bids"], report["asks"]] == list(ref.top(5000))


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_bitget_derived_captures_are_reproducible(market):
    assert [json.loads(line) for line in read_lines(CAPTURES[market])] == derive(market)
    assert [json.loads(line) for line in read_lines(CURRENT[market])] == derive_current(market)


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_bitget_v2style_capture_keeps_the_recorded_levels_and_checksums(market):
    original = [json.loads(json.loads(line)["raw"]) for line in SOURCES[market].read_text().splitlines()
                if '\\"channel\\":\\"books\\"' in line and '\\"action\\"' in line]
    derived = [json.loads(json.loads(line)["data"]) for line in read_lines(CAPTURES[market])
               if '\\"action\\"' in line]
    assert len(original) == len(derived) > 0
    for old, new in zip(original, derived):
        o, n = old["data"][0], new["data"][0]
        assert (o["asks"], o["bids"], o["checksum"], o["ts"]) == (n["asks"], n["bids"], n["checksum"], n["ts"])


def test_bitget_replay_cli_lost_update_reported_as_resyncing(tmp_path):
    lines = read_lines(CAPTURES["futures"])
    updates = [i for i, line in enumerate(lines) if "DASHUSDT" in line and '\\"update\\"' in line]
    del lines[updates[len(updates) // 2]]
    path = tmp_path / "gap.jsonl"
    path.write_text("\n".join(lines) + "\n")
    (report,) = replay("futures", path, "--pair", "DASH/USDT")
    assert report["synced"] is False and report["gaps"] == 1 and report["resyncs"] == 1


def test_bitget_replay_cli_probe_frames_chain_without_gap(tmp_path):
    """The 2026 probe's snapshot (trimmed) and the two v2 updates that follow it."""
    lines = [line for name in ("book_snapshot_TRIMMED.obs2026.jsonl", "book_delta.obs2026.jsonl")
             for line in (CAPTURES["spot"].parent / name).read_text().splitlines() if '"instId"' in line]
    path = tmp_path / "probe.jsonl"
    path.write_text("".join(json.dumps({"t": i, "src": "ws", "conn": "p", "url": "wss://ws.bitget.com/v2/ws/public",
                                        "data": line}) + "\n" for i, line in enumerate(lines)))
    (report,) = replay("futures", path)
    assert (report["pair"], report["synced"], report["deltas_applied"], report["gaps"]) == ("MAV/USDT", True, 2, 0)

"""MEXC captures through ``tools/replay.py book`` as a user runs it: every
sequence replays with no gap, books equal level by level to the independent
reference (tests/venues/reference.py, which reads protobuf with its own walker);
a lost push shows as a resyncing book. The derived captures are reproducible
from their sources (tests/support/scripts_mexc.py)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.scripts_mexc import CAPTURES, derive, read_depth_push
from tests.venues.reference import DATA, mexc_books, read_records

ROOT = Path(__file__).resolve().parents[2]
QUOTES = ("USDT", "BTC", "ETH", "EUR")


def replay(market: str, path: Path, *extra: str) -> list[dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "replay.py"), "book", "--exchange", "mexc",
                           "--market", market, "--input", str(path), *extra],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def pair_of(symbol: str) -> str:
    if "_" in symbol:
        return symbol.replace("_", "/")
    quote = next(q for q in QUOTES if symbol.endswith(q))
    return f"{symbol[:-len(quote)]}/{quote}"


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_mexc_replay_cli_no_gap_books_match_reference(market):
    path = CAPTURES[market]
    expected = {pair_of(s): b for s, b in mexc_books(read_records(path), market == "futures").items()}
    reports = replay(market, path, "--depth", "5000")
    assert sorted(r["pair"] for r in reports) == sorted(expected) and len(reports) == 4
    for report in reports:
        ref = expected[report["pair"]]
        assert report["synced"] is True, report["pair"]
        assert (report["gaps"], report["resyncs"], report["errors"]) == (0, 0, 0)
        assert report["deltas_applied"] == ref.applied and report["seq"] == ref.last
        assert [report["bids"], report["asks"]] == list(ref.top(5000))


@pytest.mark.parametrize("market", ["spot", "futures"])
def test_mexc_derived_captures_are_reproducible(market):
    lines = [json.loads(line) for line in CAPTURES[market].read_text().splitlines()]
    assert lines == derive(market)


def test_mexc_replay_cli_lost_push_reported_as_resyncing(tmp_path):
    lines = CAPTURES["spot"].read_text().splitlines()
    depth = [i for i, line in enumerate(lines) if _depth_symbol(line) == "NKNUSDT"]
    del lines[depth[len(depth) // 2]]
    path = tmp_path / "gap.jsonl"
    path.write_text("\n".join(lines) + "\n")
    (report,) = replay("spot", path, "--pair", "NKN/USDT")
    assert report["synced"] is False and report["gaps"] == 1 and report["resyncs"] == 1


def _depth_symbol(line: str) -> str | None:
    rec = json.loads(line)
    if rec.get("enc") != "b64":
        return None
    try:
        return read_depth_push(base64.b64decode(rec["data"]))["symbol"]
    except ValueError:
        return None  # a deals push


def test_mexc_replay_cli_futures_lost_push_reported_as_resyncing(tmp_path):
    lines = CAPTURES["futures"].read_text().splitlines()
    depth = [i for i, line in enumerate(lines) if "SUSHI_USDT" in line and "push.depth" in line]
    del lines[depth[len(depth) // 2]]
    path = tmp_path / "gap.jsonl"
    path.write_text("\n".join(lines) + "\n")
    (report,) = replay("futures", path, "--pair", "SUSHI/USDT")
    assert report["synced"] is False and report["gaps"] == 1


def test_mexc_probe_frames_are_real_and_parse_clean(tmp_path):
    """The 2026 probe frames as a capture: three books without a snapshot stay
    unsynced (MEXC books need REST), and nothing counts as an error."""
    lines = (DATA / "mexc" / "book_delta.obs2026.jsonl").read_text().splitlines()
    path = tmp_path / "probe.jsonl"
    path.write_text("".join(json.dumps({"t": i, "src": "ws", "conn": "p", "url": "wss://contract.mexc.com/edge",
                                        "data": line}) + "\n" for i, line in enumerate(lines)))
    reports = replay("futures", path)
    assert {r["pair"] for r in reports} == {"DOGE/USDT", "SKHYNIXSTOCK/USDT", "ETH/USDT"}
    assert all(not r["synced"] and r["errors"] == 0 for r in reports)

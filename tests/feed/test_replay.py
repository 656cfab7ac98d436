"""tools/replay.py and tools/import_capture.py as a user runs them (subprocess):
every recorded sequence replays with no gap and books equal, level by level, to
the independent reference; the stdout JSON contract; malformed input counted,
never fatal; other recorders' formats convert to the same replay."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.venues.reference import DATA, binance_books, bybit_books, okx_books, read_records

ROOT = Path(__file__).resolve().parents[2]
KEYS = {"exchange", "market", "pair", "synced", "seq", "bids", "asks", "messages", "deltas_applied",
        "resyncs", "gaps", "errors"}


def run_tool(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / tool), *args], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def replay(exchange: str, market: str, path: Path, *extra: str) -> list[dict]:
    proc = run_tool("replay.py", "book", "--exchange", exchange, "--market", market, "--input", str(path), *extra)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def binance_pair(symbol: str) -> str:
    """Independent of engine.venues.symbols: the quotes these captures use."""
    head, _, contract = symbol.partition("_")
    for quote in ("USDT", "ETH", "BTC", "EUR", "USD"):
        if head.endswith(quote):
            base = head[: -len(quote)]
            return f"{base}/{quote}-{contract}" if contract not in ("", "PERP") else f"{base}/{quote}"
    raise AssertionError(symbol)


def okx_pair(inst: str) -> str:
    parts = inst.split("-")
    return f"{parts[0]}/{parts[1]}" + (f"-{parts[2]}" if len(parts) == 3 and parts[2] != "SWAP" else "")


def expected_books(exchange: str, market: str, path: Path) -> dict[str, object]:
    records = read_records(path)
    if exchange == "binance":
        return {binance_pair(s): b for s, b in binance_books(records, futures=market == "futures").items()}
    if exchange == "bybit":
        return {binance_pair(s): b for s, b in bybit_books(records).items()}
    books, _ = okx_books(records)
    want_spot = market == "spot"
    return {okx_pair(i): b for i, b in books.items() if (i.count("-") == 1) == want_spot}


CAPTURES = [
    ("binance", "spot", "binance/spot_2021-10-12.capture.jsonl"),
    ("binance", "spot", "binance/spot_NKNUSDT.capture.jsonl"),
    ("binance", "futures", "binance/usdm_2021-07-22.capture.jsonl.gz"),
    ("binance", "futures", "binance/usdm_SUSHIUSDT.capture.jsonl"),
    ("binance", "futures", "binance/coinm_2021-07-22.capture.jsonl.zst"),
    ("binance", "futures", "binance/coinm_BTCUSD_211231.capture.jsonl"),
    ("bybit", "futures", "bybit/linear_XRPUSDT_2024-12-01.capture.jsonl"),
    ("okx", "spot", "okx/public_2022-05-13.capture.jsonl.zst"),
    ("okx", "futures", "okx/public_2022-05-13.capture.jsonl.zst"),
    ("okx", "spot", "okx/books_BTC-USDT.capture.jsonl"),
    ("okx", "futures", "okx/books_UNI-USD-SWAP.capture.jsonl"),
    ("okx", "futures", "okx/books_BTC-USD-220527.capture.jsonl"),
]


@pytest.mark.parametrize("exchange,market,name", CAPTURES)
def test_replay_cli_every_capture_no_gap_books_match_reference(exchange, market, name):
    path = DATA / name
    reports = replay(exchange, market, path, "--depth", "5000")
    expected = expected_books(exchange, market, path)
    assert sorted(r["pair"] for r in reports) == sorted(expected)
    for report in reports:
        ref = expected[report["pair"]]
        assert set(report) == KEYS
        assert (report["exchange"], report["market"]) == (exchange, market)
        assert report["synced"] is True
        assert (report["gaps"], report["resyncs"], report["errors"]) == (0, 0, 0)
        assert report["deltas_applied"] == ref.applied
        assert [report["bids"], report["asks"]] == list(ref.top(5000))


def test_replay_cli_default_depth_20_and_pair_filter():
    (report,) = replay("binance", "spot", DATA / "binance" / "spot_2021-10-12.capture.jsonl", "--pair", "LRC/BTC")
    assert report["pair"] == "LRC/BTC" and len(report["bids"]) == 20 and len(report["asks"]) == 20
    ref = expected_books("binance", "spot", DATA / "binance" / "spot_2021-10-12.capture.jsonl")["LRC/BTC"]
    assert [report["bids"], report["asks"]] == list(ref.top(20))


def test_replay_cli_depth_option_limits_levels():
    (report,) = replay("bybit", "futures", DATA / "bybit" / "linear_XRPUSDT_2024-12-01.capture.jsonl",
                       "--depth", "3")
    assert len(report["bids"]) == 3 and len(report["asks"]) == 3
    assert report["seq"] == 20254918 and report["messages"] == 50


def test_replay_cli_malformed_lines_and_frames_counted_not_fatal(tmp_path):
    lines = (DATA / "binance" / "spot_NKNUSDT.capture.jsonl").read_text().splitlines()
    bad_frame = json.dumps({"t": 1, "src": "ws", "conn": "c", "url": "u", "data": '{"stream":"x","data":'})
    mixed = lines[:10] + ["{oops", "", "[]", bad_frame, '{"t":1}'] + lines[10:]
    path = tmp_path / "mixed.jsonl.gz"
    path.write_bytes(gzip.compress(("\n".join(mixed) + "\n").encode()))
    (report,) = replay("binance", "spot", path)
    assert report["errors"] == 4  # 3 bad lines + 1 frame the driver could not parse
    assert report["synced"] is True and report["gaps"] == 0
    ref = expected_books("binance", "spot", DATA / "binance" / "spot_NKNUSDT.capture.jsonl")["NKN/USDT"]
    assert [report["bids"], report["asks"]] == list(ref.top(20))


def test_replay_cli_gap_in_capture_reported_as_resyncing(tmp_path):
    lines = (DATA / "binance" / "spot_NKNUSDT.capture.jsonl").read_text().splitlines()
    path = tmp_path / "gap.jsonl"
    path.write_text("\n".join(lines[:60] + lines[61:]) + "\n")
    (report,) = replay("binance", "spot", path)
    assert (report["synced"], report["gaps"], report["resyncs"]) == (False, 1, 1)


def test_replay_cli_unknown_pair_exits_1_naming_the_books_it_has():
    proc = run_tool("replay.py", "book", "--exchange", "okx", "--market", "spot",
                    "--input", str(DATA / "okx" / "books_BTC-USDT.capture.jsonl"), "--pair", "ETH/USDT")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "no book for pair 'ETH/USDT'" in proc.stderr and "BTC/USDT" in proc.stderr


def test_replay_cli_venue_symbol_as_pair_exits_1_with_the_pair_format():
    proc = run_tool("replay.py", "book", "--exchange", "binance", "--market", "spot",
                    "--input", str(DATA / "binance" / "spot_NKNUSDT.capture.jsonl"), "--pair", "NKNUSDT")
    assert proc.returncode == 1 and proc.stdout == ""
    assert "'NKNUSDT'" in proc.stderr and "BASE/QUOTE" in proc.stderr and "NKN/USDT" in proc.stderr


def test_replay_cli_summary_line_says_what_it_read():
    proc = run_tool("replay.py", "book", "--exchange", "binance", "--market", "spot",
                    "--input", str(DATA / "binance" / "spot_NKNUSDT.capture.jsonl"))
    assert proc.returncode == 0, proc.stderr
    (summary,) = [line for line in proc.stderr.splitlines() if line.startswith("replay.py: records=")]
    fields = dict(item.split("=") for item in summary.split(": ", 1)[1].split())
    lines = (DATA / "binance" / "spot_NKNUSDT.capture.jsonl").read_text().splitlines()
    assert int(fields["records"]) == len(lines)
    assert int(fields["ws"]) == sum('"src":"ws"' in line for line in lines)
    assert (fields["books"], fields["resyncs"], fields["errors"]) == ("1", "0", "0")


@pytest.mark.parametrize("case,reason", [
    ("empty", "holds no capture record"),
    ("junk", "not capture records"),
    ("malformed", "not capture records"),
    ("other-venue", "none is a book message of okx spot"),
])
def test_replay_cli_unusable_input_exits_1_naming_the_reason(tmp_path, case, reason):
    path = tmp_path / "in.jsonl"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "junk":
        path.write_bytes(bytes(range(256)) * 20)
    elif case == "malformed":
        path.write_text('{"t": 1, "src": "ws", "data": \n')
    else:
        path = DATA / "binance" / "spot_NKNUSDT.capture.jsonl"
    for verbose in ((), ("--verbose",)):
        proc = run_tool("replay.py", "book", "--exchange", "okx", "--market", "spot", "--input", str(path),
                        *verbose)
        assert proc.returncode == 1, proc.stderr
        assert proc.stdout == ""
        assert reason in proc.stderr and str(path) in proc.stderr


def test_replay_cli_missing_file_exits_2():
    proc = run_tool("replay.py", "book", "--exchange", "okx", "--market", "spot", "--input", "/nonexistent")
    assert proc.returncode == 2 and proc.stdout == ""


# ------------------------------------------------------------- import tool


def test_import_timeline_matches_checked_in_conversion(tmp_path):
    out = tmp_path / "spot.jsonl"
    proc = run_tool("import_capture.py", "--input", str(DATA / "binance" / "cf_spot_2021-10-12.timeline.jsonl"),
                    "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == (DATA / "binance" / "spot_2021-10-12.capture.jsonl").read_text()
    first = json.loads(out.read_text().splitlines()[0])
    assert first["url"].startswith("wss://stream.binance.com:9443/stream?streams=") and first["src"] == "ws"


def test_import_book_seq_and_okx_timeline_replay_without_gap(tmp_path):
    out = tmp_path / "sushi.jsonl.zst"
    run_tool("import_capture.py", "--input", str(DATA / "binance" / "book_seq.cf_usdm.SUSHIUSDT.jsonl"),
             "--output", str(out), "--exchange", "binance", "--market", "futures")
    (report,) = replay("binance", "futures", out)
    assert report["pair"] == "SUSHI/USDT" and report["synced"] and report["deltas_applied"] == 252
    okx = tmp_path / "okx.jsonl"
    run_tool("import_capture.py", "--input", str(DATA / "okx" / "cf_v5_public_2022-05-13.timeline.jsonl"),
             "--output", str(okx))
    assert {r["pair"] for r in replay("okx", "futures", okx) if r["synced"]} == {"UNI/USD", "BTC/USD-220527"}


def test_import_bybit_history_uses_venue_time_and_linear_url(tmp_path):
    out = tmp_path / "bybit.jsonl"
    proc = run_tool("import_capture.py", "--input", str(DATA / "bybit" / "bybit_history_ob500_XRPUSDT_2024-12-01.v5.jsonl"),
                    "--output", str(out), "--exchange", "bybit", "--market", "futures")
    assert proc.returncode == 0, proc.stderr
    first = json.loads(out.read_text().splitlines()[0])
    assert first["t"] == 1733011200589 * 1_000_000
    assert first["url"] == "wss://stream.bybit.com/v5/public/linear"


def test_import_hftbacktest_lines_with_rest_snapshot(tmp_path):
    # The NKNUSDT sequence rewritten as collect-binancefutures/hftbacktest lines:
    # "<us since epoch> <raw>", the REST snapshot as a bare JSON line.
    src = tmp_path / "nknusdt_20211012.dat"
    rows = [json.loads(line) for line in (DATA / "binance" / "book_seq.cf_spot.NKNUSDT.jsonl").read_text().splitlines()]
    src.write_text("".join(f"{int(r['t'] * 1e6)} {r['raw']}\n" for r in rows))
    out = tmp_path / "nkn.jsonl"
    proc = run_tool("import_capture.py", "--input", str(src), "--output", str(out),
                    "--exchange", "binance", "--market", "spot")
    assert proc.returncode == 0, proc.stderr
    rest = [json.loads(line) for line in out.read_text().splitlines() if '"src":"rest"' in line]
    assert rest[0]["url"] == "https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000"
    (report,) = replay("binance", "spot", out)
    assert report["synced"] and report["deltas_applied"] == 149 and report["gaps"] == 0

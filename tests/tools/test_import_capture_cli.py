"""tools/import_capture.py as a user runs it: a missing output folder, an
output name it cannot write, and malformed lines named by file and line,
counted and skipped (never a bare JSON error)."""

from __future__ import annotations

import json

import pytest

from tests.feed.test_replay import DATA, replay, run_tool

TIMELINE = DATA / "binance" / "cf_spot_2021-10-12.timeline.jsonl"


def test_import_output_folder_missing_exits_2_naming_it(tmp_path):
    out = tmp_path / "nosuch" / "out.jsonl"
    proc = run_tool("import_capture.py", "--input", str(TIMELINE), "--output", str(out))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"folder {tmp_path / 'nosuch'} does not exist" in proc.stderr
    assert not out.parent.exists()


@pytest.mark.parametrize("name", ["x.txt", "x.json", "x.gz", "x.jsonl.bz2"])
def test_import_output_with_an_undocumented_suffix_exits_2(tmp_path, name):
    proc = run_tool("import_capture.py", "--input", str(TIMELINE), "--output", str(tmp_path / name))
    assert proc.returncode == 2 and ".jsonl, .jsonl.gz, .jsonl.zst" in proc.stderr
    assert not (tmp_path / name).exists()


def test_import_malformed_lines_named_counted_and_skipped(tmp_path):
    lines = TIMELINE.read_text().splitlines()
    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join(["{oops", *lines[:40], '{"dir": "in", "t": 1', *lines[40:]]) + "\n")
    out = tmp_path / "out.jsonl"
    proc = run_tool("import_capture.py", "--input", str(src), "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"{src}:1: skipped" in proc.stderr and f"{src}:42: skipped" in proc.stderr
    assert "skipped=2" in proc.stderr
    clean = tmp_path / "clean.jsonl"
    assert run_tool("import_capture.py", "--input", str(TIMELINE), "--output", str(clean)).returncode == 0
    assert out.read_text() == clean.read_text()  # nothing else lost
    assert json.loads(out.read_text().splitlines()[0])["src"] == "ws"
    assert len(replay("binance", "spot", out)) > 1


def test_import_nothing_convertible_names_file_and_line(tmp_path):
    src = tmp_path / "junk.jsonl"
    src.write_text("{oops\n[1, 2]\n")
    proc = run_tool("import_capture.py", "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert str(src) in proc.stderr and "line 1 is not JSON" in proc.stderr
    forced = run_tool("import_capture.py", "--input", str(src), "--output", str(tmp_path / "o.jsonl"),
                      "--format", "timeline")
    assert forced.returncode == 1 and "no line could be converted" in forced.stderr
    assert f"{src}:1: skipped" in forced.stderr and f"{src}:2: skipped" in forced.stderr

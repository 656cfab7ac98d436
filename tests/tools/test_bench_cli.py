"""tools/bench.py's own arguments: --help is not an error, and an unknown
benchmark name is named as unknown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "tools/bench.py", *args], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)


def test_bench_help_exits_0_listing_every_benchmark():
    for flag in ("--help", "-h"):
        done = bench(flag)
        assert done.returncode == 0, done.stderr
        for name in ("book", "feed", "match", "store", "trader"):
            assert f"  {name} " in done.stdout


def test_bench_unknown_name_exits_2_naming_it():
    done = bench("nope")
    assert done.returncode == 2 and done.stdout == ""
    assert "unknown benchmark 'nope'" in done.stderr and "book, feed" in done.stderr
    assert bench().returncode == 2

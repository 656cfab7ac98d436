"""tools/loaded_suite.py on tiny suites: a green suite passes every run, a red
one fails naming the test, each run's output is kept, and the busy loops die
with the tool, also when it is stopped by SIGTERM mid-run."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
TOOL = [sys.executable, str(ROOT / "tools" / "loaded_suite.py")]
PYTEST = ["-q", "-p", "no:cacheprovider", "-p", "no:randomly"]


def _suite(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "suite" / "test_tiny.py"
    path.parent.mkdir()
    path.write_text(body)
    return path


def _busy_pids(stdout: str) -> list[int]:
    match = re.search(r"^busy loops: \d+ \(pids ([\d ]+)\)$", stdout, re.M)
    assert match, stdout
    return [int(pid) for pid in match.group(1).split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_loaded_suite_green_suite_passes_every_run_and_keeps_logs(tmp_path):
    suite = _suite(tmp_path, "def test_ok():\n    assert 1 + 1 == 2\n")
    done = subprocess.run([*TOOL, "--runs", "2", "--busy", "1", "--log-dir", str(tmp_path / "logs"),
                           "--", *PYTEST, str(suite)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "run 1/2: exit=0" in done.stdout and "run 2/2: exit=0" in done.stdout
    assert "PASS: 2 of 2 runs green with 1 busy-loop processes" in done.stdout
    assert all("1 passed" in (tmp_path / "logs" / f"run-{n}.log").read_text() for n in (1, 2))
    assert not any(_alive(pid) for pid in _busy_pids(done.stdout))


def test_loaded_suite_red_suite_fails_naming_the_test(tmp_path):
    suite = _suite(tmp_path, "def test_red():\n    assert 1 + 1 == 3\n")
    done = subprocess.run([*TOOL, "--runs", "1", "--busy", "1", "--", *PYTEST, "-rfE", str(suite)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "run 1/1: exit=1" in done.stdout and "failed=1" in done.stdout
    assert re.search(r"^  FAILED \S*test_tiny.py::test_red$", done.stdout, re.M), done.stdout
    assert "FAIL: 0 of 1 runs green" in done.stdout


def test_loaded_suite_sigterm_mid_run_kills_its_busy_loops(tmp_path):
    gate = tmp_path / "started"
    suite = _suite(tmp_path, "import pathlib, threading\n\n"
                             "def test_waits():\n"
                             f"    pathlib.Path({str(gate)!r}).touch()\n"
                             "    threading.Event().wait(600)\n")
    proc = subprocess.Popen([*TOOL, "--runs", "1", "--busy", "2", "--", *PYTEST, str(suite)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        pids = _busy_pids(first)
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        eventually(gate.exists, timeout=120)  # pytest is inside the run
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) != 0
        eventually(lambda: not any(_alive(pid) for pid in pids), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

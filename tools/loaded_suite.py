#!/usr/bin/env python3
"""Run the test suite several times in a row with busy-loop processes beside
it, the way a shared, loaded host runs it, and report each run.

  python tools/loaded_suite.py [--runs 3] [--busy 2] [-- PYTEST ARGS...]

Default pytest arguments: ``-n 2 -q -p no:cacheprovider`` over the whole suite
(tests/), with CI=true so a missing server fails rather than skips. Each busy
process spins one core in pure Python; they are started before the first run
and killed (by their own pids) when the last ends, also on Ctrl-C. Prints one
line per run (exit status, seconds, failures, load average) and a verdict;
exit status 0 only when every run passed. ``--log-dir DIR`` keeps each run's
whole pytest output as ``DIR/run-N.log``. SIGTERM stops it as Ctrl-C does (the
busy loops die with it); a background job started by a shell ignores SIGINT.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PYTEST = ["-n", "2", "-q", "-p", "no:cacheprovider"]
FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)
BUSY_CODE = "while True: pass"


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(prog="loaded_suite.py", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=3, help="runs in a row (default 3)")
    p.add_argument("--busy", type=int, default=2, help="busy-loop processes beside it (default 2)")
    p.add_argument("--log-dir", type=Path, default=None,
                   help="write each run's whole pytest output to DIR/run-N.log")
    args = p.parse_args(argv)
    if args.runs < 1 or args.busy < 0:
        p.error("--runs must be at least 1 and --busy not negative")
    return args, extra


def start_busy(count: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY_CODE]) for _ in range(count)]


def stop_busy(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.kill()
    for proc in procs:
        proc.wait()


def run_once(pytest_args: list[str], log: Path | None = None) -> tuple[int, float, list[str], str]:
    env = {**os.environ, "CI": "true", "PYTHONPATH": str(ROOT)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", *pytest_args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    tail = (done.stdout.strip().splitlines() or [""])[-1]
    return done.returncode, time.monotonic() - started, FAILED.findall(done.stdout), tail


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(sys.argv[1:] if argv is None else argv)
    pytest_args = extra or DEFAULT_PYTEST
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    busy = start_busy(args.busy)
    print(f"busy loops: {args.busy} (pids {' '.join(str(b.pid) for b in busy) or '-'})", flush=True)
    results = []
    try:
        for n in range(1, args.runs + 1):
            log = None if args.log_dir is None else args.log_dir / f"run-{n}.log"
            code, seconds, failed, tail = run_once(pytest_args, log)
            load = "/".join(f"{x:.1f}" for x in os.getloadavg())
            results.append(code)
            print(f"run {n}/{args.runs}: exit={code} seconds={seconds:.0f} load={load} "
                  f"busy={args.busy} failed={len(failed)} summary={tail!r}", flush=True)
            for name in failed:
                print(f"  FAILED {name}", flush=True)
    finally:
        stop_busy(busy)
    ok = all(code == 0 for code in results)
    print(f"loaded_suite.py: {'PASS' if ok else 'FAIL'}: {sum(c == 0 for c in results)} of "
          f"{len(results)} runs green with {args.busy} busy-loop processes; pytest "
          f"{' '.join(pytest_args)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

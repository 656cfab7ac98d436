#!/usr/bin/env python3
"""Soak: run the daemon for a long time and report its drift.

  python tools/soak.py --role both --demo --duration 48h [--config FILE]
        [--interval 10s] [--warmup 10m] [--out DIR] [--max-growth-pct 10]
  python tools/soak.py --url http://127.0.0.1:8080 --duration 1h   (a daemon already running)

Samples /metrics and the daemon process (RSS, CPU, threads, open files) every
interval, shows progress, and at the end writes DIR/report.md, PNG plots and
samples.jsonl (tools/soak_report.py). Exits 0 when every bound holds, 1 when
one is broken (memory growth, recorder drops, errors, the daemon dying), 2 on
bad arguments or a daemon that never came up.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import requests
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soak_report

ROOT = Path(__file__).resolve().parents[1]
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# counter name in the report -> metric families summed (all label sets)
COUNTERS = {
    "feed_messages": ("engine_feed_connection_messages",),
    "resyncs": ("engine_feed_book_resyncs",),
    "history_rows": ("engine_history_rows_written",),
    "recorder_dropped": ("engine_recorder_dropped_events",),
    "grid_cycles": ("engine_trader_grid_cycles",),
    "fills": ("engine_trader_fills",),
    "orders": ("engine_trader_orders",),
    "errors": ("engine_feed_book_errors", "engine_history_write_failures",
               "engine_trader_metrics_errors", "engine_feed_connection_reconnects"),
}
HISTOGRAMS = {"decision_to_wire": "engine_trader_decision_to_wire_seconds",
              "receive_to_book": "engine_feed_receive_to_book_seconds"}


def duration(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 90s, 3m, 48h")
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def parse_metrics(text: str) -> dict[str, Any]:
    counters = dict.fromkeys(COUNTERS, 0.0)
    gauges: dict[str, float] = {}
    histograms: dict[str, dict[float, float]] = {k: {} for k in HISTOGRAMS}
    for family in text_string_to_metric_families(text):
        for report_name, names in COUNTERS.items():
            if family.name in names:
                counters[report_name] += sum(s.value for s in family.samples
                                             if s.name.endswith("_total"))
        for report_name, name in HISTOGRAMS.items():
            if family.name == name:
                for s in family.samples:
                    if s.name.endswith("_bucket"):
                        le = float(s.labels["le"])
                        histograms[report_name][le] = histograms[report_name].get(le, 0.0) + s.value
        if family.type == "gauge":
            for s in family.samples:
                labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items())
                                  if k not in ("le",))
                gauges[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return {"counters": counters, "gauges": gauges, "histograms": histograms}


class Daemon:
    """The daemon under soak: started here (run.py) or found at --url."""

    def __init__(self, args: argparse.Namespace, out: Path) -> None:
        self.args = args
        self.process: subprocess.Popen[str] | None = None
        self.url = args.url
        self.pid: int | None = None
        self.log_path = out / "daemon.log"

    def start(self) -> None:
        if self.url:
            self.pid = self.args.pid
            return
        command = [sys.executable, str(ROOT / "run.py"), "--role", self.args.role,
                   "--config", str(Path(self.args.config).resolve())]
        if self.args.demo:
            command.append("--demo")
        log = self.log_path.open("w")
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, cwd=ROOT)
        assert self.process.stdout is not None
        deadline = time.monotonic() + self.args.start_timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            log.write(line)
            match = re.search(r"http:\s+(https?://[\d.:\[\]a-z]+)", line)
            if match:
                self.url = match.group(1)
                break
        if not self.url:
            log.close()
            raise SystemExit(f"soak: the daemon printed no HTTP address within "
                             f"{self.args.start_timeout:.0f} s; see {self.log_path}")
        self.pid = self.process.pid
        # keep draining its output into the log so it never blocks on a full pipe
        import threading

        def drain() -> None:
            assert self.process is not None and self.process.stdout is not None
            for text in self.process.stdout:
                log.write(text)
                log.flush()
        threading.Thread(target=drain, daemon=True).start()

    def died(self) -> str:
        if self.process is not None and self.process.poll() is not None:
            return f"exit code {self.process.returncode}"
        return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def sample(daemon: Daemon, proc: psutil.Process | None, last_cpu: list[float]) -> dict[str, Any]:
    text = requests.get(f"{daemon.url}/metrics", timeout=10).text
    row = parse_metrics(text)
    row["t"] = time.time()
    if proc is not None:
        with proc.oneshot():
            rss = proc.memory_info().rss
            cpu = proc.cpu_times()
            cpu_s = cpu.user + cpu.system
            threads, fds = proc.num_threads(), proc.num_fds()
    else:
        rss = row["gauges"].get("process_resident_memory_bytes", 0.0)
        cpu_s, threads, fds = 0.0, 0, 0
    row.update(rss=rss, threads=threads, fds=fds, cpu_s=cpu_s)
    row["cpu_pct"] = None if not last_cpu else \
        100.0 * (cpu_s - last_cpu[1]) / max(1e-9, row["t"] - last_cpu[0])
    last_cpu[:] = [row["t"], cpu_s]
    row["gauges"]["soak_threads"] = threads
    row["gauges"]["soak_open_fds"] = fds
    return row


def progress(row: dict[str, Any], started: float, total_s: float) -> str:
    elapsed = row["t"] - started
    c = row["counters"]
    cpu = "-" if row["cpu_pct"] is None else f"{row['cpu_pct']:.0f}%"
    return (f"[{_clock(elapsed)}/{_clock(total_s)} {100 * elapsed / total_s:5.1f}%] "
            f"rss={row['rss'] / 1e6:.0f}MB cpu={cpu} threads={row['threads']} "
            f"cycles={c['grid_cycles']:g} fills={c['fills']:g} resyncs={c['resyncs']:g} "
            f"rows={c['history_rows']:g} errors={c['errors']:g}")


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--role", choices=("monitor", "trader", "both", "venue"), default="both")
    parser.add_argument("--config", default=str(ROOT / "config.yaml"))
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--url", default="", help="soak a daemon already running at this URL")
    parser.add_argument("--pid", type=int, default=None, help="with --url: its process id")
    parser.add_argument("--duration", type=duration, default=duration("48h"))
    parser.add_argument("--interval", type=duration, default=duration("10s"))
    parser.add_argument("--warmup", type=duration, default=None,
                        help="left out of the memory fit (default: 10%% of the run, at most 10m)")
    parser.add_argument("--out", default="")
    parser.add_argument("--max-growth-pct", type=float, default=10.0)
    parser.add_argument("--max-dropped", type=float, default=0.0)
    parser.add_argument("--max-errors", type=float, default=None)
    parser.add_argument("--start-timeout", type=duration, default=duration("120s"))
    args = parser.parse_args(argv)
    if args.interval <= 0 or args.duration < 3 * args.interval:
        parser.error("--duration must cover at least three --interval samples")
    if not args.url and not Path(args.config).is_file():
        parser.error(f"--config {args.config}: no such file")
    warmup = args.warmup if args.warmup is not None else min(600.0, args.duration * 0.1)
    out = Path(args.out or f"soak-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    command = "python tools/soak.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    daemon = Daemon(args, out)
    daemon.start()
    proc = psutil.Process(daemon.pid) if daemon.pid else None
    samples: list[dict[str, Any]] = []
    last_cpu: list[float] = []
    started = time.time()
    died = ""
    with (out / "samples.jsonl").open("w") as raw:
        try:
            while time.time() - started < args.duration:
                died = daemon.died()
                if died:
                    break
                try:
                    row = sample(daemon, proc, last_cpu)
                except (requests.RequestException, psutil.Error) as error:
                    print(f"soak: sample failed: {error}", file=sys.stderr)
                else:
                    samples.append(row)
                    raw.write(json.dumps({**row, "histograms": {
                        k: {str(le): v for le, v in h.items()} for k, h in
                        row["histograms"].items()}}) + "\n")
                    raw.flush()
                    print(progress(row, started, args.duration), file=sys.stderr, flush=True)
                time.sleep(max(0.0, args.interval - (time.time() - started) % args.interval))
        except KeyboardInterrupt:
            print("soak: interrupted, writing the report of what was sampled", file=sys.stderr)
        finally:
            daemon.stop()
    if not samples:
        print(f"soak: no sample taken; see {daemon.log_path}", file=sys.stderr)
        return 2
    analysis = soak_report.analyse(samples, warmup, soak_report.Bounds(
        args.max_growth_pct, args.max_dropped, args.max_errors), died)
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    (out / "report.md").write_text(soak_report.markdown(analysis, command, load))
    soak_report.plots(samples, out)
    verdict = "PASS" if analysis.ok else "FAIL: " + "; ".join(analysis.broken)
    print(f"soak: {verdict}; report {out / 'report.md'}", file=sys.stderr)
    return 0 if analysis.ok else 1


if __name__ == "__main__":
    sys.exit(main())

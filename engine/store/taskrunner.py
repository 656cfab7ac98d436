"""A task fetcher alone, as a process: claims tasks like a monitor daemon and
writes what it runs to a JSON file instead of subscribing feeds. For the
multi-daemon tests and for trying a shared database by hand:

  python -m engine.store.taskrunner --config FILE --daemon-id ID --report FILE
                                    [--lease-s S] [--capacity N]

The report is rewritten atomically after every cycle:
  {"daemon_id", "pid", "task_ids": [..], "tasks": [..], "health": [..], "status": {..}}
``run.py --role monitor`` shows the same through /status once app.py wires the
fetcher: ``components["task-db"]["task_ids"]``. SIGTERM/SIGINT stop it cleanly
(leases released); SIGKILL leaves its leases to lapse.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from engine import config as config_mod
from engine.store.taskrows import MonitorTask
from engine.store.tasks import TaskFetcher, task_as_dict


class ReportSink:
    """A TaskSink that only remembers what it was told to run."""

    def __init__(self) -> None:
        self.running: dict[int, MonitorTask] = {}
        self.applied = 0

    def apply_tasks(self, added: list[MonitorTask], removed: list[MonitorTask],
                    changed: list[MonitorTask]) -> None:
        for task in removed:
            self.running.pop(task.id, None)
        for task in added + changed:
            self.running[task.id] = task
        self.applied += 1


def write_report(path: Path, fetcher: TaskFetcher, sink: ReportSink) -> None:
    report: dict[str, Any] = {
        "daemon_id": fetcher.daemon_id, "pid": os.getpid(), "task_ids": sorted(sink.running),
        "tasks": [task_as_dict(sink.running[i]) for i in sorted(sink.running)],
        "health": [{"component": h.component, "ok": h.ok, "reason": h.reason} for h in fetcher.health()],
        "status": fetcher.status(),
    }
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m engine.store.taskrunner", description=__doc__.split("\n")[0])
    p.add_argument("--config", required=True, help="YAML config; storage.tasks names the database")
    p.add_argument("--daemon-id", required=True)
    p.add_argument("--report", required=True, type=Path, help="JSON file rewritten after every cycle")
    p.add_argument("--lease-s", type=float, default=None, help="overrides storage.tasks.lease_s")
    p.add_argument("--capacity", type=int, default=None, help="overrides storage.tasks.capacity")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = config_mod.load(args.config)
    except config_mod.ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    sink = ReportSink()
    fetcher = TaskFetcher(config, args.daemon_id, sink, lease_s=args.lease_s, capacity=args.capacity)
    try:
        fetcher.start()
    except Exception as e:  # noqa: BLE001 - reported, not traced
        print(f"start-up failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    try:
        while True:
            write_report(args.report, fetcher, sink)
            if stop.wait(min(0.2, fetcher.cycle_s)):
                break
    finally:
        fetcher.stop(5.0)
        write_report(args.report, fetcher, sink)
    return 0


if __name__ == "__main__":
    sys.exit(main())

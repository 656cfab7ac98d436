"""Errors the recorder swallows so that recording goes on: each is counted
(engine_recorder_errors_total{where}), logged at a rate limit with its
traceback, and remembered for health. Owns only that bookkeeping."""

from __future__ import annotations

import threading
import time
from typing import Any

from loguru import logger

log = logger.bind(component="recorder")

# One log line per place at most this often (the others are counted into the
# next line): a bug hit by every event must not flood the log.
LOG_INTERVAL_S = 10.0


class SwallowedErrors:
    def __init__(self, counter: Any) -> None:
        """``counter``: a Counter labelled (where)."""
        self.counter = counter
        self.count = 0
        self.last = ""
        self.last_at = 0.0  # monotonic; 0: never
        self._lock = threading.Lock()
        self._logged: dict[str, tuple[float, int]] = {}  # where -> (last line, suppressed since)

    def note(self, where: str, exc: BaseException) -> None:
        """Any thread; never raises."""
        try:
            self.counter.labels(where).inc()
            now = time.monotonic()
            with self._lock:
                self.count += 1
                self.last = f"{where}: {type(exc).__name__}: {exc}"[:300]
                self.last_at = now
                last, suppressed = self._logged.get(where, (0.0, 0))
                if last and now - last < LOG_INTERVAL_S:
                    self._logged[where] = (last, suppressed + 1)
                    return
                self._logged[where] = (now, 0)
            log.opt(exception=exc).error("recorder error where={} error={} (+{} more since the last "
                                         "line); recording goes on", where, self.last, suppressed)
        except Exception:  # noqa: BLE001, S110 - the last resort of the last resort: never raise
            pass

    def recent(self, window_s: float) -> str:
        """For health: what to say while the last error is younger than ``window_s``."""
        if not self.last_at or time.monotonic() - self.last_at >= window_s:
            return ""
        return (f"{self.count} internal errors, last {time.monotonic() - self.last_at:.0f}s ago "
                f"({self.last}); retrying")

"""Progress for the long tools (replay, import, bench, backtest): a bar that
redraws in place on a terminal, and a quiet line every ``every_s`` seconds
otherwise (logs and CI keep a readable trace). Writes to stderr only, so a
tool's stdout contract is untouched."""

from __future__ import annotations

import sys
import time
from typing import TextIO

# A line every 10 s on a non-terminal: enough to see a long run is alive,
# few enough not to flood a log.
LINE_EVERY_S = 10.0
# Redraws per second on a terminal: smooth to the eye, negligible cost.
BAR_EVERY_S = 0.1
BAR_WIDTH = 30


class Progress:
    """``update(done)`` with a running count; ``close()`` prints the final state.
    ``total`` (same unit as ``done``) draws a bar and a percentage when known."""

    def __init__(self, label: str, unit: str = "records", total: int | None = None,
                 stream: TextIO | None = None, tty: bool | None = None,
                 every_s: float | None = None) -> None:
        self.label, self.unit, self.total = label, unit, total
        self.stream = sys.stderr if stream is None else stream
        self.tty = self.stream.isatty() if tty is None else tty
        self.every_s = (BAR_EVERY_S if self.tty else LINE_EVERY_S) if every_s is None else every_s
        self.start = time.monotonic()
        self.last_shown = self.start
        self.done = 0
        self.shown = 0  # how many times a state was written

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if now - self.last_shown >= self.every_s:
            self.last_shown = now
            self._show(now, final=False)

    def close(self) -> None:
        """The final state, if any state was shown (a short run stays silent)."""
        if self.shown:
            self._show(time.monotonic(), final=True)

    def text(self, now: float) -> str:
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            share = min(self.done / self.total, 1.0)
            bar = "#" * int(share * BAR_WIDTH)
            return (f"{self.label}: [{bar:<{BAR_WIDTH}}] {share:6.1%} {self.done:,}/{self.total:,} "
                    f"{self.unit} ({rate:,.0f}/s)")
        return f"{self.label}: {self.done:,} {self.unit} ({rate:,.0f}/s, {elapsed:.0f} s)"

    def _show(self, now: float, final: bool) -> None:
        self.shown += 1
        if self.tty:
            self.stream.write("\r" + self.text(now) + ("\n" if final else ""))
        else:
            self.stream.write(self.text(now) + "\n")
        self.stream.flush()

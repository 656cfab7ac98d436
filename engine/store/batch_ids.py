"""Batch ids: unique per writer, increasing in record order, across restarts.
Owns the id format and the small file that remembers the last id issued.

  id = milliseconds since the epoch (strictly increasing per writer) << 12
       | the writer's 12-bit tag (crc32 of daemon.id)

So ids sort in record order within a daemon, daemons sharing one ClickHouse
server do not reuse each other's ids (two tags collide with chance 1/4096:
give such daemons different ``daemon.id``), and a clock set back after a
restart continues above the remembered id instead of reusing one.
"""

from __future__ import annotations

import os
import threading
import time
import zlib
from pathlib import Path

from loguru import logger

log = logger.bind(component="recorder")

TAG_BITS = 12


def writer_tag(writer: str) -> int:
    return zlib.crc32(writer.encode()) & ((1 << TAG_BITS) - 1)


class BatchIds:
    def __init__(self, writer: str, path: Path, floor: int = 0) -> None:
        """``floor``: an id known to be used (the spill's highest)."""
        self.tag = writer_tag(writer)
        self.path = path
        self._lock = threading.Lock()  # next() on the recorder thread, raise_to() elsewhere
        self._last_ms = floor >> TAG_BITS
        self.write_errors = 0  # failed writes of the remembered id (logged)
        try:
            self._last_ms = max(self._last_ms, int(path.read_text()) >> TAG_BITS)
        except FileNotFoundError:  # a fresh data_dir
            pass
        except (OSError, ValueError) as exc:
            log.warning("last batch id not readable ({}): {}; ids continue from the clock and the "
                        "spill", path, exc)

    def next(self) -> int:
        with self._lock:
            self._last_ms = max(self._last_ms + 1, time.time_ns() // 1_000_000)
            batch_id = (self._last_ms << TAG_BITS) | self.tag
        tmp = self.path.with_suffix(".tmp")
        try:  # one small write per batch; losing it only weakens the clock guard
            tmp.write_text(str(batch_id))
            os.replace(tmp, self.path)
        except OSError as exc:
            self.write_errors += 1
            if self.write_errors in (1, 10) or self.write_errors % 1000 == 0:
                log.warning("last batch id not written ({} times so far): {}", self.write_errors, exc)
        return batch_id

    def raise_to(self, batch_id: int) -> None:
        """Continue above ``batch_id`` (the store's highest for this writer)."""
        with self._lock:
            self._last_ms = max(self._last_ms, batch_id >> TAG_BITS)

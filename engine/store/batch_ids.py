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
        try:
            self._last_ms = max(self._last_ms, int(path.read_text()) >> TAG_BITS)
        except (OSError, ValueError):
            pass

    def next(self) -> int:
        with self._lock:
            self._last_ms = max(self._last_ms + 1, time.time_ns() // 1_000_000)
            batch_id = (self._last_ms << TAG_BITS) | self.tag
        tmp = self.path.with_suffix(".tmp")
        try:  # one small write per batch; losing it only weakens the clock guard
            tmp.write_text(str(batch_id))
            os.replace(tmp, self.path)
        except OSError:
            pass
        return batch_id

    def raise_to(self, batch_id: int) -> None:
        """Continue above ``batch_id`` (the store's highest for this writer)."""
        with self._lock:
            self._last_ms = max(self._last_ms, batch_id >> TAG_BITS)

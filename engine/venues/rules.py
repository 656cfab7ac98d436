"""The book-sync rules and the checksum shadow book several venues share.
Each piece works on normalized BookSnapshot/BookDelta only (sequence ids, and
the wire strings a driver puts in ``extra["raw"]``); no venue's frame format.

Users: ContiguousIdRule (Binance spot, Gate, KuCoin through a subclass),
StrictContiguousIdRule (MEXC), ShadowBook (CoinEx checksums; OKX and Bitget
through InterleavedBook, its compiled twin where built).
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from collections.abc import Iterable
from typing import Any

from engine.model import BookDelta, BookSnapshot
from engine.venues.base import APPLY, DROP, GAP, SyncRule, Verdict


class ContiguousIdRule(SyncRule):
    """Update ids numbered without holes (first id ``U``, last id ``u`` per
    message). After a snapshot with id L: drop a message with ``u <= L`` (older
    or repeated); apply one with ``U <= last + 1`` (the first after a snapshot
    may straddle L + 1), then each follows the previous ``u``; a later ``U`` is
    a gap. A message that overlaps the book's last id goes through
    ``on_overlap`` first (KuCoin trims the changes already applied)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last = 0

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.last = snapshot.seq

    def check(self, delta: BookDelta) -> Verdict:
        last = self.last
        if delta.last_seq <= last:
            return DROP
        if delta.first_seq > last + 1:
            return GAP
        if delta.first_seq <= last:
            self.on_overlap(delta, last)
        self.last = delta.last_seq
        return APPLY

    def on_overlap(self, delta: BookDelta, last: int) -> None:
        """``delta`` starts at or before ``last`` (already in the book) and ends
        after it; it is applied whole unless a venue trims it here."""


class StrictContiguousIdRule(SyncRule):
    """As ContiguousIdRule for the first message after a snapshot (drop
    ``last <= L``, apply ``first <= L + 1``), but after it every message's first
    id must be exactly the previous last id + 1: an overlap is a gap too."""

    __slots__ = ("last", "fresh")

    def __init__(self) -> None:
        self.last = 0
        self.fresh = True

    def on_snapshot(self, snapshot: BookSnapshot) -> None:
        self.last = snapshot.seq
        self.fresh = True

    def check(self, delta: BookDelta) -> Verdict:
        last = delta.last_seq
        if last <= self.last:
            return DROP  # buffered from before the snapshot, or a repeat
        if self.fresh:
            if delta.first_seq > self.last + 1:
                return GAP
            self.fresh = False
        elif delta.first_seq != self.last + 1:
            return GAP
        self.last = last
        return APPLY


# The OKX and Bitget recipe: the top 25 levels of each side.
INTERLEAVED_DEPTH = 25


def interleaved_checksum(bids: list, asks: list, depth: int = INTERLEAVED_DEPTH) -> int:
    """Signed CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top ``depth``
    levels of each side (the longer side's rest follows), using the price and
    size strings exactly as the venue sent them (OKX, Bitget)."""
    parts = []
    for i in range(depth):
        if i < len(bids):
            parts.append(f"{bids[i][0]}:{bids[i][1]}")
        if i < len(asks):
            parts.append(f"{asks[i][0]}:{asks[i][1]}")
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class ShadowBook:
    """The book as the venue's wire values, kept to recompute its checksum.
    Per side: price key (negated for bids) -> (price, size) as sent, and the
    keys sorted best first (bisect on a plain list: for books of a few hundred
    levels far cheaper than a tree). A size of zero deletes the level. Same
    interface and results as the compiled CrcBook (``InterleavedBook``), which
    tests/venues/test_checksum_c.py checks against this class."""

    __slots__ = ("bids", "asks", "bid_keys", "ask_keys")

    def __init__(self, bids: Iterable = (), asks: Iterable = ()) -> None:
        self.bids: dict[float, tuple] = {}
        self.asks: dict[float, tuple] = {}
        self.bid_keys: list[float] = []
        self.ask_keys: list[float] = []
        self.apply(bids, asks)

    def apply(self, bids: Iterable, asks: Iterable) -> None:
        """Apply wire levels ``[price, size, ...]`` (strings; extra fields ignored)."""
        _apply_wire(self.bid_keys, self.bids, -1.0, bids)
        _apply_wire(self.ask_keys, self.asks, 1.0, asks)

    def apply_parsed(self, bids: Iterable, asks: Iterable, raw_bids: Iterable,
                     raw_asks: Iterable) -> None:
        """Apply levels already parsed to (price, size) floats, with their wire
        strings (price, size) beside them, so nothing is parsed twice (CoinEx)."""
        _apply_parsed(self.bid_keys, self.bids, -1.0, bids, raw_bids)
        _apply_parsed(self.ask_keys, self.asks, 1.0, asks, raw_asks)

    def levels(self) -> tuple[list[tuple], list[tuple]]:
        """(bids, asks): every level's (price, size) as sent, best first."""
        return ([self.bids[k] for k in self.bid_keys], [self.asks[k] for k in self.ask_keys])

    def checksum(self) -> int:
        """``interleaved_checksum`` of this book (OKX, Bitget)."""
        bids, asks = self.bids, self.asks
        return interleaved_checksum([bids[k] for k in self.bid_keys[:INTERLEAVED_DEPTH]],
                                    [asks[k] for k in self.ask_keys[:INTERLEAVED_DEPTH]])

    def concatenated_crc32(self, depth: int) -> int:
        """Unsigned CRC32 of the top ``depth`` bids then the top ``depth`` asks,
        ``price:size`` joined by ":" (CoinEx)."""
        bids, asks = self.bids, self.asks
        text = ":".join([f"{p}:{s}" for p, s in map(bids.__getitem__, self.bid_keys[:depth])]
                        + [f"{p}:{s}" for p, s in map(asks.__getitem__, self.ask_keys[:depth])])
        return zlib.crc32(text.encode())


try:  # the same book and CRC32 in C (engine/venues/_checksum.c), built by build_ext
    from engine.venues._levels import CrcBook  # type: ignore[import-not-found]
except ImportError:
    CrcBook = None
# The shadow book of the interleaved top-25 recipe (OKX, Bitget): compiled where built.
InterleavedBook: Any = CrcBook or ShadowBook


# The two appliers below are one loop written twice on purpose: this is the
# per-level path of every checksummed book, and a shared generator of tuples
# would cost a tuple and a generator step per level.


def _apply_wire(keys: list[float], side: dict[float, tuple], sign: float, levels: Iterable) -> None:
    """Wire levels ``[price, size, ...]`` into one side."""
    for level in levels:
        key = sign * float(level[0])
        if float(level[1]) == 0.0:
            if side.pop(key, None) is not None:
                del keys[bisect_left(keys, key)]
        else:
            if key not in side:
                insort(keys, key)
            side[key] = (level[0], level[1])


def _apply_parsed(keys: list[float], side: dict[float, tuple], sign: float, levels: Iterable,
                  raw: Iterable) -> None:
    """(price, size) float levels with their (price, size) wire strings into one side."""
    for (price, size), (price_text, size_text) in zip(levels, raw):
        key = sign * price
        if size == 0.0:
            if side.pop(key, None) is not None:
                del keys[bisect_left(keys, key)]
        else:
            if key not in side:
                insort(keys, key)
            side[key] = (price_text, size_text)

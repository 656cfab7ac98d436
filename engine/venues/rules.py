"""The book-sync rules and the checksum shadow book several venues share.
Each piece works on normalized BookSnapshot/BookDelta only (sequence ids, and
the wire strings a driver puts in ``extra["raw"]``); no venue's frame format.

Users: ContiguousIdRule (Binance spot, Gate, KuCoin through a subclass),
StrictContiguousIdRule (MEXC), ShadowBook (OKX, Bitget, CoinEx checksums).
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from collections.abc import Iterable, Iterator
from itertools import chain

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


def signed_crc32(text: str) -> int:
    """CRC32 of ``text`` as a signed 32-bit integer (OKX, Bitget)."""
    crc = zlib.crc32(text.encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


def interleaved_checksum(bids: list, asks: list, depth: int) -> int:
    """Signed CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top ``depth``
    levels of each side (the longer side's rest follows), using the price and
    size strings exactly as the venue sent them (OKX, Bitget)."""
    return signed_crc32(":".join(_interleave(
        [f"{level[0]}:{level[1]}" for level in bids[:depth]],
        [f"{level[0]}:{level[1]}" for level in asks[:depth]])))


def _interleave(bids: list[str], asks: list[str]) -> list[str]:
    n = min(len(bids), len(asks))
    return [x for pair in zip(bids[:n], asks[:n]) for x in pair] + bids[n:] + asks[n:]


class ShadowBook:
    """The book as the venue's wire strings, kept to recompute its checksum.
    Per side: price key (negated for bids) -> "price:size" as sent, and the keys
    sorted best first (bisect on a plain list: for books of a few hundred
    levels far cheaper than a tree). A size of zero deletes the level."""

    __slots__ = ("bid_keys", "ask_keys", "bid_text", "ask_text")

    def __init__(self) -> None:
        self.bid_keys: list[float] = []
        self.ask_keys: list[float] = []
        self.bid_text: dict[float, str] = {}
        self.ask_text: dict[float, str] = {}

    @classmethod
    def of(cls, bids: list, asks: list) -> ShadowBook:
        """A book seeded with wire levels ``[price, size, ...]`` (strings)."""
        book = cls()
        book.apply(bids, asks)
        return book

    def apply(self, bids: Iterable, asks: Iterable) -> None:
        """Apply wire levels ``[price, size, ...]`` (strings; extra fields ignored)."""
        _apply_wire(self.bid_keys, self.bid_text, -1.0, bids)
        _apply_wire(self.ask_keys, self.ask_text, 1.0, asks)

    def apply_parsed(self, bids: Iterable, asks: Iterable, raw_bids: Iterable,
                     raw_asks: Iterable) -> None:
        """Apply levels already parsed to (price, size) floats, with their wire
        strings (price, size) beside them, so nothing is parsed twice (CoinEx)."""
        _apply_parsed(self.bid_keys, self.bid_text, -1.0, bids, raw_bids)
        _apply_parsed(self.ask_keys, self.ask_text, 1.0, asks, raw_asks)

    def top_bids(self, depth: int) -> Iterator[str]:
        """"price:size" of the best ``depth`` bids, best first."""
        return map(self.bid_text.__getitem__, self.bid_keys[:depth])

    def top_asks(self, depth: int) -> Iterator[str]:
        return map(self.ask_text.__getitem__, self.ask_keys[:depth])

    def interleaved_checksum(self, depth: int) -> int:
        """As ``interleaved_checksum`` over this book (OKX, Bitget)."""
        return signed_crc32(":".join(_interleave(list(self.top_bids(depth)),
                                                 list(self.top_asks(depth)))))

    def concatenated_crc32(self, depth: int) -> int:
        """Unsigned CRC32 of the top ``depth`` bids then the top ``depth`` asks,
        ``price:size`` joined by ":" (CoinEx)."""
        text = ":".join(chain(self.top_bids(depth), self.top_asks(depth)))
        return zlib.crc32(text.encode())


# The two appliers below are one loop written twice on purpose: this is the
# per-level path of every checksummed book, and a shared generator of tuples
# would cost a tuple and a generator step per level.


def _apply_wire(keys: list[float], text: dict[float, str], sign: float, levels: Iterable) -> None:
    """Wire levels ``[price, size, ...]`` (strings) into one side."""
    for level in levels:
        price, size = level[0], level[1]
        key = sign * float(price)
        if float(size) == 0.0:
            if text.pop(key, None) is not None:
                del keys[bisect_left(keys, key)]
        else:
            if key not in text:
                insort(keys, key)
            text[key] = f"{price}:{size}"


def _apply_parsed(keys: list[float], text: dict[float, str], sign: float, levels: Iterable,
                  raw: Iterable) -> None:
    """(price, size) float levels with their (price, size) wire strings into one side."""
    for (price, size), (price_text, size_text) in zip(levels, raw):
        key = sign * price
        if size == 0.0:
            if text.pop(key, None) is not None:
                del keys[bisect_left(keys, key)]
        else:
            if key not in text:
                insort(keys, key)
            text[key] = f"{price_text}:{size_text}"

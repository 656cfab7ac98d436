"""Byte layout of the shared-memory BookStore segment; owned here so the writer
and readers in other processes agree on every offset. No I/O, no locking.

Segment:
  segment header (64 B): magic, layout version, capacity, depth, owner pid,
                         registered count, record size, reserved
  key directory: capacity x 64 B slots, UTF-8 book key, NUL padded
  book records:  capacity x record

Book record (all 8-byte aligned, little endian, native x86-64):
  header (64 B): version u64 (seqlock: odd while writing), seq i64,
                 exch_ns i64, recv_ns i64, state i64, n_bids i64, n_asks i64,
                 updates u64
  levels: float64[4][depth] = bid_px, bid_sz, ask_px, ask_sz (best first)

The seqlock relies on x86-64 store ordering (TSO): stores become visible in
program order, loads are not reordered with loads. On weakly ordered CPUs a
reader could see a torn book; we target x86-64 hosts and test for tearing.
"""

from __future__ import annotations

import struct

MAGIC = 0x4B4F4F42454E4745  # "EGNEBOOK"
LAYOUT_VERSION = 1

SEGMENT_HEADER = struct.Struct("<QQQQQQQQ")  # magic, ver, cap, depth, pid, count, rec, _
SEGMENT_HEADER_SIZE = 64
KEY_SLOT_SIZE = 64  # longest book key "venue:market:BASE/QUOTE" we accept
BOOK_HEADER = struct.Struct("<QqqqqqqQ")  # version + body fields below
BOOK_HEADER_SIZE = 64
VERSION = struct.Struct("<Q")
COUNT_OFFSET = 40  # registered count inside the segment header

# Offsets inside a book header.
OFF_VERSION = 0
OFF_SEQ = 8
OFF_BODY = 8  # everything after the version word


class Layout:
    """Offsets for a segment of ``capacity`` books of ``depth`` levels."""

    __slots__ = ("capacity", "depth", "record_size", "keys_offset", "books_offset",
                 "total_size", "levels_struct", "side_struct", "body_struct")

    def __init__(self, capacity: int, depth: int) -> None:
        if capacity < 1 or depth < 1:
            raise ValueError(f"capacity and depth must be positive, got {capacity}, {depth}")
        self.capacity = capacity
        self.depth = depth
        self.record_size = BOOK_HEADER_SIZE + 4 * 8 * depth
        self.keys_offset = SEGMENT_HEADER_SIZE
        self.books_offset = self.keys_offset + capacity * KEY_SLOT_SIZE
        self.total_size = self.books_offset + capacity * self.record_size
        # One struct per side (prices then sizes) and one for the whole body.
        self.side_struct = struct.Struct(f"<{2 * depth}d")
        self.levels_struct = struct.Struct(f"<{4 * depth}d")
        # seq, exch_ns, recv_ns, state, n_bids, n_asks, updates (after version)
        self.body_struct = struct.Struct("<qqqqqqQ")

    def record_offset(self, index: int) -> int:
        return self.books_offset + index * self.record_size

    def key_offset(self, index: int) -> int:
        return self.keys_offset + index * KEY_SLOT_SIZE

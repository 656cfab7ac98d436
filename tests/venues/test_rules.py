"""engine/venues/rules.py: the shared contiguous-id rules (overlap, gap, repeat,
the overlap hook) and the checksum shadow book (ordering, deletes, both
checksum recipes) against checksums computed here from sorted levels."""

from __future__ import annotations

import zlib

from engine.model import BookDelta, BookSnapshot, Market
from engine.venues.base import Verdict
from engine.venues.rules import (
    ContiguousIdRule,
    InterleavedBook,
    ShadowBook,
    StrictContiguousIdRule,
    interleaved_checksum,
)


def _delta(first: int, last: int) -> BookDelta:
    return BookDelta("x", Market.SPOT, "A/B", [(1.0, 1.0)], [], first, last)


def _seeded(rule: ContiguousIdRule | StrictContiguousIdRule, seq: int = 100):
    rule.on_snapshot(BookSnapshot("x", Market.SPOT, "A/B", [], [], seq))
    return rule


def _crc_signed(text: str) -> int:
    crc = zlib.crc32(text.encode())
    return crc - 2**32 if crc >= 2**31 else crc


def test_contiguous_rule_drops_old_bridges_then_chains_and_finds_gap():
    rule = _seeded(ContiguousIdRule())
    assert [rule.check(_delta(f, u)) for f, u in [(90, 100), (95, 105), (106, 110), (108, 112),
                                                  (113, 113), (115, 116)]] == [
        Verdict.DROP, Verdict.APPLY, Verdict.APPLY, Verdict.APPLY, Verdict.APPLY, Verdict.GAP]


def test_contiguous_rule_overlap_hook_sees_only_overlapping_deltas():
    seen: list[tuple[int, int, int]] = []

    class Hooked(ContiguousIdRule):
        def on_overlap(self, delta: BookDelta, last: int) -> None:
            seen.append((delta.first_seq, delta.last_seq, last))

    rule = _seeded(Hooked())
    for first, last in [(95, 105), (106, 110), (109, 111)]:
        assert rule.check(_delta(first, last)) is Verdict.APPLY
    assert seen == [(95, 105, 100), (109, 111, 110)]


def test_strict_rule_bridges_first_then_refuses_overlap():
    rule = _seeded(StrictContiguousIdRule())
    assert rule.check(_delta(90, 100)) is Verdict.DROP
    assert rule.check(_delta(95, 105)) is Verdict.APPLY  # the first may straddle
    assert rule.check(_delta(106, 107)) is Verdict.APPLY
    assert rule.check(_delta(107, 109)) is Verdict.GAP  # overlap after the first: a gap
    assert _seeded(StrictContiguousIdRule()).check(_delta(102, 103)) is Verdict.GAP


def test_shadow_book_orders_replaces_and_deletes_levels_as_wire_strings():
    book = ShadowBook([["99.5", "1.0"], ["100.0", "2.50"]], [["101", "3"], ["100.5", "4", "0", "2"]])
    book.apply([["99.5", "0"], ["99.0", "7.0"], ["98", "0.000"]], [["100.5", "5"]])
    assert book.levels() == ([("100.0", "2.50"), ("99.0", "7.0")], [("100.5", "5"), ("101", "3")])
    text = "100.0:2.50:100.5:5:99.0:7.0:101:3"
    assert book.checksum() == _crc_signed(text)
    assert book.concatenated_crc32(1) == zlib.crc32(b"100.0:2.50:100.5:5")
    assert InterleavedBook(*book.levels()).checksum() == book.checksum()  # compiled where built


def test_shadow_book_parsed_levels_key_by_floats_and_keep_the_text():
    book = ShadowBook()
    book.apply_parsed([(100.0, 1.0), (99.0, 2.0)], [(101.0, 3.0)],
                      [("100.00", "1"), ("99", "2.0")], [("101.0", "3")])
    book.apply_parsed([(100.0, 0.0)], [], [("100.00", "0")], [])
    assert book.concatenated_crc32(50) == zlib.crc32(b"99:2.0:101.0:3")


def test_interleaved_checksum_uneven_sides_and_depth_cut():
    bids = [[str(100 - i), "1"] for i in range(30)]
    asks = [["101", "2"]]
    parts = [f"{bids[0][0]}:1", "101:2"] + [f"{b[0]}:1" for b in bids[1:25]]
    assert interleaved_checksum(bids, asks) == _crc_signed(":".join(parts))
    assert ShadowBook(bids, asks).checksum() == _crc_signed(":".join(parts))

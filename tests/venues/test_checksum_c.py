"""The compiled OKX checksum book (CrcBook, engine/venues/_checksum.c) against
its Python reference (rules.ShadowBook): the same levels in, the same book and
the same CRC32 out (OKX/Bitget's interleaved recipe and CoinEx's bids-then-asks
one), on random level sequences and on the recorded OKX capture's checksums."""

from __future__ import annotations

import json
import os
import zlib

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.model import Market
from engine.venues import okx, rules
from tests.venues.reference import DATA, read_records

try:
    from engine.venues._levels import CrcBook
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("engine.venues._levels not built (pip install -e .)", allow_module_level=True)

price = st.sampled_from(["100", "100.0", "100.5", "99.9", "101", "1e2", " 102", "1_03", "0.5",
                         "104.25", "98", "97.50", "105", "1E2"])
size = st.sampled_from(["0", "0.0", "1", "2.5", "0.001", "3e-1", "-0", "7"])
level = st.one_of(st.tuples(price, size).map(list),
                  st.tuples(price, size, st.just("0"), st.just("3")).map(list),
                  st.tuples(st.floats(1, 200, allow_nan=False), st.integers(0, 3)).map(list))
side = st.lists(level, max_size=40)


def py_levels(shadow: rules.ShadowBook):
    return shadow.levels()


def test_checksum_c_is_the_rules_shadow_book():
    assert okx._Shadow is CrcBook and rules.InterleavedBook is CrcBook


@settings(max_examples=300, deadline=None)
@given(start=st.tuples(side, side), steps=st.lists(st.tuples(side, side), max_size=8))
def test_checksum_c_same_book_and_crc_as_python(start, steps):
    ref, fast = rules.ShadowBook(*start), CrcBook(*start)
    concat = CrcBook(*start, 3, False)  # CoinEx's recipe, a shallow depth to exercise it
    for i, (bids, asks) in enumerate([start, *steps]):
        if i:  # start went in through the constructors
            ref.apply(bids, asks)
            fast.apply(bids, asks)
        got_bids, got_asks = fast.levels()
        ref_bids, ref_asks = py_levels(ref)
        assert [tuple(lv) for lv in got_bids] == [tuple(lv) for lv in ref_bids]
        assert [tuple(lv) for lv in got_asks] == [tuple(lv) for lv in ref_asks]
        assert fast.checksum() == ref.checksum()
        if i:
            concat.apply(bids, asks)
        assert concat.checksum() & 0xFFFFFFFF == ref.concatenated_crc32(3)


def test_checksum_c_crc_is_zlibs_signed_over_the_venue_string():
    book = CrcBook([["3366.1", "7"], ["3366", "6"]], [["3366.8", "9"], ["3368", "8"]])
    text = b"3366.1:7:3366.8:9:3366:6:3368:8"
    crc = zlib.crc32(text)
    assert book.checksum() == (crc - (1 << 32) if crc >= 1 << 31 else crc)
    assert CrcBook([], []).checksum() == 0


def test_checksum_c_nan_price_fails_every_check():
    book = CrcBook([["nan", "1"], ["1", "1"]], [])
    assert book.checksum() is None
    book.apply([["nan", "0"]], [])
    assert book.checksum() is None


@pytest.mark.parametrize("bad", [[["abc", "1"]], [["1"]], [5]])
def test_checksum_c_bad_level_raises_as_python_would(bad):
    with pytest.raises((ValueError, IndexError, TypeError)):
        CrcBook(bad, [])


def test_checksum_c_verifies_every_recorded_okx_checksum():
    driver = okx.OkxDriver(Market.SPOT)
    rule = driver.sync_rule()
    checked = 0
    for rec in read_records(DATA / "okx" / "books_BTC-USDT.capture.jsonl"):
        for event in driver.parse(rec["data"], 0).events:
            if event.extra.get("checksum"):
                if hasattr(event, "seq"):
                    assert rule.verify_snapshot(event)
                    rule.on_snapshot(event)
                else:
                    assert rule.check(event) is okx.APPLY
                checked += 1
    assert checked > 50


@settings(max_examples=200, deadline=None)
@given(start=st.tuples(side, side), step=st.tuples(side, side))
def test_checksum_c_wire_text_same_as_its_lists(start, step):
    """Levels as wire text (read in C, or through orjson.loads when not plain
    strings) build the same book as the lists orjson makes of that text."""
    def text(levels):
        return json.dumps(levels).encode()

    from_lists, from_text = CrcBook(*start), CrcBook(text(start[0]), msgspec.Raw(text(start[1])))
    from_lists.apply(*step)
    from_text.apply(text(step[0]), text(step[1]))
    assert from_text.levels() == from_lists.levels()
    assert from_text.checksum() == from_lists.checksum()

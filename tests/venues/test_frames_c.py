"""The whole-frame C decoder (wire.binance_depth, engine/venues/_frames.c) and
its object maker: on every recorded Binance depth frame it is taken and builds
exactly the typed path's BookDelta; on rewritten and mutated frames it either
declines (None: the typed path decides) or agrees with the typed path."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.model import BookDelta, Market
from engine.venues import binance
from engine.venues.base import Parsed
from engine.venues.binance import BinanceDriver
from tests.venues.reference import DATA, read_records
from tests.venues.test_wire import canon

try:
    from engine.venues._levels import SlotMaker, binance_depth
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("engine.venues._levels not built (pip install -e .)", allow_module_level=True)

CAPTURES = sorted((DATA / "binance").glob("*.capture.jsonl*"))


def fast(driver: BinanceDriver, frame: str | bytes):
    return binance_depth(frame, binance._new_delta, driver._pair_of, "binance", driver.market, 7)


def typed(driver: BinanceDriver, frame: str | bytes):
    try:
        return canon(driver._parse_typed(frame, 7).events[0])
    except Exception as exc:  # noqa: BLE001 - the typed path refusing is an outcome
        return ("raised", type(exc).__name__)


def test_frames_c_is_the_drivers_fast_path():
    assert binance._depth_frame is binance_depth
    assert isinstance(binance._new_delta, SlotMaker) and isinstance(binance._new_parsed, SlotMaker)


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_frames_c_every_recorded_depth_frame_taken_and_same_as_typed(path):
    taken = 0
    for market in Market:
        driver = BinanceDriver(market)
        for rec in read_records(path):
            if rec["src"] != "ws":
                continue
            frame = rec["data"]
            expected = typed(driver, frame)  # also fills the symbol cache
            got = fast(driver, frame)
            if '"depthUpdate"' in frame:
                assert got is not None, f"C decoder declined a recorded depth frame: {frame[:200]}"
                assert canon(got) == expected
                assert type(got) is BookDelta and got.extra == {} and got.recv_ns == 7
                assert canon(fast(driver, frame.encode())) == expected  # bytes as str
                taken += 1
            else:
                assert got is None  # trades, acks: not a depth frame
    assert taken > 0


def compact(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


SAMPLE = {"e": "depthUpdate", "E": 1633998512568, "s": "NKNUSDT", "U": 499869753, "u": 499869754,
          "b": [["0.35170000", "4265.00000000"]], "a": [["0.35290000", "10968.00000000"]]}


def test_frames_c_key_order_wrapper_and_extra_scalars_agree():
    driver = BinanceDriver(Market.SPOT)
    event = dict(reversed(SAMPLE.items()), T=1633998512560, pu=499869752, x="y", n=None, f=1.5e3)
    for frame in (json.dumps(event), json.dumps({"data": event, "stream": "nknusdt@depth"}),
                  json.dumps({"stream": "s", "data": event}, indent=2)):
        typed(driver, frame)
        got = fast(driver, frame)
        assert got is not None and canon(got) == typed(driver, frame)
        assert got.prev_seq == 499869752 and got.exch_ns == 1633998512568 * 1_000_000


@pytest.mark.parametrize("frame", [
    '{"data":' + compact(SAMPLE) + ',"s":"NKNUSDT"}',  # an event key beside "data"
    compact(SAMPLE).replace('"U":', '"U":1,"U":'),  # a duplicate key
    compact(SAMPLE).replace('"NKNUSDT"', '"NKN\\u0055SDT"'),  # an escape
    compact(SAMPLE).replace('499869753', '9223372036854775808'),  # beyond int64
    compact(SAMPLE).replace('499869753', '499869753.0'),  # not an integer
    compact(SAMPLE).replace('"E":1633998512568', '"E":9223372036854775807'),  # ns overflow
    compact({**SAMPLE, "extra": {"k": 1}}),  # a nested unknown value
    compact({**SAMPLE, "e": "aggTrade"}),  # another event
    compact({k: v for k, v in SAMPLE.items() if k != "e"}),  # no tag
    compact(SAMPLE) + "x", compact(SAMPLE)[:-1], "", "[]", "null",
])
def test_frames_c_declines_what_it_does_not_read_exactly(frame):
    driver = BinanceDriver(Market.SPOT)
    typed(driver, compact(SAMPLE))
    assert fast(driver, compact(SAMPLE)) is not None
    assert fast(driver, frame) is None
    assert canon(driver.parse(frame, 7)) == canon(driver._parse_generic(frame, 7))


def test_frames_c_unknown_symbol_declined_then_cached_by_the_typed_path():
    driver = BinanceDriver(Market.SPOT)
    frame = json.dumps(SAMPLE)
    assert fast(driver, frame) is None
    parsed = driver.parse(frame, 7)
    assert parsed.events[0].pair == "NKN/USDT"
    assert fast(driver, frame) is not None


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_frames_c_mutated_frames_decline_or_agree(data):
    driver = BinanceDriver(Market.FUTURES)
    base = json.dumps({"stream": "nknusdt@depth", "data": {**SAMPLE, "pu": 499869752}})
    typed(driver, base)
    cut = data.draw(st.integers(0, len(base)))
    insert = data.draw(st.sampled_from(['"', ",", "}", "]", "[", " ", "0", "-", "e", ".", "\\",
                                        "\u00e9", '"E":1,', "1e5", "null", "", "\x00"]))
    drop = data.draw(st.integers(0, 3))
    frame = base[:cut] + insert + base[cut + drop:]
    got = fast(driver, frame)
    if got is not None:
        assert canon(got) == typed(driver, frame), frame
    assert canon(driver.parse(frame, 7)) == canon(driver._parse_generic(frame, 7))


def test_slot_maker_builds_what_the_class_builds():
    maker = binance._new_parsed
    built = maker([1], ["r"], True, ("A/B",), 5)
    assert built == Parsed([1], ["r"], True, ("A/B",), 5) and type(built) is Parsed
    with pytest.raises(TypeError):
        maker([1])


def test_slot_maker_refuses_a_class_whose_slots_are_not_the_names():
    @dataclasses.dataclass(slots=True)
    class Two:
        a: int
        b: int

    with pytest.raises(TypeError):
        SlotMaker(Two, ("a",))  # a slot left unset
    with pytest.raises(TypeError):
        SlotMaker(Two, ("a", "c"))

    @dataclasses.dataclass
    class NoSlots:
        a: int

    with pytest.raises(TypeError):
        SlotMaker(NoSlots, ("a",))
    assert SlotMaker(Two, ("b", "a"))(1, 2) == Two(2, 1)

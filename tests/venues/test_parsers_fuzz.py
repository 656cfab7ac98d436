"""Property tests: whatever arrives, every parser returns a Parsed whose events
are normalized events or FeedError; it never raises. Inputs are arbitrary
text/bytes and real recorded frames with fields replaced by arbitrary JSON."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.model import BookDelta, BookSnapshot, FeedError, Market, Trade
from engine.venues import DRIVERS, make_driver
from engine.venues.base import Parsed
from tests.venues.reference import DATA

DRIVER_LIST = [make_driver(name, market) for name in sorted(DRIVERS) for market in Market
               if market in DRIVERS[name].markets]
EVENT_TYPES = (BookDelta, BookSnapshot, Trade, FeedError)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _real_frames() -> list[dict]:
    frames = []
    for name in ["binance/book_delta.cf.jsonl", "binance/trade.cf.jsonl", "bybit/book_delta.v5hist.jsonl",
                 "okx/book_delta.cf.jsonl", "okx/trade.cf.jsonl", "okx/book_snapshot.cf.jsonl"]:
        frames += [json.loads(line) for line in (DATA / name).read_text().splitlines()[:2]]
    return frames


REAL = _real_frames()
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                    max_leaves=12)


def _check(parsed: Parsed) -> None:
    assert isinstance(parsed, Parsed)
    assert all(isinstance(event, EVENT_TYPES) for event in parsed.events)


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:3]):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


def _replace(obj, path, value):
    if not path:
        return value
    copy = json.loads(json.dumps(obj))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return copy


@FUZZ
@given(st.text())
def test_parse_arbitrary_text_never_raises(text):
    for driver in DRIVER_LIST:
        _check(driver.parse(text, 0))


@FUZZ
@given(st.binary())
def test_parse_arbitrary_bytes_never_raises(data):
    for driver in DRIVER_LIST:
        _check(driver.parse(data, 0))


@FUZZ
@given(st.sampled_from(REAL), st.data(), JSON)
def test_parse_real_frame_with_mutated_field_never_raises(frame, data, value):
    path = data.draw(st.sampled_from(list(_paths(frame))))
    mutated = json.dumps(_replace(frame, path, value))
    for driver in DRIVER_LIST:
        _check(driver.parse(mutated, 0))


@FUZZ
@given(st.text() | st.binary())
def test_parse_snapshot_arbitrary_body_raises_only_value_or_type_error(body):
    for driver in DRIVER_LIST:
        if driver.snapshot_request("BTC/USDT", 20) is None:
            continue
        try:
            driver.parse_snapshot("BTC/USDT", body, 0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            pass

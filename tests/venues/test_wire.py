"""Typed decoding (engine.venues.wire) and the drivers' typed paths: on every
recorded frame and REST body the typed path returns exactly what the generic
orjson parser returns, and takes every book and trade frame; on mutated frames
the two never disagree; the number grammar never reads a value that float()
would read differently."""

from __future__ import annotations

import base64
import dataclasses
import json
import math
from pathlib import Path

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.model import BookDelta, BookSnapshot, Market, Trade
from engine.venues import DRIVERS, make_driver
from engine.venues.base import Parsed
from engine.venues.wire import WireInt, decode_levels
from tests.venues.reference import DATA, read_records

DRIVER_LIST = [make_driver(name, market) for name in sorted(DRIVERS) for market in Market]
# Captures of venues whose driver has both a typed and a generic parser.
CAPTURES = sorted(p for p in DATA.glob("*/*.capture.jsonl*")
                  if p.parent.name in DRIVERS
                  and hasattr(DRIVERS[p.parent.name], "_parse_typed")
                  and hasattr(DRIVERS[p.parent.name], "_parse_generic"))
MARKET_DATA = (BookDelta, BookSnapshot, Trade)


def canon(value):
    """Events as comparable data: scalar types included (1 is not 1.0), NaN
    equal to NaN, -0.0 equal to 0.0 (the one documented difference, wire.py).
    wire.fast_levels' Levels stand for the list of float tuples they equal."""
    if type(value).__name__ == "Levels":
        value = value.tolist()
    if isinstance(value, msgspec.Raw):  # wire levels kept as text for the checksum book,
        value = orjson.loads(bytes(value))  # as the generic path's orjson reads them
    if isinstance(value, float):
        return ("float", "nan" if math.isnan(value) else value)
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, *map(canon, value))
    if isinstance(value, dict):
        return ("dict", sorted((k, canon(v)) for k, v in value.items()))
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, *(canon(getattr(value, f.name)) for f in dataclasses.fields(value)))
    return (type(value).__name__, value)


def outcome(call, *args):
    try:
        return canon(call(*args))
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome compared
        return ("raised", type(exc).__name__, str(exc))


def check_frame(driver, frame) -> Parsed:
    """parse() == the generic parser; and a frame with market data took the typed path."""
    generic = driver._parse_generic(frame, 7)
    assert canon(driver.parse(frame, 7)) == canon(generic)
    if any(isinstance(event, MARKET_DATA) for event in generic.events):
        assert canon(driver._parse_typed(frame, 7)) == canon(generic)
    return generic


# ---------------------------------------------------------- recorded traffic


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_typed_path_every_recorded_frame_same_as_generic(path: Path):
    records = read_records(path)
    typed = 0
    for market in Market:
        driver = make_driver(path.parent.name, market)
        for rec in records:
            if rec["src"] == "ws":
                data = base64.b64decode(rec["data"]) if rec.get("enc") == "b64" else rec["data"]
                typed += any(isinstance(e, MARKET_DATA) for e in check_frame(driver, data).events)
                continue
            pair = driver.snapshot_pair(rec["url"])
            if pair is not None:
                generic = outcome(driver._parse_snapshot_generic, pair, rec["data"], 5)
                assert generic[0] == "BookSnapshot"
                assert outcome(driver.parse_snapshot, pair, rec["data"], 5) == generic
                assert outcome(driver._parse_snapshot_typed, pair, rec["data"], 5) == generic
    assert typed > 0


def test_typed_path_okx_current_shape_checksum_zero_with_seq_ids():
    """Frames as OKX sends them since 2026-06-23: seqId/prevSeqId, checksum 0."""
    driver = make_driver("okx", "spot")
    records = [r for r in read_records(DATA / "okx" / "books_BTC-USDT.capture.jsonl") if r["src"] == "ws"]
    for i, rec in enumerate(records):
        msg = json.loads(rec["data"])
        for item in msg["data"]:
            item.update(checksum=0, seqId=1000 + i, prevSeqId=999 + i if i else -1)
        (event,) = check_frame(driver, json.dumps(msg)).events
        assert event.extra == {} and (event.seq if i == 0 else event.last_seq) == 1000 + i


def test_typed_path_binance_raw_event_without_wrapper():
    frame = json.loads((DATA / "binance" / "book_delta.cf.jsonl").read_text().splitlines()[0])["data"]
    (delta,) = check_frame(make_driver("binance", "spot"), json.dumps(frame)).events
    assert delta.last_seq == frame["u"]


# ---------------------------------------------------------------- grammar


@pytest.mark.parametrize("text", ["0.35130000", "4265.00000000", "1e-8", "5E-3", "-0.0", "0",
                                  "123456789012345678901234567890", "0.1000000000000000055511151231257827",
                                  "-1", "nan", "NaN", "inf", "-Infinity"])
def test_wire_decode_levels_reads_quoted_decimal_as_float_does(text):
    """nan/inf/negative decode exactly as float() reads them: the book writer
    refuses such levels (tests/feed/test_sync.py), not the decoder."""
    ((price, size),) = decode_levels(json.dumps([[text, text]]))
    expected = float(text)
    assert math.copysign(1, price) == math.copysign(1, expected)
    assert price == expected or (math.isnan(price) and math.isnan(expected))
    assert type(price) is float and type(size) is float


@pytest.mark.parametrize("value", [" 1", "1 ", "+1", "1_0", ".5", "1.", "0001", "1e400", "\u0661", "",
                                   "abc", "0x10", True, None, [1]])
def test_wire_decode_levels_refuses_what_float_reads_otherwise(value):
    """Refused values go to the generic parser, whose float() decides."""
    with pytest.raises(msgspec.ValidationError):
        decode_levels(json.dumps([[value, "1"]]))


NUMBERISH = (st.from_regex(r"\A[ +-]?[0-9_]{0,4}\.?[0-9]{0,4}([eE][+-]?[0-9]{0,4})?\Z")
             | st.sampled_from(["nan", "-nan", "inf", "+inf", "Infinity", "-0", "1e308", "2e-324"]))


@settings(max_examples=300, deadline=None)
@given(NUMBERISH)
def test_wire_decode_levels_accepts_only_what_float_reads_the_same(text):
    try:
        ((price, _),) = decode_levels(json.dumps([[text, "1"]]))
    except msgspec.ValidationError:
        return
    expected = float(text)  # msgspec accepted it, so float() must too
    assert price == expected or (math.isnan(price) and math.isnan(expected))


def test_wire_int_is_a_json_integer_within_int64():
    decode = msgspec.json.Decoder(dict[str, WireInt]).decode
    assert decode(b'{"n":9223372036854775807}') == {"n": 2**63 - 1}
    for body in (b'{"n":9223372036854775808}', b'{"n":"5"}', b'{"n":1.0}', b'{"n":true}'):
        with pytest.raises(msgspec.ValidationError):
            decode(body)


# ---------------------------------------------------------- mutated frames


def _trimmed(value):
    """Lists cut to four entries: mutations touch the first three, and a
    1000-level body only makes the run slower."""
    if isinstance(value, list):
        return [_trimmed(v) for v in value[:4]]
    if isinstance(value, dict):
        return {k: _trimmed(v) for k, v in value.items()}
    return value


def _frames(name: str, count: int = 2) -> list:
    return [_trimmed(json.loads(line)) for line in (DATA / name).read_text().splitlines()[:count]]


def _okx_current(frame: dict) -> dict:
    frame = json.loads(json.dumps(frame))
    for item in frame["data"]:
        item.update(checksum=0, seqId=12, prevSeqId=11)
    return frame


FRAMES = (_frames("binance/book_delta.cf.jsonl") + _frames("binance/trade.cf.jsonl")
          + [_frames("binance/book_delta.cf.jsonl")[0]["data"]]
          + _frames("bybit/book_delta.v5hist.jsonl", 1) + _frames("bybit/book_snapshot.v5hist.jsonl", 1)
          + _frames("okx/book_delta.cf.jsonl") + _frames("okx/trade.cf.jsonl")
          + [_okx_current(f) for f in _frames("okx/book_delta.cf.jsonl")])
REST_BODIES = {"binance": _frames("binance/book_snapshot_rest.cf.jsonl", 1)[0],
               "okx": {"code": "0", "msg": "", "data": [{"asks": [["41006.8", "0.6", "0", "1"]],
                                                         "bids": [["41006.3", "0.3", "0", "2"]],
                                                         "ts": "1629966436396", "seqId": 3082930112}]}}
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | NUMBERISH,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                    max_leaves=12)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:3]):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


def _confusions(value) -> list:
    """Values one JSON type away from ``value``: where a lax decoder and
    int()/float()/truthiness would part ways."""
    out = [None, True, False, "true", "false", "0", "1", "1e3", "1.0", "-0", "nan", "", [], {},
           1.5, 2**63, 2**64, -(2**63) - 1]
    if isinstance(value, str):
        out += [value + " ", "+" + value, [value, value]]
        try:
            out += [json.loads(value), float(value)]
        except ValueError:
            pass
    elif isinstance(value, bool):
        out += [str(value).lower(), int(value)]
    elif isinstance(value, (int, float)):
        out += [str(value), float(value), f"{value}.0", value + 0.5]
    return out


_DELETE = object()


def _replaced(frame: dict, path: tuple, value) -> str:
    copy = json.loads(json.dumps(frame))
    node = copy
    for key in path[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(copy)


# Keys some venue frame has: added where absent, they may change what a frame is.
EXTRA_KEYS = ["event", "code", "msg", "success", "data", "e", "pu", "cts", "ts", "seq", "seqId",
              "prevSeqId", "checksum", "type", "action"]


def _near_misses(frame: dict):
    """Every field and level element of ``frame`` (first three of a list) in
    turn deleted or replaced by each of its near misses; every object with each
    absent venue key added."""
    for path in ((), *_paths(frame)):
        node = frame
        for key in path:
            node = node[key]
        if path:
            for value in _confusions(node) + ([_DELETE] if isinstance(path[-1], str) else []):
                yield _replaced(frame, path, value)
        if isinstance(node, dict):
            for key in EXTRA_KEYS:
                if key not in node:
                    for value in (None, 0, 5, "x", "error", "snapshot"):
                        yield _replaced(frame, (*path, key), value)


def test_typed_path_every_near_miss_same_as_generic():
    for frame in FRAMES:
        for mutated in _near_misses(frame):
            for driver in DRIVER_LIST:
                assert canon(driver.parse(mutated, 7)) == canon(driver._parse_generic(mutated, 7)), mutated


def test_typed_snapshot_every_near_miss_same_as_generic():
    for venue, body in REST_BODIES.items():
        for mutated in _near_misses(body):
            for market in Market:
                driver = make_driver(venue, market)
                assert (outcome(driver.parse_snapshot, "BTC/USDT", mutated, 5)
                        == outcome(driver._parse_snapshot_generic, "BTC/USDT", mutated, 5)), mutated


@FUZZ
@given(st.sampled_from(FRAMES), st.data(), JSON)
def test_typed_path_mutated_frame_same_as_generic(frame, data, value):
    path = data.draw(st.sampled_from(list(_paths(frame))))
    mutated = _replaced(frame, path, value)
    for driver in DRIVER_LIST:
        assert canon(driver.parse(mutated, 7)) == canon(driver._parse_generic(mutated, 7))


@FUZZ
@given(st.sampled_from(sorted(REST_BODIES)), st.data(), JSON)
def test_typed_snapshot_mutated_body_same_as_generic(venue, data, value):
    path = data.draw(st.sampled_from(list(_paths(REST_BODIES[venue]))))
    body = _replaced(REST_BODIES[venue], path, value)
    for market in Market:
        driver = make_driver(venue, market)
        assert (outcome(driver.parse_snapshot, "BTC/USDT", body, 5)
                == outcome(driver._parse_snapshot_generic, "BTC/USDT", body, 5))

"""wire.fast_levels' C decoder (engine/venues/_levels.c) against msgspec's
decode_levels: on any text it either refuses (and fast_levels falls back) or
returns exactly msgspec's doubles; the result behaves as the list it equals."""

import os

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.venues.wire import decode_levels, fast_levels

try:
    from engine.venues._levels import Levels, parse_levels
except ImportError:
    if os.environ.get("CI"):
        raise
    pytest.skip("engine.venues._levels not built (pip install -e .)", allow_module_level=True)

digits = st.text("0123456789", min_size=1, max_size=12)
number = st.one_of(
    st.builds(lambda s, i, f, e: f"{s}{i}{f}{e}", st.sampled_from(["", "-", "+", " "]), digits,
              st.sampled_from(["", "."]).flatmap(lambda d: st.just(d) if not d else digits.map(d.__add__)),
              st.sampled_from(["", "e5", "E-3", "e+400", "e", "e-400"])),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-0", "00", ".5", "1.", "1_0", "nan", "inf", "0x10", "1e308", "2e308"]),
)
quote = st.sampled_from(['"', '"', ""])
pair = st.builds(lambda q1, a, q2, b, w: f"[{w}{q1}{a}{q1}{w},{q2}{b}{q2}]", quote, number, quote,
                 number, st.sampled_from(["", " ", "\n"]))
text = st.lists(pair, max_size=5).map(lambda ps: "[" + ",".join(ps) + "]")


@settings(max_examples=600, deadline=None)
@given(raw=st.one_of(text, st.text(max_size=30)))
def test_levels_c_refuses_or_equals_msgspec(raw):
    data = raw.encode()
    try:
        expected = decode_levels(data)
    except (msgspec.DecodeError, msgspec.ValidationError):
        expected = None
    try:
        got = parse_levels(data)
    except ValueError:
        got = None
    if got is not None:
        assert expected is not None, f"C decoder read {raw!r}, msgspec refuses it"
        assert canon(got) == canon(expected)
    if expected is not None:
        assert canon(fast_levels(data)) == canon(expected)


def canon(levels):
    """NaN equal to NaN; -0.0 as 0.0 (a zero size deletes, a zero price is refused)."""
    return [tuple("nan" if x != x else x + 0.0 for x in lv) for lv in levels]


def test_levels_c_behaves_as_the_list_it_equals():
    lv = parse_levels(b'[["0.35170000","4265.00000000"],[1,2e3]]')
    assert isinstance(lv, Levels)
    as_list = [(0.3517, 4265.0), (1.0, 2000.0)]
    assert lv == as_list and as_list == lv and lv != [] and lv.tolist() == as_list
    assert len(lv) == 2 and lv[-1] == (1.0, 2000.0) and lv[:1] == as_list[:1]
    assert [px for px, _ in lv] == [0.3517, 1.0]
    assert memoryview(lv).tolist() == [[0.3517, 4265.0], [1.0, 2000.0]]
    with pytest.raises(TypeError):
        hash(lv)
    assert not parse_levels(b"[]")


def test_levels_c_concatenates_as_the_list_it_equals():
    a, b = parse_levels(b'[[1,2]]'), parse_levels(b'[["3","4"]]')
    assert a + b == [(1.0, 2.0), (3.0, 4.0)] and type(a + b) is list
    assert a + [(5.0, 6.0)] == [(1.0, 2.0), (5.0, 6.0)]
    assert [(0.0, 0.0)] + a == [(0.0, 0.0), (1.0, 2.0)]
    with pytest.raises(TypeError):
        a + "x"


def test_levels_c_width_reads_and_drops_the_extra_scalars():
    assert parse_levels(b'[["1.5","2","0","4"]]', 4) == [(1.5, 2.0)]
    for text in (b'[["1.5","2","0"]]', b'[["1.5","2","0",[4]]]', b'[["1.5","2"]]'):
        with pytest.raises(ValueError):
            parse_levels(text, 4)

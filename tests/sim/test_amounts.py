"""Exact decimal strings <-> scaled integers, and fee rounding."""

from __future__ import annotations

import pytest

from engine.sim.amounts import (
    FeeRate,
    decimals_of,
    format_units,
    is_decimal_text,
    rescale,
    to_units,
)


@pytest.mark.parametrize("text, decimals", [("0.01", 2), ("0.0100", 2), ("5", 0),
                                            ("0.00001000", 5), ("10", 0)])
def test_decimals_of_counts_significant_places(text: str, decimals: int) -> None:
    assert decimals_of(text) == decimals


def test_to_units_is_exact_and_refuses_hidden_precision() -> None:
    assert to_units("30000.12", 2) == 3_000_012
    assert to_units("1.50000000", 2) == 150
    assert to_units("0.001", 2) is None
    assert to_units("7", 3) == 7000


def test_format_units_round_trips() -> None:
    for value, decimals in ((3_000_012, 2), (5, 8), (0, 8), (123, 0), (-150, 2)):
        text = format_units(value, decimals)
        assert to_units(text.lstrip("-"), decimals) == abs(value)
    assert format_units(5, 8) == "0.00000005"


def test_wire_pattern_is_binances() -> None:
    assert is_decimal_text("0.1") and is_decimal_text("10")
    for bad in ("1e-5", ".5", "-1", "1.", "1,5", " 1"):
        assert not is_decimal_text(bad)


def test_rescale_widens_exactly_and_refuses_lossy_narrowing() -> None:
    assert rescale(15, 1, 3) == 1500
    assert rescale(1500, 3, 1) == 15
    with pytest.raises(AssertionError):
        rescale(1501, 3, 1)


def test_fee_rate_rounds_down_and_rejects_nonsense() -> None:
    rate = FeeRate("0.001")
    assert rate.of(999) == 0 and rate.of(1000) == 1 and rate.of(123_456) == 123
    assert not FeeRate("0")
    for bad in ("1", "-0.1", "1.5"):
        with pytest.raises(ValueError):
            FeeRate(bad)

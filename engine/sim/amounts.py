"""Exact money for the local venue: decimal strings <-> scaled integers.

Owns parsing and formatting of prices, quantities and asset amounts. Inside the
venue every amount is an ``int`` counting ``10**-decimals`` units; nothing here
ever goes through a float, and nothing outside the wire layer sees a string.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# Binance's "legal range" for DECIMAL parameters (the -1100 message quotes it).
DECIMAL_PATTERN = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_DECIMAL_RE = re.compile(DECIMAL_PATTERN)

# Binance reports every asset with 8 decimals (baseAssetPrecision and friends);
# the venue never shows fewer, and more only when a tick or step needs them.
WIRE_DECIMALS = 8


def is_decimal_text(text: str) -> bool:
    return _DECIMAL_RE.match(text) is not None


def decimals_of(text: str) -> int:
    """Significant decimals of a decimal string: "0.0100" -> 2, "5" -> 0."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal: {text!r}") from None
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int), f"not a finite decimal: {text!r}"
    return max(0, -exponent)


def to_units(text: str, decimals: int) -> int | None:
    """Parse a plain decimal string into units of 10**-decimals.

    Returns None when the text carries non-zero digits beyond ``decimals``
    (the caller decides whether that is -1111 or a filter failure). The text
    must already match DECIMAL_PATTERN.
    """
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0")
    if len(frac) > decimals:
        return None
    return int(whole) * 10**decimals + (int(frac.ljust(decimals, "0")) if decimals else 0)


def config_units(text: str, decimals: int, what: str) -> int:
    """Parse a config value that must be a non-negative decimal exact at
    ``decimals``; fail loudly, naming the key."""
    try:
        plain = format(Decimal(text), "f")
    except InvalidOperation:
        raise ValueError(f"{what}={text!r} is not a decimal") from None
    units = to_units(plain, decimals) if is_decimal_text(plain) else None
    if units is None:
        raise ValueError(f"{what}={text!r} must be a non-negative decimal with at most "
                         f"{decimals} decimals")
    return units


def format_units(value: int, decimals: int) -> str:
    """Units back to a fixed-point string: (123456, 4) -> "12.3456"."""
    if decimals == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    value = abs(value)
    scale = 10**decimals
    return f"{sign}{value // scale}.{value % scale:0{decimals}d}"


def rescale(value: int, from_decimals: int, to_decimals: int) -> int:
    """Exact change of unit; only widening is exact, so narrowing must divide."""
    if to_decimals >= from_decimals:
        return value * 10 ** (to_decimals - from_decimals)
    factor = 10 ** (from_decimals - to_decimals)
    assert value % factor == 0, f"{value} not exact at {to_decimals} decimals"
    return value // factor


class FeeRate:
    """A commission rate as an exact fraction; the fee on an amount rounds down.

    Rounding down is the exchange's loss, never the user's, and the amount
    rounded away simply stays with the receiver: balances plus collected fees
    are conserved exactly.
    """

    __slots__ = ("text", "numerator", "denominator")

    def __init__(self, text: str) -> None:
        value = Decimal(text)
        if not (0 <= value < 1):
            raise ValueError(f"fee rate {text!r} must be in [0, 1)")
        self.text = text
        self.numerator, self.denominator = value.as_integer_ratio()

    def of(self, amount: int) -> int:
        return amount * self.numerator // self.denominator

    def __bool__(self) -> bool:
        return self.numerator != 0

    def __repr__(self) -> str:
        return f"FeeRate({self.text!r})"

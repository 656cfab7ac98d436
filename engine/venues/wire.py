"""Typed frame decoding for the venue drivers' hot path (msgspec, in C): book
and trade frames to typed fields and float price levels, no Python call per
number. Never the only parser and never the one that decides: whatever these
types refuse goes to the driver's generic orjson parser, which defines the
behaviour (tests/venues/test_wire.py checks the two agree).

Why the typed path can only ever return what the generic one would:

- Envelope fields are decoded strictly (an int must be a JSON int, a str a JSON
  string, a bool a JSON bool). msgspec's lax mode would also turn "1e3" or
  "1.0" into an int and "false" into a bool, where ``int()`` raises and a
  non-empty string is truthy, so lax is used for price levels only.
- Price levels use lax decoding, whose only effect on ``float`` is accepting a
  quoted decimal. msgspec's number grammar is a subset of ``float()``'s (it
  refuses " 1", "+1", "1_0", ".5", "1.", "0001", "1e400"; those fall back and
  ``float()`` decides) and rounds to the same double. The one difference is
  the sign of a zero written "-0" (msgspec gives 0.0, ``float`` -0.0): equal
  as a number, and a zero size deletes / a zero price is refused either way.
- "nan", "inf" and negative numbers decode, exactly as with ``float()``: the
  book writer refuses such a level (BookDataError: the book is counted and
  resynced), so a driver-side check would change that behaviour, not add one.
- Ints are bounded to int64: orjson turns larger JSON integers into floats,
  msgspec would keep them exact; out of range falls back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from operator import itemgetter
from typing import Annotated, Any

import msgspec

# A JSON integer that orjson and msgspec read identically (see above).
WireInt = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]

# [["0.35170000","4265.00000000"], ...] -> [(0.3517, 4265.0), ...], the
# normalized Level lists as they go into BookDelta and BookSnapshot.
decode_levels = msgspec.json.Decoder(list[tuple[float, float]], strict=False).decode

try:  # JSON levels straight to C doubles (engine/venues/_levels.c), built by pip install -e .
    from engine.venues._levels import SlotMaker  # type: ignore[import-not-found]
    from engine.venues._levels import binance_depth as _binance_depth
    from engine.venues._levels import parse_levels as _parse_levels
except ImportError:
    _parse_levels = _binance_depth = SlotMaker = None

# Binance depthUpdate frame -> BookDelta in one C call (engine/venues/_frames.c),
# or None (not a plain depth frame: the typed path decides); None if not built.
binance_depth: Callable[..., Any] | None = _binance_depth


_price_size = itemgetter(0, 1)


def wide_levels(width: int) -> Callable[[msgspec.Raw | bytes], Any]:
    """fast_levels for levels of ``width`` items, ``[price, size, ...]`` (OKX
    sends 4, MEXC futures 3): the C decoder where it reads the text (the
    items after the size must be plain scalars), else msgspec's
    ``list[tuple[float, float, Any, ...]]``, and (price, size) pairs either way."""
    rows = msgspec.json.Decoder(list[tuple[(float, float) + (Any,) * (width - 2)]],  # type: ignore[misc]
                                strict=False).decode

    def decode(raw: msgspec.Raw | bytes) -> Any:
        if _parse_levels is not None:
            try:
                return _parse_levels(raw, width)
            except ValueError:
                pass
        return list(map(_price_size, rows(raw)))

    return decode


def slot_maker(cls: type) -> Callable[..., Any] | None:
    """A C constructor ``maker(*values)`` for the plain slotted dataclass ``cls``
    (every field, in order, positional; no __init__ frame), or None when the
    extension is missing or ``cls`` is not such a class (a __post_init__, a
    __dict__, slots that are not its fields): callers then use ``cls`` itself.
    Fields with a default factory get no default: pass a fresh value."""
    if SlotMaker is None or not dataclasses.is_dataclass(cls):
        return None
    names = tuple(f.name for f in dataclasses.fields(cls))
    if getattr(cls, "__slots__", None) != names or hasattr(cls, "__post_init__"):
        return None
    try:
        return SlotMaker(cls, names)
    except TypeError:
        return None


# For typed paths that fall back to the generic parser as a whole: the C
# decoder itself (raises ValueError on what it refuses), else msgspec's.
strict_levels = decode_levels if _parse_levels is None else _parse_levels


def fast_levels(raw: msgspec.Raw | bytes) -> list[tuple[float, float]]:
    """decode_levels without a Python tuple per level: an immutable ``Levels``
    sequence of (price, size) floats, equal to the list decode_levels returns,
    whose doubles the book core reads in place. It accepts a subset of
    msgspec's grammar (plain RFC 8259 numbers, quoted or bare) with the same
    doubles; anything else goes to decode_levels, which decides as before."""
    if _parse_levels is None:
        return decode_levels(raw)
    try:
        return _parse_levels(raw)
    except ValueError:
        return decode_levels(raw)

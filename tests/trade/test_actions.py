"""The actions contract: the client-order-id scheme and exact money."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine.model import Market, Side
from engine.trade.actions import (
    AmendOrder,
    PlaceOrder,
    TimeInForce,
    make_client_order_id,
    parse_client_order_id,
    wire_decimal,
)


def test_client_order_id_is_deterministic_and_parses_back() -> None:
    cid = make_client_order_id("42", 1234, 77)
    assert cid == "E42-ya-25" == make_client_order_id("42", 1234, 77)
    parsed = parse_client_order_id(cid)
    assert parsed is not None and (parsed.strategy_id, parsed.slot_id, parsed.generation) == (
        "42", 1234, 77)
    assert parse_client_order_id(make_client_order_id("grid_a", None, 0)).slot_id is None


def test_client_order_id_stays_within_binance_limits() -> None:
    longest = make_client_order_id("a" * 16, 36**8 - 1, 36**9 - 1)
    assert len(longest) == 36
    with pytest.raises(ValueError):
        make_client_order_id("a" * 17, 1, 1)
    with pytest.raises(ValueError):
        make_client_order_id("bad-id", 1, 1)
    with pytest.raises(ValueError):
        make_client_order_id("a", 36**8, 1)


@pytest.mark.parametrize("foreign", ["web_123", "x-ABC-1", "E1-2", "E1-2-3-4", "and_9"])
def test_ids_we_did_not_make_are_not_ours(foreign: str) -> None:
    assert parse_client_order_id(foreign) is None


@pytest.mark.parametrize("value, text", [
    ("29000.00", "29000"), ("0.00000001", "0.00000001"), ("1E+2", "100"), ("0.0", "0"),
    ("12.3400", "12.34")])
def test_wire_decimal_is_exact_plain_notation(value: str, text: str) -> None:
    assert wire_decimal(Decimal(value)) == text


def test_place_order_refuses_floats_and_contradictions() -> None:
    with pytest.raises(TypeError):
        PlaceOrder("E1-1-0", "binance", Market.SPOT, "BTC/USDT", Side.BUY, 29000.0,  # type: ignore[arg-type]
                   Decimal("1"))
    with pytest.raises(ValueError):
        PlaceOrder("E1-1-0", "binance", Market.SPOT, "BTC/USDT", Side.BUY, Decimal("1"),
                   Decimal("1"), post_only=True, time_in_force=TimeInForce.IOC)
    order = PlaceOrder("E1-1-0", "binance", Market.SPOT, "BTC/USDT", Side.BUY, Decimal("2"),
                       Decimal("3"))
    assert order.notional == Decimal("6")
    with pytest.raises(ValueError):
        AmendOrder("E1-1-0", order)

"""Bybit v5 retCodes and messages, and the translation of the venue core's
rejections (Binance-shaped) into them, per category.

Source: bybit-exchange.github.io/docs/v5/error (UTA table: 10001, 10002,
10003, 10004, 10006, 110001, 110007, 110017, 110024, 110025, 110043, 110072,
110094; spot trade: 170121, 170131, 170134, 170136, 170137, 170140, 170141,
170213).
"""

from __future__ import annotations

from typing import Any

from engine.sim.orders import Rejected

SPOT, LINEAR = "spot", "linear"


class BybitError(Exception):
    """A non-zero retCode answer (HTTP 200 with the v5 envelope)."""

    def __init__(self, code: int, msg: str, status: int = 200, data: Any = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status
        self.data = data


def params_error(detail: str) -> BybitError:
    return BybitError(10001, f"params error: {detail}")


INVALID_KEY = (10003, "API key is invalid.")
TOO_MANY_VISITS = (10006, "Too many visits!")
LEVERAGE_NOT_MODIFIED = (110043, "Set leverage not modified")
MODE_NOT_MODIFIED = (110025, "Position mode is not modified")
MODE_WITH_POSITION = (110024, "You have an existing position, so position mode cannot be switched")

_NOT_FOUND = {SPOT: (170213, "Order does not exist."), LINEAR: (110001, "Order does not exist")}
_DUPLICATE = {SPOT: (170141, "Duplicate clientOrderId"), LINEAR: (110072, "OrderLinkedID is duplicate")}
_INSUFFICIENT = {SPOT: (170131, "Insufficient balance."),
                 LINEAR: (110007, "ab not enough for new order")}
_PRICE = {SPOT: (170134, "Order price decimal too long."), LINEAR: (10001, "params error: price invalid")}
_QTY = {SPOT: (170137, "Order quantity has too many decimals."),
        LINEAR: (10001, "params error: Qty invalid")}
_NOTIONAL = {SPOT: (170140, "Order value exceeded lower limit."),
             LINEAR: (110094, "Order does not meet minimum order value")}
_SYMBOL = {SPOT: (170121, "Invalid symbol."), LINEAR: (10001, "params error: symbol invalid")}


def _family(category: str) -> str:
    """Spot has codes of its own; every derivatives category shares the 110xxx ones."""
    return SPOT if category == SPOT else LINEAR


def not_found(category: str) -> BybitError:
    return BybitError(*_NOT_FOUND[_family(category)])


def duplicate_link_id(category: str) -> BybitError:
    return BybitError(*_DUPLICATE[_family(category)])


def bad_symbol(category: str) -> BybitError:
    return BybitError(*_SYMBOL[_family(category)])


def bad_price(category: str) -> BybitError:
    return BybitError(*_PRICE[_family(category)])


def bad_qty(category: str) -> BybitError:
    return BybitError(*_QTY[_family(category)])


_BY_MESSAGE = {
    "Filter failure: PRICE_FILTER": _PRICE,
    "Filter failure: LOT_SIZE": _QTY,
    "Filter failure: NOTIONAL": _NOTIONAL,
    "Filter failure: MIN_NOTIONAL": _NOTIONAL,
    "Account has insufficient balance for requested action.": _INSUFFICIENT,
    "Duplicate order sent.": _DUPLICATE,
    "Unknown order sent.": _NOT_FOUND,
    "Margin is insufficient.": _INSUFFICIENT,
}


def translate(exc: Rejected, category: str) -> BybitError:
    """A core rejection in the category's codes; anything unmapped is 10001."""
    if exc.code == -2022:
        return BybitError(110017, "Reduce-only rule not satisfied")
    if exc.code == -4061:
        return BybitError(10001, "position idx not match position mode")
    mapped = _BY_MESSAGE.get(exc.msg)
    if mapped is not None:
        return BybitError(*mapped[_family(category)])
    return BybitError(10001, f"params error: {exc.msg}")

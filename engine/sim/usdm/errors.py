"""Binance USD-M error codes and messages, and the translation of the venue
core's rejections (spot-shaped codes) into them.

Source: developers.binance.com/docs/derivatives/usds-margined-futures/
error-code (-1102, -1111, -1116, -1117, -2011, -2013, -2019, -2021, -2022,
-4003, -4014, -4028, -4046, -4047, -4048, -4059, -4061, -4067, -4068, -4116,
-4164, -5022).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from engine.sim.orders import Rejected
from engine.sim.rest_params import ApiError

T = TypeVar("T")

GTX_REJECTED = (-5022, "Due to the order could not be executed as maker, the Post Only order "
                       "will be rejected. The order will not be recorded in the order history")
IMMEDIATE_TRIGGER = (-2021, "Order would immediately trigger.")
DUPLICATE_CLIENT_ID = (-4116, "ClientOrderId is duplicated.")
UNKNOWN_ORDER = (-2011, "Unknown order sent.")
NO_SUCH_ORDER = (-2013, "Order does not exist.")
PRICE_TICK = (-4014, "Price not increased by tick size.")
QTY_PRECISION = (-1111, "Precision is over the maximum defined for this asset.")
MIN_NOTIONAL = (-4164, "Order's notional must be no smaller than 5 (unless you choose reduce "
                       "only).")
NO_NEED_MARGIN_TYPE = (-4046, "No need to change margin type.")
MARGIN_TYPE_OPEN_ORDERS = (-4047, "Margin type cannot be changed if there exists open orders.")
MARGIN_TYPE_POSITION = (-4048, "Margin type cannot be changed if there exists position.")
NO_NEED_POSITION_SIDE = (-4059, "No need to change position side.")
POSITION_SIDE_OPEN_ORDERS = (-4067, "Position side cannot be changed if there exists open "
                                    "orders.")
POSITION_SIDE_POSITION = (-4068, "Position side cannot be changed if there exists position.")

_BY_MESSAGE = {
    "Order would immediately match and take.": GTX_REJECTED,
    "Order would trigger immediately.": IMMEDIATE_TRIGGER,
    "Duplicate order sent.": DUPLICATE_CLIENT_ID,
    "Filter failure: PRICE_FILTER": PRICE_TICK,
    "Filter failure: LOT_SIZE": QTY_PRECISION,
    "Filter failure: NOTIONAL": MIN_NOTIONAL,
}


def translate(exc: Rejected) -> ApiError:
    code, msg = _BY_MESSAGE.get(exc.msg, (exc.code, exc.msg))
    return ApiError(code, msg)


def usdm_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a handler, answering core rejections in USD-M's codes."""
    def wrapped(*args: Any) -> T:
        try:
            return fn(*args)
        except Rejected as exc:
            raise translate(exc) from None
    wrapped.__name__ = fn.__name__
    return wrapped

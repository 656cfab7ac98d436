"""OKX v5 error codes and messages, and the translation of the venue core's
rejections (Binance-shaped codes) into OKX's per-order sCode/sMsg.

Source: https://www.okx.com/docs-v5/en/#error-code (REST general 0/1/2,
50xxx, 51xxx; WebSocket 60xxx), as mirrored in ccxt's okx.py ``exceptions``
table (4.5.90) and cloudquant bt_api_py's copy of the page.
"""

from __future__ import annotations

from engine.sim.orders import Rejected


class OkxError(Exception):
    """A request-level failure: the {"code", "msg", "data": []} answer."""

    def __init__(self, code: str, msg: str, status: int = 200) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.status = status


class OrderError(Exception):
    """One order's failure inside a (batch) answer: sCode/sMsg."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


OPERATION_FAILED = ("1", "Operation failed.")
BATCH_PARTIAL = ("2", "Bulk operation partially succeeded.")
BODY_EMPTY = ("50000", "Body cannot be empty.")
JSON_SYNTAX = ("50002", "JSON syntax error")
RATE_LIMIT = ("50011", "Too Many Requests")
PARAM_EMPTY = "50014"  # Parameter {param0} can not be empty.
PARAM_EITHER = "50015"  # Either parameter {param0} or {param1} is required.
TIMESTAMP_EXPIRED = ("50102", "Timestamp request expired")
KEY_EMPTY = ("50103", "Request header \"OK-ACCESS-KEY\" can not be empty.")
PASSPHRASE_EMPTY = ("50104", "Request header \"OK-ACCESS-PASSPHRASE\" can not be empty.")
PASSPHRASE_WRONG = ("50105", "Request header \"OK-ACCESS-PASSPHRASE\" incorrect.")
SIGN_EMPTY = ("50106", "Request header \"OK-ACCESS-SIGN\" can not be empty.")
TIMESTAMP_EMPTY = ("50107", "Request header \"OK-ACCESS-TIMESTAMP\" can not be empty.")
KEY_INVALID = ("50111", "Invalid OK-ACCESS-KEY.")
TIMESTAMP_INVALID = ("50112", "Invalid OK-ACCESS-TIMESTAMP.")
SIGN_INVALID = ("50113", "Invalid Sign")
PARAM_ERROR = "51000"  # Parameter {param0} error
INSTRUMENT_MISSING = ("51001", "Instrument ID does not exist")
INSUFFICIENT = ("51008", "Order failed. Insufficient balance.")
DUPLICATE_CLIENT_ID = ("51016", "Duplicated clOrdId")
MIN_SIZE = ("51020", "Your order should meet or exceed the minimum order amount.")
LOT_SIZE = ("51121", "Order quantity must be a multiple of the lot size.")
TICK_SIZE = ("51000", "Parameter px error")
CANCEL_MISSING = ("51400", "Order cancellation failed as the order has been filled, "
                            "canceled or does not exist.")
ORDER_MISSING = ("51603", "Order does not exist")
LEVERAGE_INVALID = ("51000", "Parameter lever error")
REDUCE_ONLY = ("51169", "Order failed because you don't have any positions in this direction "
                        "for this contract to reduce or close.")
MARGIN_INSUFFICIENT = ("51008", "Order failed. Insufficient USDT margin in account")
WS_ILLEGAL = ("60012", "Invalid request")
WS_LOGIN_FAILED = ("60009", "Login failed.")
WS_NOT_LOGGED_IN = ("60011", "Please log in")
WS_TIMESTAMP = ("60004", "Invalid timestamp")
WS_KEY = ("60005", "Invalid OK-ACCESS-KEY")
WS_NOT_EXIST = "60018"  # Wrong URL or channel:{channel},instId:{instId} doesn't exist.
WS_PASSPHRASE = ("60024", "Wrong passphrase")
# Post-only that would take: accepted ("0"), then canceled with cancelSource 31 (protocols notes).
POST_ONLY_CANCEL_SOURCE = "31"
POST_ONLY_CANCEL_REASON = "The post-only order will take liquidity in taker orders"

_BY_MESSAGE = {
    "Duplicate order sent.": DUPLICATE_CLIENT_ID,
    "Filter failure: PRICE_FILTER": TICK_SIZE,
    "Filter failure: LOT_SIZE": LOT_SIZE,
    "Filter failure: NOTIONAL": MIN_SIZE,
    "Filter failure: MIN_NOTIONAL": MIN_SIZE,
    "Account has insufficient balance for requested action.": INSUFFICIENT,
    "Margin is insufficient.": MARGIN_INSUFFICIENT,
    "ReduceOnly Order is rejected.": REDUCE_ONLY,
    "Unknown order sent.": CANCEL_MISSING,
}


def translate(exc: Rejected) -> OrderError:
    code, msg = _BY_MESSAGE.get(exc.msg, (PARAM_ERROR, f"Order failed: {exc.msg}"))
    return OrderError(code, msg)


def param_error(name: str) -> OrderError:
    return OrderError(PARAM_ERROR, f"Parameter {name} error")


def param_empty(name: str) -> OrderError:
    return OrderError(PARAM_EMPTY, f"Parameter {name} can not be empty.")

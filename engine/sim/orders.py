"""The venue's order vocabulary: Binance's enums, the order record, the parsed
request and the events the matching engine reports.

Plain data only. Enum values are Binance's own strings so the wire layer
prints them unchanged. Amounts are ints (see amounts.py): prices in the
symbol's price units, quantities in its quantity units, money in the venue's
amount units.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

BUY = "BUY"
SELL = "SELL"
SIDES = (BUY, SELL)

LIMIT = "LIMIT"
MARKET = "MARKET"
LIMIT_MAKER = "LIMIT_MAKER"
STOP_LOSS = "STOP_LOSS"
STOP_LOSS_LIMIT = "STOP_LOSS_LIMIT"
TAKE_PROFIT = "TAKE_PROFIT"
TAKE_PROFIT_LIMIT = "TAKE_PROFIT_LIMIT"
ORDER_TYPES = (LIMIT, LIMIT_MAKER, MARKET, STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT,
               TAKE_PROFIT_LIMIT)
STOP_TYPES = frozenset({STOP_LOSS, STOP_LOSS_LIMIT, TAKE_PROFIT, TAKE_PROFIT_LIMIT})
PRICED_TYPES = frozenset({LIMIT, LIMIT_MAKER, STOP_LOSS_LIMIT, TAKE_PROFIT_LIMIT})

GTC = "GTC"
IOC = "IOC"
FOK = "FOK"
TIMES_IN_FORCE = (GTC, IOC, FOK)

NEW = "NEW"
PARTIALLY_FILLED = "PARTIALLY_FILLED"
FILLED = "FILLED"
CANCELED = "CANCELED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
EXPIRED_IN_MATCH = "EXPIRED_IN_MATCH"
OPEN_STATUSES = frozenset({NEW, PARTIALLY_FILLED})

STP_NONE = "NONE"
EXPIRE_TAKER = "EXPIRE_TAKER"
EXPIRE_MAKER = "EXPIRE_MAKER"
EXPIRE_BOTH = "EXPIRE_BOTH"
STP_MODES = (STP_NONE, EXPIRE_TAKER, EXPIRE_MAKER, EXPIRE_BOTH)
# Binance's default since STP was introduced (CHANGELOG 2023); exchangeInfo says so.
DEFAULT_STP = EXPIRE_MAKER

# executionReport "x" values
EXEC_NEW = "NEW"
EXEC_TRADE = "TRADE"
EXEC_CANCELED = "CANCELED"
EXEC_EXPIRED = "EXPIRED"
EXEC_TRADE_PREVENTION = "TRADE_PREVENTION"


class Rejected(Exception):
    """A request the venue refuses before changing any state: Binance code + msg."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


@dataclass(slots=True)
class OrderRequest:
    """A new order, parsed and typed; what POST /api/v3/order carries."""

    symbol: str
    side: str
    type: str
    time_in_force: str | None = None
    quantity: int | None = None  # quantity units
    quote_quantity: int | None = None  # amount units (quoteOrderQty)
    price: int | None = None  # price units
    stop_price: int | None = None
    client_order_id: str | None = None
    stp_mode: str | None = None  # None: the symbol's default
    # derivatives only (settlement.py): one-way "BOTH", hedge "LONG"/"SHORT"
    position_side: str = ""
    reduce_only: bool = False


class Order:
    """One order's full state. Mutated only by the matching engine."""

    __slots__ = (
        "symbol", "order_id", "account", "client_order_id", "side", "type", "time_in_force",
        "price", "orig_qty", "orig_quote_qty", "stop_price", "executed_qty", "cum_quote",
        "remaining", "quote_remaining", "status", "stp_mode", "time_ms", "update_ms",
        "working_ms", "locked", "prevented_qty", "prevented_match_id", "in_book",
        "position_side", "reduce_only")

    def __init__(self, symbol: str, order_id: int, account: str, client_order_id: str,
                 side: str, type_: str, time_in_force: str, price: int, orig_qty: int,
                 orig_quote_qty: int, stop_price: int, stp_mode: str, time_ms: int) -> None:
        self.symbol = symbol
        self.order_id = order_id
        self.account = account
        self.client_order_id = client_order_id
        self.side = side
        self.type = type_
        self.time_in_force = time_in_force
        self.price = price  # 0: none (market)
        self.orig_qty = orig_qty
        self.orig_quote_qty = orig_quote_qty  # 0 unless quoteOrderQty
        self.stop_price = stop_price  # 0 unless a stop type
        self.executed_qty = 0
        self.cum_quote = 0  # amount units
        self.remaining = orig_qty  # orig - executed - prevented
        self.quote_remaining = orig_quote_qty
        self.status = NEW
        self.stp_mode = stp_mode
        self.time_ms = time_ms
        self.update_ms = time_ms
        self.working_ms = -1  # set when the order is working (stops: once triggered)
        self.locked = 0  # amount units held for this order in the ledger
        self.prevented_qty = 0
        self.prevented_match_id = -1
        self.in_book = False
        self.position_side = ""  # derivatives: set by the settlement when placed
        self.reduce_only = False

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def __repr__(self) -> str:
        return (f"Order({self.symbol} #{self.order_id} {self.account} {self.side} {self.type} "
                f"px={self.price} qty={self.orig_qty} rem={self.remaining} {self.status})")


class Execution(NamedTuple):
    """One executionReport's worth: the order's state right after the change."""

    order: Order
    exec_type: str
    status: str
    executed_qty: int
    cum_quote: int
    last_qty: int
    last_price: int
    commission: int
    commission_asset: str | None
    trade_id: int
    is_maker: bool
    time_ms: int
    cancel_client_id: str  # "C" on cancels: the cancel request's own id
    last_prevented_qty: int


class Trade(NamedTuple):
    symbol: str
    trade_id: int
    price: int
    qty: int
    quote_qty: int  # amount units
    time_ms: int
    buyer_order_id: int
    seller_order_id: int
    buyer_account: str
    seller_account: str
    buyer_is_maker: bool
    buyer_fee: int  # in the base asset
    seller_fee: int  # in the quote asset
    taker_order_id: int


class PreventedMatch(NamedTuple):
    prevented_match_id: int
    maker_order_id: int
    price: int
    taker_prevented_qty: int  # 0 when the taker was not expired
    maker_prevented_qty: int  # 0 when the maker was not expired

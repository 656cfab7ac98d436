"""The contract between strategies and the executor: the actions a strategy
emits (place / cancel / amend), the client-order-id scheme that makes every
order traceable and every retry idempotent, and what the executor reports back.
Plain values only: no I/O, no venue knowledge, no floats in money.

Client order ids (deterministic, Binance's set ``[A-Za-z0-9_-]{1,36}``)::

    E<strategy_id>-<slot base36 | "x">-<generation base36>     e.g. "E7-1a-3f"

``strategy_id`` is the TRADE task id (or any ``[A-Za-z0-9_]{1,16}`` name),
``slot`` the grid slot (``x``: no slot), ``generation`` a counter the slot owner
increments for every new order of that slot and commits with the slot. So the
same intent always maps to the same id, a crash replays the same id (the venue
refuses a duplicate of an open order, and the executor looks an uncertain order
up by this id before it ever re-sends it), and reconciliation can tell our
orders (prefix ``E``, a strategy this daemon runs) from anyone else's.

Money: prices and quantities are ``Decimal`` already quantized to the
instrument's tick and lot (``engine.trade.instruments.Instrument``); the
executor refuses an off-grid value rather than round it, and sends
``wire_decimal(value)``, never a formatted float.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from decimal import Decimal

from engine.model import Market, Side
from engine.model_trade import PositionSide, TimeInForce

__all__ = ["TimeInForce"]  # re-exported: strategies' actions name it from here

CLIENT_ID_PREFIX = "E"
CLIENT_ID_MAX = 36  # Binance newClientOrderId limit (others allow more)
_STRATEGY_RE = re.compile(r"^[A-Za-z0-9_]{1,16}$")
_CLIENT_ID_RE = re.compile(r"^E([A-Za-z0-9_]{1,16})-([0-9a-z]{1,8}|x)-([0-9a-z]{1,9})$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"




def _base36(value: int) -> str:
    assert value >= 0, value
    out = ""
    while True:
        value, digit = divmod(value, 36)
        out = _DIGITS[digit] + out
        if value == 0:
            return out


def make_client_order_id(strategy_id: str, slot_id: int | None, generation: int) -> str:
    """The one client order id of (strategy, slot, generation); see the module doc."""
    if not _STRATEGY_RE.match(strategy_id):
        raise ValueError(f"strategy_id {strategy_id!r}: expected [A-Za-z0-9_]{{1,16}}")
    if generation < 0 or (slot_id is not None and slot_id < 0):
        raise ValueError(f"slot {slot_id} / generation {generation}: must be >= 0")
    slot = "x" if slot_id is None else _base36(slot_id)
    out = f"{CLIENT_ID_PREFIX}{strategy_id}-{slot}-{_base36(generation)}"
    if len(out) > CLIENT_ID_MAX or not _CLIENT_ID_RE.match(out):
        raise ValueError(f"client order id {out!r} exceeds {CLIENT_ID_MAX} characters")
    return out


@dataclass(frozen=True, slots=True)
class ClientOrderId:
    strategy_id: str
    slot_id: int | None
    generation: int


def parse_client_order_id(client_order_id: str) -> ClientOrderId | None:
    """The parts of one of our ids; None for an id we did not make (leave it alone)."""
    match = _CLIENT_ID_RE.match(client_order_id)
    if match is None:
        return None
    slot = None if match[2] == "x" else int(match[2], 36)
    return ClientOrderId(match[1], slot, int(match[3], 36))


def wire_decimal(value: Decimal) -> str:
    """Exact plain notation for the wire: no exponent, no float round trip,
    trailing zeros dropped ("0.00100" -> "0.001", "1E+2" -> "100")."""
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {value}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# ------------------------------------------------------------------ actions


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """A new limit order. ``post_only`` orders must rest (maker); if the venue
    refuses one because it would take, the executor falls back (plain limit or
    one tick away, per config) and counts it."""

    client_order_id: str
    venue: str
    market: Market
    pair: str  # BASE/QUOTE
    side: Side
    price: Decimal
    quantity: Decimal
    post_only: bool = True
    time_in_force: TimeInForce = TimeInForce.GTC
    strategy_id: str = ""
    slot_id: int | None = None
    reduce_only: bool = False  # futures: may only shrink the position
    position_side: PositionSide = PositionSide.BOTH  # futures hedge mode: LONG / SHORT leg

    def __post_init__(self) -> None:
        if not isinstance(self.price, Decimal) or not isinstance(self.quantity, Decimal):
            raise TypeError("price and quantity must be Decimal (never float)")
        if self.price <= 0 or self.quantity <= 0:
            raise ValueError(f"{self.client_order_id}: price and quantity must be positive")
        if post_only_conflict(self.post_only, self.time_in_force):
            raise ValueError(f"{self.client_order_id}: post-only orders are GTC")

    @property
    def notional(self) -> Decimal:
        return self.price * self.quantity


def post_only_conflict(post_only: bool, time_in_force: TimeInForce) -> bool:
    return post_only and time_in_force != TimeInForce.GTC


@dataclass(frozen=True, slots=True)
class CancelOrder:
    """Cancel one of our orders by its client order id."""

    client_order_id: str
    venue: str
    market: Market
    pair: str
    strategy_id: str = ""
    slot_id: int | None = None


@dataclass(frozen=True, slots=True)
class AmendOrder:
    """Cancel-replace: cancel ``client_order_id`` and place ``replacement`` (its
    own, next-generation client id) in one venue call where the venue has one
    (Binance cancelReplace, STOP_ON_FAILURE: no replacement if the cancel fails)."""

    client_order_id: str
    replacement: PlaceOrder

    def __post_init__(self) -> None:
        if self.replacement.client_order_id == self.client_order_id:
            raise ValueError("an amend needs a new client order id for the replacement")

    @property
    def venue(self) -> str:
        return self.replacement.venue

    @property
    def market(self) -> Market:
        return self.replacement.market

    @property
    def pair(self) -> str:
        return self.replacement.pair

    @property
    def strategy_id(self) -> str:
        return self.replacement.strategy_id


Action = PlaceOrder | CancelOrder | AmendOrder


# ------------------------------------------------------------------ results


class Outcome(str, enum.Enum):
    """How one send ended. Every send ends in exactly one of the first three;
    UNKNOWN is resolved by a lookup by client id before anything is re-sent."""

    ACKNOWLEDGED = "acknowledged"  # the venue has the order / did the cancel
    REJECTED = "rejected"  # definitively refused (or refused locally by risk)
    UNKNOWN = "unknown"  # timeout, 5xx, -1007: looked up, never blindly retried
    ABSENT = "absent"  # an UNKNOWN send proven never accepted (safe to re-send)


@dataclass(frozen=True, slots=True)
class ActionResult:
    """What the executor reports for an action once it settled (or gave up).

    ``code``/``reason`` carry the venue's error (e.g. -2010 and its message) or
    the local refusal (``risk: max_open_orders``). ``fallback`` names the
    post-only fallback used (``limit`` / ``reprice``), "" if none."""

    action: Action
    outcome: Outcome
    code: int = 0
    reason: str = ""
    venue_order_id: str = ""
    fallback: str = ""
    attempts: int = 1
    path: str = ""  # transport of the last send: rest | ws ("" if never sent)

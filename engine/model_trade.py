"""The trading side's venue-neutral values (fills, replies and their outcome,
signed requests, positions, funding, instrument and rate-limit rules) and the
contract every Sans-I/O trading driver implements (``TradingDriver``).

engine/trade/ speaks only these; a venue's driver in engine/venues/ turns them
into that venue's wire format and back. Pure data and abstract methods: no I/O,
no clock reads, no venue knowledge. Money is the venue's exact decimal string.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from engine.model import Market, OrderUpdate, Side

# ------------------------------------------------------------ trading venues

FUTURES_SUFFIX = "_futures"


def trading_venue(exchange: str, market: Market | str) -> str:
    """The trader's id of an exchange's market: its orders, fills, positions and
    sessions are keyed by it. Spot keeps the exchange's name ("binance"), futures
    add a suffix ("binance_futures"), so one account's spot and perpetual BTC/USDT
    never share a position."""
    return exchange if Market(market) == Market.SPOT else f"{exchange}{FUTURES_SUFFIX}"


def venue_market(venue: str) -> tuple[str, Market]:
    """``trading_venue`` reversed: "binance_futures" -> ("binance", FUTURES)."""
    if venue.endswith(FUTURES_SUFFIX):
        return venue[:-len(FUTURES_SUFFIX)], Market.FUTURES
    return venue, Market.SPOT


# ----------------------------------------------------------------- outcomes


class ReplyKind(str, enum.Enum):
    """Every answer to a send is exactly one of these (docs/trading.md)."""

    OK = "ok"  # accepted: the state in the body is the venue's
    REJECTED = "rejected"  # definitively refused: never retried as is
    UNKNOWN = "unknown"  # may or may not have happened: look it up before any resend
    RETRY = "retry"  # provably not processed (rate limit, overload, clock): send again later


@dataclass(frozen=True)
class SignedRequest:
    """One request ready for the wire, over REST or a WebSocket API.

    REST: ``method`` + ``url`` (with the signed query) + ``headers`` (+ ``body``).
    WebSocket API: ``transport == "ws"``, ``body`` is the JSON text frame,
    ``request_id`` its id (the response names it), ``url`` the socket's URL.
    """

    method: str
    url: str
    headers: dict[str, str]
    weight: int  # the venue's request weight for this call
    kind: str  # the driver's operation name (new_order, query_order, ...): logs, metrics
    counts_order: bool = False  # a new order: spends an order-rate token
    body: str = ""
    transport: str = "rest"  # rest | ws
    request_id: str = ""
    timestamp_ms: int = 0  # what it is signed with (recvWindow proof), 0 if unsigned


@dataclass(frozen=True)
class Reply:
    """A venue answer, classified by the driver. The flags are the driver's
    reading of venue-specific codes, so the executor never names a code."""

    kind: ReplyKind
    status: int  # HTTP status, or the WS API response's ``status``; 0: no answer
    body: Any = None
    code: int = 0  # the venue's error code, 0 if none
    message: str = ""
    retry_after_s: float | None = None
    used_weight: int | None = None  # the venue's own count in its main weight window
    usage: dict[str, int] = field(default_factory=dict)  # "REQUEST_WEIGHT:1m" -> count, ...
    would_take: bool = False  # a post-only order refused because it would cross
    duplicate: bool = False  # the venue already holds that client order id: look it up
    not_found: bool = False  # query / cancel: no such order (proves nothing by itself)
    order_rate_limited: bool = False  # the order-count limit (Binance -1015): pause orders
    clock_skew: bool = False  # our timestamp was outside the venue's window: resync the clock


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders. Money fields are the venue's exact
    decimal strings; ``realized_pnl`` only where the venue reports it (futures)."""

    venue: str
    market: Market
    pair: str
    client_order_id: str  # "" when the source (a trade list) does not carry it
    venue_order_id: str
    trade_id: str
    side: Side
    price: str
    quantity: str
    fee: str
    fee_asset: str
    is_maker: bool
    exch_ns: int = 0
    realized_pnl: str = ""
    position_side: str = ""  # PositionSide value on hedge-mode futures, else ""
    liquidation: bool = False  # the venue closed the position (not our order)


# --------------------------------------------------------------- positions


class PositionSide(str, enum.Enum):
    BOTH = "both"  # one-way mode: one signed position per pair
    LONG = "long"  # hedge mode: the long leg
    SHORT = "short"  # hedge mode: the short leg


class PositionMode(str, enum.Enum):
    ONE_WAY = "one_way"
    HEDGE = "hedge"


class MarginType(str, enum.Enum):
    CROSS = "cross"
    ISOLATED = "isolated"


@dataclass(frozen=True, slots=True)
class PositionReport:
    """The venue's view of one position (REST or private stream)."""

    venue: str
    market: Market
    pair: str
    position_side: PositionSide
    quantity: str  # signed: > 0 long, < 0 short (one-way); hedge legs are >= 0 / <= 0
    entry_price: str
    unrealized_pnl: str = "0"
    liquidation_price: str = "0"  # "0": none (no position, or fully covered)
    mark_price: str = ""
    leverage: str = ""
    margin_type: MarginType | None = None
    isolated_margin: str = "0"
    exch_ns: int = 0


@dataclass(frozen=True, slots=True)
class FundingFee:
    """One funding payment (< 0 paid, > 0 received), in ``asset``."""

    venue: str
    market: Market
    pair: str
    amount: str
    asset: str
    exch_ns: int
    funding_id: str = ""  # the venue's id (income tranId) when it has one: dedup key


# ------------------------------------------------------------------ orders


class TimeInForce(str, enum.Enum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


@dataclass(frozen=True, slots=True)
class OrderSpec:
    """One limit order as the executor wants it sent. Price and quantity are
    exact wire strings already on tick and lot."""

    pair: str
    side: Side
    price: str
    quantity: str
    client_order_id: str
    post_only: bool = True
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False  # futures: may only shrink the position
    position_side: PositionSide = PositionSide.BOTH  # futures hedge mode: LONG / SHORT


@dataclass(frozen=True)
class AmendResult:
    """A cancel-replace answer split in its halves. ``cancel`` / ``placed``:
    the order as the venue reports it (``driver.order_update`` input), or None.
    ``new_failure``: the replacement's refusal, classified; ``attempted``:
    False when the venue did not try the replacement (the cancel failed)."""

    known: bool  # the reply says what happened to each half
    cancel_ok: bool = False
    cancel: Any = None
    placed: Any = None
    attempted: bool = False
    new_failure: Reply | None = None


# ------------------------------------------------------------- venue rules


@dataclass(frozen=True, slots=True)
class InstrumentRules:
    """Order-entry rules of one instrument as the venue states them (exact strings)."""

    pair: str
    symbol: str
    base: str
    quote: str
    tick_size: str
    step_size: str
    min_qty: str = "0"
    max_qty: str = "0"  # "0": no limit
    min_notional: str = "0"
    contract_size: str = "1"  # futures: base units per contract


class RateLimitKind(str, enum.Enum):
    REQUEST_WEIGHT = "REQUEST_WEIGHT"  # weighted requests per interval (per IP)
    ORDERS = "ORDERS"  # new orders per interval (per account)
    RAW_REQUESTS = "RAW_REQUESTS"  # requests of any weight per interval
    CONNECTIONS = "CONNECTIONS"  # socket connections per interval


@dataclass(frozen=True, slots=True)
class RateLimitRule:
    """One of the venue's rate limits, e.g. REQUEST_WEIGHT 6000 per 60 s."""

    kind: RateLimitKind
    interval_s: int
    limit: int

    @property
    def key(self) -> str:
        """The usage key replies report against: ``REQUEST_WEIGHT:1m``, ``ORDERS:10s``."""
        unit = (f"{self.interval_s // 86400}d" if self.interval_s % 86400 == 0 else
                f"{self.interval_s // 60}m" if self.interval_s % 60 == 0 else f"{self.interval_s}s")
        return f"{self.kind.value}:{unit}"


def tightest_rate(rules: Sequence[RateLimitRule], kind: RateLimitKind) -> float:
    """The lowest sustained rate (per second) any ``kind`` rule allows; inf if none."""
    rates = [r.limit / r.interval_s for r in rules if r.kind == kind and r.interval_s > 0]
    return min(rates) if rates else float("inf")


# ------------------------------------------------------------ private data


@dataclass
class UserEvent:
    """What one private-stream frame (or WS API push) carried."""

    updates: list[OrderUpdate] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    balances: dict[str, tuple[str, str]] = field(default_factory=dict)  # asset -> (free, locked)
    positions: list[PositionReport] = field(default_factory=list)
    funding: list[FundingFee] = field(default_factory=list)
    expired: bool = False  # the subscription / key ended: reconnect and catch up
    error: str = ""  # a frame the driver could not read (counted, logged)
    warnings: list[str] = field(default_factory=list)  # margin call etc.: logged, on /health
    funding_due: bool = False  # a funding payment happened: read the venue's funding list
    # Client ids of post-only orders the venue accepted and then refused because
    # they would take (Bybit); their updates say REJECTED. Counted and logged.
    would_take: list[str] = field(default_factory=list)


@dataclass
class WsMessage:
    """One frame from a WebSocket API socket: a response to one of our
    requests (``request_id`` + ``reply``), a pushed user event, or both empty."""

    request_id: str = ""
    reply: Reply | None = None
    event: UserEvent | None = None
    error: str = ""


@dataclass(frozen=True)
class TradingEndpoints:
    """Where a driver talks to; "" = the venue's live default."""

    rest: str = ""
    ws: str = ""  # the private stream's base (listenKey venues)
    ws_api: str = ""  # the WebSocket trading API


class NotSupported(NotImplementedError):
    """The venue (or this market of it) has no such operation."""


# ----------------------------------------------------------------- contract


class TradingDriver(ABC):
    """Request builder and reply parser for one account on one venue market.

    Sans-I/O: it never opens a socket and never reads a clock (every signed
    call takes ``timestamp_ms``, the venue's time as the caller knows it).
    The I/O (engine/trade/session.py, wsapi.py, userstream.py) sends what it
    builds and hands back what arrived. One file per venue market in
    engine/venues/, one line in ``engine.venues.TRADING_DRIVERS``.

    REST builders return a ``SignedRequest``; each ``ws_*`` twin builds the
    same call for the venue's WebSocket API (``ws_api`` True) and raises
    NotSupported otherwise. Position calls raise NotSupported where
    ``has_positions`` is False (spot).
    """

    venue: ClassVar[str]
    market: ClassVar[Market]
    # Capabilities: the I/O side branches on these, never on the venue's name.
    supports_batch_place: ClassVar[bool] = False
    supports_amend: ClassVar[bool] = False  # cancel-replace in one call
    ws_api: ClassVar[bool] = False  # orders over an authenticated WebSocket API
    # ws_api: subscribe on the WS API (whose socket then carries orders too) |
    # listen_key: key + stream | private_ws: a private socket of its own
    # (``user_stream_url("")``, ``ws_logon`` then ``ws_subscribe_user``), orders
    # on the WS API socket apart from it (Bybit).
    user_stream: ClassVar[str] = "ws_api"
    ws_api_queries: ClassVar[bool] = True  # order queries / open orders over the WS API too
    ws_ping_s: ClassVar[float] = 0.0  # > 0: send ``ws_ping_frame()`` this often on our sockets
    has_positions: ClassVar[bool] = False  # futures: positions, leverage, funding
    # A signed request reaching the venue later than its timestamp + this is
    # refused, so an unknown order is provably dead after it: the executor's
    # only proof before a resend. A venue without such a window cannot use
    # this executor's resend rule as is (say so in its driver).
    recv_window_ms: ClassVar[int] = 5000
    fills_page: ClassVar[int] = 1000  # most fills one trade-list call returns
    # The venue's documented limits, used until its exchangeInfo says otherwise.
    default_rate_limits: ClassVar[tuple[RateLimitRule, ...]] = ()

    def __init__(self, endpoints: TradingEndpoints, api_key: str, api_secret: str,
                 symbols: dict[str, str] | None = None) -> None:
        self.endpoints = endpoints
        self._symbols = dict(symbols or {})  # pair -> venue symbol overrides

    def _lacks(self, what: str) -> NotSupported:
        return NotSupported(f"{self.venue} {self.market.value}: {what}")

    # --------------------------------------------------------- naming
    @abstractmethod
    def symbol(self, pair: str) -> str: """BASE/QUOTE -> the venue's symbol."""

    @abstractmethod
    def pair(self, symbol: str) -> str: """The venue's symbol -> BASE/QUOTE."""

    # ------------------------------------------------ REST: order entry
    @abstractmethod
    def new_order(self, spec: OrderSpec, timestamp_ms: int) -> SignedRequest: ...

    @abstractmethod
    def query_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest: ...

    @abstractmethod
    def cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int) -> SignedRequest: ...

    def cancel_replace(self, cancel_client_order_id: str, spec: OrderSpec,
                       timestamp_ms: int) -> SignedRequest:
        """Only where ``supports_amend``: cancel one order and place ``spec``,
        the new one only if the cancel succeeded."""
        raise self._lacks("no cancel-replace")

    def batch_new_orders(self, specs: Sequence[OrderSpec], timestamp_ms: int) -> SignedRequest:
        raise self._lacks("no batch orders")

    # ---------------------------------------------- REST: state queries
    @abstractmethod
    def open_orders(self, pair: str, timestamp_ms: int) -> SignedRequest: ...

    @abstractmethod
    def my_trades(self, pair: str, timestamp_ms: int, cursor: str | None = None,
                  start_ms: int | None = None, limit: int = 1000) -> SignedRequest:
        """The account's fills on ``pair``: from ``cursor`` (``fills_cursor``) or ``start_ms``."""

    @abstractmethod
    def account(self, timestamp_ms: int) -> SignedRequest: ...

    @abstractmethod
    def exchange_info(self, pairs: Sequence[str]) -> SignedRequest: ...

    @abstractmethod
    def server_time(self) -> SignedRequest: ...

    # ------------------------------------------- REST: futures settings
    def positions(self, timestamp_ms: int, pair: str | None = None) -> SignedRequest:
        raise self._lacks("no positions")

    def set_leverage(self, pair: str, leverage: int, timestamp_ms: int) -> SignedRequest:
        raise self._lacks("no leverage")

    def set_margin_type(self, pair: str, margin: MarginType, timestamp_ms: int) -> SignedRequest:
        raise self._lacks("no margin type")

    def set_position_mode(self, mode: PositionMode, timestamp_ms: int) -> SignedRequest:
        raise self._lacks("no position modes")

    def funding_fees(self, timestamp_ms: int, start_ms: int,
                     pair: str | None = None) -> SignedRequest:
        raise self._lacks("no funding")

    # ------------------------------------------------ listenKey streams
    def listen_key(self, method: str, key: str = "") -> SignedRequest:
        """Only where ``user_stream == "listen_key"``: POST / PUT / DELETE."""
        raise self._lacks("no listenKey stream")

    def listen_key_of(self, body: Any) -> str:
        raise self._lacks("no listenKey stream")

    def user_stream_url(self, listen_key: str) -> str:
        raise self._lacks("no listenKey stream")

    # ------------------------------------------------ WebSocket API
    def ws_api_url(self) -> str:
        raise self._lacks("no WebSocket API")

    def ws_logon(self, timestamp_ms: int, request_id: str) -> SignedRequest | None:
        """Authenticate the whole socket, or None when each request is signed alone."""
        return None

    def ws_subscribe_user(self, timestamp_ms: int, request_id: str) -> SignedRequest:
        """Start the account's pushes on this socket (after any logon)."""
        raise self._lacks("no WS API user stream")

    def ws_new_order(self, spec: OrderSpec, timestamp_ms: int, request_id: str) -> SignedRequest:
        raise self._lacks("no WebSocket API")

    def ws_query_order(self, pair: str, client_order_id: str, timestamp_ms: int,
                       request_id: str) -> SignedRequest:
        raise self._lacks("no WebSocket API")

    def ws_cancel_order(self, pair: str, client_order_id: str, timestamp_ms: int,
                        request_id: str) -> SignedRequest:
        raise self._lacks("no WebSocket API")

    def ws_open_orders(self, pair: str, timestamp_ms: int, request_id: str) -> SignedRequest:
        raise self._lacks("no WebSocket API")

    def ws_cancel_replace(self, cancel_client_order_id: str, spec: OrderSpec,
                          timestamp_ms: int, request_id: str) -> SignedRequest:
        raise self._lacks("no WebSocket API amend")

    def ws_ping_frame(self) -> str:
        """The application-level heartbeat frame where ``ws_ping_s`` > 0."""
        raise self._lacks("no WebSocket heartbeat")

    def parse_ws(self, frame: str | bytes, recv_ns: int) -> WsMessage:
        """One WS API frame: a response (classified like ``classify``) or a push; never raises."""
        raise self._lacks("no WebSocket API")

    # ------------------------------------------------------- replies
    @abstractmethod
    def classify(self, status: int, body: bytes | str, headers: dict[str, str]) -> Reply:
        """A REST answer as ok / rejected / unknown / retry, with the flags set."""

    def complete(self, request: SignedRequest, reply: Reply) -> Reply:
        """``reply`` read together with the request it answers (both transports):
        where a venue's answer only makes sense beside what was asked (an
        acknowledgement that names no price, an empty lookup). As is by default."""
        return reply

    @abstractmethod
    def order_update(self, body: Any, recv_ns: int) -> OrderUpdate:
        """An order as the venue's order/query/cancel/open-orders answers carry it."""

    def order_list(self, body: Any) -> list[Any]:
        """The orders in an open-orders answer (each ``order_update`` input)."""
        return list(body) if isinstance(body, list) else []

    @abstractmethod
    def fills(self, body: Any) -> list[Fill]:
        """A trade-list answer's fills (``client_order_id`` may be "")."""

    @abstractmethod
    def fills_cursor(self, body: Any) -> str | None:
        """Where the next trade-list page starts; None when this page was the last."""

    def amend_result(self, reply: Reply) -> AmendResult:
        return AmendResult(known=False)

    @abstractmethod
    def balances(self, body: Any) -> dict[str, tuple[str, str]]:
        """An account answer: asset -> (free, locked)."""

    def position_reports(self, body: Any) -> list[PositionReport]:
        raise self._lacks("no positions")

    def funding_list(self, body: Any) -> list[FundingFee]:
        raise self._lacks("no funding")

    @abstractmethod
    def server_time_ms(self, body: Any) -> int | None:
        """The venue clock from a ``server_time`` answer; None if unreadable."""

    @abstractmethod
    def instrument_rules(self, body: Any) -> dict[str, InstrumentRules]:
        """An ``exchange_info`` answer: pair -> rules."""

    @abstractmethod
    def rate_limits(self, body: Any) -> list[RateLimitRule]:
        """An ``exchange_info`` answer's rate limits ([] = keep the defaults)."""

    # ---------------------------------------------------- private stream
    @abstractmethod
    def parse_user(self, frame: str | bytes, recv_ns: int) -> UserEvent:
        """One private-stream frame (order updates, fills, balances, positions,
        funding); never raises: a bad frame comes back with ``error`` set."""

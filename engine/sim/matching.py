"""The matching engine: price-time priority over every symbol's book, with
Binance's order types, times in force, self-trade prevention and fees.

Pure and single-threaded: no I/O, no clock (every call takes ``now_ms``), no
locks (the caller serializes). Each call either raises Rejected before
touching any state, or applies the whole operation and returns what happened
as an OpResult (executions, trades, prevented matches, touched balances).

  submit ─► check_request (filters) ─► stateful checks ─► lock funds ─► NEW
        └► stop types: wait in triggers.StopBook until a trade reaches them
        └► others: _execute ─► _match ─► _fill (ledger, trade, executions; crossing.py)
                              └► rest (GTC) | expire (IOC, FOK, MARKET)
  every trade widens the symbol's traded price range ─► _run_triggers
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable

from engine.sim import orders as o
from engine.sim.amounts import FeeRate
from engine.sim.book import OrderBook
from engine.sim.crossing import Crossing
from engine.sim.filters import SymbolSpec, check_request
from engine.sim.ledger import Ledger
from engine.sim.orders import BUY, Execution, Order, OrderRequest, PreventedMatch, Rejected, Trade
from engine.sim.pretrade import funds_needed, walk
from engine.sim.settlement import Settlement
from engine.sim.triggers import StopBook, would_trigger

INSUFFICIENT = "Account has insufficient balance for requested action."
UNKNOWN_ORDER = "Unknown order sent."
_ID_ALPHABET = string.ascii_letters + string.digits
_new_tuple = tuple.__new__


class OpResult:
    """Everything one engine call changed, in the order it happened.

    A plain slotted class rather than a dataclass: one is built per call and
    default_factory fields cost a measurable share of the matching rate."""

    __slots__ = ("order", "executions", "trades", "prevented", "balances", "canceled", "symbol")

    def __init__(self, order: Order | None = None, symbol: str = "") -> None:
        self.order = order
        self.symbol = symbol
        self.executions: list[Execution] = []
        self.trades: list[Trade] = []
        self.prevented: list[PreventedMatch] = []
        self.balances: set[tuple[str, str]] = set()
        self.canceled: list[Order] = []


class MatchingEngine(Crossing):
    def __init__(self, specs: Iterable[SymbolSpec], ledger: Ledger,
                 default_stp: str = o.DEFAULT_STP, id_seed: int = 0) -> None:
        self.specs = {spec.symbol: spec for spec in specs}
        self.ledger = ledger
        self.default_stp = default_stp
        self.books = {symbol: OrderBook(symbol) for symbol in self.specs}
        self.stops = {symbol: StopBook() for symbol in self.specs}
        self.open_orders: dict[str, dict[int, Order]] = {s: {} for s in self.specs}
        self.client_ids: dict[tuple[str, str, str], Order] = {}
        self.next_order_id = dict.fromkeys(self.specs, 1)
        self.next_trade_id = dict.fromkeys(self.specs, 1)
        self.next_prevented_id = dict.fromkeys(self.specs, 0)
        self.last_price: dict[str, int | None] = dict.fromkeys(self.specs)
        self.fee_overrides: dict[str, tuple[FeeRate, FeeRate]] = {}  # account -> maker, taker
        # symbols settled as derivatives (positions and margin, not base/quote swaps)
        self.settlement: dict[str, Settlement] = {}
        # ids: a seeded random prefix + a counter, so generating one is cheap
        rng = random.Random(id_seed)
        self._id_prefix = "".join(rng.choices(_ID_ALPHABET, k=12))
        self._id_counter = 0
        self._result = OpResult()
        self._ranges: dict[str, list[int]] = {}  # symbol -> [low, high] traded this op

    # ------------------------------------------------------------------ public

    def spec(self, symbol: str) -> SymbolSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise Rejected(-1121, "Invalid symbol.")
        return spec

    def new_client_id(self) -> str:
        """A Binance-looking 22-character id; seeded, so replays are identical."""
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter:010x}"

    def check(self, req: OrderRequest) -> SymbolSpec:
        """Stateless validation only (POST /api/v3/order/test, cancel-replace)."""
        spec = self.spec(req.symbol)
        check_request(spec, req, self.last_price[req.symbol])
        return spec

    def submit(self, account: str, req: OrderRequest, now_ms: int) -> OpResult:
        symbol, kind, side = req.symbol, req.type, req.side
        spec = self.spec(symbol)
        check_request(spec, req, self.last_price[symbol])
        book = self.books[symbol]
        client_id = req.client_order_id or self.new_client_id()
        if (account, symbol, client_id) in self.client_ids:
            raise Rejected(-2010, "Duplicate order sent.")
        last = self.last_price[symbol]
        stop_price = req.stop_price or 0
        if kind in o.STOP_TYPES and last is not None and would_trigger(kind, side, stop_price,
                                                                       last):
            raise Rejected(-2010, "Order would trigger immediately.")
        price = req.price or 0
        if kind == o.LIMIT_MAKER and book.would_take(side, price):
            raise Rejected(-2010, "Order would immediately match and take.")
        if req.quote_quantity and not book.opposite_of(side).keys:
            raise Rejected(-2010, "Order book liquidity is less than symbol minimum quantity.")
        order = Order(symbol, self.next_order_id[symbol], account, client_id, side, kind,
                      req.time_in_force or o.GTC, price, req.quantity or 0,
                      req.quote_quantity or 0, stop_price, req.stp_mode or self.default_stp,
                      now_ms)
        settle = self.settlement.get(symbol)
        if settle is None:
            asset, amount = funds_needed(book, spec, order, market_now=kind == o.MARKET)
            if self.ledger.free(account, asset) < amount:
                raise Rejected(-2010, INSUFFICIENT)
        else:  # margin, position side and reduce-only checks; raises Rejected
            asset, amount = settle.reserve(account, req, order, book, now_ms)
        # ---- no rejection past this line: the order exists
        self.next_order_id[symbol] += 1
        self.ledger.lock(account, asset, amount)
        order.locked = amount
        self._begin(symbol, order)
        self._report(order, o.EXEC_NEW, now_ms)
        if kind in o.STOP_TYPES:
            self.stops[symbol].add(order)
            self._open(order)
        else:
            order.working_ms = now_ms
            self._execute(order, spec, book, now_ms)
        if self._ranges:
            self._run_triggers(now_ms)
        return self._end(book)

    def cancel(self, account: str, symbol: str, now_ms: int, order_id: int | None = None,
               client_order_id: str | None = None, cancel_client_id: str | None = None,
               restriction: str | None = None) -> OpResult:
        self.spec(symbol)
        order = self._find_open(account, symbol, order_id, client_order_id)
        if order is None:
            raise Rejected(-2011, UNKNOWN_ORDER)
        if (restriction == "ONLY_NEW" and order.status != o.NEW
                or restriction == "ONLY_PARTIALLY_FILLED" and order.status != o.PARTIALLY_FILLED):
            raise Rejected(-2011, "Order was not canceled due to cancel restrictions.")
        result = self._begin(symbol, order)
        self._cancel_one(order, now_ms, cancel_client_id or self.new_client_id())
        result.canceled.append(order)
        return self._end(self.books[symbol])

    def cancel_all(self, account: str, symbol: str, now_ms: int,
                   cancel_client_id: str | None = None) -> OpResult:
        self.spec(symbol)
        mine = sorted((x for x in self.open_orders[symbol].values() if x.account == account),
                      key=lambda x: x.order_id)
        if not mine:
            raise Rejected(-2011, UNKNOWN_ORDER)
        result = self._begin(symbol, None)
        for order in mine:
            self._cancel_one(order, now_ms, cancel_client_id or self.new_client_id())
            result.canceled.append(order)
        return self._end(self.books[symbol])

    def add_symbol(self, spec: SymbolSpec, settlement: Settlement | None = None) -> None:
        """Another book on the same engine and ledger (derivatives dialects)."""
        symbol = spec.symbol
        if symbol in self.specs:
            raise ValueError(f"symbol {symbol} already exists")
        self.specs[symbol] = spec
        self.books[symbol] = OrderBook(symbol)
        self.stops[symbol] = StopBook()
        self.open_orders[symbol] = {}
        self.next_order_id[symbol] = self.next_trade_id[symbol] = 1
        self.next_prevented_id[symbol] = 0
        self.last_price[symbol] = None
        if settlement is not None:
            self.settlement[symbol] = settlement

    def find_open(self, account: str, symbol: str, order_id: int | None = None,
                  client_order_id: str | None = None) -> Order | None:
        return self._find_open(account, symbol, order_id, client_order_id)

    def restore(self, order: Order) -> None:
        """Put a persisted open order back (restart); its funds are already locked."""
        symbol = order.symbol
        self.next_order_id[symbol] = max(self.next_order_id[symbol], order.order_id + 1)
        if order.type in o.STOP_TYPES and order.working_ms < 0:
            self.stops[symbol].add(order)
        else:
            self.books[symbol].side_of(order.side).add(order)
            self.books[symbol].bids.dirty.clear()
            self.books[symbol].asks.dirty.clear()
        self._open(order)

    # --------------------------------------------------------------- internals

    def _begin(self, symbol: str, order: Order | None) -> OpResult:
        self._result = result = OpResult(order=order, symbol=symbol)
        return result

    def _end(self, book: OrderBook) -> OpResult:
        book.end_operation()
        result = self._result
        result.balances = self.ledger.take_touched()
        return result

    def _find_open(self, account: str, symbol: str, order_id: int | None,
                   client_order_id: str | None) -> Order | None:
        if order_id is not None:
            order = self.open_orders[symbol].get(order_id)
        else:
            order = self.client_ids.get((account, symbol, client_order_id or ""))
        return order if order is not None and order.account == account else None

    def _open(self, order: Order) -> None:
        self.open_orders[order.symbol][order.order_id] = order
        self.client_ids[(order.account, order.symbol, order.client_order_id)] = order

    def _close(self, order: Order) -> None:
        """The order left the open set: free whatever it still holds."""
        self.open_orders[order.symbol].pop(order.order_id, None)
        key = (order.account, order.symbol, order.client_order_id)
        if self.client_ids.get(key) is order:
            del self.client_ids[key]
        if order.locked:
            spec = self.specs[order.symbol]
            asset = spec.quote if order.side == BUY or order.symbol in self.settlement \
                else spec.base
            self.ledger.unlock(order.account, asset, order.locked)
            order.locked = 0

    def _report(self, order: Order, exec_type: str, now_ms: int, last_qty: int = 0,
                last_price: int = 0, commission: int = 0, commission_asset: str | None = None,
                trade_id: int = -1, is_maker: bool = False, cancel_client_id: str = "",
                last_prevented: int = 0) -> None:
        self._result.executions.append(_new_tuple(Execution, (  # Execution(...) minus a frame
            order, exec_type, order.status, order.executed_qty, order.cum_quote, last_qty,
            last_price, commission, commission_asset, trade_id, is_maker, now_ms,
            cancel_client_id, last_prevented)))

    def _cancel_one(self, order: Order, now_ms: int, cancel_client_id: str) -> None:
        if order.in_book:
            self.books[order.symbol].remove(order)
        elif order.type in o.STOP_TYPES and order.working_ms < 0:
            self.stops[order.symbol].remove(order)
        order.status = o.CANCELED
        order.update_ms = now_ms
        self._close(order)
        self._report(order, o.EXEC_CANCELED, now_ms, cancel_client_id=cancel_client_id)

    def _execute(self, order: Order, spec: SymbolSpec, book: OrderBook, now_ms: int) -> None:
        """Run a working order against the book, then rest or expire the rest."""
        kind = order.type
        market = kind in (o.MARKET, o.STOP_LOSS, o.TAKE_PROFIT)
        if kind == o.LIMIT_MAKER:
            self._rest(order, spec, book)
            return
        limit = 0 if market else order.price
        if not market and order.time_in_force == o.FOK:
            fillable, _ = walk(book, spec, order.account, order.side, order.stp_mode, limit,
                               qty=order.remaining)
            if fillable < order.remaining:
                self._expire(order, now_ms)
                return
        self._match(order, spec, book, limit, now_ms)
        if order.status == o.EXPIRED_IN_MATCH or order.status == o.FILLED:
            self._close(order)
        elif not market and order.time_in_force == o.GTC:
            self._rest(order, spec, book)
        else:
            self._expire(order, now_ms)

    def _rest(self, order: Order, spec: SymbolSpec, book: OrderBook) -> None:
        if order.side == BUY and order.symbol not in self.settlement:
            # a taker that traded below its limit holds too much
            excess = order.locked - spec.notional(order.price, order.remaining)
            if excess:
                self.ledger.unlock(order.account, spec.quote, excess)
                order.locked -= excess
        book.add(order)
        self._open(order)

    def _expire(self, order: Order, now_ms: int) -> None:
        order.status = o.EXPIRED
        order.update_ms = now_ms
        if order.orig_quote_qty:
            order.orig_qty = order.executed_qty
        self._close(order)
        self._report(order, o.EXEC_EXPIRED, now_ms)

    def _match(self, taker: Order, spec: SymbolSpec, book: OrderBook, limit: int,
               now_ms: int) -> None:
        is_buy = taker.side == BUY
        side = book.asks if is_buy else book.bids
        keys, levels = side.keys, side.levels
        by_quote = taker.orig_quote_qty > 0
        unit_cost = spec.notional_scale
        step = spec.step
        while (taker.quote_remaining if by_quote else taker.remaining) > 0 and keys:
            key = keys[0]
            level = levels[key if is_buy else -key]
            price = level.price
            if limit and (price > limit if is_buy else price < limit):
                break
            maker = level.head()
            assert maker is not None, "a level with live orders has a head"
            if maker.account == taker.account and taker.stp_mode != o.STP_NONE:
                if self._prevent(taker, maker, side, level, book, now_ms):
                    break
                continue
            if by_quote:
                qty = taker.quote_remaining // (price * unit_cost)
                qty = min(qty - qty % step, maker.remaining)
                if qty <= 0:
                    break
            else:
                qty = taker.remaining if taker.remaining < maker.remaining else maker.remaining
            self._fill(spec, book, side, level, maker, taker, price, qty, now_ms)

    def _run_triggers(self, now_ms: int) -> None:
        """Fire stops the op's trades reached; their trades may fire more."""
        while self._ranges:
            symbol, (low, high) = self._ranges.popitem()
            for order in self.stops[symbol].pop_triggered(low, high):
                self._activate(order, now_ms)

    def _activate(self, order: Order, now_ms: int) -> None:
        spec = self.specs[order.symbol]
        book = self.books[order.symbol]
        order.working_ms = now_ms
        order.update_ms = now_ms
        if order.side == BUY and order.type in (o.STOP_LOSS, o.TAKE_PROFIT) \
                and order.symbol not in self.settlement:
            # the reservation was quantity x stopPrice; re-price against the book now
            self.ledger.unlock(order.account, spec.quote, order.locked)
            order.locked = 0
            _, cost = funds_needed(book, spec, order, market_now=True)
            if self.ledger.free(order.account, spec.quote) < cost:
                self._expire(order, now_ms)
                return
            self.ledger.lock(order.account, spec.quote, cost)
            order.locked = cost
        self._execute(order, spec, book, now_ms)

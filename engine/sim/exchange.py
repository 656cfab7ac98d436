"""The venue's shared state behind one lock: matching engine, market data,
persistence and event fan-out.

Everything that changes or reads venue state (REST handlers on the network
thread, the synthetic bots, the replayer) goes through this class. Each
operation runs the pure engine under the lock, records its trades in the
market data, queues its rows for the state store and hands a Published
record to the listeners (the stream hub) while still holding the lock, so
listeners see operations in the order they happened. Listeners must only
enqueue; they run on the caller's thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from engine.clock import NS_PER_MS, Clock
from engine.sim import history
from engine.sim.market_data import AggTrade, MarketData
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.orders import Order, OrderRequest, Rejected, Trade
from engine.sim.store import Batch, StateStore, order_row, trade_row

T = TypeVar("T")


class BookTop(NamedTuple):
    update_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


class Published(NamedTuple):
    """One operation as the stream hub sees it."""

    symbol: str
    result: OpResult
    agg_trades: list[AggTrade]
    top: BookTop | None  # set when the best bid/ask changed
    positions: dict[str, list[tuple[str, int, int]]]  # listening account -> asset, free, locked
    time_ms: int


@dataclass
class CancelReplace:
    """Outcome of order/cancelReplace: each half an OpResult, a rejection, or
    None for a new order that was not attempted."""

    cancel: OpResult | Rejected
    new: OpResult | Rejected | None = None


@dataclass
class Exchange:
    engine: MatchingEngine
    markets: dict[str, MarketData]
    clock: Clock
    store: StateStore
    listeners: list[Callable[[Published], None]] = field(default_factory=list)
    # accounts with an open user data stream: only they get balance snapshots
    listening: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _tops: dict[str, BookTop] = field(default_factory=dict)

    def now_ms(self) -> int:
        return self.clock.now_ns() // NS_PER_MS

    # ------------------------------------------------------------- trading

    def place(self, account: str, request: OrderRequest) -> OpResult:
        with self.lock:
            now = self.now_ms()
            result = self.engine.submit(account, request, now)
            self._publish(result, now)
            return result

    def test_order(self, request: OrderRequest) -> None:
        with self.lock:
            self.engine.check(request)

    def cancel(self, account: str, symbol: str, order_id: int | None, client_order_id: str | None,
               cancel_client_id: str | None = None, restriction: str | None = None) -> OpResult:
        with self.lock:
            now = self.now_ms()
            result = self.engine.cancel(account, symbol, now, order_id, client_order_id,
                                        cancel_client_id, restriction)
            self._publish(result, now)
            return result

    def cancel_all(self, account: str, symbol: str) -> OpResult:
        with self.lock:
            now = self.now_ms()
            result = self.engine.cancel_all(account, symbol, now)
            self._publish(result, now)
            return result

    def cancel_replace(self, account: str, request: OrderRequest, cancel_order_id: int | None,
                       cancel_client_id: str | None, cancel_new_client_id: str | None,
                       restriction: str | None, stop_on_failure: bool) -> CancelReplace:
        """Binance checks the new order's filters first (a failure there is a
        plain error), then cancels, then places unless the cancel failed
        under STOP_ON_FAILURE. Both halves happen under one lock hold."""
        with self.lock:
            self.engine.check(request)
            now = self.now_ms()
            outcome: CancelReplace
            try:
                canceled = self.engine.cancel(account, request.symbol, now, cancel_order_id,
                                              cancel_client_id, cancel_new_client_id,
                                              restriction)
                self._publish(canceled, now)
                outcome = CancelReplace(canceled)
            except Rejected as exc:
                outcome = CancelReplace(exc)
                if stop_on_failure:
                    return outcome
            try:
                placed = self.engine.submit(account, request, now)
                self._publish(placed, now)
                outcome.new = placed
            except Rejected as exc:
                outcome.new = exc
            return outcome

    def run(self, fn: Callable[[MatchingEngine, int], list[OpResult]]) -> list[OpResult]:
        """Several engine calls as one locked step (bots, replay); each result
        is published. ``fn`` gets the engine and the time."""
        with self.lock:
            now = self.now_ms()
            results = fn(self.engine, now)
            for result in results:
                self._publish(result, now)
            return results

    def cancel_everything(self, account: str) -> int:
        """Cancel all of an account's open orders on every symbol (the house
        accounts at start: a restart must not leave yesterday's ladder)."""
        def cancel(engine: MatchingEngine, now: int) -> list[OpResult]:
            return [engine.cancel_all(account, symbol, now) for symbol, orders
                    in engine.open_orders.items()
                    if any(x.account == account for x in orders.values())]
        return sum(len(result.canceled) for result in self.run(cancel))

    # -------------------------------------------------------------- reading

    def read(self, fn: Callable[[Exchange], T]) -> T:
        with self.lock:
            return fn(self)

    def find_order(self, account: str, symbol: str, order_id: int | None,
                   client_order_id: str | None) -> Order | None:
        with self.lock:
            self.engine.spec(symbol)
            order = self.engine.find_open(account, symbol, order_id, client_order_id)
        if order is not None:
            return order
        return self.store.query(lambda conn: history.find_order(
            conn, account, symbol, order_id, client_order_id))

    def open_orders(self, account: str, symbol: str | None) -> list[Order]:
        with self.lock:
            symbols = [symbol] if symbol else list(self.engine.open_orders)
            found = [x for s in symbols for x in self.engine.open_orders[s].values()
                     if x.account == account]
        return sorted(found, key=lambda x: (x.symbol, x.order_id))

    def history(self, fn: Callable[..., T], *args: Any) -> T:
        """A history.* query, after every operation so far has been written."""
        return self.store.query(lambda conn: fn(conn, *args))

    def depth(self, symbol: str, limit: int) -> tuple[int, list[tuple[int, int]],
                                                      list[tuple[int, int]]]:
        with self.lock:
            book = self.engine.books[symbol]
            return book.update_id, book.bids.top(limit), book.asks.top(limit)

    def take_depth_diff(self, symbol: str) -> tuple[int, int, list, list] | None:
        with self.lock:
            return self.engine.books[symbol].take_diff()

    def top(self, symbol: str) -> BookTop:
        with self.lock:
            return self.book_top(symbol)

    def balances(self, account: str) -> list[tuple[str, int, int]]:
        with self.lock:
            cells = self.engine.ledger.balances.get(account, {})
            return sorted((asset, free, locked) for asset, (free, locked) in cells.items())

    def book_top(self, symbol: str) -> BookTop:
        """Best bid and ask now; the caller holds the lock (inside read())."""
        assert self.lock.locked(), "book_top reads the book: hold the exchange lock"
        book = self.engine.books[symbol]
        bid, ask = book.best_bid_ask()
        return BookTop(book.update_id, bid.price if bid else 0, bid.total if bid else 0,
                       ask.price if ask else 0, ask.total if ask else 0)

    # ------------------------------------------------------------ internals

    def _publish(self, result: OpResult, now: int) -> None:
        symbol = result.symbol
        agg = self.markets[symbol].add_trades(result.trades) if result.trades else []
        top = self.book_top(symbol)
        previous = self._tops.get(symbol)
        changed_top = previous is None or previous[1:] != top[1:]
        self._tops[symbol] = top
        ledger = self.engine.ledger
        positions: dict[str, list[tuple[str, int, int]]] = {}
        for account, asset in result.balances:
            if account in self.listening:
                free, locked = ledger.balances[account][asset]
                positions.setdefault(account, []).append((asset, free, locked))
        self.store.submit(self._rows(result))
        published = Published(symbol, result, agg, top if changed_top else None, positions, now)
        for listener in self.listeners:
            listener(published)

    def _rows(self, result: OpResult) -> Batch:
        engine, symbol = self.engine, result.symbol
        seen: dict[int, Order] = {x.order.order_id: x.order for x in result.executions}
        ledger = engine.ledger
        balances = [(account, asset, str(ledger.balances[account][asset][0]),
                     str(ledger.balances[account][asset][1]))
                    for account, asset in result.balances]
        spec = engine.specs[symbol]
        fees = [(asset, str(ledger.fees.get(asset, 0))) for asset in (spec.base, spec.quote)] \
            if result.trades else []
        last = engine.last_price[symbol]
        counters = [(symbol, engine.next_order_id[symbol], engine.next_trade_id[symbol],
                     engine.next_prevented_id[symbol], self.markets[symbol].next_agg_id,
                     engine.books[symbol].update_id, str(last) if last is not None else None)]
        return Batch([order_row(x) for x in seen.values()],
                     [trade_row(t) for t in result.trades], balances, fees, counters)


def recent_trades(market: MarketData, limit: int) -> list[Trade]:
    trades = market.trades
    return list(trades)[-limit:] if limit < len(trades) else list(trades)

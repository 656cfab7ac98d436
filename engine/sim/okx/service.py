"""Wires the OKX dialect onto a running venue's exchange: the instruments
(every spot symbol as SPOT, every perpetual as SWAP, sharing the USD-M
dialect's derivatives core when it runs, else its own), the REST API, the
public and private hubs and its own NetLoop.

The exchange listener runs on whatever thread made the operation, holding
the exchange lock: it records fees and hands the operation to the hubs'
outbox; the network thread renders and sends.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any

from loguru import logger

from engine.config import LocalVenueConfig
from engine.sim.derivatives import Derivatives
from engine.sim.exchange import Exchange, Published
from engine.sim.filters import SymbolSpec
from engine.sim.funding import Funding, FundingRules
from engine.sim.liquidation import due, knocked_out, liquidate
from engine.sim.market_data import MarketData
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.netloop import NetLoop
from engine.sim.okx.auth import keys_for
from engine.sim.okx.private import render, render_killed
from engine.sim.okx.rest import OkxRest
from engine.sim.okx.streams import OkxStreams
from engine.sim.okx.wire import KILLED_BASE, ORDER_ID_SPAN, SPOT, SWAP, Instrument
from engine.sim.orders import EXEC_TRADE, Order

if TYPE_CHECKING:
    from engine.sim.usdm.service import UsdmDialect

log = logger.bind(component="venue")

WS_PATHS = ("/ws/v5/public", "/ws/v5/private", "/ws/v5/business")
FEES_KEPT = 100_000  # cumulative fee per order, for order answers; oldest forgotten first
KILLED_KEPT = 10_000  # post-only orders canceled on arrival, answerable by id


class OkxDialect:
    def __init__(self, config: LocalVenueConfig, exchange: Exchange,
                 spot: dict[str, SymbolSpec], usdm: UsdmDialect | None = None,
                 limits: dict[str, tuple[int, int]] | None = None) -> None:
        self.config = config.okx
        self.exchange = exchange
        self.keys = keys_for(config)
        self.owns_derivatives = usdm is None
        if usdm is not None:
            self.derivatives, self.funding = usdm.derivatives, usdm.funding
            perps = {s.symbol: s for s in usdm.specs.values()}
            self.index_of = dict(usdm.index_of)
        else:
            from engine.sim.usdm.service import perp_specs
            self.derivatives = Derivatives(exchange.engine.ledger, config.usdm.leverage)
            self.funding = Funding(self.derivatives, FundingRules(
                interval_ms=config.usdm.funding_interval_s * 1000))
            made = perp_specs(config, spot)
            self.index_of = {spec.symbol: symbol for symbol, spec in made.items()}
            with exchange.lock:
                for spec in made.values():
                    exchange.engine.add_symbol(spec, self.derivatives.add_symbol(spec))
                    exchange.markets[spec.symbol] = MarketData(spec.symbol)
            perps = {s.symbol: s for s in made.values()}
        self.instruments: dict[str, Instrument] = {}
        for spec in spot.values():
            self._add(f"{spec.base}-{spec.quote}", SPOT, spec)
        for spec in perps.values():
            self._add(f"{spec.base}-{spec.quote}-SWAP", SWAP, spec)
        self.by_symbol = {i.spec.symbol: i for i in self.instruments.values()}
        self.by_index = {i.index: i for i in self.instruments.values()}
        self.by_code = {i.code: i for i in self.instruments.values()}
        self.outbox: deque[tuple[str, Any]] = deque()
        self.fees: OrderedDict[tuple[str, int], tuple[int, str]] = OrderedDict()
        self.killed: OrderedDict[str, tuple[Instrument, Order]] = OrderedDict()
        self.next_killed = KILLED_BASE
        self.listening: set[str] = set()  # accounts with a logged-in private socket
        exchange.listeners.append(self._on_operation)
        self.rest = OkxRest(self, limits)
        self.streams = OkxStreams(self)
        port = 0 if config.port == 0 else self.config.port
        self.loop = NetLoop(config.host, port, self.rest.handle, self.streams,
                            ws_origins=config.ws_origins, ws_paths=WS_PATHS)
        self.streams.wake = self.loop.wake
        self.url = ""
        self.ws_url = ""

    def _add(self, inst_id: str, inst_type: str, spec: SymbolSpec) -> None:
        self.instruments[inst_id] = Instrument(inst_id, inst_type, spec, len(self.instruments) + 1)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.loop.start()
        self.url = f"http://{self.loop.host}:{self.loop.port}"
        self.ws_url = f"ws://{self.loop.host}:{self.loop.port}"
        log.info("local venue OKX dialect listening url={} instruments={}", self.url,
                 ",".join(self.instruments))

    def stop(self, timeout_s: float) -> None:
        self.loop.stop(timeout_s)

    # -------------------------------------------------------------- lookups

    def instrument_of(self, ord_id: str) -> tuple[Instrument, int] | None:
        """(instrument, core order id) of an ordId; None if it names none."""
        if not ord_id.isdigit():
            return None
        number = int(ord_id)
        inst = self.by_index.get(number // ORDER_ID_SPAN)
        return (inst, number % ORDER_ID_SPAN) if inst is not None else None

    def fee_of(self, order: Order) -> tuple[int, str] | None:
        return self.fees.get((order.symbol, order.order_id))

    def td_mode(self, inst: Instrument, account: str) -> str:
        if inst.inst_type == SPOT:
            return "cash"
        return "isolated" if self.derivatives.book.is_isolated(account, inst.spec.symbol) \
            else "cross"

    def lever(self, inst: Instrument, account: str) -> str:
        return str(self.derivatives.book.leverage_of(account, inst.spec.symbol))

    def kill(self, inst: Instrument, order: Order) -> None:
        """Remember a post-only order canceled on arrival (network/REST thread)."""
        self.killed[inst.ord_id(order.order_id)] = (inst, order)
        while len(self.killed) > KILLED_KEPT:
            self.killed.popitem(last=False)

    # ------------------------------------------- exchange thread, under lock

    def _on_operation(self, published: Published) -> None:
        inst = self.by_symbol.get(published.symbol)
        if inst is None:
            return
        for execution in published.result.executions:
            if execution.exec_type == EXEC_TRADE and execution.commission:
                key = (execution.order.symbol, execution.order.order_id)
                units, _ = self.fees.get(key, (0, ""))
                # SWAP settles in the quote (USDT): its fee is charged there, whatever
                # asset the spot-shaped execution names.
                asset = inst.spec.quote if inst.inst_type == SWAP else execution.commission_asset
                self.fees[key] = (units + execution.commission, asset or inst.spec.quote)
        while len(self.fees) > FEES_KEPT:
            self.fees.popitem(last=False)
        self.outbox.append(("", published))
        if self.listening:
            self.outbox.extend(render(self, inst, published))
        self.streams.wake()

    def push_killed(self, inst: Instrument, order: Order) -> None:
        """The ``canceled`` push of a post-only order killed on arrival (no
        transient ``live``, as OKX since 2026-07-16)."""
        if order.account in self.listening:
            self.outbox.append((order.account, ("orders", inst, render_killed(self, inst,
                                                                                    order))))
            self.streams.wake()

    def tick(self) -> None:
        """Mark prices, funding and liquidations, when no USD-M dialect does it."""
        if not self.owns_derivatives:
            return

        def step(engine: MatchingEngine, now_ms: int) -> list[OpResult]:
            results: list[OpResult] = []
            for inst in self.instruments.values():
                if inst.inst_type != SWAP:
                    continue
                internal = inst.spec.symbol
                index_book = engine.books.get(self.index_of[internal])
                index = 0
                if index_book is not None:
                    bid, ask = index_book.best_bid_ask()
                    if bid and ask:
                        index = (bid.price + ask.price) // 2
                bid, ask = engine.books[internal].best_bid_ask()
                self.funding.update(internal, index, bid.price if bid else 0,
                                    ask.price if ask else 0, engine.last_price[internal], now_ms)
            for internal in self.funding.due(now_ms):
                self.funding.settle(internal, now_ms)
            for order in knocked_out(engine, self.derivatives):
                results.append(engine.cancel(order.account, order.symbol, now_ms,
                                             order.order_id))
            for asset in sorted({i.spec.quote for i in self.instruments.values()
                                 if i.inst_type == SWAP}):
                for account, positions in due(self.derivatives, asset):
                    results += liquidate(engine, self.derivatives, account, positions, now_ms)
            return results
        self.exchange.run(step)

    def is_perp(self, symbol: str) -> bool:
        inst = self.by_symbol.get(symbol)
        return inst is not None and inst.inst_type == SWAP


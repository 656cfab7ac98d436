"""Wires the USD-M dialect onto a running venue's exchange: perpetual specs
and the derivatives core on the shared engine, the REST API, the stream hub
and its own NetLoop, and the periodic tick (mark price, funding, margin
calls, liquidation) that runs under the exchange lock.

The exchange listener here runs on whatever thread made the operation,
holding the exchange lock; it renders the user events (which need the
positions as they are right then) and only enqueues them for the hub.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from fractions import Fraction
from typing import Any

from loguru import logger

from engine.config import LocalVenueConfig, UsdmVenueConfig
from engine.sim.amounts import FeeRate
from engine.sim.derivatives import INSURANCE_ACCOUNT, Derivatives
from engine.sim.exchange import Exchange, Published
from engine.sim.filters import SymbolSpec
from engine.sim.funding import Funding, FundingRules
from engine.sim.liquidation import due, knocked_out, liquidate, margin_calls
from engine.sim.listen_keys import ListenKeys
from engine.sim.market_data import MarketData
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.netloop import NetLoop
from engine.sim.orders import EXEC_TRADE
from engine.sim.ratelimit import Limits, RateLimiter
from engine.sim.rest import ApiAccount, RestApi
from engine.sim.synthetic import SyntheticMarket
from engine.sim.usdm import rest_account, rest_market, rest_trade
from engine.sim.usdm.context import UsdmContext
from engine.sim.usdm.wire import (
    account_position_json,
    amount_text,
    balance_json,
    order_update,
    price_text,
    qty_text,
    wire_symbol,
)

log = logger.bind(component="venue")

PERP_SUFFIX = "-PERP"  # internal symbol of a perpetual: spot name + suffix
PERP_QUOTES = ("USDT", "USDC")
WS_PATHS = ("/ws", "/stream", "/public", "/market", "/private", "/ws-fapi")
# USD-M's published limits (exchangeInfo): 2400 weight/min, 300 orders/10 s.
USDM_LIMITS = Limits(weight_per_minute=2400, orders_per_10s=300, orders_per_day=10**9)


def perp_specs(config: LocalVenueConfig, spot: dict[str, SymbolSpec]) -> dict[str, SymbolSpec]:
    """Wire symbol -> spec of its perpetual (internal name ``<symbol>-PERP``)."""
    usdm = config.usdm
    chosen = usdm.symbols or tuple(s for s, spec in spot.items() if spec.quote in PERP_QUOTES)
    specs = {}
    for symbol in chosen:
        if symbol not in spot:
            raise ValueError(f"venue.usdm.symbols: {symbol} is not one of venue.symbols")
        specs[symbol] = dataclasses.replace(
            spot[symbol], symbol=symbol + PERP_SUFFIX, maker_fee=FeeRate(usdm.maker_fee),
            taker_fee=FeeRate(usdm.taker_fee))
    return specs


class UsdmDialect:
    def __init__(self, config: LocalVenueConfig, exchange: Exchange,
                 spot: dict[str, SymbolSpec], limits: Limits | None = None) -> None:
        usdm: UsdmVenueConfig = config.usdm
        self.config = usdm
        self.exchange = exchange
        self.specs = perp_specs(config, spot)
        engine = exchange.engine
        self.derivatives = Derivatives(engine.ledger, usdm.leverage)
        self.funding = Funding(self.derivatives, FundingRules(
            interval_ms=usdm.funding_interval_s * 1000))
        self.index_of = {spec.symbol: symbol for symbol, spec in self.specs.items()}
        with exchange.lock:
            for spec in self.specs.values():
                engine.add_symbol(spec, self.derivatives.add_symbol(spec))
                exchange.markets[spec.symbol] = MarketData(spec.symbol)
        self.listen_keys = ListenKeys()
        accounts = {a.api_key: ApiAccount(a.name, a.api_key, a.api_secret)
                    for a in config.accounts}
        self.ctx = UsdmContext(exchange, self.specs, RateLimiter(limits or USDM_LIMITS),
                               accounts, self.listen_keys, self.derivatives, self.funding)
        self.rest = RestApi(self.ctx, {**rest_market.ROUTES, **rest_trade.ROUTES,
                                       **rest_account.ROUTES})
        from engine.sim.usdm.streams import UsdmHub  # cycle: hub uses us
        self.hub = UsdmHub(self)
        port = 0 if config.port == 0 else usdm.port
        self.loop = NetLoop(config.host, port, self.rest.handle, self.hub,
                            ws_origins=config.ws_origins, ws_paths=WS_PATHS)
        self.hub.wake = self.loop.wake
        self.outbox: deque[tuple[str, Any]] = deque()  # (account or "", payload) for the hub
        self.margin_called: set[str] = set()
        # accounts with an open user stream (the hub keeps it): only their
        # events are rendered, so trading without listeners costs nothing here
        self.listening: set[str] = set()
        exchange.listeners.append(self._on_operation)
        self.market: SyntheticMarket | None = None
        if config.market == "synthetic":  # the perpetuals get bots of their own
            prices = config.synthetic.start_prices
            self.market = SyntheticMarket(exchange, {s.symbol: s for s in self.specs.values()},
                                          dataclasses.replace(
                config.synthetic, seed=config.synthetic.seed + 1,
                start_prices={spec.symbol: prices[symbol] for symbol, spec in
                              self.specs.items() if symbol in prices}))
        self.url = ""
        self.ws_url = ""

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.loop.start()
        if self.market is not None:
            self.market.start()
        host = self.loop.host
        self.url = f"http://{host}:{self.loop.port}"
        self.ws_url = f"ws://{host}:{self.loop.port}"
        log.info("local venue USD-M dialect listening url={} symbols={}", self.url,
                 ",".join(self.specs))

    def stop(self, timeout_s: float) -> None:
        if self.market is not None:
            self.market.stop(timeout_s / 2)
        self.loop.stop(timeout_s / 2)

    # ------------------------------------------- exchange thread, under lock

    def is_perp(self, symbol: str) -> bool:
        return symbol in self.derivatives.specs

    def _on_operation(self, published: Published) -> None:
        if not self.is_perp(published.symbol):
            return
        self.outbox.append(("", published))
        self._user_events(published.result, published.time_ms, "ORDER")
        self.hub.wake()

    def _user_events(self, result: OpResult, now_ms: int, reason: str) -> None:
        d = self.derivatives
        spec = d.specs[result.symbol]
        for execution in result.executions:
            account = execution.order.account
            if account not in self.listening:
                continue
            fill = None
            if execution.exec_type == EXEC_TRADE:
                fill = next((f for f in reversed(d.fills.get(account, ()))
                             if f.trade_id == execution.trade_id and f.symbol == spec.symbol),
                            None)
            self.outbox.append((account, order_update(execution, spec, fill, now_ms)))
        self._account_updates(now_ms, reason)

    def _account_updates(self, now_ms: int, reason: str) -> None:
        d = self.derivatives
        touched: dict[str, list] = {}
        for account, symbol, side in d.book.take_touched():
            if account in self.listening:
                touched.setdefault(account, []).append(d.book.get(account, symbol, side))
        for account, positions in touched.items():
            assets = sorted({d.specs[p.symbol].quote for p in positions})
            decimals = d.specs[positions[0].symbol].amount_decimals
            self.outbox.append((account, {
                "e": "ACCOUNT_UPDATE", "E": now_ms, "T": now_ms, "a": {
                    "m": reason,
                    "B": [balance_json(a, decimals, d.risk(account, a)) for a in assets],
                    "P": [account_position_json(d, p) for p in positions]}}))

    # --------------------------------------------------------------- tick

    def tick(self) -> list[dict]:
        """Mark prices, funding when due, margin calls and liquidations, as
        one locked step; returns the markPriceUpdate payloads."""
        marks: list[dict] = []

        def step(engine: MatchingEngine, now_ms: int) -> list[OpResult]:
            results: list[OpResult] = []
            for spec in self.specs.values():
                internal = spec.symbol
                index_book = engine.books.get(self.index_of[internal])
                index = 0
                if index_book is not None:
                    bid, ask = index_book.best_bid_ask()
                    if bid and ask:
                        index = (bid.price + ask.price) // 2
                bid, ask = engine.books[internal].best_bid_ask()
                mark = self.funding.update(internal, index, bid.price if bid else 0,
                                           ask.price if ask else 0,
                                           engine.last_price[internal], now_ms)
                if mark > 0:  # no price yet (no book, no trade): no mark, as on Binance
                    marks.append(self._mark_event(spec, mark, now_ms))
            for internal in self.funding.due(now_ms):
                payments = self.funding.settle(internal, now_ms)
                if payments:
                    log.info("venue funding symbol={} payments={}", internal, len(payments))
            self._account_updates(now_ms, "FUNDING_FEE")
            for order in knocked_out(engine, self.derivatives):
                results.append(engine.cancel(order.account, order.symbol, now_ms,
                                             order.order_id))
            for asset in sorted({s.quote for s in self.specs.values()}):
                self._margin_calls(asset, now_ms)
                for account, positions in due(self.derivatives, asset):
                    log.warning("venue liquidating account={} positions={}", account,
                                len(positions))
                    results += liquidate(engine, self.derivatives, account, positions, now_ms)
            return results
        self.exchange.run(step)
        return marks

    def _mark_event(self, spec: SymbolSpec, mark: int, now_ms: int) -> dict:
        state = self.funding.state(spec.symbol, now_ms)
        rate: Fraction = self.funding.rate(spec.symbol, now_ms)
        return {"e": "markPriceUpdate", "E": now_ms, "s": wire_symbol(spec),
                "p": price_text(spec, mark), "i": price_text(spec, state.index),
                "P": price_text(spec, mark),
                "r": f"{float(rate):.8f}", "T": state.next_funding_ms}

    def _margin_calls(self, asset: str, now_ms: int) -> None:
        called = set()
        for account, risk in margin_calls(self.derivatives, asset):
            called.add(account)
            if account in self.margin_called or account == INSURANCE_ACCOUNT:
                continue
            spec = next(iter(self.specs.values()))
            self.outbox.append((account, {
                "e": "MARGIN_CALL", "E": now_ms,
                "cw": amount_text(spec, risk.wallet), "p": [{
                    "s": wire_symbol(self.derivatives.specs[r.position.symbol]),
                    "ps": r.position.side,
                    "pa": qty_text(self.derivatives.specs[r.position.symbol], r.position.qty),
                    "mt": "ISOLATED" if r.isolated else "CROSSED",
                    "iw": amount_text(spec, r.position.margin),
                    "mp": price_text(self.derivatives.specs[r.position.symbol], r.mark),
                    "up": amount_text(spec, r.unrealized),
                    "mm": amount_text(spec, r.maintenance)} for r in risk.positions]}))
        self.margin_called = called

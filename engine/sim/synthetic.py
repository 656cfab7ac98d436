"""Built-in liquidity for market mode "synthetic": a seeded random walk per
symbol, a maker bot quoting a ladder around it and a taker bot trading
against the ladder, so a paper trader always has a moving market.

The bots are ordinary venue accounts (SYNTHETIC_MAKER, SYNTHETIC_TAKER) with
large balances; they trade through the same matching engine as users, so a
user's resting order fills when the walk carries the ladder through it. One
thread; every tick is one locked step on the exchange.
"""

from __future__ import annotations

import math
import random
import threading

from loguru import logger

from engine.config import SyntheticMarketConfig
from engine.sim import orders as o
from engine.sim.amounts import config_units
from engine.sim.exchange import Exchange
from engine.sim.filters import SymbolSpec
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.orders import OrderRequest, Rejected

log = logger.bind(component="venue")

SYNTHETIC_MAKER = "_synthetic_maker"
SYNTHETIC_TAKER = "_synthetic_taker"
# Each maker level holds about this many times the symbol's min notional:
# thicker hides user orders in the queue, thinner makes prices jumpy.
LEVEL_NOTIONALS = 50
# A maker level refills once less than this share of it is left.
REFILL_BELOW = 0.3
TAKER_PROBABILITY = 0.6  # chance per tick per symbol that the taker trades


class _Quoter:
    """One symbol's walk and the maker's current ladder."""

    def __init__(self, spec: SymbolSpec, start_price: int, rng: random.Random) -> None:
        self.spec = spec
        self.mid = float(start_price)
        self.rng = rng
        self.last_step = 0.0
        self.quotes: dict[tuple[str, int], int] = {}  # (side, price) -> order id
        self.level_qty = self._level_qty(start_price)

    def _level_qty(self, price: int) -> int:
        spec = self.spec
        target = max(spec.min_notional, 10**spec.amount_decimals) * LEVEL_NOTIONALS
        qty = target // (max(price, 1) * spec.notional_scale)
        return max(spec.step, qty - qty % spec.step)


class SyntheticMarket:
    def __init__(self, exchange: Exchange, specs: dict[str, SymbolSpec],
                 config: SyntheticMarketConfig) -> None:
        self.exchange = exchange
        self.config = config
        self.rng = random.Random(config.seed)
        self.quoters: dict[str, _Quoter] = {}
        for symbol, spec in specs.items():
            text = config.start_prices.get(symbol)
            last = exchange.engine.last_price[symbol]
            if text is None and last is None:
                log.warning("synthetic market has no start price symbol={}", symbol)
                continue
            start = last if last is not None else config_units(
                str(text), spec.price_decimals, f"start_prices.{symbol}")
            self.quoters[symbol] = _Quoter(spec, start, random.Random(self.rng.random()))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.steps = 0

    def start(self) -> None:
        self.exchange.cancel_everything(SYNTHETIC_MAKER)
        self._thread = threading.Thread(target=self._run, name="venue-synthetic", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        period = self.config.tick_ms / 1000
        while not self._stop.wait(period):
            try:
                self.step()
            except Exception:  # a bot bug must not take the venue down; health shows it
                log.exception("synthetic market step failed")
                raise

    def step(self) -> None:
        """One tick: move every walk, requote, maybe trade."""
        self.exchange.run(self._tick)
        self.steps += 1

    def _tick(self, engine: MatchingEngine, now_ms: int) -> list[OpResult]:
        results: list[OpResult] = []
        for quoter in self.quoters.values():
            self._walk(quoter)
            results += self._requote(engine, quoter, now_ms)
            if quoter.rng.random() < TAKER_PROBABILITY:
                results += self._take(engine, quoter, now_ms)
        return results

    def _walk(self, quoter: _Quoter) -> None:
        step = quoter.rng.gauss(0.0, 1.0) * self.config.volatility_bps / 10_000
        quoter.last_step = step
        floor = quoter.spec.tick * (2 * self.config.levels + 2)
        quoter.mid = max(floor, quoter.mid * math.exp(step))

    def _ladder(self, quoter: _Quoter) -> dict[tuple[str, int], int]:
        spec = quoter.spec
        spacing = max(spec.tick, int(quoter.mid * self.config.volatility_bps / 20_000))
        spacing -= spacing % spec.tick
        best_bid = int(quoter.mid - spacing / 2)
        best_bid -= best_bid % spec.tick
        best_ask = best_bid + max(spacing, spec.tick)
        wanted = {}
        for i in range(self.config.levels):
            wanted[(o.BUY, best_bid - i * spacing)] = quoter.level_qty
            wanted[(o.SELL, best_ask + i * spacing)] = quoter.level_qty
        return {key: qty for key, qty in wanted.items() if key[1] > 0}

    def _requote(self, engine: MatchingEngine, quoter: _Quoter, now_ms: int) -> list[OpResult]:
        symbol = quoter.spec.symbol
        wanted = self._ladder(quoter)
        results = []
        for key, order_id in list(quoter.quotes.items()):
            order = engine.open_orders[symbol].get(order_id)
            stale = key not in wanted or order is None \
                or order.remaining < quoter.level_qty * REFILL_BELOW
            if not stale:
                continue
            del quoter.quotes[key]
            if order is not None:
                results.append(engine.cancel(SYNTHETIC_MAKER, symbol, now_ms, order_id))
        for (side, price), qty in wanted.items():
            if (side, price) in quoter.quotes:
                continue
            request = OrderRequest(symbol, side, o.LIMIT, o.GTC, qty, price=price)
            try:
                result = engine.submit(SYNTHETIC_MAKER, request, now_ms)
            except Rejected:
                continue
            results.append(result)
            assert result.order is not None
            if result.order.is_open:
                quoter.quotes[(side, price)] = result.order.order_id
        return results

    def _take(self, engine: MatchingEngine, quoter: _Quoter, now_ms: int) -> list[OpResult]:
        spec = quoter.spec
        side = o.BUY if quoter.last_step > 0 else o.SELL
        qty = int(quoter.level_qty * quoter.rng.uniform(0.2, 1.5))
        qty = max(spec.step, qty - qty % spec.step)
        try:
            return [engine.submit(SYNTHETIC_TAKER, OrderRequest(spec.symbol, side, o.MARKET,
                                                                quantity=qty), now_ms)]
        except Rejected:
            return []

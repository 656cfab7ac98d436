"""Paper trading against a live venue: a local venue (engine.sim) that holds
our orders, with the live venue's book mirrored into it and the live trades
played against our resting orders, so the trader's unchanged Binance driver
trades it exactly as it would the real one. Nothing is ever sent to the live
venue. Owns the mirror and the queue model; the matching engine decides fills.

  live feed ─► BookStore ─(poll)─► mirror the top levels as house orders ─┐ a live
    (a level that crosses one of our orders fills it, we are the maker)   │ level
  live feed ─► trades ─► on_event ─► queue model: size ahead of us at our │ or an
    price; a trade through our price, or past the size ahead, fills us ───┤ IOC at
  trader (its driver) ◄─ REST/WS ─► LocalVenue: matching engine, fees ◄─┘ our price
Our order that crosses the mirrored book fills at once as taker (a post-only
one is refused), at the live prices, with the venue's taker fee.
"""

from __future__ import annotations

import pathlib
import queue
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from functools import partial
from typing import Any

import requests
from loguru import logger

from engine.book.reader import BookReader
from engine.config import (
    LocalVenueConfig,
    SyntheticMarketConfig,
    VenueAccountConfig,
    VenueSymbolConfig,
)
from engine.lifecycle import Health
from engine.model import Side, Trade, book_key
from engine.model_trade import TradingDriver
from engine.sim import orders as o
from engine.sim.filters import SymbolSpec
from engine.sim.matching import MatchingEngine, OpResult
from engine.sim.orders import OrderRequest, Rejected
from engine.sim.server import HOUSE_BALANCE, LocalVenue

log = logger.bind(component="paper")

HOUSE = "_paper_market"  # the account that holds the mirrored live liquidity
ACCOUNT = "paper"  # the trader's account on the paper venue
# Live levels mirrored per side. More lets a large order of ours walk deeper
# into a realistic book; each level is one house order to keep in step.
MIRROR_DEPTH = 20
# How often the mirror re-reads the live book and drains the trade queue: the
# paper fill lag behind the live market. Shorter follows closer, costs CPU.
POLL_S = 0.02
TRADES_QUEUED = 100_000  # live trades waiting; beyond this they are dropped (counted)


@dataclass
class _Resting:
    order_id: int
    side: str
    price: int  # venue price units
    ahead: int  # live size (quantity units) queued before us at our price


class QueueModel:
    """Where our resting orders stand in the live queue at their price, and
    which of them a live trade fills. Pure; venue integer units throughout."""

    def __init__(self) -> None:
        self.resting: dict[int, _Resting] = {}

    def sync(self, ours: list[tuple[int, str, int]], live: dict[tuple[str, int], int]) -> None:
        """``ours``: (order id, side, price) resting now; ``live``: (side,
        price) -> visible size. A new order joins behind the visible size; an
        old one never has more ahead of it than its level still shows."""
        seen = {order_id for order_id, _, _ in ours}
        for order_id in list(self.resting):
            if order_id not in seen:
                del self.resting[order_id]
        for order_id, side, price in ours:
            size = live.get((side, price), 0)
            known = self.resting.get(order_id)
            if known is None:
                self.resting[order_id] = _Resting(order_id, side, price, size)
            else:
                known.ahead = min(known.ahead, size)

    def fills(self, trade_price: int, trade_qty: int, taker_side: str,
              remaining: dict[int, int]) -> list[tuple[int, int]]:
        """(order id, quantity) of ours a live trade fills: every order the
        trade went through, in full; at the trade's price, what the trade
        left after the size ahead."""
        maker_side = o.BUY if taker_side == o.SELL else o.SELL
        out: list[tuple[int, int]] = []
        left = trade_qty
        better_first = sorted((r for r in self.resting.values() if r.side == maker_side),
                              key=lambda r: -r.price if maker_side == o.BUY else r.price)
        for r in better_first:
            through = r.price > trade_price if maker_side == o.BUY else r.price < trade_price
            if through:
                out.append((r.order_id, remaining.get(r.order_id, 0)))
            elif r.price == trade_price and left > 0:
                eaten = min(left, r.ahead)
                r.ahead -= eaten
                left -= eaten
                take = min(left, remaining.get(r.order_id, 0))
                if take > 0:
                    out.append((r.order_id, take))
                    left -= take
        return [(order_id, qty) for order_id, qty in out if qty > 0]


@dataclass(frozen=True)
class PaperPair:
    pair: str  # BASE/QUOTE as the live book names it
    rules: VenueSymbolConfig  # the live venue's tick, lot, minimum and fees


class PaperVenue:
    """A lifecycle Component per paper-traded venue: start it before the
    trader (whose config it rewrites to point here), after the books."""

    name = "paper"

    def __init__(self, venue: str, market: str,
                 pairs: list[PaperPair] | Callable[[], list[PaperPair]],
                 books: Callable[[], BookReader | None], data_dir: pathlib.Path,
                 balances: dict[str, str], poll_s: float = POLL_S, port: int = 0) -> None:
        """``pairs``: the live venue's rules, or how to fetch them at start
        (``live_pairs``); ``port`` 0 picks one at start, else the trader's
        config can name ``url`` before then."""
        self.name = f"paper:{venue}"  # one component per paper venue
        self.venue_name, self.market = venue, market
        self._pairs_of = pairs
        self.books = books
        self.poll_s = poll_s
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}"
        self.data_dir = data_dir
        self.balances = balances
        self.api_key, self.api_secret = f"paper-{secrets.token_hex(8)}", secrets.token_hex(16)
        self.local: LocalVenue | None = None
        self.pairs: dict[str, PaperPair] = {}
        self.models: dict[str, QueueModel] = {}
        self._placed: dict[str, dict[tuple[str, int], tuple[int, int]]] = {}
        self._versions: dict[str, int] = {}
        self._live: dict[str, dict[tuple[str, int], int]] = {}
        self._trades: queue.Queue[Trade] = queue.Queue(TRADES_QUEUED)
        self.trades_dropped = 0
        self.paper_fills = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failed: BaseException | None = None

    @property
    def rest_url(self) -> str:
        return self.local.rest_url if self.local is not None else self.url

    @property
    def ws_url(self) -> str:
        return self.local.ws_url if self.local is not None else self.ws

    def start(self) -> None:
        pairs = self._pairs_of() if callable(self._pairs_of) else self._pairs_of
        self.pairs = {p.rules.symbol: p for p in pairs}
        self.models = {symbol: QueueModel() for symbol in self.pairs}
        self._placed = {s: {} for s in self.pairs}  # symbol -> (side, price) -> (id, qty)
        self._live = {s: {} for s in self.pairs}
        self.local = LocalVenue(LocalVenueConfig(
            port=self.port, state_path=f"paper_{self.venue_name}.sqlite", market="none",
            synthetic=SyntheticMarketConfig(), symbols=tuple(p.rules for p in pairs),
            accounts=(VenueAccountConfig(ACCOUNT, self.api_key, self.api_secret,
                                         self.balances),)), self.data_dir)
        self.local.start()
        exchange = self._exchange()

        def open_house(engine: MatchingEngine, now: int) -> list[OpResult]:
            if not engine.ledger.has_account(HOUSE):
                decimals = next(iter(engine.specs.values())).amount_decimals
                assets = {x for s in engine.specs.values() for x in (s.base, s.quote)}
                engine.ledger.open_account(HOUSE, dict.fromkeys(
                    assets, HOUSE_BALANCE * 10**decimals))
            return []
        exchange.run(open_house)
        exchange.cancel_everything(HOUSE)  # yesterday's mirror is not today's book
        self._thread = threading.Thread(target=self._run, name=f"paper-{self.venue_name}",
                                        daemon=True)
        self._thread.start()
        log.info("paper venue up venue={} url={} pairs={}", self.venue_name, self.rest_url,
                 ",".join(p.pair for p in self.pairs.values()))

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s / 2)
        if self.local is not None:
            self.local.stop(timeout_s / 2)

    def _exchange(self) -> Any:
        assert self.local is not None and self.local.exchange is not None, "not started"
        return self.local.exchange

    def on_event(self, event: Any) -> None:
        """The feed's event hook (chained with the recorder's): live trades."""
        if isinstance(event, Trade) and event.venue == self.venue_name:
            try:
                self._trades.put_nowait(event)
            except queue.Full:
                self.trades_dropped += 1

    # ---------------------------------------------------------------- mirror

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.poll_s):
                reader = self.books()
                if reader is None:
                    continue
                for symbol, pair in self.pairs.items():
                    try:
                        self._mirror(reader, symbol, pair)
                    except Exception:  # noqa: BLE001 - a torn read or one bad level: next poll
                        self.errors += 1
                        log.opt(exception=self.errors <= 3).warning(
                            "paper mirror pass failed venue={} symbol={}", self.venue_name, symbol)
                    self._exchange().read(partial(self._sync_queue, symbol=symbol))  # new joins
                self._play_trades()
        except BaseException as exc:  # recorded for health()
            self.failed = exc
            log.exception("paper mirror failed venue={}", self.venue_name)

    def _mirror(self, reader: BookReader, symbol: str, pair: PaperPair) -> None:
        key = book_key(self.venue_name, self.market, pair.pair)
        try:
            view = reader.read(key, MIRROR_DEPTH)
        except KeyError:
            return  # the feed has not registered the book yet
        if self._versions.get(symbol) == view.version:
            return
        self._versions[symbol] = view.version
        exchange = self._exchange()
        spec = exchange.engine.specs[symbol]
        live: dict[tuple[str, int], int] = {}
        if view.synced:  # a resyncing book is not mirrored: no fills on a guess
            for side, prices, sizes in ((o.BUY, view.bid_px, view.bid_sz),
                                        (o.SELL, view.ask_px, view.ask_sz)):
                for px, sz in zip(prices, sizes):
                    price, qty = _price_units(float(px), spec, side), _qty_units(float(sz), spec)
                    if price > 0 and qty > 0:
                        live[(side, price)] = live.get((side, price), 0) + qty
        self._live[symbol] = live
        exchange.run(partial(self._set_levels, symbol=symbol, live=live))

    def _set_levels(self, engine: MatchingEngine, now: int, *, symbol: str,
                    live: dict[tuple[str, int], int]) -> list[OpResult]:
        results: list[OpResult] = []
        placed, open_orders = self._placed[symbol], engine.open_orders[symbol]
        for level, (order_id, qty) in list(placed.items()):  # removals first: never self-cross
            order = open_orders.get(order_id)
            if live.get(level) != qty or order is None or order.remaining != qty:
                del placed[level]
                if order is not None:
                    results.append(engine.cancel(HOUSE, symbol, now, order_id))
        for (side, price), qty in sorted(live.items(), key=lambda x: x[0][0] != o.SELL):
            if (side, price) in placed:
                continue
            try:
                result = engine.submit(HOUSE, OrderRequest(symbol, side, o.LIMIT, o.GTC, qty,
                                                           price=price, stp_mode=o.EXPIRE_MAKER),
                                       now)
            except Rejected:
                continue
            results.append(result)
            order = result.order
            if order is not None and order.order_id in engine.open_orders[symbol]:
                placed[(side, price)] = (order.order_id, order.remaining)
        ours = [(x.order_id, x.side, x.price) for x in open_orders.values()
                if x.account == ACCOUNT]
        self.models[symbol].sync(ours, live)
        return results

    def _sync_queue(self, exchange: Any, *, symbol: str) -> None:
        open_orders = exchange.engine.open_orders[symbol].values()
        self.models[symbol].sync([(x.order_id, x.side, x.price) for x in open_orders
                                  if x.account == ACCOUNT], self._live[symbol])

    def _play_trades(self) -> None:
        exchange = self._exchange()
        while True:
            try:
                trade = self._trades.get_nowait()
            except queue.Empty:
                return
            symbol = next((s for s, p in self.pairs.items() if p.pair == trade.pair), None)
            if symbol is None:
                continue
            exchange.run(partial(self._fill, symbol=symbol, trade=trade))

    def _fill(self, engine: MatchingEngine, now: int, *, symbol: str, trade: Trade
              ) -> list[OpResult]:
        spec = engine.specs[symbol]
        taker = o.BUY if trade.taker_side == Side.BUY else o.SELL
        open_orders = engine.open_orders[symbol]
        remaining = {x.order_id: x.remaining for x in open_orders.values()
                     if x.account == ACCOUNT}
        self.models[symbol].sync([(x.order_id, x.side, x.price) for x in open_orders.values()
                                  if x.account == ACCOUNT], self._live[symbol])
        price = _price_units(trade.price, spec, taker)  # bids hit: on the tick at or above
        results = []
        for order_id, qty in self.models[symbol].fills(price, _qty_units(trade.size, spec),
                                                       taker, remaining):
            ours = open_orders.get(order_id)
            if ours is None:
                continue
            request = OrderRequest(symbol, taker, o.LIMIT, o.IOC, qty, price=ours.price,
                                   stp_mode=o.EXPIRE_MAKER)
            try:
                results.append(engine.submit(HOUSE, request, now))
                self.paper_fills += 1
            except Rejected as exc:
                log.debug("paper fill refused order_id={} reason={}", order_id, exc)
        return results

    # ----------------------------------------------------------------- views

    def health(self) -> list[Health]:
        if self.failed is not None:
            return [Health(self.name, False, f"paper mirror died: {self.failed!r}")]
        if self.local is None:
            return [Health(self.name, False, "not started")]
        ok, reason = self.local.health()
        return [Health(self.name, ok, reason if not ok else
                       f"paper {self.venue_name} at {self.rest_url}")]

    def status(self) -> dict:
        return {"venue": self.venue_name, "url": self.rest_url, "paper_fills": self.paper_fills,
                "trades_dropped": self.trades_dropped,
                "mirrored_levels": {s: len(p) for s, p in self._placed.items()}}


def _price_units(value: float, spec: SymbolSpec, side: str) -> int:
    """A live float price on the venue's tick: bids down, asks up (never better)."""
    raw = Decimal(repr(value)).scaleb(spec.price_decimals)
    units = int(raw.to_integral_value(ROUND_FLOOR if side == o.BUY else ROUND_CEILING))
    rest = units % spec.tick
    if rest:
        units += -rest if side == o.BUY else spec.tick - rest
    return units


def _qty_units(value: float, spec: SymbolSpec) -> int:
    units = int(Decimal(repr(value)).scaleb(spec.qty_decimals).to_integral_value(ROUND_FLOOR))
    return units - units % spec.step


def live_pairs(driver: TradingDriver, pairs: list[str], maker_fee: str, taker_fee: str,
               fallback: Sequence[VenueSymbolConfig] = (), timeout_s: float = 10.0
               ) -> list[PaperPair]:
    """The live venue's rules for ``pairs`` (its public exchangeInfo through
    ``driver``: no key), with the fee tier to simulate. If the venue cannot be
    asked, the matching ``fallback`` rules (config ``venue.symbols``), with a
    warning; an error if there are none (a guessed tick would reject or misprice)."""
    try:
        reply = requests.get(driver.exchange_info(pairs).url, timeout=timeout_s)
        reply.raise_for_status()
        rules = driver.instrument_rules(reply.json())
    except (requests.RequestException, ValueError, KeyError) as exc:
        known = {s.symbol: s for s in fallback}
        found = [PaperPair(p, replace(known[driver.symbol(p)], maker_fee=maker_fee,
                                      taker_fee=taker_fee))
                 for p in pairs if driver.symbol(p) in known]
        if len(found) < len(pairs):
            raise RuntimeError(f"paper venue: no rules for {pairs} from {driver.endpoints.rest} "
                               f"({exc}) and none in venue.symbols") from exc
        log.warning("paper venue uses venue.symbols rules: live exchangeInfo failed error={}",
                    exc)
        return found
    return [PaperPair(pair, VenueSymbolConfig(
        r.symbol, r.base, r.quote, tick_size=r.tick_size, step_size=r.step_size,
        min_notional=r.min_notional or "0", maker_fee=maker_fee,
        taker_fee=taker_fee)) for pair, r in rules.items()]

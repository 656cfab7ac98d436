"""LocalVenue: the local exchange as one component the daemon starts and
stops. Wires config -> state store -> matching engine -> REST + streams on
one port, plus the synthetic or replay market.

  LocalVenueConfig ─► SymbolSpecs, Ledger (saved state or config balances)
  StateStore (SQLite) ─► MatchingEngine.restore ─► Exchange (one lock)
  Exchange ─► RestApi ─┐
           └► StreamHub ┴─► NetLoop (one thread, one port: /api/v3/*, /ws, /stream)
  SyntheticMarket | Replayer ─► Exchange
"""

from __future__ import annotations

import dataclasses
import pathlib
import threading
from collections.abc import Callable
from typing import Any

from loguru import logger

from engine.clock import SYSTEM, Clock
from engine.config import LocalVenueConfig
from engine.sim.amounts import FeeRate, config_units
from engine.sim.bybit.service import BybitDialect
from engine.sim.exchange import Exchange, Published
from engine.sim.filters import SymbolSpec, amount_decimals_for
from engine.sim.ledger import Ledger
from engine.sim.listen_keys import ListenKeys
from engine.sim.market_data import TRADES_KEPT, MarketData
from engine.sim.matching import MatchingEngine
from engine.sim.netloop import NetLoop
from engine.sim.okx.service import OkxDialect
from engine.sim.ratelimit import Limits, RateLimiter
from engine.sim.replay import REPLAY_ACCOUNT, Replayer
from engine.sim.rest import ApiAccount, RestApi, VenueContext
from engine.sim.rest_market import ROUTES as MARKET_ROUTES
from engine.sim.rest_trade import LISTEN_KEY_ROUTES
from engine.sim.rest_trade import ROUTES as TRADE_ROUTES
from engine.sim.signing import load_public_key
from engine.sim.store import SCHEMA_VERSION, Batch, SavedState, StateStore
from engine.sim.streams import StreamHub
from engine.sim.synthetic import SYNTHETIC_MAKER, SYNTHETIC_TAKER, SyntheticMarket
from engine.sim.usdm.service import UsdmDialect
from engine.sim.ws_api import WsApi, WsRouter

log = logger.bind(component="venue")

# Balance of every asset for the venue's own liquidity accounts, in whole
# units: large enough never to run dry in a paper session.
HOUSE_BALANCE = 10**12
HOUSE_ACCOUNTS = (SYNTHETIC_MAKER, SYNTHETIC_TAKER, REPLAY_ACCOUNT)


class LocalVenue:
    name = "venue"

    def __init__(self, config: LocalVenueConfig, data_dir: pathlib.Path, fresh: bool = False,
                 *, clock: Clock = SYSTEM, limits: Limits | None = None,
                 replay_speed: float = 1.0, legacy_listen_keys: bool = False) -> None:
        if not config.symbols:
            raise ValueError("venue.symbols: the local venue needs at least one symbol")
        keys = [a.api_key for a in config.accounts]
        if len(set(keys)) != len(keys) or any(k.startswith("_") for k in
                                              (a.name for a in config.accounts)):
            raise ValueError("venue.accounts: api keys must be unique and names must not "
                             "start with '_'")
        if config.market == "replay" and not config.replay_file:
            raise ValueError("venue.replay_file: market 'replay' needs a capture file")
        self.config = config
        state = pathlib.Path(config.state_path)
        self.state_path = state if state.is_absolute() else pathlib.Path(data_dir) / state
        self.fresh = fresh
        self.clock = clock
        self.limits = limits or Limits()
        self.replay_speed = replay_speed
        # POST/PUT/DELETE /api/v3/userDataStream, which Binance retired on 2026-02-20
        self.legacy_listen_keys = legacy_listen_keys
        self.rest_url = ""
        self.ws_url = ""
        self.exchange: Exchange | None = None
        self.usdm: UsdmDialect | None = None  # the Binance USD-M dialect, when enabled
        self.okx: OkxDialect | None = None  # the OKX v5 dialect, when enabled
        self.bybit: BybitDialect | None = None  # the Bybit v5 dialect, when enabled
        self.market: SyntheticMarket | Replayer | None = None
        self._store: StateStore | None = None
        self._loop: NetLoop | None = None
        self._state_lock = threading.Lock()
        self._running = False

    # ----------------------------------------------------------- lifecycle

    def start(self) -> None:
        with self._state_lock:
            if self._running:
                return
            store = StateStore(self.state_path, fresh=self.fresh)
            try:  # everything that can refuse the config, before any thread runs
                exchange, specs, saved = self._open_state(store)
                market = self._make_market(exchange, specs)
                loop = self._make_network(exchange, specs)
                usdm = self._make_usdm(exchange, specs, saved)
                okx = self._make_okx(exchange, specs, saved, usdm)
                bybit = BybitDialect(self.config, exchange, specs, usdm) \
                    if self.config.bybit.enabled else None
            except BaseException:
                store.close()
                raise
            store.start()
            ledger = exchange.engine.ledger
            store.submit(Batch(  # every balance on disk, not only the ones trading touches
                balances=[(a, x, str(free), str(locked)) for a, x, free, locked in ledger.rows()],
                fees=[(x, str(amount)) for x, amount in ledger.fees.items()]))
            try:
                loop.start()
                if usdm is not None:
                    usdm.start()
                if okx is not None:
                    okx.start()
                if bybit is not None:
                    bybit.start()
            except OSError:
                if usdm is not None:
                    usdm.stop(1.0)
                loop.stop(1.0)
                if usdm is not None:
                    usdm.loop.stop(1.0)
                store.stop()
                raise
            self.usdm = usdm
            self.okx = okx
            self.bybit = bybit
            self.exchange, self._store, self._loop, self.market = exchange, store, loop, market
            self.rest_url = f"http://{self.config.host}:{loop.port}"
            self.ws_url = f"ws://{self.config.host}:{loop.port}"
            if market is not None:
                market.start()
            self._running = True
            log.info("local venue listening url={} market={} symbols={} state={} "
                     "restored_orders={}", self.rest_url, self.config.market, ",".join(specs),
                     self.state_path, len(saved.open_orders))

    def _open_state(self, store: StateStore) -> tuple[Exchange, dict[str, SymbolSpec],
                                                      SavedState]:
        decimals = amount_decimals_for(self.config.symbols)
        specs = {s.symbol: SymbolSpec.from_config(s, decimals) for s in self.config.symbols}
        saved = store.load(TRADES_KEPT)
        meta = self._meta(decimals, specs)
        self._check_compatible(saved, meta)
        store.write_meta(meta)
        engine = MatchingEngine(specs.values(), self._ledger(saved, specs, decimals))
        engine.fee_overrides.update(self._account_fees())
        markets = {symbol: MarketData(symbol) for symbol in specs}
        self._restore(engine, markets, saved)
        return Exchange(engine, markets, self.clock, store), specs, saved

    def _make_market(self, exchange: Exchange,
                     specs: dict[str, SymbolSpec]) -> SyntheticMarket | Replayer | None:
        config = self.config
        if config.market == "synthetic":
            return SyntheticMarket(exchange, specs, config.synthetic)
        if config.market == "replay":
            return Replayer(exchange, specs, pathlib.Path(config.replay_file), self.replay_speed)
        return None

    def _make_network(self, exchange: Exchange, specs: dict[str, SymbolSpec]) -> NetLoop:
        listen_keys = ListenKeys()
        accounts = {a.api_key: ApiAccount(a.name, a.api_key, a.api_secret, load_public_key(
                        a.public_key, f"venue.accounts.{a.name}.public_key")
                        if a.public_key else None)
                    for a in self.config.accounts}
        ctx = VenueContext(exchange, specs, RateLimiter(self.limits), accounts, listen_keys)
        rest = RestApi(ctx, {**MARKET_ROUTES, **TRADE_ROUTES,
                             **(LISTEN_KEY_ROUTES if self.legacy_listen_keys else {})})
        hub = StreamHub(exchange, specs, listen_keys)
        api = WsApi(ctx, hub)
        loop = NetLoop(self.config.host, self.config.port, rest.handle, WsRouter(hub, api),
                       ws_origins=self.config.ws_origins)
        hub.wake = api.wake = loop.wake
        exchange.listeners.append(hub.enqueue)
        exchange.listeners.append(api.enqueue)
        return loop

    def _make_usdm(self, exchange: Exchange, specs: dict[str, SymbolSpec],
                   saved: SavedState) -> UsdmDialect | None:
        """The USD-M dialect on its own port; the spot streams keep to spot
        symbols. Open perpetual orders come back; positions do not (yet).
        The Bybit dialect's linear category trades these same perpetuals, so
        it brings them (and the USD-M port) up too."""
        if not (self.config.usdm.enabled or self.config.bybit.enabled):
            return None
        spot_listeners = list(exchange.listeners)
        exchange.listeners[:] = [_only(set(specs), x) for x in spot_listeners]
        usdm = UsdmDialect(self.config, exchange, specs)
        with exchange.lock:
            perps = {symbol: counters for symbol, counters in saved.counters.items()
                     if usdm.is_perp(symbol)}
            self._restore(exchange.engine, exchange.markets, dataclasses.replace(
                saved, counters=perps, open_orders=[
                    x for x in saved.open_orders if usdm.is_perp(x.symbol)]))
        return usdm

    def _make_okx(self, exchange: Exchange, specs: dict[str, SymbolSpec], saved: SavedState,
                  usdm: UsdmDialect | None) -> OkxDialect | None:
        """The OKX dialect on its own port: spot symbols as SPOT, perpetuals as
        SWAP (USD-M's when that dialect runs, else its own, restored here)."""
        if not self.config.okx.enabled:
            return None
        if usdm is None:  # the spot streams keep to spot symbols, as _make_usdm arranges
            spot_listeners = list(exchange.listeners)
            exchange.listeners[:] = [_only(set(specs), x) for x in spot_listeners]
        okx = OkxDialect(self.config, exchange, specs, usdm)
        if usdm is None:
            with exchange.lock:
                perps = {symbol: counters for symbol, counters in saved.counters.items()
                         if okx.is_perp(symbol)}
                self._restore(exchange.engine, exchange.markets, dataclasses.replace(
                    saved, counters=perps, open_orders=[
                        x for x in saved.open_orders if okx.is_perp(x.symbol)]))
        return okx

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._state_lock:
            if not self._running:
                return
            self._running = False
            share = timeout_s / 3
            if self.market is not None:
                self.market.stop(share)
            if self.usdm is not None:
                self.usdm.stop(share)
            if self.okx is not None:
                self.okx.stop(share)
            if self.bybit is not None:
                self.bybit.stop(share)
            if self._loop is not None:
                self._loop.stop(share)
            if self._store is not None:
                self._store.stop(share)
            log.info("local venue stopped url={}", self.rest_url)

    @property
    def network(self) -> NetLoop | None:
        """The socket loop (connection counts, tests); None before start()."""
        return self._loop

    def health(self) -> tuple[bool, str]:
        if not self._running or self._loop is None or self._store is None:
            return False, "not running"
        if not self._loop.alive or self._loop.failed is not None:
            return False, f"network loop down: {self._loop.failed!r}"
        if not self._store.alive:
            return False, f"state store down: {self._store.failed!r}"
        market = self.market
        if isinstance(market, SyntheticMarket) and not market.alive:
            return False, "synthetic market stopped"
        if isinstance(market, Replayer) and not market.healthy:
            return False, f"replay failed: {market.failed!r}"
        return True, f"serving {self.rest_url} market={self.config.market}"

    def status(self) -> dict[str, Any]:
        loop = self._loop
        return {"url": self.rest_url, "market": self.config.market,
                "symbols": [s.symbol for s in self.config.symbols],
                "websocket_clients": len(loop.ws_connections) if loop else 0,
                "state_path": str(self.state_path)}

    # ------------------------------------------------------------- restore

    @staticmethod
    def _meta(decimals: int, specs: dict[str, SymbolSpec]) -> dict[str, str]:
        meta = {"schema": SCHEMA_VERSION, "amount_decimals": str(decimals)}
        for symbol, spec in specs.items():
            meta[f"decimals:{symbol}"] = f"{spec.price_decimals},{spec.qty_decimals}"
        return meta

    def _check_compatible(self, saved: SavedState, meta: dict[str, str]) -> None:
        """Saved ints are only meaningful at the units they were written in."""
        for key, value in saved.meta.items():
            if key in meta and meta[key] != value:
                raise ValueError(f"venue state {self.state_path} was written with {key}="
                                 f"{value}, config now gives {meta[key]}; start it fresh")

    def _ledger(self, saved: SavedState, specs: dict[str, SymbolSpec], decimals: int) -> Ledger:
        ledger = Ledger()
        for account, asset, free, locked in saved.balances:
            ledger.open_account(account)
            ledger.balances[account][asset] = [free, locked]
        ledger.fees.update(saved.fees)
        for configured in self.config.accounts:
            if not ledger.has_account(configured.name):
                ledger.open_account(configured.name, {
                    asset: config_units(amount, decimals, f"{configured.name}.{asset}")
                    for asset, amount in configured.balances.items()})
        assets = {spec.base for spec in specs.values()} | {spec.quote for spec in specs.values()}
        for house in HOUSE_ACCOUNTS:
            if not ledger.has_account(house):
                ledger.open_account(house, dict.fromkeys(assets, HOUSE_BALANCE * 10**decimals))
            for asset in assets - set(ledger.balances[house]):
                ledger.balances[house][asset] = [HOUSE_BALANCE * 10**decimals, 0]
        return ledger

    def _account_fees(self) -> dict[str, tuple[FeeRate, FeeRate]]:
        """Per-account maker/taker fees, for when VenueAccountConfig carries
        ``maker_fee``/``taker_fee`` (docs/venue.md); symbols' fees otherwise."""
        fees = {}
        for account in self.config.accounts:
            maker = getattr(account, "maker_fee", "")
            taker = getattr(account, "taker_fee", "")
            if bool(maker) != bool(taker):
                raise ValueError(f"venue.accounts.{account.name}: give maker_fee and "
                                 f"taker_fee together")
            if maker:
                fees[account.name] = (FeeRate(maker), FeeRate(taker))
        return fees

    @staticmethod
    def _restore(engine: MatchingEngine, markets: dict[str, MarketData],
                 saved: SavedState) -> None:
        for symbol, counters in saved.counters.items():
            if symbol not in engine.specs:
                continue
            next_order, next_trade, next_prevented, next_agg, update_id, last = counters
            engine.next_order_id[symbol] = next_order
            engine.next_trade_id[symbol] = next_trade
            engine.next_prevented_id[symbol] = next_prevented
            engine.books[symbol].update_id = update_id
            engine.last_price[symbol] = last
            markets[symbol].add_trades(saved.recent_trades.get(symbol, []))
            markets[symbol].next_agg_id = next_agg
        for order in saved.open_orders:
            if order.symbol in engine.specs:
                engine.restore(order)


def _only(symbols: set[str], listener: Callable[[Published], None]
          ) -> Callable[[Published], None]:
    """A listener that sees only operations on ``symbols``."""
    def filtered(published: Published) -> None:
        if published.symbol in symbols:
            listener(published)
    return filtered

"""Wires the Bybit dialect onto a running venue's exchange: spot symbols on
the spot books, linear symbols on the USD-M dialect's perpetual books and
derivatives core (one engine, one ledger), the REST router, the stream hub
and its own NetLoop.

The exchange listener runs on whatever thread made the operation, holding
the exchange lock: it updates the order/execution records, renders the
private events (which need the state as it is right then) for accounts with
an authenticated private stream, and only enqueues them for the hub.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from loguru import logger

from engine.config import LocalVenueConfig
from engine.sim.bybit import rest_account, rest_market, rest_trade
from engine.sim.bybit.context import BybitAccount, BybitContext, bybit_credentials
from engine.sim.bybit.errors import LINEAR
from engine.sim.bybit.limits import BybitLimiter
from engine.sim.bybit.records import ExecRecord, OrderRecord, Records
from engine.sim.bybit.rest import BybitRest
from engine.sim.bybit.rest_account import wallet
from engine.sim.bybit.wire import exec_id_text, execution_json, order_json, position_json
from engine.sim.exchange import Exchange, Published
from engine.sim.filters import SymbolSpec
from engine.sim.netloop import NetLoop
from engine.sim.orders import EXEC_CANCELED, EXEC_TRADE

if TYPE_CHECKING:
    from engine.sim.usdm.service import UsdmDialect

log = logger.bind(component="venue")

WS_PATHS = ("/v5/",)


class BybitDialect:
    def __init__(self, config: LocalVenueConfig, exchange: Exchange,
                 spot: dict[str, SymbolSpec], perps: UsdmDialect | None) -> None:
        bybit = config.bybit
        self.exchange = exchange
        accounts = {}
        self.keys: dict[str, tuple[str, str]] = {}  # account -> (Bybit key, secret)
        for account in config.accounts:
            key, secret = bybit_credentials(account.api_key, account.api_secret)
            accounts[key] = BybitAccount(account.name, key, secret)
            self.keys[account.name] = (key, secret)
        self.tracked = {a.name for a in config.accounts}
        self.limiter = BybitLimiter(bybit.spot_orders_per_s, bybit.linear_orders_per_s,
                                    bybit.ip_requests_per_5s)
        self.ctx = BybitContext(
            exchange, dict(spot), dict(perps.specs) if perps is not None else {},
            perps.derivatives if perps is not None else None, accounts, Records(),
            self.limiter, perps.funding if perps is not None else None, notify=self._notify)
        self.rest = BybitRest(self.ctx, {**rest_market.ROUTES, **rest_trade.ROUTES,
                                         **rest_account.ROUTES})
        from engine.sim.bybit.streams import BybitHub
        self.hub = BybitHub(self)
        port = 0 if config.port == 0 else bybit.port
        self.loop = NetLoop(config.host, port, self.rest.handle, self.hub,
                            ws_origins=config.ws_origins, ws_paths=WS_PATHS)
        self.hub.wake = self.loop.wake
        # ("", Published) for the public streams, or (account, topic, rows)
        self.outbox: deque[tuple[str, Any, Any]] = deque()
        self.listening: set[str] = set()  # accounts with an authenticated private stream
        exchange.listeners.append(self._on_operation)
        self.url = ""
        self.ws_url = ""

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.loop.start()
        host = self.loop.host
        self.url = f"http://{host}:{self.loop.port}"
        self.ws_url = f"ws://{host}:{self.loop.port}"
        log.info("local venue Bybit dialect listening url={} spot={} linear={}", self.url,
                 ",".join(self.ctx.spot), ",".join(self.ctx.linear))

    def stop(self, timeout_s: float) -> None:
        self.loop.stop(timeout_s)

    # ------------------------------------------- exchange thread, under lock

    def _notify(self, record: OrderRecord) -> None:
        account = record.order.account
        if account in self.listening:
            spec = self.ctx.by_internal[record.order.symbol][1]
            self.outbox.append((account, "order", [order_json(record, spec)
                                                   | {"category": record.category}]))
            self.hub.wake()

    def _on_operation(self, published: Published) -> None:
        served = self.ctx.by_internal.get(published.symbol)
        if served is None:
            return
        category, spec = served
        result = published.result
        if result.trades:
            self.outbox.append(("", published, None))
        touched: dict[str, dict[int, OrderRecord]] = {}
        fills: dict[str, list[dict]] = {}
        records = self.ctx.records
        for execution in result.executions:
            order = execution.order
            account = order.account
            if account not in self.tracked:
                continue
            record = records.track(order, category)
            touched.setdefault(account, {})[order.order_id] = record
            if execution.exec_type == EXEC_CANCELED and record.cancel_type == "UNKNOWN":
                record.cancel_type = "CancelByUser"
            if execution.exec_type != EXEC_TRADE:
                continue
            record.fee += execution.commission
            fill = ExecRecord(category, spec.symbol,
                              exec_id_text(spec.symbol, execution.trade_id, order.side),
                              execution.trade_id, order, record.link_id, execution.last_price,
                              execution.last_qty, execution.commission, execution.is_maker,
                              max(0, order.orig_qty - execution.executed_qty),
                              self._realized(account, spec, execution.trade_id),
                              execution.time_ms)
            records.add_execution(account, fill)
            if account in self.listening:
                fills.setdefault(account, []).append(execution_json(fill, spec)
                                                     | {"category": category})
        for account, mine in touched.items():
            if account not in self.listening:
                continue
            self.outbox.append((account, "order", [order_json(r, spec) | {"category": category}
                                                   for r in mine.values()]))
            if account in fills:
                self.outbox.append((account, "execution", fills[account]))
            if category == LINEAR:
                self._position(account, spec, published.time_ms)
        for account in {a for a, _ in result.balances if a in self.listening}:
            self.outbox.append((account, "wallet", [wallet(self.ctx, self.exchange, account,
                                                           None)]))
        self.hub.wake()

    def _realized(self, account: str, spec: SymbolSpec, trade_id: int) -> int:
        d = self.ctx.derivatives
        if d is None or spec.symbol not in d.specs:
            return 0
        fill = next((f for f in reversed(d.fills.get(account, ()))
                     if f.trade_id == trade_id and f.symbol == spec.symbol), None)
        return fill.realized if fill is not None else 0

    def _position(self, account: str, spec: SymbolSpec, now_ms: int) -> None:
        d = self.ctx.derivatives
        assert d is not None
        rows = [position_json(d, p, spec, account, now_ms) | {"category": LINEAR}
                for p in d.book.of_account(account, spec.symbol)]
        if rows:
            self.outbox.append((account, "position", rows))

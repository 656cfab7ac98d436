"""A symbol's trading rules and the checks Binance calls "filters".

Owns SymbolSpec (tick, step, notional floor, fees, and the unit scales that
keep every product exact) and the stateless validation of an order request,
raising Binance's -1013 "Filter failure: ..." rejections. Knows nothing of
books or balances.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.config import VenueSymbolConfig
from engine.sim import orders as o
from engine.sim.amounts import WIRE_DECIMALS, FeeRate, config_units, decimals_of
from engine.sim.orders import OrderRequest, Rejected

# Generous ceilings in whole units: they exist so exchangeInfo can publish them
# (clients read maxPrice/maxQty), not to constrain paper trading.
MAX_PRICE = "1000000000"
MAX_QTY = "9000000000"


@dataclass(frozen=True, slots=True)
class SymbolSpec:
    symbol: str
    base: str
    quote: str
    price_decimals: int  # a price is an int of 10**-price_decimals units
    qty_decimals: int
    amount_decimals: int  # venue-wide unit of every balance
    tick: int  # price units
    step: int  # quantity units
    min_notional: int  # amount units
    max_price: int
    max_qty: int
    maker_fee: FeeRate
    taker_fee: FeeRate
    # price_units * qty_units * notional_scale == amount units, exactly
    notional_scale: int
    base_scale: int  # qty_units * base_scale == amount units

    @classmethod
    def from_config(cls, cfg: VenueSymbolConfig, amount_decimals: int) -> SymbolSpec:
        price_decimals = decimals_of(cfg.tick_size)
        qty_decimals = decimals_of(cfg.step_size)
        if price_decimals + qty_decimals > amount_decimals:
            raise ValueError(f"{cfg.symbol}: amount_decimals {amount_decimals} too small")
        tick = config_units(cfg.tick_size, price_decimals, f"{cfg.symbol}.tick_size")
        step = config_units(cfg.step_size, qty_decimals, f"{cfg.symbol}.step_size")
        if tick <= 0 or step <= 0:
            raise ValueError(f"{cfg.symbol}: tick_size and step_size must be positive")
        return cls(
            symbol=cfg.symbol, base=cfg.base, quote=cfg.quote,
            price_decimals=price_decimals, qty_decimals=qty_decimals,
            amount_decimals=amount_decimals, tick=tick, step=step,
            min_notional=config_units(cfg.min_notional, amount_decimals,
                                      f"{cfg.symbol}.min_notional"),
            max_price=int(MAX_PRICE) * 10**price_decimals,
            max_qty=int(MAX_QTY) * 10**qty_decimals,
            maker_fee=FeeRate(cfg.maker_fee), taker_fee=FeeRate(cfg.taker_fee),
            notional_scale=10 ** (amount_decimals - price_decimals - qty_decimals),
            base_scale=10 ** (amount_decimals - qty_decimals))

    def notional(self, price: int, qty: int) -> int:
        return price * qty * self.notional_scale

    @property
    def wire_price_decimals(self) -> int:
        return max(WIRE_DECIMALS, self.price_decimals)

    @property
    def wire_qty_decimals(self) -> int:
        return max(WIRE_DECIMALS, self.qty_decimals)


def amount_decimals_for(symbols: Iterable[VenueSymbolConfig]) -> int:
    """The one balance unit for the venue: fine enough for every price x qty."""
    needed = [decimals_of(s.tick_size) + decimals_of(s.step_size) for s in symbols]
    needed += [decimals_of(s.min_notional) for s in symbols]
    return max([WIRE_DECIMALS, *needed])


def _fail(name: str) -> Rejected:
    return Rejected(-1013, f"Filter failure: {name}")


def check_price(spec: SymbolSpec, price: int) -> None:
    """PRICE_FILTER: minPrice (= tick) <= price <= maxPrice, price % tick == 0."""
    if price < spec.tick or price > spec.max_price or price % spec.tick:
        raise _fail("PRICE_FILTER")


def check_quantity(spec: SymbolSpec, qty: int) -> None:
    """LOT_SIZE: minQty (= step) <= qty <= maxQty, qty % step == 0."""
    if qty < spec.step or qty > spec.max_qty or qty % spec.step:
        raise _fail("LOT_SIZE")


def check_request(spec: SymbolSpec, req: OrderRequest, last_price: int | None) -> None:
    """Everything about a new order that needs no book or balance.

    ``last_price`` stands in for Binance's average price on MARKET orders
    (exchangeInfo publishes avgPriceMins 0, "the last price is used").
    """
    kind = req.type
    if kind in o.PRICED_TYPES:
        if req.price is None:
            raise Rejected(-1102, "Mandatory parameter 'price' was not sent, was empty/null, "
                                  "or malformed.")
        check_price(spec, req.price)
    if kind in o.STOP_TYPES:
        if req.stop_price is None:
            raise Rejected(-1102, "Mandatory parameter 'stopPrice' was not sent, was "
                                  "empty/null, or malformed.")
        check_price(spec, req.stop_price)
    if req.quantity is not None:
        check_quantity(spec, req.quantity)
        reference = req.price if kind in o.PRICED_TYPES else (
            req.stop_price if kind in o.STOP_TYPES else last_price)
        if reference is not None and spec.notional(reference, req.quantity) < spec.min_notional:
            raise _fail("NOTIONAL")
    elif req.quote_quantity is not None:
        if kind != o.MARKET:
            raise Rejected(-1106, "Parameter 'quoteOrderQty' sent when not required.")
        if req.quote_quantity <= 0 or req.quote_quantity < spec.min_notional:
            raise _fail("NOTIONAL")
    else:
        if kind == o.MARKET:
            raise Rejected(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both "
                                  "were empty/null!")
        raise Rejected(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, "
                              "or malformed.")
    if kind in (o.LIMIT, o.STOP_LOSS_LIMIT, o.TAKE_PROFIT_LIMIT) and req.time_in_force is None:
        raise Rejected(-1102, "Mandatory parameter 'timeInForce' was not sent, was empty/null, "
                              "or malformed.")
    if req.stp_mode is not None and req.stp_mode not in o.STP_MODES:
        raise Rejected(-1013, "This symbol does not allow the specified self-trade "
                              "prevention mode.")

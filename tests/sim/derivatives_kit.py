"""A bare matching engine with one spot and one perpetual symbol, for the
derivatives core tests (no sockets)."""

from __future__ import annotations

from engine.sim.amounts import config_units
from engine.sim.derivatives import Derivatives
from engine.sim.filters import SymbolSpec, amount_decimals_for
from engine.sim.ledger import Ledger
from engine.sim.matching import MatchingEngine
from engine.sim.orders import OrderRequest
from engine.sim.testkit import symbol_config

PERP = "BTCUSDT-PERP"


def perp_engine(balances: dict[str, str], maker_fee: str = "0.0002",
                taker_fee: str = "0.0005") -> tuple[MatchingEngine, Derivatives, SymbolSpec]:
    spot_cfg = symbol_config("BTCUSDT", tick_size="0.1", step_size="0.001")
    perp_cfg = symbol_config("BTCUSDT", tick_size="0.1", step_size="0.001",
                             maker_fee=maker_fee, taker_fee=taker_fee)
    decimals = amount_decimals_for([spot_cfg])
    spot = SymbolSpec.from_config(spot_cfg, decimals)
    perp = SymbolSpec.from_config(perp_cfg, decimals)
    object.__setattr__(perp, "symbol", PERP)
    ledger = Ledger()
    for account, amount in balances.items():
        ledger.open_account(account, {"USDT": config_units(amount, decimals, account)})
    engine = MatchingEngine([spot], ledger)
    derivatives = Derivatives(ledger)
    engine.add_symbol(perp, derivatives.add_symbol(perp))
    return engine, derivatives, perp


def limit(side: str, price: str, qty: str, spec: SymbolSpec, **extra: object) -> OrderRequest:
    return OrderRequest(symbol=spec.symbol, side=side, type="LIMIT", time_in_force="GTC",
                        price=int(float(price) * 10**spec.price_decimals + 0.5),
                        quantity=int(float(qty) * 10**spec.qty_decimals + 0.5),
                        **extra)  # type: ignore[arg-type]


def market(side: str, qty: str, spec: SymbolSpec, **extra: object) -> OrderRequest:
    return OrderRequest(symbol=spec.symbol, side=side, type="MARKET",
                        quantity=int(float(qty) * 10**spec.qty_decimals + 0.5),
                        **extra)  # type: ignore[arg-type]

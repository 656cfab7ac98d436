"""The strategy interface as the trader runs it: the registry of strategy
classes, validation of TRADE.STRATEGY_PARAMS against a strategy's Params, the
picklable spec a worker process builds a strategy from, and the snapshot of
a strategy's own orders, slots and position the daemon sends that worker.
Shared by the daemon and the workers, so it stays light: no I/O, no threads.
(The strategy-facing types themselves are engine/strategies/base.py.)
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from engine.model import book_key
from engine.model_trade import trading_venue
from engine.strategies.base import (
    BookLike,
    OrderInfo,
    PositionInfo,
    Rules,
    SlotInfo,
    Strategy,
    View,
)
from engine.strategies.grid import GridStrategy

# name -> class. Adding a strategy: one module under engine/strategies/ and one line here.
STRATEGIES: dict[str, type[Strategy]] = {
    GridStrategy.name: GridStrategy,
}



def register(cls: type[Strategy]) -> type[Strategy]:
    """Add a strategy class defined outside this registry (a module named in
    ``trader.strategy_modules``, imported by the daemon and every worker)."""
    if not cls.name or STRATEGIES.get(cls.name, cls) is not cls:
        raise ValueError(f"strategy name {cls.name!r} is empty or taken")
    STRATEGIES[cls.name] = cls
    return cls


def load_modules(names: tuple[str, ...]) -> None:
    """Import modules that register strategies (config, not task rows, names
    them: a task row must never choose code to import)."""
    for name in names:
        importlib.import_module(name)


# Strategy ids end up in client order ids (actions.make_client_order_id):
# the TRADE row id, or a config name that cannot be mistaken for one.
_STRATEGY_ID = re.compile(r"^[A-Za-z0-9_]{1,16}$")


class ParamError(ValueError):
    """STRATEGY_PARAMS that the strategy cannot run with; names key and problem."""


# ------------------------------------------------------------------- params


def parse_params(params_type: type, raw: Mapping[str, Any], where: str = "params") -> Any:
    """``raw`` (decoded JSON) as an instance of the strategy's Params dataclass.

    Unknown keys, missing required keys and wrong types are errors. Money
    fields (Decimal) take strings or integers: a JSON float such as 0.1 is
    refused, since it may not be the number the user wrote."""
    if not dataclasses.is_dataclass(params_type):
        raise TypeError(f"{params_type!r}: a strategy's Params must be a dataclass")
    hints = typing.get_type_hints(params_type)
    fields = {f.name: f for f in dataclasses.fields(params_type)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamError(f"{where}.{unknown[0]}: unknown key (expected one of: "
                         f"{', '.join(sorted(fields))})")
    values = {}
    for name, f in fields.items():
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ParamError(f"{where}.{name}: missing")
            continue
        values[name] = _convert(raw[name], hints[name], f"{where}.{name}")
    try:
        params = params_type(**values)
        check = getattr(params, "check", None)
        if check is not None:
            check()
    except (ValueError, TypeError) as e:
        raise ParamError(f"{where}: {e}") from None
    return params


def _convert(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ParamError(f"{path}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return None
        return _convert(value, next(a for a in typing.get_args(tp) if a is not type(None)), path)
    if tp is Decimal:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ParamError(f"{path}: {value!r} is not a decimal; write money as a string "
                             f"(\"0.001\"), never a float")
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            raise ParamError(f"{path}: {value!r} is not a decimal number") from None
        if not number.is_finite():
            raise ParamError(f"{path}: {value!r} is not a finite number")
        return number
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamError(f"{path}: {value!r} is not true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamError(f"{path}: {value!r} is not an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ParamError(f"{path}: {value!r} is not a number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ParamError(f"{path}: {value!r} is not a string")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise ParamError(f"{path}: {value!r} is not a list")
        item = typing.get_args(tp)[0]
        return tuple(_convert(v, item, f"{path}[{i}]") for i, v in enumerate(value))
    raise ParamError(f"{path}: unsupported parameter type {tp}")  # a bug in the strategy


# --------------------------------------------------------------------- specs


@dataclass(frozen=True)
class StrategySpec:
    """One strategy to run: what a worker needs to build it (picklable)."""

    strategy_id: str  # [A-Za-z0-9_]{1,16}: TRADE row id, or the config name
    name: str  # STRATEGIES key
    venue: str
    market: str
    pair: str
    params: Mapping[str, Any]  # the validated raw JSON (re-parsed in the worker)
    rules: Rules
    books: tuple[str, ...] = ()  # watched book keys, own pair first

    @property
    def key(self) -> str:
        return book_key(self.venue, self.market, self.pair)

    @property
    def account(self) -> str:
        """The trader's venue id for orders, fills and positions ("binance_futures")."""
        return trading_venue(self.venue, self.market)

    def parsed_params(self) -> Any:
        return parse_params(STRATEGIES[self.name].Params, self.params,
                            f"strategy {self.strategy_id} params")


def make_spec(strategy_id: str, name: str, venue: str, market: str, pair: str,
              params: Mapping[str, Any], rules: Rules) -> StrategySpec:
    """Validate everything a worker would trip over; ParamError names the problem."""
    if not _STRATEGY_ID.match(strategy_id):
        raise ParamError(f"strategy id {strategy_id!r}: expected [A-Za-z0-9_]{{1,16}}")
    cls = STRATEGIES.get(name)
    if cls is None:
        raise ParamError(f"strategy {strategy_id}: unknown strategy {name!r} (known: "
                         f"{', '.join(sorted(STRATEGIES))})")
    spec = StrategySpec(strategy_id, name, venue, market, pair, dict(params), rules)
    instance = build(spec)
    books = (spec.key,) + tuple(k for k in instance.extra_books() if k != spec.key)
    return dataclasses.replace(spec, books=books)


def build(spec: StrategySpec) -> Strategy:
    """A fresh strategy instance (in the worker; also once at validation)."""
    return STRATEGIES[spec.name](spec.parsed_params())


def setting(spec: StrategySpec, name: str, default: float) -> float:
    """A generic numeric setting a strategy's params may carry (rearm_s,
    idle_alert_s) for the daemon side; the default where it has none."""
    value = spec.params.get(name, default)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else default


# ------------------------------------------------------------------ own state


@dataclass(frozen=True, slots=True)
class OwnState:
    """A strategy's own orders, slots and position as the daemon committed
    them; sent to its worker after every change (and after every batch of
    its intents, acknowledging it)."""

    orders: tuple[OrderInfo, ...] = ()
    slots: tuple[SlotInfo, ...] = ()
    position: PositionInfo = PositionInfo()
    halted: str = ""  # why new orders stop (halt, breaker); "" while they may go


def make_view(spec: StrategySpec, now_ns: int, books: Mapping[str, BookLike],
              state: OwnState) -> View:
    return View(now_ns, spec.strategy_id, spec.venue, spec.market, spec.pair, spec.rules,
                books.get(spec.key), books, state.orders, state.slots, state.position, state.halted)

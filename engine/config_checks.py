"""What config values are allowed: the bounds of every numeric key, the
format of a few strings, and the checks between keys (min <= max, budgets
within the venue's documented limits). engine/config.py applies them while
it builds the dataclasses; every failure is a ConfigError naming the key
path, the value and what was expected.

Why a table and not msgspec/pydantic constraints: the frozen dataclasses are
the public API every part imports, and the walker already gives the error
format we want (path, value, expectation); a table beside it adds bounds
without a second schema language, and tests/test_config_bounds.py fails
when a numeric key has none.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

INT64_MAX = (1 << 63) - 1
HOUR_S = 3600.0
DAY_S = 86_400.0
WEEK_S = 7 * DAY_S


class ConfigError(ValueError):
    """A config problem a user can fix; the message names path, value, expectation."""


@dataclass(frozen=True)
class Bound:
    """``low <= value <= high`` (``low_open``: ``low < value``)."""

    low: float
    high: float
    low_open: bool = False
    what: str = ""  # the expectation in words; default: the interval

    def ok(self, value: float) -> bool:
        return (self.low < value if self.low_open else self.low <= value) and value <= self.high

    def describe(self, integer: bool) -> str:
        if self.what:
            return self.what
        low, high = number_text(self.low), number_text(self.high)
        if integer:
            return f"an integer in {low}..{high}"
        return f"a number in {'(' if self.low_open else '['}{low}, {high}]"


def number_text(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


def seconds(high: float = HOUR_S, low: float = 0.0, low_open: bool = True) -> Bound:
    return Bound(low, high, low_open)


PORT = Bound(0, 65535, what="a port 0..65535")
SERVER_PORT = Bound(1, 65535, what="a port 1..65535")

# (dataclass name, field) -> bound. Every int and float field has one
# (tests/test_config_bounds.py); the upper limits keep values finite and
# within what the code can sleep, join or allocate.
BOUNDS: dict[tuple[str, str], Bound] = {
    ("DaemonConfig", "shutdown_timeout_s"): seconds(),
    ("HttpConfig", "port"): PORT,
    ("HttpConfig", "ws_interval_ms"): Bound(10, 60_000, what="10..60000 ms"),
    ("HttpConfig", "rate_limit_per_s"): Bound(0, 1_000_000, what="0 (off) .. 1000000"),
    ("HttpConfig", "rate_limit_burst"): Bound(1, 1_000_000),
    ("HttpConfig", "backlog"): Bound(1, 65535, what="1..65535"),
    ("HttpConfig", "workers"): Bound(1, 256, what="1..256 threads"),
    ("HttpConfig", "max_connections"): Bound(1, 1_000_000),
    ("HttpConfig", "idle_timeout_s"): seconds(),
    ("HttpConfig", "request_timeout_s"): seconds(),
    ("HttpConfig", "max_body_bytes"): Bound(0, 1 << 30),
    ("FuturesTradeConfig", "leverage"): Bound(0, 125, what="0 (leave as is) or 1..125"),
    ("FuturesTradeConfig", "poll_s"): seconds(DAY_S),
    ("UsdmVenueConfig", "port"): PORT,
    ("UsdmVenueConfig", "leverage"): Bound(1, 125, what="1..125"),
    ("UsdmVenueConfig", "funding_interval_s"): Bound(1, int(WEEK_S)),
    ("UsdmVenueConfig", "mark_interval_ms"): Bound(10, 60_000),
    ("OkxVenueConfig", "port"): PORT,
    ("BybitVenueConfig", "port"): PORT,
    ("BybitVenueConfig", "spot_orders_per_s"): Bound(1, 100_000),
    ("BybitVenueConfig", "linear_orders_per_s"): Bound(1, 100_000),
    ("BybitVenueConfig", "ip_requests_per_5s"): Bound(1, 10_000_000),
    ("BooksConfig", "capacity"): Bound(1, 1_000_000, what="1..1000000 books"),
    ("BooksConfig", "depth"): Bound(1, 5000, what="1..5000 levels"),
    ("BooksConfig", "lock_stripes"): Bound(1, 4096, what="1..4096 locks"),
    # 0: the driver's documented limit; above it the venue refuses the subscription
    # (checked per venue by check_venues).
    ("ExchangeConfig", "max_pairs_per_connection"): Bound(0, 1024),
    ("FeedConfig", "max_connections"): Bound(1, 10_000),
    ("FeedConfig", "stall_timeout_s"): seconds(),
    ("FeedConfig", "reconnect_min_s"): seconds(low=0.01, low_open=False),
    ("FeedConfig", "reconnect_max_s"): seconds(low=0.01, low_open=False),
    ("FeedConfig", "record_rotate_mb"): Bound(0, 1_048_576),  # 0: no size rotation
    ("FeedConfig", "record_rotate_s"): Bound(0, int(WEEK_S)),  # 0: no time rotation
    ("SubscriptionConfig", "depth"): Bound(1, 5000),
    ("TaskDbConfig", "port"): SERVER_PORT,
    ("TaskDbConfig", "poll_s"): seconds(),
    ("TaskDbConfig", "lease_s"): Bound(1, DAY_S, what="a number of seconds in [1, 86400]"),
    ("TaskDbConfig", "capacity"): Bound(0, 1_000_000),
    ("TaskDbConfig", "retry_max_s"): seconds(),
    ("TaskDbConfig", "timeout_s"): seconds(),
    ("HistoryConfig", "port"): SERVER_PORT,
    ("HistoryConfig", "queue_events"): Bound(1, 100_000_000),
    ("HistoryConfig", "batch_rows"): Bound(1, 1_000_000, what="1..1000000"),
    ("HistoryConfig", "batch_interval_s"): seconds(),
    ("HistoryConfig", "snapshot_interval_s"): seconds(DAY_S, low_open=False),
    ("HistoryConfig", "spill_max_mb"): Bound(1, 100_000_000),
    ("HistoryConfig", "spill_alert_fraction"): Bound(0, 1, low_open=True),
    ("HistoryConfig", "memory_batches"): Bound(1, 1000),
    ("HistoryConfig", "retry_min_s"): seconds(),
    ("HistoryConfig", "retry_max_s"): seconds(),
    ("HistoryConfig", "journal_fsync_s"): seconds(low_open=False),  # 0: every write
    ("LocalVenueConfig", "port"): PORT,
    ("LocalVenueConfig", "http_port"): PORT,
    ("SyntheticMarketConfig", "volatility_bps"): Bound(0, 10_000),
    ("SyntheticMarketConfig", "tick_ms"): Bound(1, 60_000),
    ("SyntheticMarketConfig", "levels"): Bound(1, 1000),
    ("SyntheticMarketConfig", "seed"): Bound(0, INT64_MAX),
    ("LocalVenueConfig", "weight_per_minute"): Bound(1, 10_000_000),
    ("LocalVenueConfig", "orders_per_10s"): Bound(1, 1_000_000),
    ("LocalVenueConfig", "orders_per_day"): Bound(1, 1_000_000_000),
    ("TraderConfig", "orders_per_s"): Bound(0, 1000, low_open=True),
    ("TraderConfig", "order_burst"): Bound(1, 1000),
    ("TraderConfig", "rest_weight_fraction"): Bound(0, 1, low_open=True, what="in (0, 1]"),
    ("TraderConfig", "request_timeout_s"): seconds(300.0),
    ("TraderConfig", "retry_attempts"): Bound(1, 100),
    ("TraderConfig", "retry_budget_s"): seconds(),
    ("TraderConfig", "backoff_min_s"): seconds(),
    ("TraderConfig", "backoff_max_s"): seconds(),
    ("TraderConfig", "reprice_max"): Bound(0, 100),
    # Binance's listenKey expires 60 min after the last keepalive.
    ("TraderConfig", "listen_key_keepalive_s"): seconds(HOUR_S - 60),
    ("TraderConfig", "user_stream_stall_s"): seconds(),
    ("TraderConfig", "reconcile_tolerance"): Bound(0, 1, what="in [0, 1]"),
    ("TraderConfig", "reconcile_fill_lookback_s"): seconds(30 * DAY_S),
    ("TraderConfig", "workers"): Bound(1, 64, what="1..64 workers"),
    ("TraderConfig", "strategy_poll_s"): Bound(0, 1, low_open=True, what="in (0, 1] seconds"),
    ("TraderConfig", "slow_strategy_s"): seconds(),
    ("TraderConfig", "hung_strategy_s"): seconds(),
    # 0 would refuse every order while /health says ok: not a way to stop trading.
    ("RiskConfig", "max_open_orders"): Bound(1, 100_000),
    ("RiskConfig", "error_burst"): Bound(1, 10_000),
    ("RiskConfig", "error_window_s"): seconds(),
    ("RiskConfig", "cooldown_s"): seconds(DAY_S),
    ("RiskConfig", "price_jump_pct"): Bound(0, 100, what="a percentage in [0, 100] (0: off)"),
    ("RiskConfig", "price_jump_window_s"): seconds(),
    ("RiskConfig", "book_stale_s"): seconds(),
}


def _pair(v: str) -> bool:
    return v.count("/") == 1 and "" not in v.split("/")


# Formats of string keys: (dataclass name, field) -> (test, expectation).
FORMATS: dict[tuple[str, str], tuple[Callable[[Any], bool], str]] = {
    ("BooksConfig", "core"): (lambda v: v in ("compiled", "python"), "compiled or python"),
    ("SubscriptionConfig", "pair"): (_pair, "BASE/QUOTE, e.g. BTC/USDT"),
    ("StrategyConfig", "id"): (lambda v: re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,15}", v) is not None,
                               "a letter, then up to 15 letters, digits or _"),
    ("StrategyConfig", "pair"): (_pair, "BASE/QUOTE, e.g. BTC/USDT"),
}

# Documented new-order limits per venue: (orders, window in seconds). Binance
# spot: 100 orders per 10 s per account (ORDERS / SECOND / 10 in exchangeInfo
# rateLimits, docs: "Filters and rate limits"; raised only on request).
ORDER_RATE_LIMITS: dict[str, tuple[int, float]] = {"binance": (100, 10.0)}


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:40] + f"... ({len(text)} characters)"


def check_field(cls_name: str, name: str, value: Any, path: str, integer: bool) -> None:
    bound = BOUNDS.get((cls_name, name))
    if bound is not None and isinstance(value, (int, float)) and not bound.ok(value):
        raise ConfigError(f"{path}: {shown(value)} is not {bound.describe(integer)}")
    fmt = FORMATS.get((cls_name, name))
    if fmt is not None and value is not None and not fmt[0](value):
        raise ConfigError(f"{path}: {shown(value)} is not {fmt[1]}")


def _ordered(low_path: str, low: float, high_path: str, high: float) -> None:
    if low > high:
        raise ConfigError(f"{low_path}: {low!r} is more than {high_path} ({high!r}); "
                          f"expected {low_path} <= {high_path}")


def check_consistency(config: Any) -> None:
    """Checks between keys; ``config`` is a built Config."""
    f, h, t = config.feed, config.storage.history, config.trader
    _ordered("feed.reconnect_min_s", f.reconnect_min_s, "feed.reconnect_max_s", f.reconnect_max_s)
    _ordered("storage.history.retry_min_s", h.retry_min_s, "storage.history.retry_max_s", h.retry_max_s)
    _ordered("trader.backoff_min_s", t.backoff_min_s, "trader.backoff_max_s", t.backoff_max_s)
    _ordered("trader.backoff_max_s", t.backoff_max_s, "trader.retry_budget_s", t.retry_budget_s)
    _ordered("trader.slow_strategy_s", t.slow_strategy_s, "trader.hung_strategy_s", t.hung_strategy_s)
    for i, venue in enumerate(t.venues):
        limit = ORDER_RATE_LIMITS.get(venue)
        if limit is not None and t.orders_per_s * limit[1] > limit[0]:
            raise ConfigError(
                f"trader.orders_per_s: {t.orders_per_s!r} is above what {venue} (trader.venues[{i}]) "
                f"allows: {limit[0]} orders per {limit[1]:g} s, so at most {limit[0] / limit[1]:g} per s")


def check_trader(config: Any) -> None:
    """The trader section against the exchanges; risk limits are decimal strings."""
    t = config.trader
    for i, venue in enumerate(t.venues):
        if venue not in config.exchanges:
            raise ConfigError(f"trader.venues[{i}]: {venue!r} is not configured under exchanges")
    for i, pair in enumerate(t.pairs):
        venue, _, rest = pair.partition(":")
        if venue not in t.venues or rest.count("/") != 1:
            raise ConfigError(f"trader.pairs[{i}]: {pair!r} is not venue:BASE/QUOTE with the "
                              f"venue in trader.venues")
    money = {"trader.risk.max_order_notional": t.risk.max_order_notional,
             "trader.risk.max_daily_loss": t.risk.max_daily_loss,
             "trader.risk.max_position_default": t.risk.max_position_default,
             **{f"trader.risk.max_position.{k}": v for k, v in t.risk.max_position.items()}}
    for path, value in money.items():
        if value == "":
            continue
        try:
            ok = Decimal(value).is_finite() and Decimal(value) >= 0
        except InvalidOperation:
            ok = False
        if not ok:
            raise ConfigError(f"{path}: {value!r} is not a non-negative decimal string")


def check_venues(config: Any, streams_per_connection: dict[str, int]) -> None:
    """Exchanges must be venues we have a driver for, within its documented
    streams per connection. ``streams_per_connection``: venue -> the driver's
    limit (engine.venues, which this layer may not import: run.py passes it)."""
    for name, exchange in config.exchanges.items():
        limit = streams_per_connection.get(name)
        if limit is None:
            raise ConfigError(f"exchanges.{name}: {name!r} is not a venue we have a driver for "
                              f"(expected one of: {', '.join(sorted(streams_per_connection))})")
        if exchange.max_pairs_per_connection > limit:
            raise ConfigError(f"exchanges.{name}.max_pairs_per_connection: "
                              f"{exchange.max_pairs_per_connection} is more than {name} allows per "
                              f"connection (expected 0..{limit}; 0 = {limit})")

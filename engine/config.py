"""Configuration: loaded once from YAML into frozen dataclasses and validated.

Owns the schema of config.yaml. An unknown key, a wrong type or a bad value is
a ConfigError naming the key path, the value and what was expected. Secrets
are never stored here: the config names the environment variable holding them
(``*_env`` keys) and ``Secret`` reads it without ever printing it.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from engine.config_checks import ConfigError, check_consistency, check_trader, check_venues
from engine.config_convert import build
from engine.config_storage import StorageConfig

__all__ = ["ConfigError", "check_venues"]  # re-exported: callers import them from here


class Secret:
    """A value read from the environment; never shown in repr, logs or /status."""

    __slots__ = ("env_name", "_value")

    def __init__(self, env_name: str) -> None:
        self.env_name = env_name
        self._value = os.environ.get(env_name, "") if env_name else ""

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        state = "set" if self._value else "unset"
        return f"Secret(env={self.env_name!r}, {state})"

    __str__ = __repr__


# --------------------------------------------------------------------- sections


@dataclass(frozen=True)
class DaemonConfig:
    id: str = ""  # empty: hostname-pid, unique per daemon sharing a task DB
    data_dir: str = "data"  # SQLite task DB, chdb files, captures, spill
    log_level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR"] = "INFO"
    log_json: bool = False  # JSON lines instead of human-readable records
    shutdown_timeout_s: float = 10.0  # graceful stop budget before forcing


@dataclass(frozen=True)
class HttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 8080  # 0 picks a free port (tests)
    # Key for mutating endpoints (halt, cancel-all) comes from this env var.
    admin_key_env: str = "ENGINE_ADMIN_KEY"
    # Read keys (comma-separated) come from this env var. Unset on a loopback
    # listener: reads need no key; off loopback a read key is required.
    read_keys_env: str = "ENGINE_READ_KEYS"
    open_paths: tuple[str, ...] = ("/health", "/metrics")  # served without a key
    tls_cert: str = ""  # PEM certificate chain; with tls_key turns on HTTPS and WSS
    tls_key: str = ""  # PEM private key
    allow_plain_remote: bool = False  # plain HTTP off loopback only when true
    ws_origins: tuple[str, ...] = ()  # browser Origins allowed on /ws besides the page's own
    ws_interval_ms: int = 250  # book pushes per topic at most this often: latency vs. CPU
    rate_limit_per_s: float = 50.0  # requests per second per key and per address; 0 = off
    rate_limit_burst: int = 200  # bucket size: a page load's burst fits
    backlog: int = 1024  # listen queue (capped by net.core.somaxconn)
    workers: int = 8  # handler threads; slow clients wait in the selector, not here
    max_connections: int = 2048  # open sockets; more get 503
    idle_timeout_s: float = 30.0  # keep-alive connection silent this long is closed
    request_timeout_s: float = 10.0  # whole request (headers and body) within this, else 408
    max_body_bytes: int = 1048576  # larger bodies get 413


@dataclass(frozen=True)
class BooksConfig:
    # Shared-memory segment name; empty derives one from daemon id.
    segment_name: str = ""
    capacity: int = 1024  # books; memory = capacity * (64 + 32 * depth) bytes
    depth: int = 50  # levels per side mirrored to shared memory
    lock_stripes: int = 64  # more stripes, fewer writer collisions; 1 lock each
    # Book core: "compiled" (engine/book/_core.c, built by pip install -e .) or
    # "python" (the pure-Python reference, ~4x slower per frame); never chosen silently.
    core: str = "compiled"


@dataclass(frozen=True)
class EndpointConfig:
    rest: str = ""  # empty: the venue driver's documented default
    ws: str = ""
    # The venue's WebSocket trading API (Binance spot /ws-api/v3). Empty: the
    # venue default, or ws + the API path when ws points at a local venue.
    ws_api: str = ""


@dataclass(frozen=True)
class ExchangeConfig:
    enabled: bool = True
    spot: EndpointConfig = EndpointConfig()
    futures: EndpointConfig = EndpointConfig()
    api_key_env: str = ""
    api_secret_env: str = ""
    passphrase_env: str = ""
    paper: bool = True  # live orders need paper: false set explicitly
    max_pairs_per_connection: int = 0  # 0: the driver's default limit


@dataclass(frozen=True)
class SubscriptionConfig:
    exchange: str
    pair: str  # BASE/QUOTE
    market: Literal["spot", "futures"] = "spot"
    depth: int = 20
    trades: bool = True


@dataclass(frozen=True)
class FeedConfig:
    max_connections: int = 20  # per daemon, across venues
    stall_timeout_s: float = 30.0  # no data for this long: reconnect
    reconnect_min_s: float = 0.5  # backoff floor; full jitter up to the cap
    reconnect_max_s: float = 30.0
    record_dir: str = ""  # raw capture files here when set
    record_rotate_mb: int = 256
    record_rotate_s: int = 3600
    subscriptions: tuple[SubscriptionConfig, ...] = ()


@dataclass(frozen=True)
class VenueSymbolConfig:
    symbol: str  # BTCUSDT
    base: str
    quote: str
    tick_size: str = "0.01"  # decimal strings: money is never a float
    step_size: str = "0.00001"
    min_notional: str = "5"
    maker_fee: str = "0.001"
    taker_fee: str = "0.001"


@dataclass(frozen=True)
class VenueAccountConfig:
    name: str
    api_key: str  # local test credentials only; never a real venue's key
    api_secret: str
    balances: dict[str, str] = field(default_factory=dict)
    # Per-account fees override the symbol's (give both or neither).
    maker_fee: str = ""
    taker_fee: str = ""
    # PEM public key (Ed25519 or RSA) for an asymmetric API key: requests are
    # then signed with its private key, not HMAC (docs/venue.md). Empty: HMAC.
    public_key: str = ""


@dataclass(frozen=True)
class SyntheticMarketConfig:
    start_prices: dict[str, str] = field(default_factory=dict)  # symbol -> price
    volatility_bps: float = 5.0  # random-walk step per tick, basis points
    tick_ms: int = 200  # how often the bots act; faster = busier tape
    levels: int = 20  # maker levels per side
    seed: int = 1


@dataclass(frozen=True)
class UsdmVenueConfig:
    """The local venue's Binance USD-M futures dialect (docs/venue.md), on its
    own port over the same matching engine and ledger as the spot dialect."""

    enabled: bool = False  # config.yaml turns it on for --role venue
    port: int = 0  # 0 picks a free port (so does venue.port 0); config.yaml: 8766
    symbols: tuple[str, ...] = ()  # spot symbols that get a perpetual; () = every USDT/USDC one
    leverage: int = 20  # a new account's leverage per symbol (Binance's default)
    maker_fee: str = "0.0002"  # USD-M regular-tier rates
    taker_fee: str = "0.0005"
    # Funding every 8 h (00:00, 08:00, 16:00 UTC) as Binance does; tests shorten it.
    funding_interval_s: int = 28800
    mark_interval_ms: int = 1000  # mark price, premium sample and liquidation check cadence


@dataclass(frozen=True)
class OkxVenueKeyConfig:
    """An OKX-shaped API key of one venue account (local test credentials only)."""

    account: str  # a venue.accounts name
    api_key: str  # OKX shape: a UUID
    secret_key: str  # OKX shape: 32 upper-case hex characters
    passphrase: str  # chosen by the key's owner on OKX; sent as OK-ACCESS-PASSPHRASE


@dataclass(frozen=True)
class OkxVenueConfig:
    """The local venue's OKX v5 dialect (docs/venue.md): SPOT and SWAP on its
    own port over the same matching engine and ledger as the other dialects."""

    enabled: bool = False  # config.yaml turns it on for --role venue
    port: int = 0  # 0 picks a free port (so does venue.port 0); config.yaml: 8769
    # OKX fixed the books checksum at 0 on 2026-06-23; true sends the CRC32 as before.
    checksum: bool = False
    # Keys per account; an account not listed gets one derived from its Binance-style key.
    keys: tuple[OkxVenueKeyConfig, ...] = ()


@dataclass(frozen=True)
class BybitVenueConfig:
    """The local venue's Bybit v5 dialect (docs/venue.md): spot on the venue's
    spot books, linear on the perpetual books the USD-M dialect uses; its own
    port, the same matching engine and ledger."""

    enabled: bool = False  # config.yaml turns it on for --role venue
    port: int = 8768  # 0 picks a free port (so does venue.port 0)
    # Bybit's per-UID /v5/order/create limits (rate-limit page): lower to test 10006.
    spot_orders_per_s: int = 20
    linear_orders_per_s: int = 10
    # Bybit's IP limit: 600 requests per 5 s window per IP (HTTP 403 past it).
    ip_requests_per_5s: int = 600


@dataclass(frozen=True)
class LocalVenueConfig:
    host: str = "127.0.0.1"
    port: int = 8765
    state_path: str = "venue.sqlite"  # relative to data_dir
    market: Literal["none", "synthetic", "replay"] = "synthetic"
    replay_file: str = ""
    synthetic: SyntheticMarketConfig = SyntheticMarketConfig()
    symbols: tuple[VenueSymbolConfig, ...] = ()
    accounts: tuple[VenueAccountConfig, ...] = ()
    # Binance's published limits; the venue answers 429, then 418, past them.
    weight_per_minute: int = 6000
    orders_per_10s: int = 100
    orders_per_day: int = 200_000
    usdm: UsdmVenueConfig = UsdmVenueConfig()
    okx: OkxVenueConfig = OkxVenueConfig()  # OKX v5 dialect (engine/sim/okx)
    bybit: BybitVenueConfig = BybitVenueConfig()
    # Browser Origins a WebSocket upgrade may carry besides the venue's own host
    # (SDKs send none); any other Origin is refused with 403 on every dialect.
    ws_origins: tuple[str, ...] = ()
    # The venue role's own /health and /status API (http.port is the daemon's):
    # a separate default, so a venue and a daemon run side by side unconfigured.
    http_port: int = 8767


@dataclass(frozen=True)
class RiskConfig:
    # Largest absolute position per pair in base units, keyed "venue:BASE/QUOTE"
    # (e.g. {"binance:BTC/USDT": "0.5"}); a pair not listed uses the default;
    # "" means no limit. Counted pessimistically: position + every open order on
    # the side that would grow it + the new order.
    max_position: dict[str, str] = field(default_factory=dict)
    max_position_default: str = ""
    max_open_orders: int = 200  # per venue; Binance allows 200 per symbol (MAX_NUM_ORDERS)
    max_order_notional: str = "10000"  # quote units per order; "" = no limit
    max_daily_loss: str = ""  # realized + unrealized PnL since 00:00 UTC, quote units; "" = none
    # Circuit breaker. An error burst: this many failed sends within the window
    # trips it for cooldown_s. Lower trips on a short venue hiccup; higher lets
    # a broken venue eat more orders before we stop.
    error_burst: int = 5
    error_window_s: float = 10.0
    cooldown_s: float = 60.0
    # A price move beyond this percentage within the window trips it (0: off).
    # Tighter protects a grid from a crash wick; looser trades through volatility.
    price_jump_pct: float = 5.0
    price_jump_window_s: float = 10.0
    # A book not updated for this long (or resyncing) stops new orders on it.
    book_stale_s: float = 10.0


@dataclass(frozen=True)
class StrategyConfig:
    """One strategy this daemon always runs (TRADE rows add more at run time)."""

    # In client order ids: letters first, so never a TRADE row's numeric id.
    id: str
    strategy: str = "grid"  # engine/trade/strategy.py STRATEGIES
    exchange: str = "binance"
    market: Literal["spot", "futures"] = "spot"  # futures: perpetuals (trader venue <exchange>_futures)
    pair: str = "BTC/USDT"
    # Checked against the strategy's Params at start (engine/strategies/<name>.py);
    # money as strings ("0.001"), never floats.
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PaperConfig:
    """The simulated account of a venue with ``paper: true`` and live endpoints."""

    balances: dict[str, str] = field(default_factory=lambda: {"USDT": "10000"})
    maker_fee: str = "0.001"  # the fee tier to simulate (Binance's default)
    taker_fee: str = "0.001"


@dataclass(frozen=True)
class FuturesTradeConfig:
    """Futures accounts (trader venue "<exchange>_futures"), set at start."""

    # one_way: one signed position per pair; hedge: LONG and SHORT legs (the
    # account must have no position when it is switched). "": leave the
    # account's and send one-way orders (a hedge-mode account refuses them).
    position_mode: Literal["", "one_way", "hedge"] = "one_way"
    leverage: int = 0  # 1..125 set on every traded pair; 0 leaves the account's
    margin_type: Literal["", "cross", "isolated"] = ""  # "": leave the account's
    # Funding payments and the venue's positions are read this often (and at
    # once after a funding push). Shorter shows funding sooner, costs weight 35.
    poll_s: float = 60.0


@dataclass(frozen=True)
class TraderConfig:
    # Order entry rate per venue: at most orders_per_s new orders in any 1 s
    # window, of which order_burst may leave back to back after a quiet spell.
    # Binance spot allows 100 per 10 s per account by default (raise on request);
    # a burst above the venue's short window only earns -1015 rejections.
    # Default 9: 90 per 10 s, under Binance's 100 with room for clock skew
    # (25, the old default, drew -1015 at restarts); above it the config is refused.
    orders_per_s: float = 9.0
    order_burst: int = 10
    # Share of the venue's published REST weight per minute the trader may use;
    # the feed's snapshots use REST_BUDGET_FRACTION (0.5) of the same budget.
    rest_weight_fraction: float = 0.4
    request_timeout_s: float = 5.0  # per REST call; a timeout is an UNKNOWN send
    # Transient failures (429, 5xx, timeouts proven not accepted) are retried
    # with capped exponential backoff + full jitter, within both bounds.
    retry_attempts: int = 5
    retry_budget_s: float = 30.0
    backoff_min_s: float = 0.2
    backoff_max_s: float = 5.0
    # A post-only order refused because it would take: re-send as a plain
    # limit (fills now, as taker), re-price one tick less aggressive (up to
    # reprice_max times, then give up), or report the rejection.
    post_only_fallback: Literal["limit", "reprice", "none"] = "reprice"
    reprice_max: int = 3
    # listenKeys live 60 min; Binance asks for a keepalive every 30 min.
    listen_key_keepalive_s: float = 1800.0
    # No user-data frame (nor server ping) for this long: reconnect and catch up.
    user_stream_stall_s: float = 120.0
    # Orders, cancels and lookups over the venue's authenticated WebSocket API
    # (one persistent socket: no TLS+HTTP round trip per order) where it has
    # one, REST while that socket is down; "rest": always REST. A WebSocket API
    # request unanswered within request_timeout_s is an UNKNOWN send (looked up).
    order_transport: Literal["ws_api", "rest"] = "ws_api"
    # Reconcile at start (and tools/reconcile.py): differences up to this share
    # of the tracked orders (slots) are corrected; more halts with a report.
    reconcile_tolerance: float = 0.05
    reconcile_fill_lookback_s: float = 86_400.0  # fills fetched for the check
    risk: RiskConfig = RiskConfig()
    # Exchanges (names under `exchanges:`) this daemon trades on; their
    # api_key_env / api_secret_env name the credentials. Empty: none.
    venues: tuple[str, ...] = ()
    pairs: tuple[str, ...] = ()  # "venue:BASE/QUOTE" to reconcile and track
    # Strategy worker processes. Strategies in one worker run one after
    # another; two is the least that can move work off a stuck one.
    workers: int = 2
    # Idle sleep between a worker's book-version polls: the worst added delay
    # from a book change to a decision. Shorter reacts sooner, burns more CPU.
    strategy_poll_s: float = 0.001
    # One decision running longer moves its worker's other strategies away;
    # past hung_strategy_s the worker is killed (and restarted).
    slow_strategy_s: float = 0.5
    hung_strategy_s: float = 10.0
    strategy_modules: tuple[str, ...] = ()  # modules registering strategies of your own
    strategies: tuple[StrategyConfig, ...] = ()
    paper: PaperConfig = PaperConfig()
    futures: FuturesTradeConfig = FuturesTradeConfig()


@dataclass(frozen=True)
class Config:
    daemon: DaemonConfig = DaemonConfig()
    http: HttpConfig = HttpConfig()
    books: BooksConfig = BooksConfig()
    exchanges: dict[str, ExchangeConfig] = field(default_factory=dict)
    feed: FeedConfig = FeedConfig()
    storage: StorageConfig = StorageConfig()
    venue: LocalVenueConfig = LocalVenueConfig()
    trader: TraderConfig = TraderConfig()
    source: str = ""  # path the config came from (not a YAML key)

    def secret(self, env_name: str) -> Secret:
        return Secret(env_name)


# ------------------------------------------------------------------- validation


def parse(data: Any, source: str = "") -> Config:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"top level: expected a mapping, got {type(data).__name__}")
    config = build(Config, data, "")
    for i, sub in enumerate(config.feed.subscriptions):
        if sub.exchange not in config.exchanges:
            raise ConfigError(
                f"feed.subscriptions[{i}].exchange: {sub.exchange!r} is not configured under "
                f"exchanges (have: {', '.join(sorted(config.exchanges)) or 'none'})")
    check_trader(config)
    check_consistency(config)
    symbols = {s.symbol for s in config.venue.symbols}
    if len(symbols) != len(config.venue.symbols):
        raise ConfigError("venue.symbols: a symbol is listed twice")
    return dataclasses.replace(config, source=source)


def load(path: str | os.PathLike) -> Config:
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {str(p)!r}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    return parse(data, source=str(p))

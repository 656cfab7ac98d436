#!/usr/bin/env python3
"""Reconcile the trader's order store with the venue, on demand, and print the
report: python tools/reconcile.py --config FILE [--venue binance] [--pair BTC/USDT]
[--apply] [--tolerance 0.05] [--verbose].

Runs the same check the daemon runs before it trades (engine.trade.reconcile).
A dry run by default: nothing is written and nothing canceled; --apply also
corrects (records the venue's states and fills, marks unsent intents absent,
and, within tolerance, cancels orphans) -- do not use it while a daemon trades
the same account.

A paper venue (``paper: true`` with the live endpoint, the shipped config) is
reconciled against the paper account the daemon saved in
``<data_dir>/paper_<venue>.sqlite``: stop the daemon first. Live venues need
their ``api_key_env``/``api_secret_env`` set.

The report goes to stdout once; log lines (warnings; everything with
--verbose) go to stderr. Exit status: 0 OK, 3 drift beyond tolerance (a daemon
would halt), 4 the venue refused the API key or signature, 2 a usage, config
or connection problem.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from loguru import logger

from engine import config as config_mod
from engine.config import (
    ConfigError,
    LocalVenueConfig,
    Secret,
    SyntheticMarketConfig,
    VenueAccountConfig,
)
from engine.feed.limiter import RestLimiter
from engine.model import Market
from engine.model_trade import (
    RateLimitKind,
    TradingEndpoints,
    tightest_rate,
    venue_market,
)
from engine.store.migrations import available, check_version
from engine.store.taskdb import TaskDb, TaskDbError
from engine.trade.orders import OrderStore
from engine.trade.reconcile import Reconciler
from engine.trade.session import VenueSession
from engine.trade.settings import trader_settings
from engine.venues import TRADING_DRIVERS, make_trading_driver

# Share of the venue's REST weight this tool may use: small, since a daemon
# (and its feed) may be spending the same IP's budget right now.
TOOL_WEIGHT_FRACTION = 0.1
# Binance's answers to a key or signature it does not accept (401/403, or these
# codes): an authentication problem, never drift.
AUTH_CODES = {-2014, -2015, -1022, -2008}
EXIT_OK, EXIT_USAGE, EXIT_DRIFT, EXIT_AUTH = 0, 2, 3, 4
PAPER_ACCOUNT = "paper"  # engine.sim.paper.ACCOUNT: the account the paper trader uses
# Seconds to ask the live venue for a paper pair's rules before falling back to
# venue.symbols: short, since the tool may run offline.
PAPER_RULES_TIMEOUT_S = 5.0


class ToolError(Exception):
    """A problem the user must fix; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="reconcile.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="the daemon's config.yaml")
    parser.add_argument("--venue", action="append", default=[],
                        help="venue to check (repeatable); default: trader.venues, else every "
                             "exchange with API credentials and a trading driver")
    parser.add_argument("--pair", action="append", default=[],
                        help="BASE/QUOTE to check besides the pairs of live orders (repeatable)")
    parser.add_argument("--apply", action="store_true", help="correct what the check allows")
    parser.add_argument("--tolerance", type=float, default=None,
                        help="drift share that is corrected rather than halting "
                             "(default: trader.reconcile_tolerance, 0.05)")
    parser.add_argument("--verbose", action="store_true", help="log everything on stderr")
    args = parser.parse_args(argv)
    for pair in args.pair:
        base, slash, quote = pair.partition("/")
        if not (slash and base and quote and base.isalnum() and quote.isalnum()):
            parser.error(f"--pair {pair!r}: write pairs as BASE/QUOTE, e.g. BTC/USDT")
    if args.tolerance is not None and not 0 <= args.tolerance <= 1:
        parser.error(f"--tolerance {args.tolerance}: a share between 0 and 1")
    return args


def is_local(url: str) -> bool:
    """An endpoint on this host (the local venue); engine.app uses the same rule
    to tell a paper venue (live endpoint) from one already local."""
    return bool(url) and urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


def venues_to_check(config: config_mod.Config, chosen: list[str]) -> list[str]:
    if chosen:
        return chosen
    settings = trader_settings(config)
    if settings.venues:
        return list(settings.venues)
    return [name for name, ex in config.exchanges.items()
            if ex.enabled and (name, Market.SPOT) in TRADING_DRIVERS and
            ((ex.api_key_env and ex.api_secret_env) or (ex.paper and not is_local(ex.spot.rest)))]


def venue_pairs(config: config_mod.Config, venue: str, extra: list[str]) -> tuple[str, ...]:
    settings = trader_settings(config)
    pairs = list(extra) + [p.split(":", 1)[1] for p in settings.pairs if p.startswith(f"{venue}:")]
    pairs += [s.pair for s in settings.strategies if s.exchange == venue]
    return tuple(dict.fromkeys(pairs))


@dataclass
class Endpoint:
    rest: str
    ws: str
    key: str
    secret: str
    paper: object | None = None  # the LocalVenue holding the paper account, stopped after
    ws_api: str = ""


def live_endpoint(config: config_mod.Config, venue: str) -> Endpoint:
    name, market = venue_market(venue)  # "binance_futures": binance's futures account
    exchange = config.exchanges[name]
    ends = exchange.futures if market == Market.FUTURES else exchange.spot
    key, secret = Secret(exchange.api_key_env), Secret(exchange.api_secret_env)
    if not key or not secret:
        raise ToolError(f"{venue}: live trading needs {exchange.api_key_env or 'api_key_env'} and "
                        f"{exchange.api_secret_env or 'api_secret_env'} set in the environment")
    return Endpoint(ends.rest, ends.ws, key.get(), secret.get(), ws_api=ends.ws_api)


def paper_endpoint(config: config_mod.Config, venue: str, pairs: tuple[str, ...],
                   store: OrderStore) -> Endpoint | None:
    """The paper account as the daemon left it, served on a free local port;
    None when the paper venue never saved anything."""
    from engine.sim.paper import live_pairs
    from engine.sim.server import LocalVenue

    exchange, paper = config.exchanges[venue], trader_settings(config).paper
    state = Path(config.daemon.data_dir) / f"paper_{venue}.sqlite"
    if not state.is_file():
        return None
    wanted = sorted(set(pairs) | {r.pair for r in store.live_orders(venue)})
    if not wanted:
        raise ToolError(f"{venue}: paper venue, but no pair to check: give --pair BASE/QUOTE")
    try:
        public = make_trading_driver(venue, Market.SPOT, TradingEndpoints(exchange.spot.rest),
                                     "", "")
        rules = live_pairs(public, wanted, paper.maker_fee, paper.taker_fee,
                           config.venue.symbols, timeout_s=PAPER_RULES_TIMEOUT_S)
    except RuntimeError as exc:
        raise ToolError(f"{venue}: {exc}") from exc
    key, secret = "reconcile-paper-key", os.urandom(16).hex()
    local = LocalVenue(LocalVenueConfig(
        port=0, state_path=str(state), market="none", synthetic=SyntheticMarketConfig(),
        symbols=tuple(p.rules for p in rules),
        accounts=(VenueAccountConfig(PAPER_ACCOUNT, key, secret, dict(paper.balances)),)),
        state.parent)
    try:
        local.start()
    except (OSError, ValueError) as exc:
        raise ToolError(f"{venue}: cannot open the paper account {state}: {exc}") from exc
    return Endpoint(local.rest_url, local.ws_url, key, secret, paper=local)


def check_auth(session: VenueSession, venue: str, key_env: str) -> None:
    reply = session.call(session.driver.account(session.now_ms()))
    if reply.kind == "ok":
        return
    if reply.status in (401, 403) or reply.code in AUTH_CODES:
        raise ToolError(f"{venue}: authentication failed: the venue refused the API key or "
                        f"signature ({reply.status} {reply.code} {reply.message}); check "
                        f"{key_env or 'the API key'} and its secret", EXIT_AUTH)
    raise ToolError(f"{venue}: cannot reach the account: {reply.status} {reply.code} "
                    f"{reply.message}")


def reconcile_venue(config: config_mod.Config, args: argparse.Namespace, venue: str,
                    store: OrderStore, tolerance: float) -> int:
    name, market = venue_market(venue)  # "binance_futures": binance's futures account
    exchange = config.exchanges.get(name)
    if exchange is None or (name, market) not in TRADING_DRIVERS:
        known = sorted(n for n in config.exchanges if (n, Market.SPOT) in TRADING_DRIVERS)
        raise ToolError(f"{venue}: not a configured exchange with a trading driver "
                        f"(have: {', '.join(known)})")
    settings = trader_settings(config)
    pairs = venue_pairs(config, venue, args.pair)
    paper = market == Market.SPOT and exchange.paper and not is_local(exchange.spot.rest)
    endpoint = paper_endpoint(config, venue, pairs, store) if paper \
        else live_endpoint(config, venue)
    if endpoint is None:
        print(f"reconcile {venue}: paper venue has no saved account yet "
              f"({config.daemon.data_dir}/paper_{venue}.sqlite): nothing to reconcile")
        return EXIT_OK
    try:
        driver = make_trading_driver(name, market, TradingEndpoints(
            endpoint.rest, endpoint.ws, endpoint.ws_api), endpoint.key, endpoint.secret)
        for pair in pairs:
            try:
                driver.symbol(pair)
            except ValueError as exc:
                raise ToolError(f"{venue}: pair {pair!r}: {exc}") from exc
        per_minute = int(tightest_rate(driver.default_rate_limits,
                                       RateLimitKind.REQUEST_WEIGHT) * 60)
        limiter = RestLimiter(per_minute, 60.0, f"{venue} reconcile",
                              fraction=TOOL_WEIGHT_FRACTION)
        session = VenueSession(driver, limiter, settings.request_timeout_s)
        try:
            session.sync_time()
            check_auth(session, venue, "" if paper else exchange.api_key_env)
            report = Reconciler(session, store, tolerance, pairs,
                                fill_lookback_s=settings.reconcile_fill_lookback_s).run(args.apply)
        finally:
            session.close()
    finally:
        if endpoint.paper is not None:
            endpoint.paper.stop()  # type: ignore[attr-defined]
    print(report.text(), flush=True)
    if report.ok:
        return EXIT_OK
    return EXIT_DRIFT if report.drift else EXIT_USAGE  # errors only: could not check


def quiet_reconcile_log(record: dict) -> bool:
    """stderr without --verbose: warnings, minus the reconciler's own copy of
    the report (stdout has it)."""
    return record["extra"].get("component") != "reconcile"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logger.remove()
    if args.verbose:
        logger.add(sys.stderr, level="DEBUG")
    else:
        logger.add(sys.stderr, level="WARNING", filter=quiet_reconcile_log)  # type: ignore[arg-type]
    try:
        config = config_mod.load(args.config)
    except ConfigError as e:
        print(f"config: {e}", file=sys.stderr)
        return EXIT_USAGE
    settings = trader_settings(config)
    tolerance = settings.reconcile_tolerance if args.tolerance is None else args.tolerance
    venues = venues_to_check(config, args.venue)
    if not venues:
        print("no venue to check: give --venue, or configure exchanges with api_key_env",
              file=sys.stderr)
        return EXIT_USAGE
    db = TaskDb.from_config(config)
    try:
        db.connect()
        if check_version(db, available(db.dialect.name)) < 2:
            print(f"{db.where}: no trader tables yet (schema older than version 2): nothing "
                  f"to reconcile", file=sys.stderr)
            return EXIT_USAGE
        store = OrderStore(db)
        store.load()
        worst = EXIT_OK
        for venue in venues:
            try:
                code = reconcile_venue(config, args, venue, store, tolerance)
            except ToolError as exc:
                print(str(exc), file=sys.stderr)
                code = exc.code
            worst = max(worst, code)  # 4 auth > 3 drift > 2 usage > 0
        return worst
    except TaskDbError as e:
        print(f"task database: {e}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())

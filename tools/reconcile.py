#!/usr/bin/env python3
"""Reconcile the trader's order store with the venue, on demand, and print the
report: python tools/reconcile.py --config FILE [--venue binance] [--pair BTC/USDT]
[--apply] [--tolerance 0.05].

Runs the same check the daemon runs before it trades (engine.trade.reconcile).
A dry run by default: nothing is written and nothing canceled; --apply also
corrects (records the venue's states and fills, marks unsent intents absent,
and, within tolerance, cancels orphans) -- do not use it while a daemon trades
the same account. Exit status: 0 OK, 3 drift beyond tolerance (a daemon would
halt), 2 a usage, config or connection problem.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import config as config_mod  # noqa: E402
from engine.config import ConfigError, Secret  # noqa: E402
from engine.feed.limiter import RestLimiter  # noqa: E402
from engine.model import Market  # noqa: E402
from engine.model_trade import (  # noqa: E402
    RateLimitKind,
    TradingEndpoints,
    tightest_rate,
    venue_market,
)
from engine.store.migrations import available, check_version  # noqa: E402
from engine.store.taskdb import TaskDb, TaskDbError  # noqa: E402
from engine.trade.orders import OrderStore  # noqa: E402
from engine.trade.reconcile import Reconciler  # noqa: E402
from engine.trade.session import VenueSession  # noqa: E402
from engine.trade.settings import trader_settings  # noqa: E402
from engine.venues import TRADING_DRIVERS, make_trading_driver  # noqa: E402

# Share of the venue's REST weight this tool may use: small, since a daemon
# (and its feed) may be spending the same IP's budget right now.
TOOL_WEIGHT_FRACTION = 0.1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
    return parser.parse_args(argv)


def venues_to_check(config: config_mod.Config, chosen: list[str]) -> list[str]:
    if chosen:
        return chosen
    settings = trader_settings(config)
    if settings.venues:
        return list(settings.venues)
    return [name for name, ex in config.exchanges.items()
            if ex.enabled and (name, Market.SPOT) in TRADING_DRIVERS and ex.api_key_env
            and ex.api_secret_env]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        config = config_mod.load(args.config)
    except ConfigError as e:
        print(f"config: {e}", file=sys.stderr)
        return 2
    settings = trader_settings(config)
    tolerance = settings.reconcile_tolerance if args.tolerance is None else args.tolerance
    db = TaskDb.from_config(config)
    try:
        db.connect()
        if check_version(db, available(db.dialect.name)) < 2:
            print(f"{db.where}: no trader tables yet (schema older than version 2): nothing "
                  f"to reconcile", file=sys.stderr)
            return 2
        store = OrderStore(db)
        store.load()
    except TaskDbError as e:
        print(f"task database: {e}", file=sys.stderr)
        return 2
    worst = 0
    venues = venues_to_check(config, args.venue)
    if not venues:
        print("no venue to check: give --venue, or configure exchanges with api_key_env",
              file=sys.stderr)
        return 2
    for venue in venues:
        name, market = venue_market(venue)  # "binance_futures": binance's futures account
        exchange = config.exchanges.get(name)
        if exchange is None or (name, market) not in TRADING_DRIVERS:
            print(f"{venue}: not a configured exchange with a trading driver", file=sys.stderr)
            return 2
        key, secret = Secret(exchange.api_key_env), Secret(exchange.api_secret_env)
        if not key or not secret:
            print(f"{venue}: set {exchange.api_key_env} and {exchange.api_secret_env}",
                  file=sys.stderr)
            return 2
        ends = exchange.futures if market == Market.FUTURES else exchange.spot
        driver = make_trading_driver(name, market, TradingEndpoints(
            ends.rest, ends.ws, ends.ws_api), key.get(), secret.get())
        per_minute = int(tightest_rate(driver.default_rate_limits,
                                       RateLimitKind.REQUEST_WEIGHT) * 60)
        limiter = RestLimiter(per_minute, 60.0, f"{venue} reconcile",
                              fraction=TOOL_WEIGHT_FRACTION)
        session = VenueSession(driver, limiter, settings.request_timeout_s)
        session.sync_time()
        pairs = tuple(args.pair) + tuple(p.split(":", 1)[1] for p in settings.pairs
                                         if p.startswith(f"{venue}:"))
        report = Reconciler(session, store, tolerance, pairs,
                            fill_lookback_s=settings.reconcile_fill_lookback_s).run(args.apply)
        print(report.text())
        worst = max(worst, 0 if report.ok else 3)
        session.close()
    db.close()
    return worst


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

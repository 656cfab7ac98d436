#!/usr/bin/env python3
"""Daemon entry point: python run.py --role monitor|trader|both|venue.

Parses arguments, loads and validates the config (errors exit 2 with no
traceback), sets up logging, starts the role and waits for SIGINT/SIGTERM.
A first signal stops gracefully within daemon.shutdown_timeout_s; a second
forces exit."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

ROLE_HELP = """roles:
  monitor  market-data feed (live order books and trades) and the history recorder
  trader   feed, grid strategy worker pool, rate-limited order executor, positions
  both     monitor and trader in one process
  venue    the local exchange: a matching engine speaking Binance's REST/WebSocket
           format on one port (paper trading, tests, replay backtests)"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="run.py", description="Crypto market-data and grid-trading daemon.",
        epilog=ROLE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--role", required=True, choices=["monitor", "trader", "both", "venue"],
                   help="what this daemon runs (see roles below)")
    p.add_argument("--config", default="config.yaml", help="YAML config file (default: config.yaml)")
    p.add_argument("--log-level", default=None,
                   choices=["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR"],
                   help="overrides daemon.log_level from the config")
    p.add_argument("--fresh", action="store_true",
                   help="venue role: start with empty state instead of the saved one")
    p.add_argument("--demo", action="store_true",
                   help="start the local venue with its synthetic market in this process and "
                        "point the feed and the trader at it: no network at all")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from engine import config as config_mod
    from engine import logconfig
    from engine.venues import DRIVERS, make_driver

    try:
        config = config_mod.load(args.config)
        config_mod.check_venues(config, {  # the venue's documented streams per socket
            name: max(make_driver(name, market).limits.max_streams_per_connection
                      for market in driver.markets) for name, driver in DRIVERS.items()})
    except config_mod.ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    logconfig.setup(args.log_level or config.daemon.log_level, config.daemon.log_json)

    from loguru import logger

    from engine.app import Daemon

    log = logger.bind(component="app")
    stop = threading.Event()
    signals_seen = []

    def on_signal(signum, _frame) -> None:
        signals_seen.append(signum)
        if len(signals_seen) > 1:
            os.write(2, b"second signal: forcing exit\n")
            os._exit(1)
        log.info("signal {} received: shutting down (again to force)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        daemon = Daemon(config, args.role, fresh=args.fresh, demo=args.demo)
        daemon.start()
    except Exception as e:  # noqa: BLE001 - start-up failures are reported, not traced
        log.error("start-up failed: {}: {}", type(e).__name__, e)
        return 1
    for line in daemon.summary().splitlines():
        log.info(line)
    while not stop.wait(0.5):
        pass
    clean = daemon.stop()
    if clean:
        log.info("stopped cleanly")
    else:
        log.error("stopped with errors: a component overran the budget or failed (see above)")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())

"""Trader benchmark, Bybit v5 spot: decision_to_wire over REST (/v5/order/create)
and over the trade socket (/v5/trade ``order.create`` after ``auth``), side by
side in one run, against the local venue's Bybit dialect. The harness is
bench_trader.py's (wire stamps, interleaved one-at-a-time orders); this module
only starts the venue with the Bybit dialect and a trader on exchange ``bybit``.

Run: python tools/bench.py trader            (part of the trader group)
     python tools/bench_trader_bybit.py [--bybit-wire-actions N]

  bybit_decision_to_wire_rest_p50_ms / _p99_ms    submit() to the REST request written
  bybit_decision_to_wire_ws_api_p50_ms / _p99_ms  submit() to the order.create frame written
  bybit_decision_to_wire_ws_over_rest_p99          ratio within this run
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_trader import install_wire_stamps, row, wire_latency

from engine import config as config_mod
from engine.feed.limiter import RestLimiter
from engine.model import Market
from engine.model_trade import RateLimitKind, tightest_rate
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.trade.service import TraderService
from engine.trade.settings import RiskConfig, TraderConfig
from engine.venues import TRADING_DRIVERS, make_trading_driver

KEY_ENV, SECRET_ENV = "BENCH_TRADER_BYBIT_KEY", "BENCH_TRADER_BYBIT_SECRET"
VENUE = "bybit"


def documented_rate() -> float:
    """20/s: Bybit's /v5/order/create limit for spot, per UID."""
    return tightest_rate(TRADING_DRIVERS[("bybit", Market.SPOT)].default_rate_limits,
                         RateLimitKind.ORDERS)


def _venue_process(data_dir: str, urls: mp.Queue, stop: Any) -> None:
    """The local venue with its Bybit dialect, in its own process."""
    account = account_config("bench", {"USDT": "1000000000", "BTC": "10"})
    venue = LocalVenue(venue_config(accounts=[account], market="none", bybit=True),
                       Path(data_dir))
    venue.start()
    assert venue.bybit is not None
    urls.put((venue.bybit.url, venue.bybit.ws_url, *venue.bybit.keys["bench"]))
    stop.wait()
    venue.stop()


def start(data_dir: Path, rate: float, actions: int) -> tuple[Callable[[], None], TraderService]:
    context = mp.get_context("spawn")
    urls: mp.Queue = context.Queue()
    stop = context.Event()
    process = context.Process(target=_venue_process, daemon=True,
                              args=(str(data_dir / "venue"), urls, stop))
    process.start()
    rest_url, ws_url, key, secret = urls.get(timeout=60)

    def stop_venue() -> None:
        stop.set()
        process.join(10)

    os.environ[KEY_ENV], os.environ[SECRET_ENV] = key, secret
    config = config_mod.parse({
        "daemon": {"data_dir": str(data_dir / "trader")},
        "exchanges": {"bybit": {"spot": {"rest": rest_url, "ws": f"{ws_url}/v5/public/spot"},
                                "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}}})
    settings = TraderConfig(orders_per_s=rate, venues=(VENUE,), pairs=(f"{VENUE}:BTC/USDT",),
                            order_transport="ws_api",
                            risk=RiskConfig(max_open_orders=actions + 1000,
                                            max_order_notional="", error_burst=1000))
    trader = TraderService(config, "bench-bybit",
                           lambda v, m, weight: RestLimiter(weight, 60.0, fraction=1.0),
                           make_trading_driver, settings=settings)
    trader.start()
    for keeper in trader.order_sockets:  # the trade socket, logged on
        keeper.up.wait(30)
    return stop_venue, trader


def run(args: list[str]) -> Iterator[dict]:
    parser = argparse.ArgumentParser(prog="bench.py trader (bybit)")
    parser.add_argument("--bybit-wire-actions", type=int, default=400,
                        help="decision_to_wire samples, half over REST, half over the trade "
                             "socket (0: skip)")
    options, _ = parser.parse_known_args(args)
    if not options.bybit_wire_actions:
        return
    rate = documented_rate()
    stamps = install_wire_stamps("/v5/order/create", '"order.create"')
    with tempfile.TemporaryDirectory(prefix="bench_trader_bybit_") as tmp:
        stop_venue, trader = start(Path(tmp), rate, options.bybit_wire_actions)
        try:
            yield row("bybit_order_limit_per_s", rate, "orders/s")
            yield from wire_latency(trader, options.bybit_wire_actions, rate, stamps, VENUE,
                                    prefix="bybit_")
        finally:
            trader.stop(5.0)
            stop_venue()


if __name__ == "__main__":
    import orjson

    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

"""Trader benchmark, Binance USD-M: the executor's order rate on a futures
account (trader venue ``binance_futures``) against the local venue's USD-M
dialect, at the tightest order limit Binance documents for USD-M.

Run: python tools/bench.py trader            (part of the trader group; REST orders)
     python tools/bench_trader_usdm.py [--usdm-actions N] [--usdm-transport rest|ws_api|both]

USD-M publishes ORDERS 300 per 10 s and 1200 per minute per account
(exchangeInfo rateLimits; docs/venues/binance.md): the sustained rate both
allow is 20 orders/s, and the executor is set to exactly that. The venue runs
in its own process and answers -1015 past 300 per 10 s.

  usdm_rate_limit_utilisation  achieved rate / 20 over the flood (target >= 0.99)
  usdm_rate_limit_violations   1 s windows starting at a send holding more than 20
                               sends, plus 60 s windows holding more than 1200 (target 0)
  usdm_venue_rate_rejections   -1015 answers (target 0)
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import config as config_mod
from engine.feed.limiter import RestLimiter
from engine.model import Market, Side
from engine.model_trade import RateLimitKind, tightest_rate
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.trade.actions import ActionResult, Outcome, PlaceOrder, make_client_order_id
from engine.trade.service import TraderService
from engine.trade.settings import RiskConfig, TraderConfig
from engine.venues import TRADING_DRIVERS, make_trading_driver

KEY_ENV, SECRET_ENV = "BENCH_TRADER_USDM_KEY", "BENCH_TRADER_USDM_SECRET"
VENUE = "binance_futures"


def row(metric: str, value: float, unit: str) -> dict:
    return {"bench": "trader", "metric": metric, "value": round(value, 4), "unit": unit}


def documented_rate() -> float:
    """20/s: the sustained rate USD-M's documented ORDERS windows (<= 1 min) allow."""
    rules = TRADING_DRIVERS[("binance", Market.FUTURES)].default_rate_limits
    return tightest_rate([r for r in rules if r.interval_s <= 60], RateLimitKind.ORDERS)


def _venue_process(data_dir: str, urls: mp.Queue, stop: Any) -> None:
    """The local venue (spot + USD-M dialects) in its own process."""
    account = account_config("bench", {"USDT": "1000000000", "BTC": "10"})
    venue = LocalVenue(venue_config(accounts=[account], market="none", usdm=True), Path(data_dir))
    venue.start()
    assert venue.usdm is not None
    urls.put((venue.usdm.url, venue.usdm.ws_url))
    stop.wait()
    venue.stop()


def start(data_dir: Path, rate: float, actions: int, transport: str = "rest"
          ) -> tuple[Callable[[], None], TraderService]:
    context = mp.get_context("spawn")
    urls: mp.Queue = context.Queue()
    stop = context.Event()
    process = context.Process(target=_venue_process, daemon=True,
                              args=(str(data_dir / "venue"), urls, stop))
    process.start()
    rest_url, ws_url = urls.get(timeout=60)

    def stop_venue() -> None:
        stop.set()
        process.join(10)

    os.environ[KEY_ENV], os.environ[SECRET_ENV] = "bench-key", "bench-secret"
    config = config_mod.parse({
        "daemon": {"data_dir": str(data_dir / "trader")},
        "exchanges": {"binance": {"futures": {"rest": rest_url, "ws": ws_url},
                                  "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}}})
    settings = TraderConfig(orders_per_s=rate, venues=(VENUE,), pairs=(f"{VENUE}:BTC/USDT",),
                            order_transport=transport,  # type: ignore[arg-type]
                            risk=RiskConfig(max_open_orders=actions + 1000,
                                            max_order_notional="", error_burst=1000))
    trader = TraderService(config, "bench-usdm",
                           lambda v, m, weight: RestLimiter(weight, 60.0, fraction=1.0),
                           make_trading_driver, settings=settings)
    trader.start()
    for keeper in trader.order_sockets:  # ws_api: orders only once its socket is up
        keeper.up.wait(30)
    return stop_venue, trader


def orders(count: int) -> list[PlaceOrder]:
    """Resting GTX buys far below the (empty) market, ~10 USDT each."""
    return [PlaceOrder(make_client_order_id("usdm", i, 0), VENUE, Market.FUTURES, "BTC/USDT",
                       Side.BUY, Decimal(10000) + Decimal(i % 5000) / 10, Decimal("0.001"),
                       post_only=True, strategy_id="usdm", slot_id=i) for i in range(count)]


def violations(stamps: list[float], window_s: float, limit: int) -> int:
    """Windows [t, t + window_s) starting at each send that hold more than ``limit``."""
    out, j = 0, 0
    for i, t in enumerate(stamps):
        while j < len(stamps) and stamps[j] < t + window_s:
            j += 1
        out += (j - i) > limit
    return out


def flood(trader: TraderService, count: int, rate: float, prefix: str = "usdm") -> Iterator[dict]:
    assert trader.executor is not None
    stamps: list[float] = []
    results: list[ActionResult] = []
    done = threading.Event()

    def settled(result: ActionResult) -> None:
        results.append(result)
        if len(results) == count:
            done.set()

    trader.executor.on_wire = lambda action, mono: stamps.append(mono)
    trader.executor.on_result(settled)
    started = time.monotonic()
    trader.executor.submit_many(orders(count))
    done.wait(count / rate * 2 + 60)
    elapsed = time.monotonic() - started
    stamps.sort()
    span = stamps[-1] - stamps[0] if stamps else 0.0
    bad = violations(stamps, 1.0, int(rate)) + violations(stamps, 60.0, 1200) + \
        violations(stamps, 10.0, 300)
    yield row(f"{prefix}_order_limit_per_s", rate, "orders/s")
    yield row(f"{prefix}_rate_limit_utilisation", len(stamps) / (rate * span + 1.0), "ratio")
    yield row(f"{prefix}_rate_limit_violations", bad, "windows")
    yield row(f"{prefix}_venue_rate_rejections", sum(1 for r in results if r.code == -1015),
              "orders")
    yield row(f"{prefix}_flood_orders_acknowledged",
              sum(1 for r in results if r.outcome == Outcome.ACKNOWLEDGED), "orders")
    yield row(f"{prefix}_flood_actions", count, "actions")
    yield row(f"{prefix}_flood_seconds", elapsed, "s")
    trader.executor.on_wire = None


def run(args: list[str]) -> Iterator[dict]:
    parser = argparse.ArgumentParser(prog="bench.py trader (usdm)")
    parser.add_argument("--usdm-actions", type=int, default=4000,
                        help="flood size on USD-M (200 s at 20/s; quick: 600)")
    parser.add_argument("--usdm-transport", choices=("rest", "ws_api", "both"), default="rest",
                        help="orders over REST, the ws-fapi WebSocket API, or both in turn")
    options, _ = parser.parse_known_args(args)
    rate = documented_rate()
    transports = ("rest", "ws_api") if options.usdm_transport == "both" else \
        (options.usdm_transport,)
    for transport in transports:
        with tempfile.TemporaryDirectory(prefix="bench_trader_usdm_") as tmp:
            stop_venue, trader = start(Path(tmp), rate, options.usdm_actions, transport)
            try:
                yield from flood(trader, options.usdm_actions, rate,
                                 "usdm" if transport == "rest" else "usdm_ws")
                yield row(f"{'usdm' if transport == 'rest' else 'usdm_ws'}_sent_over_ws",
                          trader.sessions[VENUE].calls_by_transport["ws"], "requests")
            finally:
                trader.stop(5.0)
                stop_venue()


if __name__ == "__main__":
    import orjson

    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

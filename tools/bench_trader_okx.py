"""Trader benchmark, OKX spot: decision_to_wire over REST and over the private
socket's ``order`` operation, side by side in one run, through our OKX driver
against the local venue's OKX dialect (in its own process). The harness is
bench_trader.py's (wire stamps, interleaved one-at-a-time orders); this file
only starts the OKX venue and trader and names OKX's new-order calls.

Run: python tools/bench.py trader            (part of the trader group)
     python tools/bench_trader_okx.py [--okx-wire-actions N]

  okx_decision_to_wire_rest_p99_ms    decision (submit) to the REST request written
  okx_decision_to_wire_ws_api_p99_ms  decision to the WebSocket ``order`` frame written
  okx_decision_to_wire_ws_over_rest_p99  their ratio (issue 10's target: <= 0.5)
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # as bench.py imports them

import bench_trader

from engine import config as config_mod
from engine.config import OkxVenueConfig
from engine.feed.limiter import RestLimiter
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.trade.service import TraderService
from engine.trade.settings import RiskConfig, TraderConfig
from engine.venues import make_trading_driver

KEY_ENV, SECRET_ENV, PASSPHRASE_ENV = "BENCH_OKX_KEY", "BENCH_OKX_SECRET", "BENCH_OKX_PASSPHRASE"
VENUE = "okx"
RATE = 25.0  # orders/s: under OKX's 60 place requests per 2 s per instrument


def _venue_process(data_dir: str, urls: mp.Queue, stop: Any) -> None:
    """The local venue with its OKX dialect, in its own process."""
    account = account_config("bench", {"USDT": "1000000000", "BTC": "10"})
    config = dataclasses.replace(venue_config(accounts=[account], market="none"),
                                 okx=OkxVenueConfig(enabled=True))
    venue = LocalVenue(config, Path(data_dir))
    venue.start()
    assert venue.okx is not None
    key = next(k for k in venue.okx.keys.values() if k.account == "bench")
    urls.put((venue.okx.url, venue.okx.ws_url, key.api_key, key.secret_key, key.passphrase))
    stop.wait()
    venue.stop()


def start(data_dir: Path, actions: int) -> tuple[Callable[[], None], TraderService]:
    context = mp.get_context("spawn")
    urls: mp.Queue = context.Queue()
    stop = context.Event()
    process = context.Process(target=_venue_process, daemon=True,
                              args=(str(data_dir / "venue"), urls, stop))
    process.start()
    rest, ws, key, secret, passphrase = urls.get(timeout=60)

    def stop_venue() -> None:
        stop.set()
        process.join(10)

    os.environ[KEY_ENV], os.environ[SECRET_ENV], os.environ[PASSPHRASE_ENV] = \
        key, secret, passphrase
    config = config_mod.parse({
        "daemon": {"data_dir": str(data_dir / "trader")},
        "exchanges": {"okx": {"spot": {"rest": rest, "ws": f"{ws}/ws/v5/public"},
                              "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV,
                              "passphrase_env": PASSPHRASE_ENV}}})
    settings = TraderConfig(orders_per_s=RATE, venues=(VENUE,), pairs=(f"{VENUE}:BTC/USDT",),
                            risk=RiskConfig(max_open_orders=actions + 1000,
                                            max_order_notional="", error_burst=1000))
    trader = TraderService(config, "bench-okx",
                           lambda v, m, weight: RestLimiter(weight, 60.0, fraction=1.0),
                           make_trading_driver, settings=settings)
    trader.start()
    deadline = time.monotonic() + 30
    while not trader.sessions[VENUE].ws_ready() and time.monotonic() < deadline:
        time.sleep(0.05)  # orders over the socket only once it is logged in and caught up
    return stop_venue, trader


def run(args: list[str]) -> Iterator[dict]:
    parser = argparse.ArgumentParser(prog="bench.py trader (okx)")
    parser.add_argument("--okx-wire-actions", type=int, default=400,
                        help="decision_to_wire samples on OKX, half REST, half WebSocket")
    options, _ = parser.parse_known_args(args)
    stamps = bench_trader.install_wire_stamps("/api/v5/trade/order", '"op":"order"')
    with tempfile.TemporaryDirectory(prefix="bench_trader_okx_") as tmp:
        stop_venue, trader = start(Path(tmp), options.okx_wire_actions)
        try:
            yield from bench_trader.wire_latency(trader, options.okx_wire_actions, RATE, stamps,
                                                 venue=VENUE, prefix="okx_")
            yield bench_trader.row("okx_sent_over_ws",
                                   trader.sessions[VENUE].calls_by_transport["ws"], "requests")
        finally:
            trader.stop(5.0)
            stop_venue()


if __name__ == "__main__":
    import orjson

    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

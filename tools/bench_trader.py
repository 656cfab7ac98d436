"""Trader benchmark: the executor's order rate against the local venue.

Run: python tools/bench.py trader [--actions N] [--rate R] [--burst B]
     [--latency-actions N]   (or python tools/bench_trader.py ...)

A flood of N place actions (default 10,000) is submitted at once to a
TraderService (SQLite task DB, intents committed before each send) trading
on a local venue over real sockets; the venue itself allows exactly R orders
per second (orders_per_10s = 10 R), so a burst past the limit would come back
as -1015 rejections. Send times are the moments the executor spends each
order token, right before the request is written.

Metrics:
  rate_limit_utilisation  achieved rate / R, the achieved rate being N sends over
                          (last send - first send + 1/R): each send holds 1/R of
                          the limit, so evenly spaced sends at exactly R give 1.0
  rate_limit_violations   1 s windows [t, t + 1 s) starting at a send that hold
                          more than R sends (target 0)
  venue_rate_rejections   -1015 answers from the venue (target 0)
  flood_orders_acknowledged, flood_seconds
  submit_to_wire_p50_ms / _p99_ms  one action at a time (no queue): submit()
                          to the order token, i.e. the executor's own share of
                          decision_to_wire (which the strategy pool measures)
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

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from engine import config as config_mod
from engine.feed.limiter import RestLimiter
from engine.model import Market, Side
from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.trade.actions import ActionResult, Outcome, PlaceOrder, make_client_order_id
from engine.trade.service import TraderService
from engine.trade.settings import RiskConfig, TraderConfig
from engine.venues import make_trading_driver

KEY_ENV, SECRET_ENV = "BENCH_TRADER_KEY", "BENCH_TRADER_SECRET"


def row(metric: str, value: float, unit: str) -> dict:
    return {"bench": "trader", "metric": metric, "value": round(value, 4), "unit": unit}


def _venue_process(data_dir: str, rate: float, balance: str, urls: mp.Queue,
                   stop: mp.Event) -> None:  # type: ignore[valid-type]
    """The local venue in its own process, as in production: its threads do
    not compete with the executor for this process's GIL."""
    account = account_config("bench", {"USDT": balance, "BTC": "10"})
    venue = LocalVenue(venue_config(accounts=[account], market="none"), Path(data_dir),
                       limits=Limits(orders_per_10s=int(rate * 10), orders_per_day=10_000_000))
    venue.start()
    urls.put((venue.rest_url, venue.ws_url))
    stop.wait()
    venue.stop()


def start(data_dir: Path, rate: float, burst: int, actions: int
          ) -> tuple[Callable[[], None], TraderService]:
    context = mp.get_context("spawn")
    urls: mp.Queue = context.Queue()
    stop = context.Event()
    process = context.Process(target=_venue_process, daemon=True, args=(
        str(data_dir / "venue"), rate, str(20 * (actions + 1000)), urls, stop))
    process.start()
    rest_url, ws_url = urls.get(timeout=60)

    def stop_venue() -> None:
        stop.set()
        process.join(10)

    os.environ[KEY_ENV], os.environ[SECRET_ENV] = "bench-key", "bench-secret"
    config = config_mod.parse({
        "daemon": {"data_dir": str(data_dir / "trader")},
        "exchanges": {"binance": {"spot": {"rest": rest_url, "ws": ws_url},
                                  "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}}})
    settings = TraderConfig(orders_per_s=rate, order_burst=burst, venues=("binance",),
                            pairs=("binance:BTC/USDT",),
                            risk=RiskConfig(max_open_orders=actions + 1000,
                                            max_order_notional="", error_burst=1000))
    trader = TraderService(config, "bench",
                           lambda v, m, weight: RestLimiter(weight, 60.0, fraction=1.0),
                           make_trading_driver, settings=settings)
    trader.start()
    return stop_venue, trader


def orders(count: int, strategy: str, venue: str = "binance") -> list[PlaceOrder]:
    """Resting buys far below any price (no market here), 10 USDT each."""
    return [PlaceOrder(make_client_order_id(strategy, i, 0), venue, Market.SPOT, "BTC/USDT",
                       Side.BUY, Decimal(10000) + Decimal(i % 5000) / 100, Decimal("0.001"),
                       post_only=True, strategy_id=strategy, slot_id=i) for i in range(count)]


def flood(trader: TraderService, count: int, rate: float) -> Iterator[dict]:
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
    trader.executor.submit_many(orders(count, "flood"))
    done.wait(count / rate * 2 + 60)
    elapsed = time.monotonic() - started
    stamps.sort()
    span = stamps[-1] - stamps[0] if stamps else 0.0
    limit = int(rate)
    violations, j = 0, 0
    for i, t in enumerate(stamps):  # windows [t, t + 1 s) starting at each send
        while j < len(stamps) and stamps[j] < t + 1.0:
            j += 1
        violations += (j - i) > limit
    rejected_by_rate = sum(1 for r in results if r.code == -1015)
    yield row("rate_limit_utilisation", len(stamps) / (rate * span + 1.0), "ratio")
    yield row("rate_limit_violations", violations, "windows")
    yield row("venue_rate_rejections", rejected_by_rate, "orders")
    yield row("flood_orders_acknowledged",
              sum(1 for r in results if r.outcome == Outcome.ACKNOWLEDGED), "orders")
    yield row("flood_actions", count, "actions")
    yield row("flood_seconds", elapsed, "s")
    trader.executor.on_wire = None


def latency(trader: TraderService, count: int, rate: float) -> Iterator[dict]:
    assert trader.executor is not None
    submitted: dict[str, float] = {}
    delays: list[float] = []
    trader.executor.on_wire = lambda action, mono: delays.append(
        mono - submitted[action.client_order_id])
    time.sleep(1.5)  # let the flood's last 1 s window pass: no order waits for a token
    for order in orders(count, "lat"):
        time.sleep(max(1.5 / rate, 0.05))  # tokens always available: no queueing
        submitted[order.client_order_id] = time.monotonic()
        trader.executor.submit(order)
    deadline = time.monotonic() + 30
    while len(delays) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    trader.executor.on_wire = None
    delays.sort()
    if delays:
        yield row("submit_to_wire_p50_ms", delays[len(delays) // 2] * 1000, "ms")
        yield row("submit_to_wire_p99_ms", delays[min(len(delays) - 1,
                                                      int(len(delays) * 0.99))] * 1000, "ms")


def install_wire_stamps(rest_path: str = "/api/v3/order", ws_operation: str = '"order.place"'
                        ) -> list[tuple[str, float]]:
    """Record the moment each new-order request has been written to its socket
    (after the last byte is handed to the kernel): urllib3's request() for REST
    (requests keeps the connection alive), websocket-client's send() for the
    WebSocket API. ``rest_path`` / ``ws_operation``: the venue's new-order call
    (Binance by default). Bench-only instrumentation, in this process."""
    import urllib3.connection
    import websocket

    stamps: list[tuple[str, float]] = []
    rest_request = urllib3.connection.HTTPConnection.request
    ws_send = websocket.WebSocket.send

    def request(self, method, url, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = rest_request(self, method, url, *args, **kwargs)
        if method == "POST" and url.split("?", 1)[0].endswith(rest_path):
            stamps.append(("rest", time.monotonic()))
        return result

    def send(self, payload, *args, **kwargs):  # type: ignore[no-untyped-def]
        result = ws_send(self, payload, *args, **kwargs)
        if ws_operation in (payload if isinstance(payload, str) else ""):
            stamps.append(("ws", time.monotonic()))
        return result

    urllib3.connection.HTTPConnection.request = request  # type: ignore[method-assign]
    websocket.WebSocket.send = send  # type: ignore[method-assign]
    return stamps


def wire_latency(trader: TraderService, count: int, rate: float,
                 stamps: list[tuple[str, float]], venue: str = "binance",
                 prefix: str = "") -> Iterator[dict]:
    """decision_to_wire over REST and over the WebSocket API, interleaved one
    order each in the same run: from the decision (``submit``) to the request
    written to its socket. Orders go one at a time, tokens always available.
    ``venue``: the trader venue; ``prefix`` goes before each metric name."""
    assert trader.executor is not None
    session = trader.sessions[venue]
    results: list[ActionResult] = []
    trader.executor.on_result(results.append)
    delays: dict[str, list[float]] = {"rest": [], "ws": []}
    time.sleep(1.5)  # the last 1 s window of earlier sends has passed
    for i, order in enumerate(orders(count, "wire", venue)):
        transport = "ws" if i % 2 else "rest"
        session.use_ws_api = transport == "ws"
        time.sleep(max(1.2 / rate, 0.05))
        before, settled = len(stamps), len(results)
        decided = time.monotonic()
        trader.executor.submit(order)
        deadline = time.monotonic() + 10
        while len(results) == settled and time.monotonic() < deadline:
            time.sleep(0.001)
        sent = [t for kind, t in stamps[before:] if kind == transport]
        if sent:
            delays[transport].append(sent[0] - decided)
    session.use_ws_api = True
    for transport, name in (("rest", "rest"), ("ws", "ws_api")):
        values = sorted(delays[transport])
        if values:
            yield row(f"{prefix}decision_to_wire_{name}_p50_ms", values[len(values) // 2] * 1000,
                      "ms")
            yield row(f"{prefix}decision_to_wire_{name}_p99_ms",
                      values[min(len(values) - 1, int(len(values) * 0.99))] * 1000, "ms")
            yield row(f"{prefix}decision_to_wire_{name}_samples", len(values), "orders")
    if delays["rest"] and delays["ws"]:
        rest_p99 = sorted(delays["rest"])[min(len(delays["rest"]) - 1,
                                              int(len(delays["rest"]) * 0.99))]
        ws_p99 = sorted(delays["ws"])[min(len(delays["ws"]) - 1, int(len(delays["ws"]) * 0.99))]
        yield row(f"{prefix}decision_to_wire_ws_over_rest_p99", ws_p99 / rest_p99, "ratio")


def run(args: list[str]) -> Iterator[dict]:
    parser = argparse.ArgumentParser(prog="bench.py trader")
    parser.add_argument("--actions", type=int, default=10_000, help="flood size (quick: 1000)")
    parser.add_argument("--rate", type=float, default=25.0, help="orders per second per venue")
    parser.add_argument("--burst", type=int, default=TraderConfig.order_burst)
    parser.add_argument("--latency-actions", type=int, default=200)
    parser.add_argument("--wire-actions", type=int, default=400,
                        help="decision_to_wire samples, half over REST, half over the WS API")
    options = parser.parse_args(args)
    stamps = install_wire_stamps()
    with tempfile.TemporaryDirectory(prefix="bench_trader_") as tmp:
        stop_venue, trader = start(Path(tmp), options.rate, options.burst,
                                   options.actions + options.latency_actions
                                   + options.wire_actions)
        try:
            yield row("orders_per_s_limit", options.rate, "orders/s")
            yield from flood(trader, options.actions, options.rate)
            if options.latency_actions:
                yield from latency(trader, options.latency_actions, options.rate)
            if options.wire_actions:
                yield from wire_latency(trader, options.wire_actions, options.rate, stamps)
        finally:
            trader.stop(5.0)
            stop_venue()


if __name__ == "__main__":
    import orjson

    for result in run(sys.argv[1:]):
        print(orjson.dumps(result).decode(), flush=True)

"""The venue-fault and SIGKILL suites over futures: the trader on
``binance_futures`` against the local venue's USD-M dialect through the fault
proxy (real sockets). Every send ends acknowledged, rejected or looked up, no
retry duplicates an order, a dropped user stream loses no fill, and a trader
process killed mid-send or mid-fill restarts with no duplicate, no orphan and
every fill recorded once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.model import Side
from engine.sim.server import LocalVenue
from engine.trade.actions import ActionResult, Outcome
from engine.trade.service import TraderService
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.fault_proxy import (
    FORWARD_THEN_HANG,
    FORWARD_THEN_RESPOND,
    HOLD_THEN_FORWARD,
    RESPOND,
    Fault,
    FaultProxy,
    on,
)
from tests.trade.futures_rig import (
    FUTURES,
    PAIR,
    VENUE,
    client,
    futures_open_orders,
    futures_orders,
    market_order,
    place,
    start_venue,
    trader_config,
    venue_trades,
)
from tests.trade.rig import KEY_ENV, SECRET_ENV, make_service

ROOT = Path(__file__).resolve().parents[2]
NEW_ORDER = on("POST", "/fapi/v1/order")
GRID = 10


@pytest.fixture
def fvenue(tmp_path: Path) -> Iterator[LocalVenue]:
    venue = start_venue(tmp_path / "venue")
    alice = venue.config.accounts[0]
    os.environ[KEY_ENV], os.environ[SECRET_ENV] = alice.api_key, alice.api_secret
    yield venue
    venue.stop()


@pytest.fixture
def fproxy(fvenue: LocalVenue) -> Iterator[FaultProxy]:
    assert fvenue.usdm is not None
    proxy = FaultProxy(fvenue.usdm.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def falice(fvenue: LocalVenue) -> BinanceClient:
    return client(fvenue, fvenue.config.accounts[0])


@pytest.fixture
def fbob(fvenue: LocalVenue) -> BinanceClient:
    return client(fvenue, fvenue.config.accounts[1])


@pytest.fixture
def fstart(tmp_path: Path, fproxy: FaultProxy) -> Iterator[Callable[..., TraderService]]:
    started: list[TraderService] = []

    def start(direct: bool = False, **changes: Any) -> TraderService:
        host, port = fproxy.upstream
        rest = f"http://{host}:{port}" if direct else fproxy.url
        ws = f"ws://{host}:{port}" if direct else fproxy.ws_url
        service = make_service(trader_config(tmp_path / "trader", rest, ws), FUTURES, **changes)
        service.start()
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop(3.0)


def collect(service: TraderService) -> dict[str, ActionResult]:
    results: dict[str, ActionResult] = {}
    assert service.executor is not None
    service.executor.on_result(lambda r: results.__setitem__(r.action.client_order_id, r))
    return results


def settled(results: dict[str, ActionResult], cid: str, timeout: float = 20.0) -> ActionResult:
    return eventually(lambda: results.get(cid), timeout=timeout)


# ------------------------------------------------------------- venue faults


def test_timeout_after_acceptance_is_looked_up_not_resent(
        fstart: Callable[..., TraderService], fproxy: FaultProxy, falice: BinanceClient):
    trader = fstart()
    results = collect(trader)
    fproxy.add(Fault(NEW_ORDER, FORWARD_THEN_HANG, delay_s=2.0))  # client times out at 1 s
    order = place(1, Side.BUY, "29000")
    trader.executor.submit(order)
    assert settled(results, order.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert fproxy.count("POST", "/fapi/v1/order") == 1
    assert len(futures_orders(falice)) == 1
    assert trader.store.get(VENUE, order.client_order_id).state == "open"


def test_5xx_after_acceptance_is_looked_up_not_resent(
        fstart: Callable[..., TraderService], fproxy: FaultProxy, falice: BinanceClient):
    trader = fstart()
    results = collect(trader)
    fproxy.add(Fault(NEW_ORDER, FORWARD_THEN_RESPOND, status=502, body=b"<html>bad gateway"))
    fproxy.add(Fault(NEW_ORDER, FORWARD_THEN_RESPOND, status=503,
                     body=b'{"code":-1000,"msg":"Unknown error, please check your request '
                          b'or try again later."}'))
    first, second = place(1, Side.BUY, "29000"), place(2, Side.BUY, "28900")
    trader.executor.submit_many([first, second])
    assert settled(results, first.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert settled(results, second.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert sorted(o["clientOrderId"] for o in futures_orders(falice)) == \
        sorted([first.client_order_id, second.client_order_id])


def test_503_service_unavailable_was_not_executed_and_is_resent_without_lookup(
        fstart: Callable[..., TraderService], fproxy: FaultProxy, falice: BinanceClient):
    """USD-M documents 503 "Service Unavailable." as not executed: a plain retry."""
    trader = fstart()
    results = collect(trader)
    fproxy.add(Fault(NEW_ORDER, RESPOND, status=503,
                     body=b'{"code":-1001,"msg":"Service Unavailable."}'))
    order = place(1, Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert fproxy.count("GET", "/fapi/v1/order") == 0
    assert len(futures_orders(falice)) == 1


def test_5xx_before_the_venue_saw_it_is_resent_once_after_proof(
        fstart: Callable[..., TraderService], fproxy: FaultProxy, falice: BinanceClient):
    trader = fstart()
    results = collect(trader)
    fproxy.add(Fault(NEW_ORDER, RESPOND, status=500))
    order = place(1, Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id, timeout=30.0)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert fproxy.count("POST", "/fapi/v1/order") == 2
    assert len(futures_orders(falice)) == 1


def test_429_waits_retry_after_and_resends_without_lookup(
        fstart: Callable[..., TraderService], fproxy: FaultProxy, falice: BinanceClient):
    trader = fstart()
    results = collect(trader)
    fproxy.add(Fault(NEW_ORDER, RESPOND, status=429, headers={"Retry-After": "1"},
                     body=b'{"code":-1003,"msg":"Too many requests."}'))
    order = place(1, Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert fproxy.count("GET", "/fapi/v1/order") == 0
    assert len(futures_orders(falice)) == 1


def test_user_stream_dropped_during_fills_loses_none(
        fstart: Callable[..., TraderService], fproxy: FaultProxy, fbob: BinanceClient):
    trader = fstart()
    results = collect(trader)
    grid = [place(i + 1, Side.BUY, str(29000 - i), "0.01") for i in range(5)]
    trader.executor.submit_many(grid)
    for order in grid:
        settled(results, order.client_order_id)
    stream = trader.streams[0]
    fproxy.drop_streams(refuse_for_s=1.5)
    eventually(lambda: not stream.connected.is_set())
    blocked = trader.risk.check_place(place(9, Side.BUY, "1000"))
    assert blocked is not None and "disconnected" in blocked
    market_order(fbob, "SELL", "0.05")  # fills all five while the stream is down
    eventually(lambda: stream.caught_up.is_set() and stream.connects >= 2, timeout=30)
    for order in grid:
        assert trader.store.get(VENUE, order.client_order_id).state == "filled"
    assert trader.db.query("SELECT COUNT(*) FROM TRADER_FILLS") == [(5,)]
    assert trader.positions.position(VENUE, PAIR).quantity == Decimal("0.05")
    assert trader.risk.check_place(place(9, Side.BUY, "1000")) is None


# ----------------------------------------------------------------- SIGKILL


def nth_new_order(n: int) -> Callable[[str, str], bool]:
    seen = [0]

    def match(method: str, path: str) -> bool:
        if method == "POST" and path == "/fapi/v1/order":
            seen[0] += 1
            return seen[0] == n
        return False
    return match


@pytest.fixture
def spawn(tmp_path: Path, fproxy: FaultProxy) -> Iterator[Callable[[], subprocess.Popen]]:
    children: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(tmp_path / f"child{len(children)}.log", "wb")  # noqa: SIM115 - closed by the OS
        child = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/trade/crash_child_futures.py"),
             str(tmp_path / "trader"), fproxy.url, fproxy.ws_url, str(GRID)],
            stdout=subprocess.PIPE, stderr=log, cwd=ROOT, env=os.environ.copy())
        children.append(child)
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"READY", (tmp_path / "child0.log").read_text()
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(10)


def kill(child: subprocess.Popen) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)


def replay_and_check(trader: TraderService, alice: BinanceClient) -> None:
    """The strategy replays its intents (same ids): exactly one order per id on
    the venue, and every open order of ours known to the DB as live."""
    results: list[ActionResult] = []
    assert trader.executor is not None
    trader.executor.on_result(results.append)
    trader.executor.submit_many([place(i + 1, Side.BUY, str(29000 - i), "0.01")
                                 for i in range(GRID)])
    eventually(lambda: len(results) == GRID, timeout=30)
    eventually(trader.executor.idle)
    ids = [o["clientOrderId"] for o in futures_orders(alice)]
    assert len(ids) == GRID and len(set(ids)) == GRID, ids
    open_ids = {o["clientOrderId"] for o in futures_open_orders(alice)}
    assert open_ids == {r.client_order_id for r in trader.store.live_orders(VENUE)}


def test_sigkill_while_an_accepted_order_awaits_its_answer(
        spawn: Callable[[], subprocess.Popen], fproxy: FaultProxy, falice: BinanceClient,
        fstart: Callable[..., TraderService]):
    fproxy.add(Fault(nth_new_order(5), FORWARD_THEN_HANG, delay_s=60))
    child = spawn()
    fproxy.hold_streams(True)  # only REST answers reach the child: order 5 stays an intent
    eventually(lambda: len(futures_orders(falice)) == 5, timeout=20)
    eventually(lambda: fproxy.count("POST", "/fapi/v1/order") == 5)
    kill(child)
    trader = fstart(direct=True)
    report = trader.reports[VENUE]
    assert report.ok and sorted(d.kind for d in report.differences) == ["adopted"], report.text()
    assert trader.status()["futures"][VENUE]["position_drift"] == []
    replay_and_check(trader, falice)


def test_sigkill_while_a_request_is_still_on_its_way(
        spawn: Callable[[], subprocess.Popen], fproxy: FaultProxy, falice: BinanceClient,
        fstart: Callable[..., TraderService]):
    fproxy.add(Fault(nth_new_order(3), HOLD_THEN_FORWARD, delay_s=2.0))
    child = spawn()
    eventually(lambda: fproxy.count("POST", "/fapi/v1/order") == 3, timeout=20)
    kill(child)
    trader = fstart(direct=True)
    report = trader.reports[VENUE]
    assert report.ok and [d.kind for d in report.differences] == ["adopted"], report.text()
    replay_and_check(trader, falice)


def test_sigkill_mid_fill_loses_no_fill_and_counts_none_twice(
        spawn: Callable[[], subprocess.Popen], falice: BinanceClient, fbob: BinanceClient,
        fstart: Callable[..., TraderService], tmp_path: Path):
    child = spawn()
    assert child.stdout is not None and child.stdout.readline().strip() == b"SUBMITTED"
    eventually(lambda: len(futures_open_orders(falice)) == GRID, timeout=20)
    market_order(fbob, "SELL", "0.03")
    db_path = tmp_path / "trader" / "tasks.sqlite"
    eventually(lambda: sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM TRADER_FILLS").fetchone()[0] == 3, timeout=20)
    market_order(fbob, "SELL", "0.03")
    kill(child)  # the second batch of fills is in flight
    trader = fstart(direct=True)
    assert trader.reports[VENUE].ok, trader.reports[VENUE].text()
    assert len(venue_trades(falice)) == 6
    assert trader.db.query("SELECT COUNT(*) FROM TRADER_FILLS") == [(6,)]
    states = sorted(r[0] for r in trader.db.query("SELECT STATE FROM TRADER_ORDERS"))
    assert states == ["filled"] * 6 + ["open"] * 4
    assert trader.positions.position(VENUE, PAIR).quantity == Decimal("0.06")
    assert trader.status()["futures"][VENUE]["position_drift"] == []
    replay_and_check(trader, falice)

"""The venue-fault and SIGKILL suites on Bybit linear: the trader on
``bybit_futures`` (REST orders) against the local venue's Bybit dialect through
the fault proxy (real sockets; the private stream and trade socket piped raw).
Every send ends acknowledged, rejected or looked up by orderLinkId, no retry
duplicates an order, a dropped private stream loses no fill, and a trader
process killed mid-send or mid-fill restarts with no duplicate, no orphan and
every fill recorded once. Rigs: fault_proxy.py, bybit_rig.py, and the futures
suite's kill / spawn pattern (test_futures_faults.py)."""

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
from tests.support.eventually import eventually
from tests.trade.bybit_rig import (
    LINEAR_REST,
    LINEAR_VENUE,
    PAIR,
    SYMBOL,
    BybitClient,
    client,
    place,
    start_venue,
    trader_config,
    use_keys,
)
from tests.trade.fault_proxy import (
    FORWARD_THEN_HANG,
    FORWARD_THEN_RESPOND,
    HOLD_THEN_FORWARD,
    RESPOND,
    Fault,
    FaultProxy,
    on,
)
from tests.trade.rig import make_service

ROOT = Path(__file__).resolve().parents[2]
CREATE = "/v5/order/create"
NEW_ORDER = on("POST", CREATE)
GRID = 10


def order(slot: int, price: str, quantity: str = "0.01") -> Any:
    return place(slot, Side.BUY, price, quantity, venue=LINEAR_VENUE)


@pytest.fixture
def bvenue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalVenue]:
    venue = start_venue(tmp_path / "venue")
    use_keys(monkeypatch, venue)
    yield venue
    venue.stop()


@pytest.fixture
def bproxy(bvenue: LocalVenue) -> Iterator[FaultProxy]:
    assert bvenue.bybit is not None
    proxy = FaultProxy(bvenue.bybit.url)
    yield proxy
    proxy.stop()


@pytest.fixture
def alice(bvenue: LocalVenue) -> BybitClient:
    return client(bvenue)


@pytest.fixture
def bob(bvenue: LocalVenue) -> BybitClient:
    return client(bvenue, "bob")


@pytest.fixture
def bstart(tmp_path: Path, bproxy: FaultProxy) -> Iterator[Callable[..., TraderService]]:
    started: list[TraderService] = []

    def start(direct: bool = False, **changes: Any) -> TraderService:
        host, port = bproxy.upstream
        rest = f"http://{host}:{port}" if direct else bproxy.url
        ws = f"ws://{host}:{port}" if direct else bproxy.ws_url
        service = make_service(trader_config(tmp_path / "trader", rest, ws), LINEAR_REST,
                               **changes)
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


def venue_orders(c: BybitClient) -> list[dict]:
    """Every order of the account on BTCUSDT, open and closed (the venue's own record)."""
    rows = c.call("GET", "/v5/order/realtime", category="linear", symbol=SYMBOL, openOnly="0",
                  limit=50)["list"]
    history = c.call("GET", "/v5/order/history", category="linear", symbol=SYMBOL,
                     limit=50)["list"]
    return list({r["orderId"]: r for r in rows + history}.values())


def open_orders(c: BybitClient) -> list[dict]:
    return [r for r in venue_orders(c) if r["orderStatus"] in ("New", "PartiallyFilled")]


def market_sell(c: BybitClient, quantity: str) -> None:
    c.call("POST", CREATE, category="linear", symbol=SYMBOL, side="Sell", orderType="Market",
           qty=quantity)


def trades(c: BybitClient) -> list[dict]:
    return [r for r in c.executions("linear") if r.get("execType", "Trade") == "Trade"]


# ------------------------------------------------------------- venue faults


def test_timeout_after_acceptance_is_looked_up_not_resent(
        bstart: Callable[..., TraderService], bproxy: FaultProxy, alice: BybitClient):
    trader = bstart()
    results = collect(trader)
    bproxy.add(Fault(NEW_ORDER, FORWARD_THEN_HANG, delay_s=2.0))  # client times out at 1 s
    sent = order(1, "29000")
    trader.executor.submit(sent)
    assert settled(results, sent.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert bproxy.count("POST", CREATE) == 1
    # uncertain, then settled by the lookup or by the private stream: never re-sent
    assert trader.executor.dispatch.counts["unknown"] >= 1
    assert [o["orderLinkId"] for o in venue_orders(alice)] == [sent.client_order_id]
    eventually(lambda: trader.store.get(LINEAR_VENUE, sent.client_order_id).state == "open")


def test_5xx_after_acceptance_is_looked_up_not_resent(
        bstart: Callable[..., TraderService], bproxy: FaultProxy, alice: BybitClient):
    trader = bstart()
    results = collect(trader)
    bproxy.add(Fault(NEW_ORDER, FORWARD_THEN_RESPOND, status=502, body=b"<html>bad gateway"))
    bproxy.add(Fault(NEW_ORDER, FORWARD_THEN_RESPOND, status=200,
                     body=b'{"retCode":10016,"retMsg":"Server error.","result":{},'
                          b'"retExtInfo":{},"time":1}'))
    first, second = order(1, "29000"), order(2, "28900")
    trader.executor.submit_many([first, second])
    assert settled(results, first.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert settled(results, second.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert bproxy.count("POST", CREATE) == 2
    assert sorted(o["orderLinkId"] for o in venue_orders(alice)) == \
        sorted([first.client_order_id, second.client_order_id])


def test_5xx_before_the_venue_saw_it_is_resent_once_after_proof(
        bstart: Callable[..., TraderService], bproxy: FaultProxy, alice: BybitClient):
    trader = bstart()
    results = collect(trader)
    bproxy.add(Fault(NEW_ORDER, RESPOND, status=500, body=b"internal error"))
    sent = order(1, "29000")
    trader.executor.submit(sent)
    result = settled(results, sent.client_order_id, timeout=30.0)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert bproxy.count("POST", CREATE) == 2
    assert len(venue_orders(alice)) == 1


@pytest.mark.parametrize(("status", "body"), [
    (200, b'{"retCode":10006,"retMsg":"Too many visits!","result":{},"time":1}'),
    (403, b"access too frequent"),
], ids=["10006", "403"])
def test_rate_limit_is_resent_without_lookup(
        bstart: Callable[..., TraderService], bproxy: FaultProxy, alice: BybitClient,
        status: int, body: bytes):
    trader = bstart(retry_budget_s=700.0) if status == 403 else bstart()
    results = collect(trader)
    bproxy.add(Fault(NEW_ORDER, RESPOND, status=status, body=body,
                     headers={"X-Bapi-Limit": "10", "X-Bapi-Limit-Status": "0",
                              "X-Bapi-Limit-Reset-Timestamp": "1"}))
    sent = order(1, "29000")
    trader.executor.submit(sent)
    if status == 403:  # an IP ban: nothing goes for 10 minutes; the order waits, unsent
        eventually(lambda: bproxy.count("POST", CREATE) == 1)
        eventually(lambda: trader.store.get(LINEAR_VENUE, sent.client_order_id).state ==
                   "absent")  # "not processed": nothing to look up
        assert sent.client_order_id not in results  # waiting out the ban, not given up
        assert venue_orders(alice) == []
        return
    result = settled(results, sent.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert trader.executor.dispatch.counts["lookups"] == 0  # "not processed": no lookup
    assert len(venue_orders(alice)) == 1


def test_private_stream_dropped_during_fills_loses_none(
        bstart: Callable[..., TraderService], bproxy: FaultProxy, bob: BybitClient):
    trader = bstart()
    results = collect(trader)
    grid = [order(i + 1, str(29000 - i)) for i in range(5)]
    trader.executor.submit_many(grid)
    for sent in grid:
        settled(results, sent.client_order_id)
    stream = trader.streams[0]
    bproxy.drop_streams(refuse_for_s=1.5)
    eventually(lambda: not stream.connected.is_set())
    blocked = trader.risk.check_place(order(9, "1000"))
    assert blocked is not None and "disconnected" in blocked
    market_sell(bob, "0.05")  # fills all five while the stream is down
    eventually(lambda: stream.caught_up.is_set() and stream.connects >= 2, timeout=30)
    for sent in grid:
        eventually(lambda s=sent: trader.store.get(LINEAR_VENUE, s.client_order_id).state ==
                   "filled")
    assert trader.db.query("SELECT COUNT(*) FROM TRADER_FILLS") == [(5,)]
    assert trader.positions.position(LINEAR_VENUE, PAIR).quantity == Decimal("0.05")
    assert trader.risk.check_place(order(9, "1000")) is None


# ----------------------------------------------------------------- SIGKILL


def nth_new_order(n: int) -> Callable[[str, str], bool]:
    seen = [0]

    def match(method: str, path: str) -> bool:
        if method == "POST" and path == CREATE:
            seen[0] += 1
            return seen[0] == n
        return False
    return match


@pytest.fixture
def spawn(tmp_path: Path, bproxy: FaultProxy) -> Iterator[Callable[[], subprocess.Popen]]:
    children: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(tmp_path / f"child{len(children)}.log", "wb")  # noqa: SIM115 - closed by the OS
        child = subprocess.Popen(
            [sys.executable, str(ROOT / "tests/trade/crash_child_bybit.py"),
             str(tmp_path / "trader"), bproxy.url, bproxy.ws_url, str(GRID)],
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


def replay_and_check(trader: TraderService, alice: BybitClient) -> None:
    """The strategy replays its intents (same ids): exactly one order per
    orderLinkId on the venue, and every open order of ours known to the DB as live."""
    results: list[ActionResult] = []
    assert trader.executor is not None
    trader.executor.on_result(results.append)
    trader.executor.submit_many([order(i + 1, str(29000 - i)) for i in range(GRID)])
    eventually(lambda: len(results) == GRID, timeout=30)
    eventually(trader.executor.idle)
    ids = [o["orderLinkId"] for o in venue_orders(alice)]
    assert len(ids) == GRID and len(set(ids)) == GRID, ids
    live = {o["orderLinkId"] for o in open_orders(alice)}
    assert live == {r.client_order_id for r in trader.store.live_orders(LINEAR_VENUE)}


def test_sigkill_while_an_accepted_order_awaits_its_answer(
        spawn: Callable[[], subprocess.Popen], bproxy: FaultProxy, alice: BybitClient,
        bstart: Callable[..., TraderService]):
    bproxy.add(Fault(nth_new_order(5), FORWARD_THEN_HANG, delay_s=60))
    child = spawn()
    bproxy.hold_streams(True)  # only REST answers reach the child: order 5 stays an intent
    eventually(lambda: len(venue_orders(alice)) == 5, timeout=20)
    eventually(lambda: bproxy.count("POST", CREATE) == 5)
    kill(child)
    trader = bstart(direct=True)
    report = trader.reports[LINEAR_VENUE]
    assert report.ok and sorted(d.kind for d in report.differences) == ["adopted"], report.text()
    replay_and_check(trader, alice)


def test_sigkill_while_a_request_is_still_on_its_way(
        spawn: Callable[[], subprocess.Popen], bproxy: FaultProxy, alice: BybitClient,
        bstart: Callable[..., TraderService]):
    bproxy.add(Fault(nth_new_order(3), HOLD_THEN_FORWARD, delay_s=2.0))
    child = spawn()
    eventually(lambda: bproxy.count("POST", CREATE) == 3, timeout=20)
    kill(child)
    trader = bstart(direct=True)
    report = trader.reports[LINEAR_VENUE]
    assert report.ok and [d.kind for d in report.differences] == ["adopted"], report.text()
    replay_and_check(trader, alice)


def test_sigkill_mid_fill_loses_no_fill_and_counts_none_twice(
        spawn: Callable[[], subprocess.Popen], alice: BybitClient, bob: BybitClient,
        bstart: Callable[..., TraderService], tmp_path: Path):
    child = spawn()
    assert child.stdout is not None and child.stdout.readline().strip() == b"SUBMITTED"
    eventually(lambda: len(open_orders(alice)) == GRID, timeout=20)
    market_sell(bob, "0.03")
    db_path = tmp_path / "trader" / "tasks.sqlite"
    eventually(lambda: sqlite3.connect(db_path).execute(
        "SELECT COUNT(*) FROM TRADER_FILLS").fetchone()[0] == 3, timeout=20)
    market_sell(bob, "0.03")
    kill(child)  # the second batch of fills is in flight
    trader = bstart(direct=True)
    assert trader.reports[LINEAR_VENUE].ok, trader.reports[LINEAR_VENUE].text()
    assert len(trades(alice)) == 6
    assert trader.db.query("SELECT COUNT(*) FROM TRADER_FILLS") == [(6,)]
    states = sorted(r[0] for r in trader.db.query("SELECT STATE FROM TRADER_ORDERS"))
    assert states == ["filled"] * 6 + ["open"] * 4
    assert trader.positions.position(LINEAR_VENUE, PAIR).quantity == Decimal("0.06")
    replay_and_check(trader, alice)

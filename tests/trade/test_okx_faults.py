"""The venue-fault and SIGKILL suites on OKX spot: the trader on ``okx``
against the local venue's OKX dialect through the fault proxy (real sockets;
orders over REST, where the proxy's faults apply). Every send ends
acknowledged, rejected or looked up by clOrdId, no retry duplicates an order,
a crossing post-only order ends without a fill, a dropped private socket
loses no fill, and a trader killed while an accepted order awaits its answer
restarts with no duplicate and no orphan."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine import config as config_mod
from engine.model import Market, Side
from engine.sim.server import LocalVenue
from engine.trade.actions import ActionResult, Outcome, PlaceOrder, make_client_order_id
from engine.trade.service import TraderService
from engine.venues.okx_trade_wire import our_client_id
from tests.sim.okx_client import OkxClient, okx_key
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
from tests.trade.okx_rig import KEY_ENV, PASSPHRASE_ENV, SECRET_ENV, okx_venue, use_keys
from tests.trade.rig import FAST, make_service

ROOT = Path(__file__).resolve().parents[2]
PLACE_PATH = "/api/v5/trade/order"
NEW_ORDER = on("POST", PLACE_PATH)
SETTINGS = dataclasses.replace(FAST, venues=("okx",), pairs=("okx:BTC/USDT",),
                               order_transport="rest")
GRID = 5


def trader_config(data_dir: Path, rest: str, ws: str) -> config_mod.Config:
    return config_mod.parse({
        "daemon": {"data_dir": str(data_dir), "id": "okx-faults"},
        "exchanges": {"okx": {"spot": {"rest": rest, "ws": f"{ws}/ws/v5/public"},
                              "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV,
                              "passphrase_env": PASSPHRASE_ENV}},
        "storage": {"tasks": {"backend": "sqlite", "path": "tasks.sqlite"}}})


def place(slot: int, side: Side, price: str, quantity: str = "0.01",
          post_only: bool = False) -> PlaceOrder:
    return PlaceOrder(make_client_order_id("t1", slot, 0), "okx", Market.SPOT, "BTC/USDT", side,
                      Decimal(price), Decimal(quantity), post_only=post_only, strategy_id="t1",
                      slot_id=slot)


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[LocalVenue]:
    v = okx_venue(tmp_path / "venue", market="none")
    use_keys(v)
    yield v
    v.stop()


@pytest.fixture
def proxy(venue: LocalVenue) -> Iterator[FaultProxy]:
    assert venue.okx is not None
    p = FaultProxy(venue.okx.url)
    yield p
    p.stop()


def okx(venue: LocalVenue, account: str) -> OkxClient:
    assert venue.okx is not None
    return OkxClient(venue.okx.url, okx_key(venue, account))


def our_orders(c: OkxClient) -> list[str]:
    """Every order of the account on BTC-USDT, open or done: our client ids."""
    rows = c.get("/api/v5/trade/orders-pending", instType="SPOT", instId="BTC-USDT").json()["data"]
    rows += c.get("/api/v5/trade/orders-history", instType="SPOT",
                  instId="BTC-USDT").json()["data"]
    return [our_client_id(r["clOrdId"]) for r in rows]


@pytest.fixture
def start(tmp_path: Path, proxy: FaultProxy) -> Iterator[Callable[..., TraderService]]:
    started: list[TraderService] = []

    def go(**changes: Any) -> TraderService:
        service = make_service(trader_config(tmp_path / "trader", proxy.url, proxy.ws_url),
                               SETTINGS, **changes)
        service.start()
        started.append(service)
        return service

    yield go
    for service in started:
        service.stop(3.0)


def collect(service: TraderService) -> dict[str, ActionResult]:
    results: dict[str, ActionResult] = {}
    assert service.executor is not None
    service.executor.on_result(lambda r: results.__setitem__(r.action.client_order_id, r))
    return results


def settled(results: dict[str, ActionResult], cid: str, timeout: float = 30.0) -> ActionResult:
    return eventually(lambda: results.get(cid), timeout=timeout)


# ------------------------------------------------------------- venue faults


def test_okx_timeout_after_acceptance_is_looked_up_not_resent(
        start: Callable[..., TraderService], proxy: FaultProxy, venue: LocalVenue):
    trader = start()
    results = collect(trader)
    proxy.add(Fault(NEW_ORDER, FORWARD_THEN_HANG, delay_s=2.0))  # client times out at 1 s
    order = place(1, Side.BUY, "29000")
    trader.executor.submit(order)
    assert settled(results, order.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert proxy.count("POST", PLACE_PATH) == 1
    # settled by the lookup by clOrdId or, sooner, by the private socket's push
    assert our_orders(okx(venue, "alice")) == [order.client_order_id]
    assert trader.store.get("okx", order.client_order_id).state == "open"


def test_okx_5xx_after_acceptance_is_looked_up_not_resent(
        start: Callable[..., TraderService], proxy: FaultProxy, venue: LocalVenue):
    trader = start()
    results = collect(trader)
    proxy.add(Fault(NEW_ORDER, FORWARD_THEN_RESPOND, status=502, body=b"<html>bad gateway"))
    proxy.add(Fault(NEW_ORDER, FORWARD_THEN_RESPOND, status=200,
                    body=b'{"code":"50004","msg":"API endpoint request timeout ","data":[]}'))
    first, second = place(1, Side.BUY, "29000"), place(2, Side.BUY, "28900")
    trader.executor.submit_many([first, second])
    assert settled(results, first.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert settled(results, second.client_order_id).outcome == Outcome.ACKNOWLEDGED
    assert proxy.count("POST", PLACE_PATH) == 2
    assert sorted(our_orders(okx(venue, "alice"))) == sorted([first.client_order_id,
                                                              second.client_order_id])


def test_okx_5xx_before_the_venue_saw_it_is_resent_once_after_proof(
        start: Callable[..., TraderService], proxy: FaultProxy, venue: LocalVenue):
    trader = start()
    results = collect(trader)
    proxy.add(Fault(NEW_ORDER, RESPOND, status=500, body=b"internal error"))
    order = place(1, Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id, timeout=40.0)
    assert result.outcome == Outcome.ACKNOWLEDGED and result.attempts == 2
    assert proxy.count("POST", PLACE_PATH) == 2
    assert our_orders(okx(venue, "alice")) == [order.client_order_id]


def test_okx_50011_429_resends_without_lookup(
        start: Callable[..., TraderService], proxy: FaultProxy, venue: LocalVenue):
    trader = start()
    results = collect(trader)
    proxy.add(Fault(NEW_ORDER, RESPOND, status=429,
                    body=b'{"code":"50011","msg":"Too Many Requests","data":[]}'))
    order = place(1, Side.BUY, "29000")
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.ACKNOWLEDGED
    assert proxy.count("POST", PLACE_PATH) == 2  # the 429, then once more after the pause
    assert proxy.count("GET", PLACE_PATH) == 0
    assert our_orders(okx(venue, "alice")) == [order.client_order_id]


def test_okx_definitive_rejection_is_not_retried(
        start: Callable[..., TraderService], proxy: FaultProxy):
    trader = start()
    results = collect(trader)
    order = place(1, Side.BUY, "29000", quantity="100000")  # far beyond alice's USDT
    trader.executor.submit(order)
    result = settled(results, order.client_order_id)
    assert result.outcome == Outcome.REJECTED and result.code == 51008, result
    assert proxy.count("POST", PLACE_PATH) == 1
    assert trader.store.get("okx", order.client_order_id).state == "rejected"


def test_okx_post_only_that_would_take_ends_unfilled(
        start: Callable[..., TraderService], venue: LocalVenue):
    """OKX accepts a crossing post-only order and cancels it (cancelSource 31):
    acknowledged, then ended by the venue with no fill."""
    ask = okx(venue, "bob").post(PLACE_PATH, {"instId": "BTC-USDT", "tdMode": "cash",
                                              "side": "sell", "ordType": "limit",
                                              "px": "30000", "sz": "0.01"}).json()
    assert ask["code"] == "0", ask
    trader = start()
    results = collect(trader)
    order = place(1, Side.BUY, "30001", post_only=True)
    trader.executor.submit(order)
    assert settled(results, order.client_order_id).outcome == Outcome.ACKNOWLEDGED
    eventually(lambda: trader.store.get("okx", order.client_order_id).state == "expired",
               timeout=20)
    assert trader.store.get("okx", order.client_order_id).filled in ("0", "0.0")
    assert trader.store.fills("okx") == []


def test_okx_private_socket_dropped_during_fills_loses_none(
        start: Callable[..., TraderService], proxy: FaultProxy, venue: LocalVenue):
    trader = start()
    results = collect(trader)
    grid = [place(i + 1, Side.BUY, str(29000 - i), "0.01") for i in range(GRID)]
    trader.executor.submit_many(grid)
    for order in grid:
        settled(results, order.client_order_id)
    stream = trader.streams[0]
    proxy.drop_streams(refuse_for_s=1.5)
    eventually(lambda: not stream.connected.is_set())
    taken = okx(venue, "bob").post(PLACE_PATH, {"instId": "BTC-USDT", "tdMode": "cash",
                                                "side": "sell", "ordType": "market",
                                                "sz": "0.05"}).json()
    assert taken["code"] == "0", taken  # fills all five while the socket is down
    eventually(lambda: stream.connected.is_set() and stream.caught_up.is_set(), timeout=30)
    eventually(lambda: len(trader.store.fills("okx")) == GRID, timeout=30)
    assert all(trader.store.get("okx", o.client_order_id).state == "filled" for o in grid)
    position = trader.positions.position("okx", "BTC/USDT")
    assert position.bought == Decimal("0.05")  # quantity: less the BTC maker fees
    assert stream.connects >= 2


# ------------------------------------------------------------------ SIGKILL


@pytest.mark.parametrize("action", [FORWARD_THEN_HANG, HOLD_THEN_FORWARD])
def test_okx_sigkill_mid_send_leaves_no_duplicate_no_orphan(
        tmp_path: Path, proxy: FaultProxy, venue: LocalVenue, action: str):
    """Killed while the venue holds an order whose answer never came
    (FORWARD_THEN_HANG), or while a request is still on its way and reaches
    the venue after the kill (HOLD_THEN_FORWARD)."""
    proxy.add(Fault(NEW_ORDER, action, delay_s=60.0 if action == FORWARD_THEN_HANG else 2.0,
                    times=GRID))
    log = (tmp_path / "child.log").open("wb")
    child = subprocess.Popen([sys.executable, "-m", "tests.trade.test_okx_faults", "child",
                              str(tmp_path / "trader"), proxy.url, proxy.ws_url], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=log, env=os.environ.copy())
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"SUBMITTED", \
            (tmp_path / "child.log").read_text()[-3000:]
        eventually(lambda: proxy.count("POST", PLACE_PATH) >= 1, timeout=30)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    proxy.clear()
    if action == FORWARD_THEN_HANG:  # the venue took what the killed trader never heard of
        assert len(our_orders(okx(venue, "alice"))) >= 1
    # HOLD_THEN_FORWARD: the held request lands after the kill, or (a busy host, past its
    # expTime) never: either way the restart below must end with one order per id.
    trader = make_service(trader_config(tmp_path / "trader", proxy.url, proxy.ws_url), SETTINGS)
    trader.start()
    try:
        report = trader.reports["okx"]
        assert report.ok and report.drift == [], report.text()
        results = collect(trader)
        trader.executor.submit_many([place(i + 1, Side.BUY, str(29000 - i)) for i in range(GRID)])
        eventually(lambda: len(results) == GRID, timeout=40)
        eventually(trader.executor.idle, timeout=20)
        ids = our_orders(okx(venue, "alice"))
        assert sorted(ids) == sorted({*ids}) and len(ids) == GRID, ids  # no duplicate
        live = {r.client_order_id for r in trader.store.live_orders("okx")}
        assert live == set(ids)  # no orphan: every open order is known to the DB
    finally:
        trader.stop(3.0)


def test_okx_sigkill_mid_fill_records_every_fill_once(
        tmp_path: Path, proxy: FaultProxy, venue: LocalVenue):
    log = (tmp_path / "child.log").open("wb")
    child = subprocess.Popen([sys.executable, "-m", "tests.trade.test_okx_faults", "child",
                              str(tmp_path / "trader"), proxy.url, proxy.ws_url], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=log, env=os.environ.copy())
    alice = okx(venue, "alice")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == b"SUBMITTED", \
            (tmp_path / "child.log").read_text()[-3000:]
        eventually(lambda: len(our_orders(alice)) == GRID, timeout=30)
        for _ in range(GRID):  # bob takes them one by one while the trader applies fills
            taken = okx(venue, "bob").post(PLACE_PATH, {
                "instId": "BTC-USDT", "tdMode": "cash", "side": "sell", "ordType": "market",
                "sz": "0.01"}).json()
            assert taken["code"] == "0", taken
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    trader = make_service(trader_config(tmp_path / "trader", proxy.url, proxy.ws_url), SETTINGS)
    trader.start()
    try:
        assert trader.reports["okx"].ok, trader.reports["okx"].text()
        eventually(lambda: len(trader.store.fills("okx")) == GRID, timeout=30)
        fills = trader.store.fills("okx")
        assert len({f.trade_id for f in fills}) == GRID  # each once
        assert trader.positions.position("okx", "BTC/USDT").bought == Decimal("0.05")
        assert trader.store.live_orders("okx") == []
    finally:
        trader.stop(3.0)


def child(data_dir: str, rest: str, ws: str) -> None:
    """The killed trader: submits the grid (over the hanging proxy) and waits."""
    trader = make_service(trader_config(Path(data_dir), rest, ws), SETTINGS)
    trader.start()
    assert trader.executor is not None
    trader.executor.submit_many([place(i + 1, Side.BUY, str(29000 - i)) for i in range(GRID)])
    print("SUBMITTED", flush=True)
    signal.pause()


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(*sys.argv[2:5])


def test_okx_without_a_passphrase_refuses_to_start_and_says_which_key(tmp_path: Path):
    os.environ.setdefault(KEY_ENV, "k")
    os.environ.setdefault(SECRET_ENV, "s")
    config = config_mod.parse({
        "daemon": {"data_dir": str(tmp_path), "id": "okx-nopass"},
        "exchanges": {"okx": {"spot": {"rest": "http://127.0.0.1:9", "ws": "ws://127.0.0.1:9"},
                              "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV}},
        "storage": {"tasks": {"backend": "sqlite", "path": "tasks.sqlite"}}})
    trader = make_service(config, SETTINGS)
    with pytest.raises(ValueError, match=r"passphrase.*exchanges\.okx\.passphrase_env"):
        trader.start()
    trader.stop(1.0)

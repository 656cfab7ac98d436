"""Crash safety of the whole trader role: a child process running the grid
stack (test_grid_e2e.Stack: feed, executor, slots, strategy workers) against
the local venue's synthetic market, through the fault proxy, is SIGKILLed
several times: at random moments while it sends and is being filled, right
after the venue accepted an order whose answer never came (mid-send), and
while an order request is still on its way. After each restart reconcile finds
no drift; at the end no client order id was used twice, every order of ours
on the venue was an intent in the task DB first, every open one is the
current order of its slot, and every busy slot's order is known to the venue.

Run as ``python -m tests.trade.test_grid_crash CHILD DATA_DIR REST WS`` it is
that child."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from engine.book.store import BookStore, BookStoreError
from engine.config_storage import TaskDbConfig
from engine.store.taskdb import TaskDb
from engine.trade.actions import parse_client_order_id
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually
from tests.trade.fault_proxy import (
    FORWARD_THEN_HANG,
    HOLD_THEN_FORWARD,
    NEW_ORDER_CALLS,
    Fault,
    FaultProxy,
    on_any,
)
from tests.trade.test_grid_e2e import GRID, Stack, synthetic_venue

ROOT = Path(__file__).resolve().parents[2]
ROUNDS = 6  # kills: random moments, mid-send, request in flight (two of each)
ORDER = on_any(NEW_ORDER_CALLS)  # over REST or the WebSocket API


def child(data_dir: str, rest: str, ws: str, transport: str) -> None:
    stack = Stack(Path(data_dir), rest, ws, transport=transport).start()
    report = stack.trader.reports["binance"]
    print(json.dumps({"event": "ready", "segment": stack.books.name, "ok": report.ok,
                      "drift": [f"{d.kind} {d.client_order_id}" for d in report.drift],
                      "cycles": stack.slots.cycles_booked}), flush=True)
    done = threading.Event()

    def graceful(signum: int, frame: object) -> None:
        done.set()
    signal.signal(signal.SIGTERM, graceful)
    done.wait()
    stack.drain(10.0)
    stack.stop()


def start_child(tmp_path: Path, rest: str, ws: str, n: int,
                transport: str) -> tuple[subprocess.Popen, dict]:
    log = (tmp_path / f"child{n}.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tests.trade.test_grid_crash", "child",
                             str(tmp_path / "trader"), rest, ws, transport], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=log)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, (tmp_path / f"child{n}.log").read_text()[-3000:]
    return proc, json.loads(line)


@pytest.mark.parametrize("transport", ["rest", "ws_api"])
def test_grid_crash_sigkill_at_random_moments_leaves_no_duplicate_no_orphan(tmp_path: Path,
                                                                           transport: str):
    venue = synthetic_venue(tmp_path / "venue")
    proxy = FaultProxy(venue.rest_url)
    alice = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    rng = random.Random(20_240_607)
    try:
        for n in range(ROUNDS):
            proc, ready = start_child(tmp_path, proxy.url, proxy.ws_url, n, transport)
            assert ready["ok"] and ready["drift"] == [], (n, ready)
            time.sleep(rng.uniform(0.3, 2.0))
            if n % 3:  # mid-send: the venue has it, the answer hangs | still on its way
                action = FORWARD_THEN_HANG if n % 3 == 1 else HOLD_THEN_FORWARD
                faulted = faults(proxy)
                proxy.add(Fault(ORDER, action, delay_s=60.0 if n % 3 == 1 else 2.0))
                eventually(lambda f=faulted: faults(proxy) > f, timeout=30)
                time.sleep(0.05)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            proxy.clear()
            _unlink(ready["segment"])  # what a killed owner leaves in /dev/shm
        proc, ready = start_child(tmp_path, proxy.url, proxy.ws_url, ROUNDS, transport)
        assert ready["ok"] and ready["drift"] == [], ready
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, (tmp_path / f"child{ROUNDS}.log").read_text()[-3000:]
        _unlink(ready["segment"])
        assert faults(proxy) == 2 * (ROUNDS // 3)
        check_venue_against_db(alice, TaskDb.from_config(Stack(tmp_path / "trader", "", "")
                                                         .config))
    finally:
        proxy.stop()
        venue.stop()


def faults(proxy: FaultProxy) -> int:
    return sum(1 for _, _, action in list(proxy.log) if action)


def check_venue_against_db(alice: BinanceClient, db: TaskDb) -> None:
    orders, from_id = [], 0
    while True:
        page = alice.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT", limit=1000,
                            orderId=from_id).json()
        orders += page
        if len(page) < 1000:
            break
        from_id = max(o["orderId"] for o in page) + 1
    ids = [o["clientOrderId"] for o in orders]
    assert len(ids) == len(set(ids)), "a client order id was sent twice"
    rows = {cid: state for cid, state in db.query(
        "SELECT CLIENT_ORDER_ID, STATE FROM TRADER_ORDERS WHERE VENUE = 'binance'")}
    assert set(ids) <= set(rows), f"orders with no intent: {sorted(set(ids) - set(rows))}"
    slots = {(sid, int(slot)): (state, cid) for sid, slot, state, cid in db.query(
        "SELECT STRATEGY_ID, SLOT_ID, STATE, CLIENT_ORDER_ID FROM TRADER_GRID_SLOTS")}
    for o in orders:
        if o["status"] not in ("NEW", "PARTIALLY_FILLED"):
            continue
        parts = parse_client_order_id(o["clientOrderId"])
        assert parts is not None and parts.slot_id is not None, o
        assert rows[o["clientOrderId"]] in ("open", "partially_filled", "unknown"), o
        state, cid = slots[(parts.strategy_id, parts.slot_id)]
        assert cid == o["clientOrderId"], f"open order {cid!r} left behind by slot {parts}"
    on_venue = set(ids)
    for (sid, slot), (state, cid) in slots.items():
        if state != "free" and cid:
            assert cid in on_venue or rows.get(cid) in (None, "absent"), (sid, slot, cid)
    cycles = db.query("SELECT COUNT(*) FROM TRADER_SLOT_CYCLES")[0][0]
    assert cycles > 0 and len(orders) > 2 * ROUNDS


def _unlink(segment: str) -> None:
    """The killed owner's segment, if its resource tracker did not remove it."""
    try:
        BookStore.attach(segment).shm.unlink()
    except (FileNotFoundError, BookStoreError):
        pass



# --------------------------------------------------- the role through run.py


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run_py(tmp_path: Path, role: str, config: dict, name: str) -> subprocess.Popen:
    path = tmp_path / f"{name}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    log = (tmp_path / f"{name}.log").open("ab")
    return subprocess.Popen([sys.executable, "run.py", "--role", role, "--config", str(path)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "ENGINE_TEST_CRASH_KEY": "alice-key",
                                 "ENGINE_TEST_CRASH_SECRET": "alice-secret"})


def test_role_both_sigkilled_at_random_moments_restarts_clean(tmp_path: Path):
    import requests

    venue_port, http_port = _free_port(), _free_port()
    venue = _run_py(tmp_path, "venue", {
        "daemon": {"data_dir": str(tmp_path / "venue")},
        "venue": {"port": venue_port, "http_port": 0, "market": "synthetic",
                  "synthetic": {"start_prices": {"BTCUSDT": "30000"}, "tick_ms": 50,
                                "volatility_bps": 4.0},
                  "symbols": [{"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT"}],
                  "accounts": [{"name": "alice", "api_key": "alice-key",
                                "api_secret": "alice-secret",
                                "balances": {"USDT": "100000", "BTC": "10"}}]}}, "venue")
    rest, ws = f"http://127.0.0.1:{venue_port}", f"ws://127.0.0.1:{venue_port}"
    daemon_config = {
        "daemon": {"data_dir": str(tmp_path / "trader"), "id": "crash-e2e"},
        "http": {"port": http_port},
        "storage": {"history": {"backend": "none"}},
        "exchanges": {"binance": {"spot": {"rest": rest, "ws": ws},
                                  "api_key_env": "ENGINE_TEST_CRASH_KEY",
                                  "api_secret_env": "ENGINE_TEST_CRASH_SECRET"}},
        "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT", "depth": 20}]},
        "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "binance",
                                   "pair": "BTC/USDT", "params": GRID}]}}
    rng = random.Random(7)

    def reconciled() -> bool:
        if daemon.poll() is not None:
            raise RuntimeError(f"daemon exited {daemon.returncode}")
        status = requests.get(f"http://127.0.0.1:{http_port}/status", timeout=2).json()
        if "strategy-pool" in status.get("not_built_yet", []):
            raise RuntimeError("the trader role is not wired in engine/app.py")
        text = status["components"]["trader"]["reconcile"]["binance"]
        assert text.startswith("reconcile binance: OK — drift 0 "), text
        return True
    try:
        eventually(lambda: requests.get(rest + "/api/v3/ping", timeout=1).ok, timeout=60,
                   ignoring=(OSError,))
        for n in range(ROUNDS + 1):
            daemon = _run_py(tmp_path, "both", daemon_config, "daemon")
            eventually(reconciled, timeout=60, ignoring=(AssertionError, OSError, KeyError,
                                                          ValueError))
            time.sleep(rng.uniform(0.5, 4.0))
            daemon.send_signal(signal.SIGKILL if n < ROUNDS else signal.SIGTERM)
            assert daemon.wait(60) in (0, -signal.SIGKILL)
        check_venue_against_db(BinanceClient(rest, "alice-key", "alice-secret"),
                               TaskDb(TaskDbConfig(), tmp_path / "trader"))
    finally:
        venue.send_signal(signal.SIGTERM)
        venue.wait(30)


if __name__ == "__main__" and sys.argv[1:2] == ["child"]:
    child(*sys.argv[2:6])

"""The trade routes, /ws streams and /openapi.json against a `--demo`
daemon: a real grid on the local venue, its orders and levels as the API
shows them, live pushes of books and order changes, and every documented
route called."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import websocket

from tests.api.demo import ROOT, Demo, demo_daemon
from tests.support.eventually import eventually

BOOK = "binance:spot:BTC/USDT"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_daemon(tmp_path_factory.mktemp("demo-api")) as d:
        yield d


def test_orders_match_strategy_levels(demo: Demo) -> None:
    orders = demo.json("/orders")["orders"]
    strategies = demo.json("/strategies")["strategies"]
    assert [s["id"] for s in strategies] == ["grid1"]
    grid = strategies[0]
    assert grid["params"]["interval"] == "20" and grid["pair"] == "BTC/USDT"
    # Each open order sits at one of its slot's levels (entry while pending, exit
    # once locked; the two reads are not one snapshot, so either may be current).
    levels = {lv["slot_id"]: lv for lv in grid["levels"]}
    for order in orders:
        assert order["strategy_id"] == "grid1"
        assert order["state"] in ("intent", "unknown", "open", "partially_filled")
        level = levels[order["slot_id"]]
        assert order["price"] in (level["entry_price"], level["exit_price"]), (order, level)
    assert all("." in o["price"] for o in orders)  # decimal strings, never floats


def test_orders_filters_and_bad_parameters(demo: Demo) -> None:
    assert demo.json("/orders", strategy="nope")["orders"] == []
    assert len(demo.json("/orders", limit=1)["orders"]) == 1
    assert len(demo.json("/orders", status="recent")["orders"]) >= 1
    for params, name in (({"limit": "0"}, "limit"), ({"limit": "99999999999999999999"}, "limit"),
                         ({"status": "all"}, "status"), ({"since_ms": "-1"}, "since_ms")):
        path = "/fills" if "since_ms" in params else "/orders"
        r = demo.get(path, **params)
        assert r.status_code == 400 and r.json()["error"].startswith(f"{name}: "), r.text


@pytest.mark.parametrize("path, name", [
    (f"/market/candles/{BOOK}?start_ns=9999999999999999999", "start_ns"),
    (f"/market/trades/{BOOK}?end_ns=99999999999999999999999", "end_ns"),
    (f"/market/book/{BOOK}?at_ns=-5", "at_ns"),
    (f"/books/{BOOK}?depth=18446744073709551617", "depth"),
])
def test_oversized_numbers_are_400_naming_the_parameter(demo: Demo, path: str, name: str) -> None:
    r = demo.get(path)
    assert r.status_code == 400 and r.json()["error"].startswith(f"{name}: "), r.text


def test_positions_balances_tasks(demo: Demo) -> None:
    positions = demo.json("/positions")
    assert positions["positions"][0]["pair"] == "BTC/USDT"
    assert set(positions["pnl"]) == {"realized", "unrealized", "total", "time_ms"}
    balances = {b["asset"]: b for b in demo.json("/balances")["balances"]}
    assert float(balances["USDT"]["locked"]) > 0  # the grid's buy orders hold quote
    tasks = demo.json("/tasks")
    assert tasks["daemon_id"].startswith("demo-") and tasks["error"] is None


def test_tasks_show_their_lease_holder(demo: Demo) -> None:
    subprocess.run([sys.executable, "tools/tasks.py", "--config", str(demo.config), "add",
                    "binance", "BTC/USDT", "--depth", "20"], cwd=ROOT, check=True,
                   capture_output=True)

    def leased() -> dict[str, Any] | None:
        tasks = demo.json("/tasks")
        found = [t for t in tasks["monitor"] if t["pair"] == "BTC/USDT"]
        return tasks if found and found[0]["lease_holder"] == tasks["daemon_id"] else None

    tasks = eventually(leased, timeout=60, interval=0.5, message="task leased by the daemon")
    task = next(t for t in tasks["monitor"] if t["pair"] == "BTC/USDT")
    assert task["lease_expires_ms"] > 0 and task["exchange"] == "binance"
    assert any(x["task_id"] == task["id"] and x["kind"] == "MONITORING" for x in tasks["leases"])


def _ws(demo: Demo) -> websocket.WebSocket:
    ws = websocket.create_connection(demo.url.replace("http", "ws") + f"/ws?key={demo.read_key}",
                                     timeout=30)
    assert json.loads(ws.recv())["type"] == "hello"
    return ws


def _next(ws: websocket.WebSocket, kind: str, limit: int = 500) -> dict[str, Any]:
    for _ in range(limit):
        msg = json.loads(ws.recv())
        if msg["type"] == kind:
            return msg
    raise AssertionError(f"no {kind} message in {limit}")


def test_ws_book_pushes_follow_the_live_book(demo: Demo) -> None:
    ws = _ws(demo)
    try:
        ws.send(json.dumps({"op": "subscribe", "topics": [f"book:{BOOK}", f"trades:{BOOK}"]}))
        assert _next(ws, "subscribed")["topics"] == sorted([f"book:{BOOK}", f"trades:{BOOK}"])
        first = _next(ws, "book")
        assert first["book"] == BOOK and first["bids"] and first["asks"]
        assert first["bids"][0][0] < first["asks"][0][0]
        second = _next(ws, "book")
        assert second["version"] != first["version"]  # pushed because it changed
        trades = _next(ws, "trades")
        assert trades["items"] and {"price", "size", "side", "id"} <= set(trades["items"][0])
        ws.send(json.dumps({"op": "unsubscribe", "topics": [f"book:{BOOK}"]}))
        assert _next(ws, "unsubscribed")["topics"] == [f"trades:{BOOK}"]
        ws.send(json.dumps({"op": "subscribe", "topics": ["nonsense"]}))
        assert "unknown topics" in _next(ws, "error")["error"]
    finally:
        ws.close()


def test_ws_order_updates_on_halt_and_halt_needs_admin(demo: Demo) -> None:
    ws = _ws(demo)
    try:
        ws.send(json.dumps({"op": "subscribe", "topics": ["orders", "positions", "health"]}))
        _next(ws, "subscribed")
        assert _next(ws, "positions")["pnl"]["total"] is not None
        live = {o["client_order_id"] for o in demo.json("/orders")["orders"]}
        refused = requests.post(demo.url + "/trader/halt", headers={"X-API-Key": demo.read_key},
                                timeout=15)
        assert refused.status_code == 403
        r = requests.post(demo.url + "/trader/halt?reason=ws-test",
                          headers={"X-API-Key": demo.admin_key}, timeout=15)
        assert r.status_code == 200 and r.json()["halted"] is True
        canceled: set[str] = set()
        deadline = time.monotonic() + 60
        while not live <= canceled and time.monotonic() < deadline:
            msg = _next(ws, "orders")
            canceled |= {o["client_order_id"] for o in msg["items"] if o["state"] == "canceled"}
        assert live <= canceled
        health = _next(ws, "health")
        assert health["ok"] is False
        assert demo.json("/strategies")["halted"] is True
    finally:
        requests.post(demo.url + "/trader/resume", headers={"X-API-Key": demo.admin_key},
                      timeout=15)
        ws.close()
    eventually(lambda: demo.json("/strategies")["halted"] is False)


def test_openapi_documents_every_route_and_each_answers(demo: Demo) -> None:
    doc = demo.json("/openapi.json")
    assert doc["openapi"].startswith("3.")
    topics = demo.json("/ws/topics.json")
    assert {"orders", "fills", "positions", "health"} <= set(topics["topics"])
    called = []
    for path, methods in doc["paths"].items():
        url = demo.url + path.replace("{key}", BOOK).replace("{file}", "app.js")
        for method, op in methods.items():
            if path == "/trader/halt":
                continue  # halting cancels the grid: test_ws_order_updates covers it
            headers = {} if op["x-scope"] == "open" else {"X-API-Key": demo.admin_key}
            expected = 426 if path == "/ws" else 200

            def answer(method: str = method, url: str = url, headers: dict = headers,
                       expected: int = expected) -> requests.Response:
                r = requests.request(method.upper(), url, headers=headers, timeout=30)
                assert r.status_code == expected, (method, url, r.status_code, r.text[:200])
                return r
            # history routes answer once the recorder has stored the book (a busy
            # host may take a while); every other route must answer at once
            if path.startswith("/market/"):
                eventually(answer, timeout=90, interval=1.0)
            else:
                answer()
            called.append(path)
    assert {"/orders", "/fills", "/positions", "/balances", "/tasks", "/strategies",
            "/market/candles/{key}", "/books/{key}", "/ws", "/"} <= set(called)

"""The market-data routes over a real HTTP server, on recorded history in
chdb and in the private ClickHouse server: candles, trade pages, 24-hour
statistics and the book at a time, each compared with values this test
computes from the events it recorded; and the error answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from engine.api import market
from engine.api.http import HttpServer, Router
from engine.store.history import HistoryStore
from tests.store.test_history import PASSWORD_ENV, history_config
from tests.store.test_queries import (
    BOOK,
    OTHER,
    Scenario,
    approx_rows,
    expected_candles,
    expected_stats,
    in_order,
    record_scenario,
    simulate,
    span,
    true_book,
)

NS = 1_000_000_000
KEY = ":".join(BOOK)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return simulate(seed=11, steps=1500)


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
        scenario: Scenario) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp(f"market-{request.param}")
    server = request.getfixturevalue("clickhouse") if request.param == "clickhouse" else None
    with pytest.MonkeyPatch.context() as mp:
        if server is not None:
            mp.setenv(PASSWORD_ENV, server.password)
        store = HistoryStore(history_config(tmp, request.param, server))
        store.start()
        record_scenario(store, tmp, scenario)
        router = Router()
        _, last = span(scenario)
        market.install(router, store, now_ns=lambda: last + NS)
        http = HttpServer("127.0.0.1", 0, router)
        http.start()
        yield http.url
        http.stop()
        store.stop(2.0)


def get(url: str, path: str, **params: Any) -> requests.Response:
    return requests.get(url + path, params=params, timeout=30)


def test_market_pairs_lists_recorded_books(url: str, scenario: Scenario) -> None:
    body = get(url, "/market/pairs").json()
    assert [(p["venue"], p["market"], p["pair"], p["trades"]) for p in body["pairs"]] == [
        (*BOOK, len(scenario.trades[BOOK])), (*OTHER, len(scenario.trades[OTHER]))]


@pytest.mark.parametrize("interval", ["1m", "5m", "15m", "1h", "4h", "1d"])
def test_market_candles_match_the_trades(url: str, scenario: Scenario, interval: str) -> None:
    step = market.INTERVAL_NS[interval]
    first, last = span(scenario)
    start, end = first, last + 1
    if (end - start) // step > 4000:
        start = end - 4000 * step
    r = get(url, f"/market/candles/{KEY}", interval=interval, start_ns=start, end_ns=end)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["venue"], body["market"], body["pair"], body["interval"]) == (*BOOK, interval)
    assert body["candles"] == approx_rows(expected_candles(scenario.trades[BOOK], step, start, end))


def test_market_candles_default_to_the_last_500_intervals(url: str, scenario: Scenario) -> None:
    candles = get(url, f"/market/candles/{KEY}", interval="1m").json()["candles"]
    assert len(candles) == 500
    _, last = span(scenario)
    assert candles[-1]["open_ns"] == (last + NS) - (last + NS) % (60 * NS)


def test_market_trade_pages_follow_the_cursor(url: str, scenario: Scenario) -> None:
    first, last = span(scenario)
    want = [t.trade_id for t in in_order(scenario.trades[BOOK])]
    got: list[str] = []
    params: dict[str, Any] = {"start_ns": first - NS, "end_ns": last + NS, "limit": 250}
    while True:
        body = get(url, f"/market/trades/{KEY}", **params).json()
        got += [t["trade_id"] for t in body["trades"]]
        if body["next_cursor"] is None:
            break
        params["cursor"] = body["next_cursor"]
    assert got == want


def test_market_stats_24h_match_the_window(url: str, scenario: Scenario) -> None:
    _, last = span(scenario)
    body = get(url, f"/market/stats/{KEY}", at_ns=last).json()
    want = expected_stats(scenario.trades[BOOK], last)
    assert {k: body[k] for k in want} == {k: pytest.approx(v) if isinstance(v, float) else v
                                          for k, v in want.items()}
    empty = get(url, f"/market/stats/{KEY}", at_ns=last + 3 * 86400 * NS).json()
    assert empty["trades"] == 0 and empty["last"] is None and empty["change"] is None


def test_market_book_at_a_time_is_the_true_book(url: str, scenario: Scenario) -> None:
    for recv_ns, _, _ in scenario.truth[::97]:
        at = recv_ns + 12345
        body = get(url, f"/market/book/{KEY}", at_ns=at, depth=5).json()
        want = true_book(scenario, at)
        assert want is not None
        assert (body["bids"], body["asks"]) == (want[0][:5], want[1][:5])
        assert body["snapshot"]["recv_ns"] <= at and body["complete"] is True


@pytest.mark.parametrize(("path", "params", "status", "message"), [
    (f"/market/candles/{KEY}", {"interval": "2m"}, 400, "interval"),
    (f"/market/candles/{KEY}", {"start_ns": "soon"}, 400, "start_ns"),
    (f"/market/candles/{KEY}", {"start_ns": 10, "end_ns": 5}, 400, "before"),
    (f"/market/candles/{KEY}", {"start_ns": 0, "end_ns": 10**18}, 400, "at most"),
    ("/market/candles/binance-spot-BTCUSDT", {}, 400, "venue:market:BASE/QUOTE"),
    ("/market/trades/binance:spot:BTC'USDT", {}, 400, "not a venue"),
    (f"/market/trades/{KEY}", {"cursor": "x"}, 400, "cursor"),
    (f"/market/trades/{KEY}", {"limit": 100000}, 400, "limit"),
    (f"/market/book/{KEY}", {"at_ns": 1}, 404, "no book snapshot"),
    (f"/market/book/{KEY}", {"depth": 0}, 400, "depth"),
])
def test_market_bad_requests_are_answered_plainly(url: str, path: str, params: dict, status: int,
                                                  message: str) -> None:
    r = get(url, path, **params)
    assert r.status_code == status
    assert message in r.json()["error"]


def test_market_without_history_store_answers_503(tmp_path: Path) -> None:
    router = Router()
    market.install(router, None)
    http = HttpServer("127.0.0.1", 0, router)
    http.start()
    try:
        r = get(http.url, f"/market/candles/{KEY}")
        assert r.status_code == 503 and "disabled" in r.json()["error"]
    finally:
        http.stop()

"""Task rows as values: what makes a MONITORING or TRADE row runnable, what
makes it a bad row (reported by id, skipped), and the diff the fetcher hands
to the feed pool. Pure code, no database."""

from __future__ import annotations

from typing import Any

import pytest

from engine.store.taskrows import BadRow, MonitorTask, runnable_monitoring, runnable_trade
from engine.store.tasks import diff


def monitoring_row(id: int, exchange: Any = "binance", pair: Any = "BTC/USDT", *, market: Any = "spot",
                   depth: Any = 20, priority: Any = 0, enabled: Any = 1) -> dict[str, Any]:
    return {"ID": id, "EXCHANGE_ID": exchange, "MARKET_TYPE": market, "TRADE_PAIR": pair,
            "ORDERBOOK_DEPTH": depth, "DAEMON_PRIORITY": priority, "ENABLED": enabled}


def trade_row(id: int, params: Any, strategy: Any = "grid") -> dict[str, Any]:
    return {"ID": id, "EXCHANGE_ID": "okx", "MARKET_TYPE": "spot", "TRADE_PAIR": "ETH/USDT",
            "STRATEGY_ID": strategy, "STRATEGY_PARAMS": params, "DAEMON_PRIORITY": 0, "ENABLED": 1}


def test_valid_rows_become_tasks_highest_priority_first() -> None:
    tasks, bad = runnable_monitoring([
        monitoring_row(1, priority=0), monitoring_row(2, "okx", "eth/usdt", market="FUTURES", priority=5),
        monitoring_row(3, " Bybit ", "1000PEPE/USDT", depth=5000, priority=5)])
    assert bad == []
    assert tasks == [MonitorTask(2, "okx", "futures", "ETH/USDT", 20, 5),
                     MonitorTask(3, "bybit", "spot", "1000PEPE/USDT", 5000, 5),
                     MonitorTask(1, "binance", "spot", "BTC/USDT", 20, 0)]
    assert tasks[0].book == "okx:futures:ETH/USDT"


@pytest.mark.parametrize(("row", "reason"), [
    (monitoring_row(7, "krakenish"), "unknown exchange 'krakenish'"),
    (monitoring_row(7, None), "unknown exchange None"),
    (monitoring_row(7, pair="BTCUSDT"), "malformed pair 'BTCUSDT'"),
    (monitoring_row(7, pair="BTC/"), "malformed pair 'BTC/'"),
    (monitoring_row(7, pair="BTC-USD/T"), "malformed pair"),
    (monitoring_row(7, market="margin"), "market type 'margin'"),
    (monitoring_row(7, market=None), "market type None"),
    (monitoring_row(7, depth=0), "depth 0 is not an integer in 1..5000"),
    (monitoring_row(7, depth=5001), "depth 5001"),
    (monitoring_row(7, depth=None), "depth None"),
    (monitoring_row(7, depth="deep"), "depth 'deep'"),
    (monitoring_row(7, priority="high"), "priority 'high'"),
])
def test_bad_monitoring_row_is_reported_by_id_and_skipped(row: dict[str, Any], reason: str) -> None:
    tasks, bad = runnable_monitoring([monitoring_row(1), row])
    assert [t.id for t in tasks] == [1]
    assert len(bad) == 1 and bad[0].table == "MONITORING" and bad[0].id == 7
    assert reason in bad[0].reason
    assert str(bad[0]).startswith("MONITORING#7: ")


def test_disabled_rows_are_neither_run_nor_reported() -> None:
    tasks, bad = runnable_monitoring([monitoring_row(1, enabled=0), monitoring_row(2, "nope", enabled=0)])
    assert tasks == [] and bad == []


def test_second_row_for_the_same_book_is_a_duplicate_lower_id_wins() -> None:
    tasks, bad = runnable_monitoring([monitoring_row(9, depth=50), monitoring_row(4, "BINANCE", "btc/usdt")])
    assert [t.id for t in tasks] == [4]
    assert bad == [BadRow("MONITORING", 9, "duplicate of task 4 (binance:spot:BTC/USDT)")]


def test_exchanges_can_be_narrowed_to_the_venues_with_a_driver() -> None:
    tasks, bad = runnable_monitoring([monitoring_row(1, "binance"), monitoring_row(2, "kucoin")],
                                     exchanges={"binance"})
    assert [t.id for t in tasks] == [1]
    assert bad[0].id == 2 and "unknown exchange 'kucoin' (known: binance)" in bad[0].reason


@pytest.mark.parametrize(("params", "expected"), [
    ('{"levels": 10, "step": "0.5"}', {"levels": 10, "step": "0.5"}),
    (b'{"levels": 3}', {"levels": 3}),
    ({"already": "decoded"}, {"already": "decoded"}),
    (None, {}),
])
def test_trade_row_params_become_a_dict(params: Any, expected: dict[str, Any]) -> None:
    tasks, bad = runnable_trade([trade_row(3, params)])
    assert bad == [] and tasks[0].params == expected and tasks[0].strategy == "grid"


@pytest.mark.parametrize(("params", "strategy", "reason"), [
    ("{levels: 10", "grid", "invalid JSON params"),
    ("[1, 2]", "grid", "JSON params must be an object, got list"),
    ('"grid"', "grid", "must be an object, got str"),
    ("{}", "", "no STRATEGY_ID"),
])
def test_bad_trade_row_is_reported_by_id(params: str, strategy: str, reason: str) -> None:
    tasks, bad = runnable_trade([trade_row(5, params, strategy), trade_row(6, "{}")])
    assert [t.id for t in tasks] == [6]
    assert bad[0].table == "TRADE" and bad[0].id == 5 and reason in bad[0].reason


def test_trade_task_is_hashable_despite_its_params() -> None:
    tasks, _ = runnable_trade([trade_row(1, '{"a": 1}')])
    assert hash(tasks[0]) == hash(tasks[0])


# -- diff ------------------------------------------------------------------------

def task(id: int, pair: str = "BTC/USDT", depth: int = 20, priority: int = 0) -> MonitorTask:
    return MonitorTask(id, "binance", "spot", pair, depth, priority)


def test_diff_new_pair_is_added_missing_one_removed() -> None:
    added, removed, changed = diff({1: task(1), 2: task(2, "ETH/USDT")}, {1: task(1), 3: task(3, "SOL/USDT")})
    assert (added, removed, changed) == ([task(3, "SOL/USDT")], [task(2, "ETH/USDT")], [])


def test_diff_depth_change_is_changed() -> None:
    assert diff({1: task(1)}, {1: task(1, depth=100)}) == ([], [], [task(1, depth=100)])


def test_diff_edited_pair_under_same_id_is_removed_then_added() -> None:
    assert diff({1: task(1)}, {1: task(1, "ETH/USDT")}) == ([task(1, "ETH/USDT")], [task(1)], [])


def test_diff_priority_change_alone_is_no_change_for_the_feed() -> None:
    assert diff({1: task(1)}, {1: task(1, priority=9)}) == ([], [], [])

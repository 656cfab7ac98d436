"""Market-data queries on both engines, against values this test computes on
its own from the events it recorded: candles (every interval, empty ones
included), trade pages, 24-hour statistics, and the book at any moment
(compared with the true book of a simulated venue, REST resyncs, stale and
late deltas included). The events go in through the real Recorder, so the
stored snapshots are the ones a daemon would store."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from engine.model import BookDelta, BookSnapshot, Market, Side, Trade
from engine.store.history import HistoryStore
from engine.store.queries import INTERVALS_NS, QueryError
from engine.store.recorder import Recorder, RecorderSettings
from tests.store.test_history import PASSWORD_ENV, history_config
from tests.support.eventually import eventually

NS = 1_000_000_000
MS = 1_000_000
T0 = 1_700_000_000 * NS
BOOK = ("binance", "spot", "BTC/USDT")
OTHER = ("binance", "spot", "ETH/USDT")


# -- a simulated venue: events in record order and the truth behind them ----------

@dataclass
class Scenario:
    events: list[Any] = field(default_factory=list)
    # (recv_ns, bids, asks) of BOOK after each of its events, once it has a snapshot
    truth: list[tuple[int, dict[float, float], dict[float, float]]] = field(default_factory=list)
    trades: dict[tuple[str, str, str], list[Trade]] = field(default_factory=dict)


def simulate(seed: int = 7, steps: int = 3000) -> Scenario:
    rng = random.Random(seed)
    out = Scenario()
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    seq = 1000
    now = T0 + 123 * MS
    synced = False
    history: list[tuple[int, dict[float, float], dict[float, float]]] = []  # state per seq
    pending_rest: tuple[int, dict, dict, int] | None = None  # snapshot taken, not yet arrived

    def record_truth() -> None:
        if synced:
            out.truth.append((now, dict(bids), dict(asks)))

    def change() -> BookDelta:
        nonlocal seq
        first = seq + 1
        seq += rng.randint(1, 3)
        changes: tuple[list, list] = ([], [])
        for _ in range(rng.randint(1, 4)):
            side = rng.randrange(2)
            price = (100.0 - rng.randint(0, 30) * 0.5) if side == 0 else (100.5 + rng.randint(0, 30) * 0.5)
            size = 0.0 if rng.random() < 0.25 else round(rng.uniform(0.001, 5), 3)
            (bids if side == 0 else asks).__setitem__(price, size)
            changes[side].append((price, size))
        for levels in (bids, asks):
            for price in [p for p, s in levels.items() if s == 0.0]:
                del levels[price]
        history.append((seq, dict(bids), dict(asks)))
        return BookDelta(*BOOK[0:1], Market.SPOT, BOOK[2], changes[0], changes[1], first, seq, -1,
                         now - 3 * MS, now)

    def trade(book: tuple[str, str, str], i: int) -> Trade:
        exch = 0 if rng.random() < 0.1 else now - rng.randint(0, 5) * MS
        t = Trade(book[0], Market.SPOT, book[2], round(rng.uniform(95, 105) * 2) / 2,
                  round(rng.uniform(0.001, 2), 3), Side.BUY if rng.random() < 0.5 else Side.SELL,
                  f"{book[2]}-{i}", exch, now)
        out.trades.setdefault(book, []).append(t)
        return t

    # Subscribe: deltas first, then the REST snapshot taken after the first one.
    out.events.append(change())
    snap_seq, snap_bids, snap_asks = seq, dict(bids), dict(asks)
    for _ in range(3):
        now += rng.randint(1, 50) * MS
        out.events.append(change())
    now += 20 * MS
    out.events.append(BookSnapshot(BOOK[0], Market.SPOT, BOOK[2], sorted(snap_bids.items(), reverse=True),
                                   sorted(snap_asks.items()), snap_seq, now - MS, now))
    synced = True
    record_truth()
    for i in range(steps):
        r = rng.random()
        # Mostly busy (ms apart), sometimes quiet for minutes: empty candles.
        now += rng.randint(1, 400) * MS if rng.random() < 0.995 else rng.randint(5, 40) * 60 * NS
        if pending_rest is not None and rng.random() < 0.3:
            s, b, a, _ = pending_rest
            out.events.append(BookSnapshot(BOOK[0], Market.SPOT, BOOK[2], sorted(b.items(), reverse=True),
                                           sorted(a.items()), s, now - MS, now))
            pending_rest = None
            record_truth()
            if rng.random() < 0.5:  # a stale re-delivery right after it: ignored
                old = rng.choice([h for h in history if h[0] <= s][-5:])
                out.events.append(BookDelta(BOOK[0], Market.SPOT, BOOK[2], [(100.0, 42.0)], [],
                                            old[0], old[0], -1, now, now))
                record_truth()
        elif r < 0.55:
            out.events.append(change())
            record_truth()
        elif r < 0.9:
            out.events.append(trade(BOOK if rng.random() < 0.8 else OTHER, i))
            if rng.random() < 0.1:  # same timestamps as the previous trade
                out.events.append(trade(BOOK, i + steps))
        elif pending_rest is None and r < 0.93:
            pending_rest = (seq, dict(bids), dict(asks), now)  # the REST request goes out
    return out


def true_book(scenario: Scenario, at_ns: int) -> tuple[list, list] | None:
    state = None
    for recv_ns, bids, asks in scenario.truth:
        if recv_ns > at_ns:
            break
        state = (sorted(([p, s] for p, s in bids.items()), reverse=True),
                 sorted([p, s] for p, s in asks.items()))
    return state


def in_order(trades: list[Trade]) -> list[Trade]:
    """By the queries' axis: venue time (our time when none), then record order."""
    return [t for _, _, t in sorted(((t.exch_ns or t.recv_ns), i, t) for i, t in enumerate(trades))]


def expected_candles(trades: list[Trade], step: int, start_ns: int, end_ns: int) -> list[dict]:
    first = start_ns - start_ns % step
    ordered = in_order(trades)
    out = []
    previous = None
    before = [t for t in ordered if (t.exch_ns or t.recv_ns) < first]
    if before and (before[-1].exch_ns or before[-1].recv_ns) >= first - 7 * 86400 * NS:
        previous = before[-1].price
    bucket = first
    while bucket < end_ns:
        inside = [t for t in ordered if bucket <= (t.exch_ns or t.recv_ns) < bucket + step]
        if inside:
            prices = [t.price for t in inside]
            out.append({"open_ns": bucket, "open": prices[0], "high": max(prices), "low": min(prices),
                        "close": prices[-1], "volume": sum(t.size for t in inside),
                        "quote_volume": sum(t.price * t.size for t in inside), "trades": len(inside)})
            previous = prices[-1]
        else:
            out.append({"open_ns": bucket, "open": previous, "high": previous, "low": previous,
                        "close": previous, "volume": 0.0, "quote_volume": 0.0, "trades": 0})
        bucket += step
    return out


def expected_stats(trades: list[Trade], at_ns: int) -> dict:
    inside = [t for t in in_order(trades) if at_ns - 86400 * NS < (t.exch_ns or t.recv_ns) <= at_ns]
    if not inside:
        return {"trades": 0, "high": None, "low": None, "last": None, "change": None}
    prices = [t.price for t in inside]
    return {"trades": len(inside), "high": max(prices), "low": min(prices), "open": prices[0],
            "last": prices[-1], "change": prices[-1] - prices[0], "volume": sum(t.size for t in inside),
            "change_pct": (prices[-1] - prices[0]) / prices[0] * 100}


def approx_rows(rows: list[dict]) -> list[dict]:
    return [{k: pytest.approx(v, rel=1e-9, abs=1e-9) if isinstance(v, float) else v
             for k, v in row.items()} for row in rows]


# -- one recorded scenario per engine ----------------------------------------------

def record_scenario(store: HistoryStore, tmp: Path, scenario: Scenario) -> None:
    from engine.config import Config

    config: Config = store.config
    recorder = Recorder(config, CollectorRegistry(), store,
                        RecorderSettings(batch_rows=2000, batch_interval_s=0.05, snapshot_interval_s=30.0,
                                         queue_events=len(scenario.events) + 10))
    recorder.start()
    for event in scenario.events:
        recorder.record(event)
    eventually(recorder.idle, timeout=60)
    assert recorder.status()["dropped"] == {}
    recorder.stop(5.0)


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return simulate()


@pytest.fixture(scope="module", params=["chdb", "clickhouse"])
def recorded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
             scenario: Scenario) -> Iterator[HistoryStore]:
    tmp = tmp_path_factory.mktemp(f"queries-{request.param}")
    server = request.getfixturevalue("clickhouse") if request.param == "clickhouse" else None
    with pytest.MonkeyPatch.context() as mp:
        if server is not None:
            mp.setenv(PASSWORD_ENV, server.password)
        store = HistoryStore(history_config(tmp, request.param, server))
        store.start()
        record_scenario(store, tmp, scenario)
        yield store
        store.stop(2.0)


def span(scenario: Scenario) -> tuple[int, int]:
    times = [e.recv_ns for e in scenario.events]
    return min(times), max(times)


# -- candles -----------------------------------------------------------------------

@pytest.mark.parametrize("interval", list(INTERVALS_NS))
def test_queries_candles_match_trades_with_empty_intervals_filled(
        recorded: HistoryStore, scenario: Scenario, interval: str) -> None:
    step = INTERVALS_NS[interval]
    first, last = span(scenario)
    start, end = first - 3 * step, last + 2 * step  # leading and trailing empty intervals
    if (end - start) // step > 4000:
        start = end - 4000 * step
    got = recorded.candles(*BOOK, interval, start, end)
    want = expected_candles(scenario.trades[BOOK], step, start, end)
    assert got == approx_rows(want)
    assert any(c["trades"] == 0 for c in got), "the scenario must have empty intervals"
    assert got[0]["open"] is None, "no price is known before the first trade"


def test_queries_candles_leading_empty_interval_carries_the_last_price_before(
        recorded: HistoryStore, scenario: Scenario) -> None:
    trades = in_order(scenario.trades[BOOK])
    middle = trades[len(trades) // 2]
    start = (middle.exch_ns or middle.recv_ns) + 1
    got = recorded.candles(*BOOK, "1m", start, start + 90 * 60 * NS)
    assert got == approx_rows(expected_candles(scenario.trades[BOOK], 60 * NS, start,
                                               start + 90 * 60 * NS))


def test_queries_candles_other_pair_is_separate(recorded: HistoryStore, scenario: Scenario) -> None:
    first, last = span(scenario)
    got = recorded.candles(*OTHER, "1h", first, last + 1)
    assert sum(c["trades"] for c in got) == len(scenario.trades[OTHER])


def test_queries_candles_refuse_unknown_interval_and_huge_ranges(recorded: HistoryStore) -> None:
    with pytest.raises(QueryError, match="interval"):
        recorded.candles(*BOOK, "2m", T0, T0 + NS)
    with pytest.raises(QueryError, match="at most"):
        recorded.candles(*BOOK, "1m", T0, T0 + 10_000 * 60 * NS)
    with pytest.raises(QueryError, match="not a venue"):
        recorded.candles("binance'; DROP TABLE x; --", "spot", "BTC/USDT", "1m", T0, T0 + NS)


# -- trades ------------------------------------------------------------------------

def test_queries_trade_pages_walk_the_range_once_in_order(
        recorded: HistoryStore, scenario: Scenario) -> None:
    first, last = span(scenario)
    start, end = first + (last - first) // 4, first + 3 * (last - first) // 4
    want = [t for t in in_order(scenario.trades[BOOK]) if start <= (t.exch_ns or t.recv_ns) < end]
    got: list[dict] = []
    cursor = ""
    pages = 0
    while True:
        page = recorded.trades(*BOOK, start, end, 37, cursor)
        got += page["trades"]
        pages += 1
        if page["next_cursor"] is None:
            break
        assert len(page["trades"]) == 37
        cursor = page["next_cursor"]
    assert pages == -(-len(want) // 37) or (len(want) % 37 == 0 and pages == len(want) // 37 + 1)
    assert [(t["trade_id"], t["price"], t["size"], t["taker_side"], t["exch_ns"], t["recv_ns"])
            for t in got] == [(t.trade_id, t.price, t.size, t.taker_side.value, t.exch_ns, t.recv_ns)
                              for t in want]


def test_queries_trade_page_rejects_bad_cursor_and_limit(recorded: HistoryStore) -> None:
    with pytest.raises(QueryError, match="cursor"):
        recorded.trades(*BOOK, T0, T0 + NS, 10, "nonsense")
    with pytest.raises(QueryError, match="limit"):
        recorded.trades(*BOOK, T0, T0 + NS, 0)


# -- 24-hour statistics -----------------------------------------------------------

def test_queries_stats_24h_match_the_window(recorded: HistoryStore, scenario: Scenario) -> None:
    first, last = span(scenario)
    for at in (first + (last - first) // 3, last, last + 86400 * NS - NS, last + 2 * 86400 * NS):
        got = recorded.stats_24h(*BOOK, at)
        want = expected_stats(scenario.trades[BOOK], at)
        assert {k: got[k] for k in want} == {k: pytest.approx(v) if isinstance(v, float) else v
                                             for k, v in want.items()}


# -- the book at a given time ---------------------------------------------------------

def test_queries_book_at_any_time_equals_the_true_book(
        recorded: HistoryStore, scenario: Scenario) -> None:
    rng = random.Random(3)
    times = [recv for recv, _, _ in scenario.truth]
    probes = rng.sample(times, 40) + [t + rng.randint(1, 10**8) for t in rng.sample(times, 40)]
    probes += [times[0], times[-1] + 3600 * NS]
    used_periodic = 0
    for at in probes:
        got = recorded.book_at(*BOOK, at, 1000)
        want = true_book(scenario, at)
        assert got is not None and want is not None
        assert (got["bids"], got["asks"]) == want, f"book at {at}"
        assert got["complete"]
        used_periodic += got["snapshot"]["reason"] == "periodic"
    assert used_periodic, "some rebuilds must start from a periodic snapshot"


def test_queries_book_depth_limits_each_side(recorded: HistoryStore, scenario: Scenario) -> None:
    at = scenario.truth[len(scenario.truth) // 2][0]
    got = recorded.book_at(*BOOK, at, 3)
    want = true_book(scenario, at)
    assert got is not None and want is not None
    assert got["bids"] == want[0][:3] and got["asks"] == want[1][:3]


def test_queries_book_before_any_snapshot_is_none(recorded: HistoryStore, scenario: Scenario) -> None:
    assert recorded.book_at(*BOOK, span(scenario)[0] - 1, 10) is None
    assert recorded.book_at("okx", "spot", "BTC/USDT", T0 + 10**15, 10) is None


def test_queries_pairs_lists_recorded_books(recorded: HistoryStore, scenario: Scenario) -> None:
    assert recorded.pairs() == [
        {"venue": "binance", "market": "spot", "pair": "BTC/USDT",
         "trades": len(scenario.trades[BOOK]), "snapshots": recorded.query(
             "SELECT count() FROM {db}.book_snapshots")[0][0]},
        {"venue": "binance", "market": "spot", "pair": "ETH/USDT",
         "trades": len(scenario.trades[OTHER]), "snapshots": 0}]

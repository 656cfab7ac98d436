"""Gate v4 driver: naming, frames (with the injected clock's time), parsing
recorded and documented frames, the U/u rule on real ids and hand-built gaps,
``full`` pushes, garbage refused, the typed path equal to the generic one, and
every capture replayed through tools/replay.py equal level by level to the
independent reference."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.clock import TestClock
from engine.feed.sync import FeedRouter
from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side
from engine.venues.base import Subscription, Verdict
from engine.venues.gate import GateDriver
from tests.venues.reference import DATA, gate_books, read_records
from tests.venues.test_wire import _near_misses, canon, outcome

ROOT = Path(__file__).resolve().parents[2]
SPOT = GateDriver(Market.SPOT)
FUT = GateDriver(Market.FUTURES)


def lines(name: str) -> list[str]:
    return (DATA / "gate" / name).read_text().splitlines()


def test_gate_symbol_underscore_pair_both_markets():
    assert SPOT.pair("NEO_BTC") == "NEO/BTC" and FUT.pair("RDNT_USDT") == "RDNT/USDT"
    assert SPOT.symbol("BTC/USDT") == "BTC_USDT"
    with pytest.raises(ValueError):
        FUT.symbol("BTC/USD-251226")


def test_gate_subscribe_one_book_request_per_pair_time_from_clock():
    clock = TestClock(1_619_093_532_500_000_000)
    spot = GateDriver(Market.SPOT, clock=clock)
    frames = [json.loads(f) for f in spot.subscribe([Subscription("OMG/USDT"), Subscription("NEO/BTC")])]
    assert frames == [
        {"time": 1619093532, "channel": "spot.order_book_update", "event": "subscribe", "payload": ["OMG_USDT", "100ms"]},
        {"time": 1619093532, "channel": "spot.order_book_update", "event": "subscribe", "payload": ["NEO_BTC", "100ms"]},
        {"time": 1619093532, "channel": "spot.trades", "event": "subscribe", "payload": ["OMG_USDT", "NEO_BTC"]}]
    fut = GateDriver(Market.FUTURES, clock=clock)
    (book,) = [json.loads(f) for f in fut.unsubscribe([Subscription("BTC/USDT", trades=False)])]
    assert book["payload"] == ["BTC_USDT", "100ms", "100"] and book["event"] == "unsubscribe"


def test_gate_endpoints_and_heartbeat():
    assert SPOT.connect_url([]) == "wss://api.gateio.ws/ws/v4/"
    assert FUT.connect_url([]) == "wss://fx-ws.gateio.ws/v4/ws/usdt"
    assert SPOT.connect_request("x") is None
    assert SPOT.heartbeat.ws_ping_interval_s == 10.0 and SPOT.heartbeat.client_ping is None


def test_gate_parse_real_spot_and_futures_diffs():
    spot = SPOT.parse(lines("book_delta.cf.jsonl")[0], 4).events[0]
    raw = json.loads(lines("book_delta.cf.jsonl")[0])["result"]
    assert isinstance(spot, BookDelta) and spot.pair == "HAI/ETH"
    assert (spot.first_seq, spot.last_seq, spot.exch_ns) == (raw["U"], raw["u"], raw["t"] * 1_000_000)
    assert spot.bids[0] == (0.00010322, 5360.209) and len(spot.bids) == len(raw["b"])
    fut_raw = [r for r in lines("book_delta.cf.jsonl") if "futures." in r]
    (fut,) = FUT.parse(fut_raw[1], 0).events
    assert fut.asks[:2] == [(0.3047, 8393.0), (0.2992, 1336.0)] and fut.bids == []
    assert SPOT.parse(fut_raw[1], 0).events == [] and FUT.parse(lines("book_delta.cf.jsonl")[0], 0).events == []


def test_gate_parse_documented_full_push_is_a_snapshot_numbered_u():
    spot_doc, fut_doc = lines("book_delta.docs.jsonl")
    (snap,) = SPOT.parse(spot_doc, 0).events
    assert isinstance(snap, BookSnapshot) and snap.seq == 48776306
    assert snap.bids == [(19137.74, 0.0001), (19088.37, 0.0)] and snap.asks == [(19137.75, 0.6135)]
    (delta,) = FUT.parse(fut_doc, 0).events
    assert isinstance(delta, BookDelta) and (delta.first_seq, delta.last_seq) == (2517661101, 2517661113)
    assert delta.bids == [(54672.1, 0.0), (54664.5, 58794.0)] and delta.pair == "BTC/USD"


def test_gate_parse_probe_2026_futures_diff_with_level_field():
    raw = [r for r in lines("book_delta.obs2026.jsonl") if "order_book_update" in r][0]
    (delta,) = FUT.parse(raw, 0).events
    assert (delta.first_seq, delta.last_seq) == (125033668137, 125033668232)
    assert delta.asks == [(77232.2, 2100.0), (77233.3, 0.0)] and delta.bids == [(77230.0, 11364.0)]


def test_gate_parse_trades_real_and_documented():
    (spot,) = SPOT.parse(lines("trade.cf.jsonl")[0], 0).events
    assert (spot.pair, spot.price, spot.size, spot.taker_side, spot.trade_id) == (
        "DIS/USDT", 121.58, 0.201, Side.SELL, "816995772")
    assert spot.exch_ns == 1619093543708264200  # "1619093543708.2642" ms, exactly
    (doc,) = SPOT.parse(lines("trade.docs.jsonl")[0], 0).events
    assert doc.trade_id == "309143071" and doc.taker_side is Side.SELL
    (fut,) = FUT.parse(lines("trade.docs.jsonl")[1], 0).events
    assert (fut.size, fut.taker_side, fut.exch_ns) == (108.0, Side.SELL, 1545136464123 * 1_000_000)


@pytest.mark.parametrize("name", ["sub_ack.cf.jsonl", "sub_ack.obs2026.jsonl", "heartbeat.obs2026.jsonl",
                                  "other.obs2026.jsonl", "sent.obs2026.jsonl"])
def test_gate_control_and_other_channels_yield_nothing(name):
    for raw in lines(name):
        assert SPOT.parse(raw, 0).events == [] and FUT.parse(raw, 0).events == []


def test_gate_subscribe_error_is_a_feed_error():
    for raw in lines("error.obs2026.jsonl") + [lines("control.docs.jsonl")[4]]:
        (err,) = FUT.parse(raw, 0).events
        assert isinstance(err, FeedError) and "Alert sub" in err.reason


@pytest.mark.parametrize("result", [
    {"s": "BTC_USDT", "U": 5, "u": 4, "t": 1, "b": [], "a": []},
    {"s": "BTC_USDT", "U": "x", "u": 4, "t": 1, "b": [], "a": []},
    {"s": "BTC_USDT", "U": 1, "u": 4, "t": 1, "b": [["1"]], "a": []},
    {"s": "BTC_USDT", "U": 1, "u": 4, "t": 1, "b": [[True, "1"]], "a": []},
    {"s": "BTC_USDT", "U": 1, "u": 4, "t": 1, "b": None, "a": []},
    {"s": "BTC_USDT", "U": 1, "u": 4, "t": 1, "b": [], "a": [], "full": "yes"},
    {"s": "BTC_USDT", "U": 1, "u": 4, "b": [], "a": []},
    {"s": "BTCUSDT", "U": 1, "u": 4, "t": 1, "b": [], "a": []}])
def test_gate_parse_malformed_diff_yields_feed_error(result):
    frame = json.dumps({"time": 1, "channel": "spot.order_book_update", "event": "update", "result": result})
    (event,) = SPOT.parse(frame, 0).events
    assert isinstance(event, FeedError) and event.venue == "gate"
    assert canon(SPOT.parse(frame, 0)) == canon(SPOT._parse_generic(frame, 0))


@pytest.mark.parametrize("trade", [{"size": 0, "id": 1, "create_time_ms": 1, "price": "1", "contract": "BTC_USDT"},
                                   {"size": 1, "id": 1, "create_time_ms": 1, "price": "-1", "contract": "BTC_USDT"},
                                   {"size": True, "id": 1, "create_time_ms": 1, "price": "1", "contract": "BTC_USDT"},
                                   {"size": 1, "id": -1, "create_time_ms": 1, "price": "1", "contract": "BTC_USDT"}])
def test_gate_parse_garbage_futures_trade_yields_feed_error(trade):
    frame = json.dumps({"channel": "futures.trades", "event": "update", "result": [trade]})
    (event,) = FUT.parse(frame, 0).events
    assert isinstance(event, FeedError)


def test_gate_typed_path_equals_generic_on_recorded_and_documented_frames():
    for name in ("spot_2021-04-22.capture.jsonl", "usdt_futures_2023-05-24.capture.jsonl"):
        for rec in read_records(DATA / "gate" / name):
            if rec["src"] == "ws":
                for driver in (SPOT, FUT):
                    generic = driver._parse_generic(rec["data"], 7)
                    assert canon(driver.parse(rec["data"], 7)) == canon(generic)


def _trimmed(frame: dict) -> dict:
    result = frame.get("result")
    if isinstance(result, dict):
        frame = {**frame, "result": {k: v[:3] if isinstance(v, list) else v for k, v in result.items()}}
    return frame


def test_gate_typed_path_every_near_miss_same_as_generic():
    frames = [_trimmed(json.loads(raw)) for raw in lines("book_delta.cf.jsonl")[:1] + lines("book_delta.cf.jsonl")[2:3]
              + lines("book_delta.docs.jsonl")]
    for frame in frames:
        for mutated in _near_misses(frame):
            for driver in (SPOT, FUT):
                assert canon(driver.parse(mutated, 7)) == canon(driver._parse_generic(mutated, 7)), mutated


def test_gate_nan_and_negative_levels_are_refused_by_the_book_not_a_crash():
    store = BookStore.create(f"gate-garbage-{uuid.uuid4().hex[:8]}", 8, 5)
    try:
        router = FeedRouter(GateDriver(Market.SPOT), BookWriter(store))
        router.on_snapshot_response("BTC/USDT", lines("book_snapshot_rest.docs.jsonl")[0], 0)
        assert router.stats("BTC/USDT")["state"] == "synced"
        for n, level in enumerate([["nan", "1"], ["1.18", "-2"], ["inf", "1"]]):
            router.on_frame("c", json.dumps({"channel": "spot.order_book_update", "event": "update", "result": {
                "t": 1, "s": "BTC_USDT", "U": 123457 + n, "u": 123457 + n, "b": [level], "a": []}}), 0)
            stats = router.stats("BTC/USDT")
            assert stats["state"] == "resyncing" and stats["errors"] == n + 1
            router.on_snapshot_response("BTC/USDT", lines("book_snapshot_rest.docs.jsonl")[0].replace(
                "123456", str(123457 + n)), 0)
    finally:
        store.close()


# ------------------------------------------------------------------- REST


def test_gate_snapshot_request_with_id_and_matching_limit():
    req = SPOT.snapshot_request("OMG/USDT", 20)
    assert (req.url, req.params) == ("https://api.gateio.ws/api/v4/spot/order_book",
                                     {"currency_pair": "OMG_USDT", "limit": 100, "with_id": "true"})
    freq = FUT.snapshot_request("OMG/USDT", 20)
    assert (freq.url, freq.params["contract"]) == ("https://api.gateio.ws/api/v4/futures/usdt/order_book", "OMG_USDT")
    spot_url = "https://api.gateio.ws/api/v4/spot/order_book?currency_pair=NEO_BTC&limit=100&with_id=true"
    fut_url = "https://api.gateio.ws/api/v4/futures/usdt/order_book?contract=OMG_USDT&limit=100&with_id=true"
    assert (SPOT.snapshot_pair(spot_url), SPOT.snapshot_pair(fut_url)) == ("NEO/BTC", None)
    assert (FUT.snapshot_pair(fut_url), FUT.snapshot_pair(spot_url)) == ("OMG/USDT", None)


def test_gate_parse_snapshot_documented_spot_ms_and_futures_seconds():
    spot_doc, fut_doc = lines("book_snapshot_rest.docs.jsonl")
    spot = SPOT.parse_snapshot("X/Y", spot_doc, 0)
    assert (spot.seq, spot.exch_ns, spot.asks[0]) == (123456, 1623898993123 * 1_000_000, (1.52, 1.151))
    fut = FUT.parse_snapshot("X/Y", fut_doc, 0)
    assert (fut.seq, fut.exch_ns, fut.bids[0]) == (123456, 1623898993123 * 1_000_000, (1.17, 150.0))
    real = SPOT.parse_snapshot("HAI/ETH", lines("book_snapshot_rest.cf.jsonl")[0], 0)
    assert real.seq == 2691446 and real.exch_ns == 0  # 2021 bodies carry no "current"


@pytest.mark.parametrize("body", ['{"label":"INVALID_CURRENCY","message":"Invalid currency"}',
                                  '{"current":1,"update":1,"asks":[],"bids":[]}',  # without with_id
                                  '{"id":"x","asks":[],"bids":[]}', "[]", '{"id":1,"asks":[["1"]],"bids":[]}'])
def test_gate_parse_snapshot_error_or_unbridgeable_body_raises(body):
    assert outcome(SPOT.parse_snapshot, "X/Y", body, 0)[0] == "raised"


# --------------------------------------------------------------------- rule


def _delta(first: int, last: int) -> BookDelta:
    return BookDelta("gate", Market.SPOT, "X/Y", [], [], first, last)


def test_gate_rule_real_neo_btc_ids():
    # NEO_BTC 2021: REST id 31244065; the first two diffs end at or before it.
    records = read_records(DATA / "gate" / "spot_NEO_BTC.capture.jsonl")
    diffs = [json.loads(r["data"])["result"] for r in records if r["src"] == "ws"]
    rule = SPOT.sync_rule()
    rule.on_snapshot(BookSnapshot("gate", Market.SPOT, "NEO/BTC", [], [], 31244065))
    verdicts = [rule.check(_delta(d["U"], d["u"])) for d in diffs]
    assert verdicts.count(Verdict.DROP) == 3 and verdicts.count(Verdict.APPLY) == 36 and Verdict.GAP not in verdicts


def test_gate_rule_hand_built_bridge_gap_and_duplicate():
    rule = SPOT.sync_rule()
    rule.on_snapshot(BookSnapshot("gate", Market.SPOT, "X/Y", [], [], 100))
    assert rule.check(_delta(95, 100)) is Verdict.DROP
    assert rule.check(_delta(99, 103)) is Verdict.APPLY  # U <= B+1 <= u
    assert rule.check(_delta(99, 103)) is Verdict.DROP  # duplicate
    assert rule.check(_delta(104, 104)) is Verdict.APPLY  # an empty update still advances the id
    assert rule.check(_delta(106, 110)) is Verdict.GAP


def test_gate_snapshot_older_than_the_first_diff_is_a_gap():
    rule = SPOT.sync_rule()
    rule.on_snapshot(BookSnapshot("gate", Market.SPOT, "X/Y", [], [], 100))
    assert rule.check(_delta(102, 105)) is Verdict.GAP


# ------------------------------------------------------------------- replay


def replay(market: str, path: Path, *extra: str) -> list[dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "replay.py"), "book", "--exchange", "gate",
                           "--market", market, "--input", str(path), *extra],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


CAPTURES = [("spot", "spot_2021-04-22.capture.jsonl", 10), ("spot", "spot_OMG_USDT.capture.jsonl", 1),
            ("spot", "spot_NEO_BTC.capture.jsonl", 1), ("futures", "usdt_futures_2023-05-24.capture.jsonl", 10),
            ("futures", "futures_OMG_USDT.capture.jsonl", 1), ("futures", "futures_RDNT_USDT.capture.jsonl", 1)]


@pytest.mark.parametrize("market,name,books", CAPTURES)
def test_gate_replay_every_capture_no_gap_books_equal_reference(market, name, books):
    path = DATA / "gate" / name
    reports = replay(market, path, "--depth", "5000")
    expected = {s.replace("_", "/"): b for s, b in gate_books(read_records(path), market == "futures").items()}
    assert len(reports) == len(expected) == books
    for report in reports:
        ref = expected[report["pair"]]
        assert report["synced"] is True
        assert (report["gaps"], report["resyncs"], report["errors"]) == (0, 0, 0)
        assert report["deltas_applied"] == ref.applied and report["seq"] == ref.last
        assert [report["bids"], report["asks"]] == list(ref.top(5000))


def test_gate_replay_capture_with_a_lost_diff_reports_resyncing(tmp_path):
    rows = (DATA / "gate" / "futures_OMG_USDT.capture.jsonl").read_text().splitlines()
    del rows[50]
    path = tmp_path / "gap.jsonl"
    path.write_text("\n".join(rows) + "\n")
    (report,) = replay("futures", path)
    assert report["synced"] is False and report["gaps"] == 1


def test_gate_subscribe_ack_names_its_book_when_it_echoes_the_payload():
    ack = json.loads(lines("sub_ack.obs2026.jsonl")[0])
    ack.update(channel="futures.order_book_update", payload=["BTC_USDT", "100ms", "100"])
    assert FUT.parse(json.dumps(ack), 0).subscribed == ("BTC/USDT",)
    assert SPOT.parse(lines("sub_ack.cf.jsonl")[1], 0).subscribed == ()  # 2021 acks echo nothing
    ack.update(payload=["BTCUSDT"])
    assert FUT.parse(json.dumps(ack), 0).subscribed == () and FUT.parse(json.dumps(ack), 0).events == []

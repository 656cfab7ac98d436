"""Coinbase Advanced Trade driver: product naming per market, subscribe frames,
parsing the docs' example messages and the recorded-style capture, the
per-connection ``sequence_num`` rule (epochs) and the per-book epoch rule, the
replay CLI against the independent reference, and refusing bad values."""

from __future__ import annotations

import json
import math
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.sync import FeedRouter
from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues import make_driver
from engine.venues.base import Parsed, ResyncMethod, Subscription, Verdict
from engine.venues.coinbase import (
    EPOCH,
    CoinbaseConnectionRule,
    CoinbaseDriver,
    CoinbaseRule,
    iso_ns,
)
from tests.feed.test_replay import replay
from tests.venues.reference import DATA, coinbase_books, read_records
from tests.venues.test_parsers_fuzz import FUZZ, JSON
from tests.venues.test_wire import _near_misses, _paths, _replaced, canon

SPOT = CoinbaseDriver(Market.SPOT)
FUTURES = CoinbaseDriver(Market.FUTURES)
DOCS = DATA / "coinbase"
CAPTURE = DOCS / "spot_at_style_2021-04-17.capture.jsonl.zst"


def docs(name: str) -> list[str]:
    return (DOCS / name).read_text().splitlines()


def l2(seq: int, kind: str, product: str, *levels: tuple[str, str, str]) -> str:
    """A frame of the docs' ``l2_data`` shape (hand-built for the rule tests)."""
    return json.dumps({"channel": "l2_data", "timestamp": "2023-02-09T20:32:50.714964855Z",
                       "sequence_num": seq, "events": [{"type": kind, "product_id": product, "updates": [
                           {"side": side, "event_time": "2023-02-09T20:32:50.7Z", "price_level": p,
                            "new_quantity": q} for side, p, q in levels]}]}, separators=(",", ":"))


def heartbeat(seq: int) -> str:
    return json.dumps({"channel": "heartbeats", "timestamp": "2023-06-23T20:31:26.122969572Z",
                       "sequence_num": seq, "events": [{"current_time": "x", "heartbeat_counter": seq}]})


# ------------------------------------------------------------------ naming


def test_coinbase_markets_endpoints_and_resync():
    assert CoinbaseDriver.markets == (Market.SPOT, Market.FUTURES)
    assert SPOT.connect_url([]) == "wss://advanced-trade-ws.coinbase.com"
    assert SPOT.resync is ResyncMethod.RESUBSCRIBE and SPOT.snapshot_request("BTC/USD", 50) is None
    assert make_driver("coinbase", "futures").market is Market.FUTURES


def test_coinbase_product_ids_map_per_market():
    assert SPOT.symbol("BTC/USD") == "BTC-USD" and SPOT.pair("ETH-EUR") == "ETH/EUR"
    assert FUTURES.symbol("BIT/USD-240628") == "BIT-28JUN24-CDE"
    assert FUTURES.pair("BIP-20DEC30-CDE") == "BIP/USD-301220"
    assert SPOT._own_pair("BIT-28JUN24-CDE") is None and FUTURES._own_pair("BTC-USD") is None
    assert SPOT._own_pair("BTC-PERP-INTX") is None and FUTURES._own_pair("BTC-PERP-INTX") is None
    with pytest.raises(ValueError):
        FUTURES.symbol("BTC/USDT-240628")


def test_coinbase_subscribe_one_channel_per_frame_then_heartbeats():
    frames = [json.loads(f) for f in SPOT.subscribe([Subscription("ETH/USD"), Subscription("ETH/EUR")])]
    assert frames == [
        {"type": "subscribe", "product_ids": ["ETH-USD", "ETH-EUR"], "channel": "level2"},
        {"type": "subscribe", "product_ids": ["ETH-USD", "ETH-EUR"], "channel": "market_trades"},
        {"type": "subscribe", "channel": "heartbeats"}]
    assert frames[0] == json.loads(docs("sent.docs.jsonl")[0])  # the docs' request, field for field
    assert [json.loads(f)["channel"] for f in SPOT.unsubscribe([Subscription("ETH/USD")])] == [
        "level2", "market_trades"]


def test_coinbase_resubscribe_cycles_level2_only():
    frames = [json.loads(f) for f in SPOT.resubscribe([Subscription("BTC/USD")])]
    assert [(f["type"], f["channel"]) for f in frames] == [("unsubscribe", "level2"),
                                                           ("subscribe", "level2")]


# ----------------------------------------------------------------- parsing


def test_coinbase_parse_docs_l2_snapshot():
    parsed = SPOT.parse(docs("book_snapshot.docs.jsonl")[0], 7)
    (snap,) = parsed.events
    assert isinstance(snap, BookSnapshot) and snap.pair == "BTC/USD"
    assert snap.bids == [(21921.73, 0.06317902), (21921.3, 0.02)] and snap.asks == []
    assert snap.exch_ns == 1675974770714964855 and parsed.conn_seq == 0
    assert parsed == SPOT._parse_typed(docs("book_snapshot.docs.jsonl")[0], 7)


@pytest.mark.parametrize("name", ["heartbeat.docs.jsonl", "other.docs.jsonl"])
def test_coinbase_parse_docs_control_and_other_channels_numbered_without_events(name):
    for line in docs(name):
        parsed = SPOT.parse(line, 0)
        assert parsed.events == [] and parsed.conn_seq == 0


def test_coinbase_trades_maker_side_becomes_taker_and_snapshot_history_skipped():
    (line,) = docs("trade.docs.jsonl")
    assert SPOT.parse(line, 0).events == []  # the docs' example is the subscribe-time snapshot
    msg = json.loads(line)
    msg["events"][0]["type"] = "update"
    (trade,) = SPOT.parse(json.dumps(msg), 3).events
    assert isinstance(trade, Trade) and trade.taker_side is Side.SELL  # maker BUY: taker sold
    assert (trade.pair, trade.price, trade.size, trade.trade_id) == ("ETH/USD", 1260.01, 0.3, "000000000")
    assert trade.exch_ns == 1565815347265000000


def test_coinbase_parse_capture_update_sides_and_typed_equals_generic():
    seen = 0
    for rec in read_records(CAPTURE)[:400]:
        generic = SPOT._parse_generic(rec["data"], 1)
        assert SPOT.parse(rec["data"], 1) == generic
        for event in generic.events:
            if isinstance(event, BookDelta):
                msg = json.loads(rec["data"])
                sides = {u["side"] for u in msg["events"][0]["updates"]}
                assert bool(event.bids) == ("bid" in sides) and bool(event.asks) == ("offer" in sides)
                assert event.last_seq == msg["sequence_num"]
                seen += 1
    assert seen > 300


@pytest.mark.parametrize("frame", [
    '{"type":"error","message":"failure to subscribe"}',
    l2(1, "weird", "BTC-USD", ("bid", "1", "1")),
    l2(1, "update", "BTC-USD", ("ask", "1", "1")),  # the docs' side is "offer"
    l2(1, "update", "BTC-USD", ("bid", "abc", "1")),
    l2(1, "update", "BTC-USD", ("bid", "1", "1")).replace('"sequence_num":1', '"sequence_num":"1"'),
    l2(1, "update", "BTC-USD", ("bid", "1", "1")).replace("2023-02-09T20:32:50.714964855Z", "yesterday"),
    l2(1, "update", "BTC-USD", ("bid", "1", "1")).replace("2023-02-09T20:32:50.714964855Z",
                                                          "9999-02-09T20:32:50Z"),
    "{", "", "[]", b"\xff\xfe"])
def test_coinbase_bad_frames_yield_feed_error(frame):
    (event,) = SPOT.parse(frame, 0).events
    assert isinstance(event, FeedError)


@pytest.mark.parametrize("price,size", [("nan", "1"), ("1", "inf"), ("-1", "1"), ("1", "0"), ("1", "-0.5")])
def test_coinbase_trade_with_nan_negative_or_zero_values_is_refused(price, size):
    frame = json.dumps({"channel": "market_trades", "timestamp": "2023-02-09T20:19:35Z", "sequence_num": 4,
                        "events": [{"type": "update", "trades": [{"trade_id": "1", "product_id": "BTC-USD",
                                                                  "price": price, "size": size, "side": "BUY",
                                                                  "time": "2023-02-09T20:19:35Z"}]}]})
    (event,) = SPOT.parse(frame, 0).events
    assert isinstance(event, FeedError)


def test_coinbase_nan_book_level_reaches_the_writer_which_refuses_it():
    """As with every driver (wire.py), a NaN level is parsed as float() reads it;
    the book writer refuses it and the book resyncs, counted."""
    (delta,) = SPOT.parse(l2(1, "update", "BTC-USD", ("bid", "nan", "1")), 0).events
    assert math.isnan(delta.bids[0][0])
    store = BookStore.create(f"cb{uuid.uuid4().hex[:10]}", 8, 10)
    try:
        router = FeedRouter(SPOT, BookWriter(store))
        router.on_frame("c", l2(0, "snapshot", "BTC-USD", ("bid", "1", "1"), ("offer", "2", "1")), 1)
        router.on_frame("c", l2(1, "update", "BTC-USD", ("bid", "nan", "1")), 2)
        assert router.stats("BTC/USD")["state"] == "resyncing" and router.stats("BTC/USD")["errors"] == 1
    finally:
        store.close()


def test_coinbase_iso_ns_reads_rfc3339_utc_with_0_to_9_digits():
    assert iso_ns("2023-02-09T20:32:50Z") == 1675974770 * 10**9
    assert iso_ns("2019-08-14T20:42:27.265Z") == 1565815347265000000
    assert iso_ns("2023-02-09T20:32:50.714964855Z") == 1675974770714964855
    for bad in ("2023-02-09 20:32:50Z", "2023-02-30T20:32:50Z", "2023-02-09T20:32:50.1234567890Z",
                "2023-02-09T20:32:50+00:00", "1969-12-31T23:59:59Z", "2023-02-09T20:32:50.٣Z"):
        with pytest.raises(ValueError):
            iso_ns(bad)


# ------------------------------------------------------------------- rules


def _admit(rule: CoinbaseConnectionRule, frame: str) -> Parsed:
    return rule.admit(SPOT.parse(frame, 5))


def test_coinbase_connection_rule_in_order_frames_share_one_epoch():
    rule = CoinbaseConnectionRule(Market.SPOT)
    events = [e for f in (l2(10, "snapshot", "BTC-USD", ("bid", "1", "1")), heartbeat(11),
                          l2(12, "update", "BTC-USD", ("bid", "1", "2")))
              for e in _admit(rule, f).events]
    assert len({e.extra[EPOCH] for e in events}) == 1  # type: ignore[union-attr]


def test_coinbase_connection_rule_gap_flags_every_book_seen_on_the_socket():
    rule = CoinbaseConnectionRule(Market.SPOT)
    a = _admit(rule, l2(0, "snapshot", "BTC-USD", ("bid", "1", "1"))).events[0]
    b = _admit(rule, l2(1, "snapshot", "ETH-USD", ("bid", "1", "1"))).events[0]
    _admit(rule, heartbeat(2))
    parsed = _admit(rule, l2(4, "update", "BTC-USD", ("bid", "1", "3")))  # 3 was lost
    lost = parsed.events[:2]
    assert [e.pair for e in lost] == ["BTC/USD", "ETH/USD"]  # type: ignore[union-attr]
    assert all(isinstance(e, BookDelta) and not e.bids and not e.asks for e in lost)
    for book_snapshot in (a, b):
        rule_a = CoinbaseRule()
        rule_a.on_snapshot(book_snapshot)  # type: ignore[arg-type]
        assert all(rule_a.check(e) is Verdict.GAP for e in parsed.events)  # type: ignore[arg-type]


def test_coinbase_connection_rule_repeat_and_late_messages_are_dropped():
    rule = CoinbaseConnectionRule(Market.SPOT)
    _admit(rule, l2(0, "snapshot", "BTC-USD", ("bid", "1", "1")))
    _admit(rule, l2(1, "update", "BTC-USD", ("bid", "1", "2")))
    assert _admit(rule, l2(1, "update", "BTC-USD", ("bid", "1", "2"))).events == []
    _admit(rule, l2(2, "update", "BTC-USD", ("bid", "1", "3")))
    assert _admit(rule, l2(1, "update", "BTC-USD", ("bid", "1", "9"))).events == []
    assert len(_admit(rule, l2(3, "update", "BTC-USD", ("bid", "1", "4"))).events) == 1


def test_coinbase_connection_rule_new_socket_numbering_from_zero_starts_an_epoch():
    rule = CoinbaseConnectionRule(Market.SPOT)
    old = _admit(rule, l2(0, "snapshot", "BTC-USD", ("bid", "1", "1"))).events[0]
    _admit(rule, l2(1, "update", "BTC-USD", ("bid", "1", "2")))
    parsed = _admit(rule, l2(0, "snapshot", "BTC-USD", ("bid", "1", "5")))  # a replaced socket
    assert len(parsed.events) == 2 and parsed.events[0].extra[EPOCH] != old.extra[EPOCH]  # type: ignore[union-attr]
    assert parsed.events[1].extra[EPOCH] == parsed.events[0].extra[EPOCH]  # type: ignore[union-attr]
    assert len(_admit(rule, l2(1, "update", "BTC-USD", ("bid", "1", "6"))).events) == 1


def test_coinbase_book_rule_epochs():
    rule = CoinbaseRule()
    rule.on_snapshot(BookSnapshot("coinbase", Market.SPOT, "X/Y", [], [], 0, extra={EPOCH: 5}))
    assert rule.check(BookDelta("coinbase", Market.SPOT, "X/Y", [], [], 1, 1, extra={EPOCH: 5})) is Verdict.APPLY
    assert rule.check(BookDelta("coinbase", Market.SPOT, "X/Y", [], [], 1, 1, extra={EPOCH: 4})) is Verdict.DROP
    assert rule.check(BookDelta("coinbase", Market.SPOT, "X/Y", [], [], 1, 1, extra={EPOCH: 6})) is Verdict.GAP
    bare = CoinbaseRule()  # no connection rule ran: nothing to check against
    bare.on_snapshot(BookSnapshot("coinbase", Market.SPOT, "X/Y", [], []))
    assert bare.check(BookDelta("coinbase", Market.SPOT, "X/Y", [], [], 1, 1)) is Verdict.APPLY


GAP_FRAMES = [l2(0, "snapshot", "BTC-USD", ("bid", "10", "1"), ("offer", "11", "1")),
              l2(1, "snapshot", "ETH-USD", ("bid", "5", "1"), ("offer", "6", "1")),
              l2(2, "update", "BTC-USD", ("bid", "10", "2")),
              l2(4, "update", "ETH-USD", ("bid", "5", "3"))]  # 3 never arrived


def test_coinbase_router_gap_on_a_socket_resyncs_every_book_it_carries():
    store = BookStore.create(f"cb{uuid.uuid4().hex[:10]}", 8, 10)
    asked: list[str] = []
    try:
        router = FeedRouter(SPOT, BookWriter(store), request_resubscribe=asked.append)
        for i, frame in enumerate(GAP_FRAMES):
            router.on_frame("conn-1", frame, i)
        assert {p: router.stats(p)["state"] for p in ("BTC/USD", "ETH/USD")} == {
            "BTC/USD": "resyncing", "ETH/USD": "resyncing"}
        assert sorted(asked) == ["BTC/USD", "ETH/USD"]
    finally:
        store.close()


# ------------------------------------------------------------------ replay


def test_coinbase_replay_cli_capture_books_match_reference_level_by_level():
    reports = replay("coinbase", "spot", CAPTURE, "--depth", "5000")
    expected = coinbase_books(read_records(CAPTURE))  # asserts sequence_num has no gap
    assert sorted(r["pair"] for r in reports) == sorted(p.replace("-", "/") for p in expected)
    for report in reports:
        ref = expected[report["pair"].replace("/", "-")]
        bids, asks = ref.top(5000)
        assert report["synced"] and report["gaps"] == report["resyncs"] == report["errors"] == 0
        assert report["deltas_applied"] == ref.applied
        assert (report["bids"], report["asks"]) == (bids, asks)


# -------------------------------------------------------------------- fuzz


def _frames_to_mutate() -> list[dict]:
    update = json.loads(docs("trade.docs.jsonl")[0])
    update["events"][0]["type"] = "update"
    return [json.loads(docs("book_snapshot.docs.jsonl")[0]), update, json.loads(heartbeat(3)),
            json.loads(l2(9, "update", "BTC-USD", ("bid", "1.5", "2"), ("offer", "1.6", "0")))]


@FUZZ
@given(st.sampled_from(_frames_to_mutate()), st.data(), JSON)
def test_coinbase_mutated_frames_never_raise_and_typed_equals_generic(frame, data, value):
    mutated = _replaced(frame, data.draw(st.sampled_from(list(_paths(frame)))), value)
    for driver in (SPOT, FUTURES):
        parsed = driver.parse(mutated, 7)
        assert all(isinstance(e, (BookDelta, BookSnapshot, Trade, FeedError)) for e in parsed.events)
        assert canon(parsed) == canon(driver._parse_generic(mutated, 7))


def test_coinbase_every_near_miss_of_its_frames_typed_equals_generic():
    for frame in _frames_to_mutate():
        for mutated in _near_misses(frame):
            for driver in (SPOT, FUTURES):
                assert canon(driver.parse(mutated, 7)) == canon(driver._parse_generic(mutated, 7)), mutated

"""Bybit v5 driver: naming, frames, parsing the official history capture, the
u-continuity rule and the u=1 restart snapshot."""

from __future__ import annotations

import json

import pytest

from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues.base import ResyncMethod, Subscription, Verdict
from engine.venues.bybit import REPEAT_WINDOW, BybitDriver, BybitRule
from tests.venues.reference import DATA

LINEAR = BybitDriver(Market.FUTURES)
SPOT = BybitDriver(Market.SPOT)
HISTORY = (DATA / "bybit" / "bybit_history_ob500_XRPUSDT_2024-12-01.v5.jsonl").read_text().splitlines()
# Shape from the v5 trade doc page (no V5 trade capture exists; see docs/venues/bybit.md).
DOC_TRADE = ('{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,'
             '"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick",'
             '"i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}')


def test_bybit_endpoints_per_category():
    assert LINEAR.connect_url([]) == "wss://stream.bybit.com/v5/public/linear"
    assert SPOT.connect_url([]) == "wss://stream.bybit.com/v5/public/spot"
    assert LINEAR.resync is ResyncMethod.RESUBSCRIBE
    assert LINEAR.snapshot_request("BTC/USDT", 50) is None


def test_bybit_subscribe_picks_offered_depth_and_batches_ten_args():
    subs = [Subscription(f"C{i}/USDT", depth=20) for i in range(6)]
    frames = [json.loads(f) for f in SPOT.subscribe(subs)]
    assert [len(f["args"]) for f in frames] == [10, 2]
    assert frames[0]["args"][:2] == ["orderbook.50.C0USDT", "publicTrade.C0USDT"]
    assert all(f["op"] == "subscribe" for f in frames)
    assert LINEAR.book_depth(1) == 1 and LINEAR.book_depth(300) == 1000


def test_bybit_parse_history_snapshot_and_delta():
    snap = LINEAR.parse(HISTORY[0], 1).events[0]
    delta = LINEAR.parse(HISTORY[1], 2).events[0]
    first, second = json.loads(HISTORY[0]), json.loads(HISTORY[1])
    assert isinstance(snap, BookSnapshot) and isinstance(delta, BookDelta)
    assert snap.pair == "XRP/USDT" and snap.seq == first["data"]["u"]
    assert len(snap.bids) == len(first["data"]["b"]) and snap.bids[0] == (1.9531, 6203.0)
    assert delta.last_seq == second["data"]["u"] == snap.seq + 1
    assert delta.extra["seq"] == second["data"]["seq"]
    assert delta.exch_ns == second["cts"] * 1_000_000


def test_bybit_parse_doc_trade_taker_side():
    (trade,) = LINEAR.parse(DOC_TRADE, 0).events
    assert isinstance(trade, Trade)
    assert (trade.pair, trade.price, trade.size, trade.taker_side) == ("BTC/USDT", 16578.5, 0.001, Side.BUY)


@pytest.mark.parametrize("frame", ['{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}',
                                   '{"success":true,"ret_msg":"subscribe","conn_id":"x","op":"subscribe"}',
                                   '{"topic":"tickers.BTCUSDT","type":"snapshot","data":{}}'])
def test_bybit_parse_control_frames_yield_nothing(frame):
    assert LINEAR.parse(frame, 0).events == []


@pytest.mark.parametrize("frame", [
    '{"success":false,"ret_msg":"error:handler not found","conn_id":"x","op":"subscribe"}',
    '{"topic":"orderbook.50.BTCUSDT","type":"weird","data":{"s":"BTCUSDT","b":[],"a":[],"u":1}}',
    '{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[["1","2","3"]],"a":[],"u":1}}',
    "{", ""])
def test_bybit_parse_bad_frames_yield_feed_error(frame):
    (event,) = LINEAR.parse(frame, 0).events
    assert isinstance(event, FeedError)


def _delta(u: int) -> BookDelta:
    return BookDelta("bybit", Market.FUTURES, "X/Y", [], [], u, u)


def test_bybit_rule_history_u_contiguous_all_apply():
    rule = BybitRule()
    frames = [json.loads(line) for line in HISTORY]
    rule.on_snapshot(BookSnapshot("bybit", Market.FUTURES, "XRP/USDT", [], [], frames[0]["data"]["u"]))
    assert all(rule.check(_delta(f["data"]["u"])) is Verdict.APPLY for f in frames[1:])


def test_bybit_rule_skipped_u_is_gap_and_old_buffered_u_dropped():
    rule = BybitRule()
    rule.on_snapshot(BookSnapshot("bybit", Market.FUTURES, "X/Y", [], [], 100))
    assert rule.check(_delta(99)) is Verdict.DROP
    assert rule.check(_delta(101)) is Verdict.APPLY
    assert rule.check(_delta(103)) is Verdict.GAP


def test_bybit_rule_repeated_or_older_u_dropped_not_gap():
    rule = BybitRule()
    rule.on_snapshot(BookSnapshot("bybit", Market.FUTURES, "X/Y", [], [], 100))
    assert [rule.check(_delta(u)) for u in (101, 102, 102, 101, 100, 103)] == [
        Verdict.APPLY, Verdict.APPLY, Verdict.DROP, Verdict.DROP, Verdict.DROP, Verdict.APPLY]


def test_bybit_rule_u_far_behind_or_u1_delta_is_gap():
    rule = BybitRule()
    rule.on_snapshot(BookSnapshot("bybit", Market.FUTURES, "X/Y", [], [], 5000))
    assert rule.check(_delta(5000 - REPEAT_WINDOW + 1)) is Verdict.DROP
    assert rule.check(_delta(5000 - REPEAT_WINDOW)) is Verdict.GAP  # restarted, or too stale
    rule.on_snapshot(BookSnapshot("bybit", Market.FUTURES, "X/Y", [], [], 50))
    assert rule.check(_delta(1)) is Verdict.GAP  # a restart whose u=1 snapshot was lost


def test_bybit_rule_restart_snapshot_u1_resets_sequence():
    rule = BybitRule()
    rule.on_snapshot(BookSnapshot("bybit", Market.FUTURES, "X/Y", [], [], 20254918))
    rule.on_snapshot(BookSnapshot("bybit", Market.FUTURES, "X/Y", [], [], 1))
    assert rule.check(_delta(2)) is Verdict.APPLY

"""OKX driver: instId naming per market, frames, parsing the 2022 capture, the
checksum (verified where non-zero, ignored where 0) and the seqId chain."""

from __future__ import annotations

import json

import pytest

from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues.base import Subscription, Verdict
from engine.venues.okx import REPEAT_WINDOW, OkxDriver, OkxRule, checksum
from tests.venues.reference import DATA, okx_crc

SPOT = OkxDriver(Market.SPOT)
SWAP = OkxDriver(Market.FUTURES)
SEQ = (DATA / "okx" / "book_seq.cf_books.BTC-USDT.jsonl").read_text().splitlines()
FRAMES = [json.loads(line)["raw"] for line in SEQ]


def test_okx_instid_maps_per_market():
    assert SPOT.symbol("BTC/USDT") == "BTC-USDT"
    assert SWAP.symbol("BTC/USDT") == "BTC-USDT-SWAP"
    assert SWAP.symbol("BTC/USD-220527") == "BTC-USD-220527"
    assert SWAP.pair("UNI-USD-SWAP") == "UNI/USD"
    assert SWAP.pair("BTC-USD-220527") == "BTC/USD-220527"


def test_okx_subscribe_books_and_trades_args():
    (frame,) = SWAP.subscribe([Subscription("BTC/USDT")])
    assert json.loads(frame) == {"op": "subscribe", "args": [
        {"channel": "books", "instId": "BTC-USDT-SWAP"}, {"channel": "trades", "instId": "BTC-USDT-SWAP"}]}


def test_okx_parse_real_snapshot_and_update():
    snap = SPOT.parse(FRAMES[0], 1).events[0]
    update = SPOT.parse(FRAMES[1], 2).events[0]
    data = json.loads(FRAMES[1])["data"][0]
    assert isinstance(snap, BookSnapshot) and isinstance(update, BookDelta)
    assert snap.pair == "BTC/USDT" and snap.asks[0] == (30243.5, 1.44679)
    assert update.extra["checksum"] == data["checksum"]
    assert update.last_seq == -1  # the 2022 capture predates seqId


def test_okx_parse_other_market_instid_is_skipped_not_error():
    frame = json.loads((DATA / "okx" / "book_seq.cf_books.UNI-USD-SWAP.jsonl").read_text().splitlines()[0])["raw"]
    assert SPOT.parse(frame, 0).events == []
    assert len(SWAP.parse(frame, 0).events) == 1


def test_okx_parse_real_trades_taker_side():
    for line in (DATA / "okx" / "trade.cf.jsonl").read_text().splitlines():
        data = json.loads(line)["data"][0]
        events = (SPOT if data["instId"].count("-") == 1 else SWAP).parse(line, 0).events
        (trade,) = events
        assert isinstance(trade, Trade)
        assert trade.taker_side == (Side.BUY if data["side"] == "buy" else Side.SELL)
        assert trade.trade_id == data["tradeId"]


@pytest.mark.parametrize("frame", ["pong", b"pong"] +
                         (DATA / "okx" / "sub_ack.cf.jsonl").read_text().splitlines())
def test_okx_parse_pong_and_acks_yield_nothing(frame):
    assert SPOT.parse(frame, 0).events == []


@pytest.mark.parametrize("frame", ['{"event":"error","code":"60012","msg":"Invalid request"}',
                                   '{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"x","data":[]}',
                                   "ping?", '{"arg":{}}'])
def test_okx_parse_errors_yield_feed_error(frame):
    (event,) = SPOT.parse(frame, 0).events
    assert isinstance(event, FeedError)


def test_okx_parse_notice_asks_reconnect():
    assert SPOT.parse('{"event":"notice","code":"64008","msg":"reconnect"}', 0).reconnect


def test_okx_checksum_matches_independent_reference_on_snapshot():
    data = json.loads(FRAMES[0])["data"][0]
    assert checksum(data["bids"], data["asks"]) == okx_crc(data["bids"], data["asks"]) == data["checksum"]


def test_okx_rule_real_sequence_every_checksum_verified():
    rule = OkxRule()
    snap = SPOT.parse(FRAMES[0], 0).events[0]
    assert rule.verify_snapshot(snap)
    rule.on_snapshot(snap)
    verdicts = [rule.check(SPOT.parse(f, 0).events[0]) for f in FRAMES[1:]]
    assert verdicts == [Verdict.APPLY] * (len(FRAMES) - 1)


def test_okx_rule_tampered_size_fails_checksum():
    rule = OkxRule()
    rule.on_snapshot(SPOT.parse(FRAMES[0], 0).events[0])
    msg = json.loads(FRAMES[1])
    msg["data"][0]["asks"][0][1] = "9.99"
    assert rule.check(SPOT.parse(json.dumps(msg), 0).events[0]) is Verdict.GAP


def test_okx_rule_checksum_zero_is_ignored():
    rule = OkxRule()
    msg = json.loads(FRAMES[0])
    msg["data"][0]["checksum"] = 0
    rule.on_snapshot(SPOT.parse(json.dumps(msg), 0).events[0])
    update = json.loads(FRAMES[1])
    update["data"][0]["checksum"] = 0
    update["data"][0]["asks"][0][1] = "9.99"  # would fail a checksum; there is none
    assert rule.check(SPOT.parse(json.dumps(update), 0).events[0]) is Verdict.APPLY


def _delta(seq: int, prev: int) -> BookDelta:
    return BookDelta("okx", Market.SPOT, "X/Y", [], [], seq, seq, prev)


def test_okx_rule_seqid_chain_keepalive_and_gap():
    rule = OkxRule()
    rule.on_snapshot(BookSnapshot("okx", Market.SPOT, "X/Y", [], [], 100))
    assert rule.check(_delta(105, 100)) is Verdict.APPLY
    assert rule.check(_delta(105, 105)) is Verdict.APPLY  # empty keepalive: seqId == prevSeqId
    assert rule.check(_delta(3, 105)) is Verdict.APPLY  # maintenance reset lowers seqId
    assert rule.check(_delta(9, 7)) is Verdict.GAP


def test_okx_rule_repeated_update_dropped_unknown_older_is_gap():
    rule = OkxRule()
    rule.on_snapshot(BookSnapshot("okx", Market.SPOT, "X/Y", [], [], 100))
    assert rule.check(_delta(105, 100)) is Verdict.APPLY
    assert rule.check(_delta(108, 105)) is Verdict.APPLY
    assert rule.check(_delta(108, 105)) is Verdict.DROP  # the same update again
    assert rule.check(_delta(105, 100)) is Verdict.DROP  # an older one, already applied
    assert rule.check(_delta(111, 108)) is Verdict.APPLY
    assert rule.check(_delta(104, 101)) is Verdict.GAP  # older, but never seen: not a repeat


def test_okx_rule_repeat_of_maintenance_reset_dropped():
    rule = OkxRule()
    rule.on_snapshot(BookSnapshot("okx", Market.SPOT, "X/Y", [], [], 100))
    assert rule.check(_delta(105, 100)) is Verdict.APPLY
    assert rule.check(_delta(3, 105)) is Verdict.APPLY  # the reset: seqId < prevSeqId, chained
    assert rule.check(_delta(3, 105)) is Verdict.DROP
    assert rule.check(_delta(6, 3)) is Verdict.APPLY


def test_okx_rule_repeat_beyond_window_is_gap():
    rule = OkxRule()
    rule.on_snapshot(BookSnapshot("okx", Market.SPOT, "X/Y", [], [], 0))
    for seq in range(1, REPEAT_WINDOW + 3):
        assert rule.check(_delta(seq, seq - 1)) is Verdict.APPLY
    assert rule.check(_delta(3, 2)) is Verdict.DROP
    assert rule.check(_delta(2, 1)) is Verdict.GAP  # forgotten: could be a reset's sequence


def test_okx_rule_rest_snapshot_bridges_prev_le_l_lt_seq():
    rule = OkxRule()
    rule.on_snapshot(BookSnapshot("okx", Market.SPOT, "X/Y", [], [], 150))
    assert rule.check(_delta(140, 130)) is Verdict.DROP
    assert rule.check(_delta(160, 140)) is Verdict.APPLY
    assert rule.check(_delta(170, 160)) is Verdict.APPLY


def test_okx_rest_snapshot_requires_seqid():
    body = '{"code":"0","msg":"","data":[{"asks":[["2","1","0","1"]],"bids":[["1","1","0","1"]],"ts":"1"}]}'
    with pytest.raises(ValueError):
        SPOT.parse_snapshot("BTC/USDT", body, 0)
    with_seq = body.replace('"ts":"1"', '"ts":"1","seqId":42')
    assert SPOT.parse_snapshot("BTC/USDT", with_seq, 0).seq == 42
    req = SPOT.snapshot_request("BTC/USDT", 20)
    assert (req.url, req.params) == ("https://www.okx.com/api/v5/market/books", {"instId": "BTC-USDT", "sz": 400})

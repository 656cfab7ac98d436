"""Bitget v2 driver: product lines and naming, subscribe frames, parsing the 2026
probe frames and the docs' samples, the CRC32 checksum (the docs' worked
example, the real 2022 sequences), and the seq/pseq rule on hand-built frames
including gaps, repeats, a restart and sequences above 2^53."""

from __future__ import annotations

import json
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues.base import ResyncMethod, Subscription, Verdict
from engine.venues.bitget import BitgetDriver, BitgetRule, checksum
from tests.support.scripts_bitget import CAPTURES, read_lines
from tests.venues.reference import DATA, okx_crc
from tests.venues.test_wire import canon

SPOT = BitgetDriver(Market.SPOT)
FUT = BitgetDriver(Market.FUTURES)
BITGET = DATA / "bitget"


def _lines(name: str) -> list[str]:
    return (BITGET / name).read_text().splitlines()


def test_bitget_endpoint_limits_heartbeat():
    assert SPOT.connect_url([]) == FUT.connect_url([]) == "wss://ws.bitget.com/v2/ws/public"
    assert FUT.resync is ResyncMethod.RESUBSCRIBE and FUT.snapshot_request("BTC/USDT", 20) is None
    assert FUT.heartbeat.client_ping == "ping" and FUT.heartbeat.client_pong == "pong"
    assert FUT.heartbeat.client_ping_interval_s <= 30 and FUT.limits.max_client_msgs_per_s <= 10
    assert FUT.limits.max_streams_per_connection * 2 <= 50  # channels per socket, as advised


def test_bitget_product_lines_and_symbols():
    assert (SPOT.inst_type("BTC/USDT"), SPOT.symbol("BTC/USDT")) == ("SPOT", "BTCUSDT")
    assert (FUT.inst_type("BTC/USDT"), FUT.symbol("BTC/USDT")) == ("USDT-FUTURES", "BTCUSDT")
    assert (FUT.inst_type("BTC/USDC"), FUT.symbol("BTC/USDC")) == ("USDC-FUTURES", "BTCPERP")
    assert (FUT.inst_type("BTC/USD"), FUT.symbol("BTC/USD")) == ("COIN-FUTURES", "BTCUSD")
    assert FUT.pair("BTCPERP") == "BTC/USDC" and SPOT.pair("EOSUSDT") == "EOS/USDT"
    with pytest.raises(ValueError):
        FUT.inst_type("BTC/EUR")


def test_bitget_subscribe_books_and_trades_in_frames_of_twenty_args():
    frames = [json.loads(f) for f in FUT.subscribe([Subscription(f"C{i}/USDT") for i in range(12)])]
    assert [len(f["args"]) for f in frames] == [20, 4]
    assert frames[0]["op"] == "subscribe" and frames[0]["args"][:2] == [
        {"instType": "USDT-FUTURES", "channel": "books", "instId": "C0USDT"},
        {"instType": "USDT-FUTURES", "channel": "trade", "instId": "C0USDT"}]
    assert json.loads(FUT.unsubscribe([Subscription("X/USDT", trades=False)])[0]) == {
        "op": "unsubscribe", "args": [{"instType": "USDT-FUTURES", "channel": "books", "instId": "XUSDT"}]}
    # The probe's subscribe frame (sent.obs2026.jsonl) has exactly this shape.
    probe = json.loads(_lines("sent.obs2026.jsonl")[0])
    assert probe["args"][0] == json.loads(FUT.subscribe([Subscription("BTC/USDT", trades=False)])[0])["args"][0]


def test_bitget_parse_probe_snapshot_and_updates():
    (snap,) = FUT.parse(_lines("book_snapshot_TRIMMED.obs2026.jsonl")[0], 1).events
    first, second, _v3 = (FUT.parse(line, 2).events[0] for line in _lines("book_delta.obs2026.jsonl"))
    assert isinstance(snap, BookSnapshot) and snap.pair == "MAV/USDT" and snap.seq == 427583461144
    assert snap.asks[0] == (0.01039, 4499.23) and snap.exch_ns == 1789456510736 * 1_000_000
    assert isinstance(first, BookDelta) and (first.prev_seq, first.last_seq) == (427583461144, 427583480559)
    assert first.bids == [(0.00519, 30828.52)] and first.asks == []
    assert second.prev_seq == first.last_seq
    rule = BitgetRule()
    rule.on_snapshot(snap)
    assert [rule.check(first), rule.check(second)] == [Verdict.APPLY, Verdict.APPLY]


def test_bitget_v3_frame_on_v2_driver_is_feed_error_not_silent():
    (event,) = FUT.parse(_lines("book_delta.obs2026.jsonl")[2], 0).events
    assert isinstance(event, FeedError)


def test_bitget_parse_other_market_frames_skipped():
    line = _lines("book_delta.obs2026.jsonl")[0]
    assert SPOT.parse(line, 0).events == []
    assert FUT.parse(line.replace("USDT-FUTURES", "COIN-FUTURES"), 0).events[0].pair == "MAV/USDT"


def test_bitget_docs_trade_samples_taker_side():
    spot_trades = SPOT.parse(_lines("trade.docs.jsonl")[0], 0).events
    fut_trades = FUT.parse(_lines("trade.docs.jsonl")[1], 0).events
    assert [(t.pair, t.price, t.size, t.taker_side, t.trade_id) for t in spot_trades] == [
        ("BTC/USDT", 26293.4, 0.0013, Side.BUY, "1000000000")]
    assert [t.taker_side for t in fut_trades] == [Side.BUY, Side.SELL]
    assert all(isinstance(t, Trade) for t in fut_trades) and fut_trades[0].exch_ns == 1695716760565 * 1_000_000


def test_bitget_docs_book_samples_parse_on_books_channel():
    """The docs show ``books5``; the same data on ``books`` (which we subscribe)."""
    spot_line, fut_line = _lines("book_snapshot.docs.jsonl")
    assert SPOT.parse(spot_line, 0).events == []  # books5 is not our channel
    (snap,) = SPOT.parse(spot_line.replace('"books5"', '"books"'), 0).events
    assert (snap.seq, snap.bids[0], snap.extra) == (123, (26274.8, 0.0009), {})  # checksum 0: none
    (snap,) = FUT.parse(fut_line.replace('"books5"', '"books"'), 0).events
    assert (snap.seq, snap.asks) == (0, [(27000.5, 8.76), (27001.0, 0.4)])


@pytest.mark.parametrize("line", _lines("sub_ack.obs2026.jsonl") + _lines("sub_ack.docs.jsonl")
                         + _lines("heartbeat.obs2026.jsonl") + [b"pong"])
def test_bitget_acks_and_pong_yield_nothing(line):
    assert FUT.parse(line, 0).events == [] and SPOT.parse(line, 0).events == []


@pytest.mark.parametrize("line", _lines("error.obs2026.jsonl") + [
    '{"action":"odd","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},"data":[]}',
    '{"action":"update","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},'
    '"data":[{"asks":[["1"]],"bids":[],"ts":"1","seq":2,"pseq":1}]}',
    '{"action":"update","arg":{"instType":"SPOT","channel":"trade","instId":"BTCUSDT"},'
    '"data":[{"ts":"1","price":"1","size":"1","side":"both","tradeId":"1"}]}',
    '{"action":"update","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},'
    '"data":[{"asks":[["x","1"]],"bids":[],"ts":"1","seq":2,"pseq":1}]}', "ping?", ""])
def test_bitget_errors_and_garbage_are_feed_errors(line):
    (event,) = SPOT.parse(line, 0).events
    assert isinstance(event, FeedError)


def test_bitget_typed_and_generic_parsers_agree():
    frames = _lines("book_delta.obs2026.jsonl")[:2] + _lines("book_snapshot_TRIMMED.obs2026.jsonl") + \
        _lines("trade.docs.jsonl")[1:] + [json.loads(line)["data"] for line in
                                          read_lines(CAPTURES["futures"])[2:6]]
    for line in frames:
        # canon: the typed path keeps the checksum's wire levels as text (msgspec.Raw)
        assert canon(FUT._parse_typed(line, 3).events) == canon(FUT._parse_generic(line, 3).events)


def test_bitget_sequences_above_2_pow_53_stay_exact():
    line = _lines("book_delta.obs2026.jsonl")[0].replace("427583480559", "1483653649791156272") \
        .replace("427583461144", "1483653649371725838")
    (delta,) = FUT.parse(line, 0).events
    assert (delta.last_seq, delta.prev_seq) == (1483653649791156272, 1483653649371725838)


# --------------------------------------------------------------------- checksum


def test_bitget_checksum_docs_worked_examples():
    """Docs: "43231.1:4:43232.8:9:43231:6:43232.9:8" and "3366.1:7:3366.8:9:3368:8:3372:8"."""
    def signed(text: str) -> int:
        crc = zlib.crc32(text.encode())
        return crc - (1 << 32) if crc >= 1 << 31 else crc
    assert checksum([["43231.1", "4"], ["43231", "6"]], [["43232.8", "9"], ["43232.9", "8"]]) == \
        signed("43231.1:4:43232.8:9:43231:6:43232.9:8")
    assert checksum([["3366.1", "7"]], [["3366.8", "9"], ["3368", "8"], ["3372", "8"]]) == \
        signed("3366.1:7:3366.8:9:3368:8:3372:8")


def test_bitget_checksum_real_v1_sequence_every_message_verified():
    """The 2022 recording (real checksums): snapshot checked, then all 97 updates."""
    rows = [json.loads(line)["raw"] for line in _lines("book_seq.cf_LEGACY_v1_mix.DASHUSDT.jsonl")]
    frames = [r.replace('"instType":"mc"', '"instType":"USDT-FUTURES"') for r in rows]
    snap = FUT.parse(frames[0], 0).events[0]
    data = json.loads(frames[0])["data"][0]
    assert checksum(data["bids"], data["asks"]) == okx_crc(data["bids"], data["asks"]) == data["checksum"]
    rule = BitgetRule()
    assert rule.verify_snapshot(snap)
    rule.on_snapshot(snap)
    assert [rule.check(FUT.parse(f, 0).events[0]) for f in frames[1:]] == [Verdict.APPLY] * 97


def test_bitget_checksum_mismatch_is_gap_and_zero_is_ignored():
    rows = [json.loads(line)["raw"].replace('"sp"', '"SPOT"')
            for line in _lines("book_seq.cf_LEGACY_v1_spot.EOSUSDT.jsonl")[:2]]
    tampered = json.loads(rows[1])
    tampered["data"][0]["asks"][0][1] = "9.99"
    rule = BitgetRule()
    rule.on_snapshot(SPOT.parse(rows[0], 0).events[0])
    assert rule.check(SPOT.parse(json.dumps(tampered), 0).events[0]) is Verdict.GAP
    tampered["data"][0]["checksum"] = 0  # the venue stopped sending it: nothing to verify
    rule.on_snapshot(SPOT.parse(rows[0], 0).events[0])
    assert rule.check(SPOT.parse(json.dumps(tampered), 0).events[0]) is Verdict.APPLY
    bad_snap = json.loads(rows[0])
    bad_snap["data"][0]["checksum"] += 1
    assert not BitgetRule().verify_snapshot(SPOT.parse(json.dumps(bad_snap), 0).events[0])


# ------------------------------------------------------------------------- rule


def _delta(seq: int, pseq: int) -> BookDelta:
    return BookDelta("bitget", Market.FUTURES, "X/Y", [], [], seq, seq, pseq)


def _rule(seq: int) -> BitgetRule:
    rule = BitgetRule()
    rule.on_snapshot(BookSnapshot("bitget", Market.FUTURES, "X/Y", [], [], seq))
    return rule


def test_bitget_rule_pseq_chain_gap_and_repeat():
    rule = _rule(100)
    assert rule.check(_delta(90, 80)) is Verdict.DROP  # older than the snapshot
    assert rule.check(_delta(117, 100)) is Verdict.APPLY  # first update: pseq == snapshot seq
    assert rule.check(_delta(117, 100)) is Verdict.DROP  # a repeat
    assert rule.check(_delta(130, 117)) is Verdict.APPLY
    assert rule.check(_delta(160, 140)) is Verdict.GAP  # pseq 140 != 130: something was lost


def test_bitget_rule_first_update_must_bridge_the_snapshot():
    assert _rule(100).check(_delta(120, 110)) is Verdict.GAP  # pseq > L: updates lost since
    assert _rule(100).check(_delta(120, 95)) is Verdict.APPLY  # pseq <= L < seq (UTA wording)


def test_bitget_rule_pseq_zero_on_update_is_restart():
    rule = _rule(100)
    assert rule.check(_delta(5, 0)) is Verdict.GAP
    assert rule.check(_delta(117, 100)) is Verdict.APPLY


def test_bitget_rule_without_pseq_only_seq_growth_is_checked():
    rule = _rule(100)
    assert rule.check(_delta(150, -1)) is Verdict.APPLY
    assert rule.check(_delta(140, -1)) is Verdict.DROP


# ------------------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
REAL = [json.loads(line) for line in _lines("book_delta.obs2026.jsonl")[:2] + _lines("trade.docs.jsonl")
        + _lines("book_snapshot_TRIMMED.obs2026.jsonl") + _lines("error.obs2026.jsonl")[:1]]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
                    max_leaves=12)


def _paths(obj, prefix=()):
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(obj, list):
        for i, value in enumerate(obj[:3]):
            yield prefix + (i,)
            yield from _paths(value, prefix + (i,))


@FUZZ
@given(st.sampled_from(REAL), st.data(), JSON)
def test_bitget_mutated_real_frames_never_raise_and_rule_never_raises(frame, data, value):
    path = data.draw(st.sampled_from(list(_paths(frame))))
    copy = json.loads(json.dumps(frame))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    rule = BitgetRule()
    for driver in (SPOT, FUT):
        for event in driver.parse(json.dumps(copy), 0).events:
            assert isinstance(event, (BookDelta, BookSnapshot, Trade, FeedError))
            if isinstance(event, BookSnapshot):
                rule.verify_snapshot(event)
                rule.on_snapshot(event)
            elif isinstance(event, BookDelta):
                assert isinstance(rule.check(event), Verdict)

"""MEXC driver: naming and frames per market, spot protobuf pushes (the docs'
samples encoded with the published field numbers, corrupt and truncated ones),
futures JSON (2026 probe frames, docs samples, gzip), REST snapshots, and the
version rule on hand-built frames including gaps."""

from __future__ import annotations

import gzip
import json
import math
import os
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.sync import FeedRouter
from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues import make_driver
from engine.venues.base import ResyncMethod, Subscription, Verdict
from engine.venues.mexc import MexcDriver
from tests.support.scripts_mexc import MexcScript, deals_push, depth_push
from tests.venues.reference import DATA

SPOT = MexcDriver(Market.SPOT)
FUT = MexcDriver(Market.FUTURES)
MEXC = DATA / "mexc"


def _lines(name: str) -> list[str]:
    return (MEXC / name).read_text().splitlines()


def _docs_depth(line: str) -> bytes:
    """A docs Diff.Depth sample (JSON rendering of the protobuf) as wire bytes."""
    msg = json.loads(line)
    body = msg.get("publicAggreDepths") or msg["publicincreasedepths"]
    levels = {side: [(lv["price"], lv["quantity"]) for lv in body.get(side, body.get(side + "List"))]
              for side in ("bids", "asks")}
    return depth_push(msg["symbol"], int(msg.get("sendTime") or msg["sendtime"]), int(body["fromVersion"]),
                      int(body["toVersion"]), levels["bids"], levels["asks"])


# ------------------------------------------------------------------ naming, frames


def test_mexc_endpoints_limits_and_resync_per_market():
    assert SPOT.connect_url([]) == "wss://wbs-api.mexc.com/ws"
    assert FUT.connect_url([]) == "wss://contract.mexc.com/edge"
    assert SPOT.resync is ResyncMethod.REST and FUT.resync is ResyncMethod.REST
    assert SPOT.limits.max_streams_per_connection * 2 <= 30  # 30 subscriptions per socket
    assert SPOT.heartbeat.client_ping == '{"method":"PING"}'
    assert FUT.heartbeat.client_ping == '{"method":"ping"}' and FUT.heartbeat.client_ping_interval_s <= 20


def test_mexc_symbols_per_market():
    assert SPOT.symbol("BTC/USDT") == "BTCUSDT" and SPOT.pair("NKNUSDT") == "NKN/USDT"
    assert FUT.symbol("BTC/USDT") == "BTC_USDT" and FUT.pair("SKHYNIXSTOCK_USDT") == "SKHYNIXSTOCK/USDT"
    with pytest.raises(ValueError):
        FUT.symbol("BTC/USDT-250627")


def test_mexc_spot_subscribe_channels_batched_by_ten():
    frames = [json.loads(f) for f in SPOT.subscribe([Subscription(f"C{i}/USDT") for i in range(6)])]
    assert [len(f["params"]) for f in frames] == [10, 2]
    assert frames[0]["method"] == "SUBSCRIPTION"
    assert frames[0]["params"][:2] == ["spot@public.aggre.depth.v3.api.pb@100ms@C0USDT",
                                       "spot@public.aggre.deals.v3.api.pb@100ms@C0USDT"]
    (unsub,) = SPOT.unsubscribe([Subscription("BTC/USDT", trades=False)])
    assert json.loads(unsub)["method"] == "UNSUBSCRIPTION"
    assert json.loads(unsub)["params"] == ["spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT"]


def test_mexc_futures_subscribe_one_frame_per_channel():
    assert [json.loads(f) for f in FUT.subscribe([Subscription("BTC/USDT")])] == [
        {"method": "sub.depth", "param": {"symbol": "BTC_USDT"}, "gzip": False},
        {"method": "sub.deal", "param": {"symbol": "BTC_USDT"}, "gzip": False}]
    assert [json.loads(f)["method"] for f in FUT.unsubscribe([Subscription("BTC/USDT")])] == [
        "unsub.depth", "unsub.deal"]


def test_mexc_snapshot_requests_and_urls():
    req = SPOT.snapshot_request("BTC/USDT", 20)
    assert (req.url, req.params) == ("https://api.mexc.com/api/v3/depth", {"symbol": "BTCUSDT", "limit": 5000})
    req = FUT.snapshot_request("BTC/USDT", 20)
    assert (req.url, req.params) == ("https://api.mexc.com/api/v1/contract/depth/BTC_USDT", {"limit": 1000})
    assert SPOT.snapshot_pair("https://api.mexc.com/api/v3/depth?symbol=NKNUSDT&limit=5000") == "NKN/USDT"
    assert FUT.snapshot_pair("https://api.mexc.com/api/v1/contract/depth/SUSHI_USDT?limit=1000") == "SUSHI/USDT"
    assert FUT.snapshot_pair("https://api.mexc.com/api/v3/depth?symbol=NKNUSDT") is None


# ------------------------------------------------------------------- spot frames


def test_mexc_spot_docs_depth_samples_decode():
    new, old = (SPOT.parse(_docs_depth(line), 7).events[0] for line in _lines("spot_depth.docs.jsonl"))
    assert isinstance(new, BookDelta) and isinstance(old, BookDelta)
    assert (new.pair, new.bids, new.asks, new.first_seq, new.last_seq) == ("BTC/USDT", [(100.0, 4.0)], [], 10023, 10023)
    assert new.exch_ns == 1778075380657 * 1_000_000 and new.recv_ns == 7
    assert (old.bids, old.first_seq, old.last_seq) == ([(92877.58, 0.0)], 10589632359, 10589632359)


def test_mexc_spot_docs_deal_sample_taker_side():
    msg = json.loads(_lines("spot_deals.docs.jsonl")[0])
    deal = msg["publicdeals"]["dealsList"][0]
    frame = deals_push("BTCUSDT", msg["sendtime"], [(deal["price"], deal["quantity"], deal["tradetype"],
                                                     deal["time"], "")])
    (trade,) = SPOT.parse(frame, 0).events
    assert isinstance(trade, Trade)
    assert (trade.pair, trade.price, trade.size, trade.taker_side, trade.trade_id) == (
        "BTC/USDT", 93220.0, 0.04438243, Side.SELL, "")
    assert trade.exch_ns == 1736409765051 * 1_000_000


def test_mexc_spot_push_with_body_is_never_utf8_so_captures_keep_it_base64():
    """The body tag (313 << 3 | 2 = ca 13) is not UTF-8, so a capture stores every
    push base64; a frame that is UTF-8 and no JSON decodes the same as text or bytes."""
    frame = depth_push("BTCUSDT", 1, 5, 6, [("1", "2")], [("3", "4")])
    with pytest.raises(UnicodeDecodeError):
        frame.decode()
    headless = frame[: frame.index(b"\xca\x13")]
    assert SPOT.parse(headless.decode(), 0).events[0].reason == SPOT.parse(headless, 0).events[0].reason


def test_mexc_spot_control_frames():
    ack, ack_old, pong = (SPOT.parse(line, 0) for line in _lines("spot_control.docs.jsonl"))
    assert ack.events == [] and ack.subscribed == ()  # a deals ack names no book
    assert ack_old.events == [] and pong.events == []
    both = SPOT.parse('{"id":0,"code":0,"msg":"spot@public.aggre.depth.v3.api.pb@100ms@BTCUSDT,'
                      'spot@public.aggre.deals.v3.api.pb@100ms@BTCUSDT"}', 0)
    assert both.subscribed == ("BTC/USDT",)


@pytest.mark.parametrize("frame", [
    # A refused subscription has code 0 too (wbs-api answer to a retired channel).
    '{"id":0,"code":0,"msg":"Not Subscribed successfully! [spot@public.deals.v3.api@BTCUSDT].  Reason： Blocked! "}',
    '{"id":0,"code":1,"msg":"Invalid"}', '{"id":0,"code":0}', "{", b"{"])
def test_mexc_spot_refusals_and_bad_json_are_feed_errors(frame):
    (event,) = SPOT.parse(frame, 0).events
    assert isinstance(event, FeedError)


def test_mexc_spot_corrupt_and_truncated_protobuf_are_feed_errors():
    frame = depth_push("BTCUSDT", 1, 5, 6, [("1", "2")], [("3", "4")])
    corrupt = MexcScript("spot").corrupt(frame)
    for bad in (corrupt, frame[:-3], frame[: len(frame) // 2], b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"):
        (event,) = SPOT.parse(bad, 0).events
        assert isinstance(event, FeedError), bad


@pytest.mark.parametrize("levels,first,last", [
    ([("x", "1")], 5, 6), ([("1", "")], 5, 6), ([("1", "2")], 9, 6)])
def test_mexc_spot_garbage_values_are_feed_errors(levels, first, last):
    (event,) = SPOT.parse(depth_push("BTCUSDT", 1, first, last, levels, []), 0).events
    assert isinstance(event, FeedError)


def test_mexc_spot_push_without_body_or_version_is_feed_error():
    no_body = depth_push("BTCUSDT", 1, 5, 6, [], [])
    no_body = no_body[: no_body.index(b"\xca\x13")]  # drop field 313 (tag (313 << 3 | 2) = ca 13)
    (event,) = SPOT.parse(no_body, 0).events
    assert isinstance(event, FeedError)


def test_mexc_spot_nan_and_negative_levels_are_refused_by_the_book_never_crash():
    store = BookStore.create(f"mx-{os.getpid()}-{uuid.uuid4().hex[:6]}", 8, 10)
    try:
        router = FeedRouter(make_driver("mexc", "spot"), BookWriter(store))
        router.on_snapshot_response("BTC/USDT", json.dumps({"lastUpdateId": 10, "bids": [["1", "1"]],
                                                             "asks": [["2", "1"]]}), 0)
        assert router.stats("BTC/USDT")["state"] == "synced"
        for version, bad in ((11, "nan"), (12, "-1"), (13, "inf")):
            router.on_frame("c", depth_push("BTCUSDT", 1, version, version, [("1.5", bad)], []), 1)
            assert router.stats("BTC/USDT")["state"] == "resyncing"
            router.on_snapshot_response("BTC/USDT", json.dumps({"lastUpdateId": version, "bids": [["1", "1"]],
                                                                 "asks": [["2", "1"]]}), 0)
            assert router.stats("BTC/USDT")["state"] == "synced"
        assert router.stats("BTC/USDT")["errors"] == 3
    finally:
        store.close()


# ---------------------------------------------------------------- futures frames


def test_mexc_futures_probe_merged_and_unmerged_deltas():
    merged, small, single, next_one = (FUT.parse(line, 3).events[0] for line in _lines("book_delta.obs2026.jsonl"))
    raw = json.loads(_lines("book_delta.obs2026.jsonl")[0])["data"]
    assert isinstance(merged, BookDelta)
    assert (merged.pair, merged.first_seq, merged.last_seq) == ("DOGE/USDT", raw["begin"], raw["end"])
    assert merged.bids == [(float(p), float(v)) for p, v, _ in raw["bids"]]
    assert merged.exch_ns == raw["cts"] * 1_000_000
    assert (small.first_seq, small.last_seq) == (1111084806, 1111084807)
    assert (single.first_seq, single.last_seq, next_one.first_seq) == (37723308980, 37723308980, 37723308981)


def test_mexc_futures_docs_depth_and_deal_samples():
    old, new = (FUT.parse(line, 0).events[0] for line in _lines("futures_depth.docs.jsonl"))
    assert (old.asks, old.first_seq, old.exch_ns) == ([(6859.5, 3251.0)], 96801927, 1587442022003 * 1_000_000)
    assert (new.bids, new.asks, new.last_seq) == ([], [], 38557936849)
    (trade,) = FUT.parse(_lines("futures_deal.docs.jsonl")[0], 0).events
    assert (trade.price, trade.size, trade.taker_side, trade.trade_id) == (6866.5, 2096.0, Side.BUY, "")
    listed = json.loads(_lines("futures_deal.docs.jsonl")[0])
    listed["data"] = [dict(listed["data"], T=2), listed["data"]]
    assert [t.taker_side for t in FUT.parse(json.dumps(listed), 0).events] == [Side.SELL, Side.BUY]


@pytest.mark.parametrize("name", ["sub_ack.obs2026.jsonl", "heartbeat.obs2026.jsonl", "other.obs2026.jsonl",
                                  "book_full_TRIMMED.obs2026.jsonl", "futures_control.docs.jsonl"])
def test_mexc_futures_acks_pongs_and_other_channels_yield_nothing(name):
    for line in _lines(name):
        assert FUT.parse(line, 0).events == []


@pytest.mark.parametrize("frame", [
    _lines("error.obs2026.jsonl")[0], '{"channel":"rs.sub.depth","data":"fail"}',
    '{"channel":"push.depth","symbol":"BTC_USDT","data":{"asks":[],"bids":[],"begin":9,"end":5,"version":5}}',
    '{"channel":"push.depth","symbol":"BTC_USDT","data":{"asks":[["x",1,1]],"bids":[],"version":5}}',
    '{"channel":"push.deal","symbol":"BTC_USDT","data":{"p":1,"v":1,"T":3,"t":1}}',
    '{"channel":"push.depth","data":{"asks":[],"bids":[],"version":5}}', "nope", ""])
def test_mexc_futures_errors_and_garbage_are_feed_errors(frame):
    (event,) = FUT.parse(frame, 0).events
    assert isinstance(event, FeedError)


def test_mexc_futures_gzip_frames_decode_and_corrupt_gzip_is_feed_error():
    line = _lines("book_delta.obs2026.jsonl")[1]
    packed = gzip.compress(line.encode(), mtime=0)
    assert FUT.parse(packed, 0).events == FUT.parse(line, 0).events
    bad = bytearray(packed)
    bad[-6] ^= 0xFF  # CRC32 of the member
    (event,) = FUT.parse(bytes(bad), 0).events
    assert isinstance(event, FeedError)


def test_mexc_futures_typed_and_generic_parsers_agree():
    for line in _lines("book_delta.obs2026.jsonl") + _lines("futures_depth.docs.jsonl"):
        assert FUT._parse_futures_typed(line, 5).events == FUT._parse_futures_generic(line, 5).events


# ------------------------------------------------------------------------- REST


def test_mexc_rest_docs_samples_parse():
    snap = SPOT.parse_snapshot("X/Y", (MEXC / "spot_rest_depth.docs.json").read_text(), 3)
    assert (snap.seq, snap.bids, snap.asks) == (1112416, [(15.0, 49999.0)], [(14.0, 1.0)])
    snap = FUT.parse_snapshot("BTC/USDT", (MEXC / "futures_rest_depth.docs.json").read_text(), 3)
    assert (snap.seq, snap.bids[0], snap.asks[-1], snap.exch_ns) == (
        28111438870, (108779.1, 3240.0), (108779.3, 3884.0), 1761879567135 * 1_000_000)


@pytest.mark.parametrize("driver,body", [
    (SPOT, '{"code":-1121,"msg":"Invalid symbol."}'), (SPOT, "[]"),
    (FUT, '{"success":false,"code":1001,"message":"Contract not exists"}'),
    (FUT, (MEXC / "futures_depth_commits.docs.json").read_text())])
def test_mexc_rest_error_bodies_raise_value_error(driver, body):
    with pytest.raises(ValueError):
        driver.parse_snapshot("BTC/USDT", body, 0)


# ------------------------------------------------------------------------- rule


def _delta(first: int, last: int) -> BookDelta:
    return BookDelta("mexc", Market.SPOT, "X/Y", [], [], first, last)


def test_mexc_rule_bridges_snapshot_then_requires_contiguous_versions():
    rule = SPOT.sync_rule()
    rule.on_snapshot(BookSnapshot("mexc", Market.SPOT, "X/Y", [], [], 100))
    assert rule.check(_delta(90, 100)) is Verdict.DROP  # toVersion <= lastUpdateId
    assert rule.check(_delta(95, 104)) is Verdict.APPLY  # first push: from <= L + 1 <= to
    assert rule.check(_delta(105, 105)) is Verdict.APPLY
    assert rule.check(_delta(105, 105)) is Verdict.DROP  # a repeat
    assert rule.check(_delta(107, 110)) is Verdict.GAP  # 106 lost


def test_mexc_rule_snapshot_older_than_buffer_is_gap():
    rule = SPOT.sync_rule()
    rule.on_snapshot(BookSnapshot("mexc", Market.FUTURES, "X/Y", [], [], 100))
    assert rule.check(_delta(102, 103)) is Verdict.GAP  # fromVersion > L + 1: fetch again


def test_mexc_rule_real_probe_versions_chain():
    """The 2026 unmerged ETH pair is contiguous (version, version + 1)."""
    rule = SPOT.sync_rule()
    first, second = (FUT.parse(line, 0).events[0] for line in _lines("book_delta.obs2026.jsonl")[2:])
    rule.on_snapshot(BookSnapshot("mexc", Market.FUTURES, "ETH/USDT", [], [], first.last_seq - 1))
    assert [rule.check(first), rule.check(second)] == [Verdict.APPLY, Verdict.APPLY]


# ------------------------------------------------------------------------- fuzz

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SAMPLE = depth_push("BTCUSDT", 1736411507002, 10589632359, 10589632360,
                    [("92877.58", "0.5"), ("92877.50", "1")], [("92878.00", "2")])


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), min_size=1, max_size=8))
def test_mexc_spot_mutated_protobuf_never_raises(edits):
    data = bytearray(SAMPLE)
    for pos, value in edits:
        data[pos] = value
    for event in SPOT.parse(bytes(data), 0).events:
        assert isinstance(event, (BookDelta, Trade, FeedError))
        if isinstance(event, BookDelta):
            assert event.first_seq <= event.last_seq


@FUZZ
@given(st.binary(max_size=300))
def test_mexc_spot_arbitrary_bytes_never_raise(data):
    assert all(isinstance(e, (BookDelta, Trade, FeedError)) for e in SPOT.parse(data, 0).events)


def test_mexc_nan_string_level_parses_then_is_refused_by_writer():
    (delta,) = SPOT.parse(depth_push("BTCUSDT", 1, 5, 5, [("1", "nan")], []), 0).events
    assert math.isnan(delta.bids[0][1])  # the writer refuses it (see the router test above)


FUTURES_REAL = [json.loads(line) for line in _lines("book_delta.obs2026.jsonl")[:2] + _lines("futures_deal.docs.jsonl")
                + _lines("error.obs2026.jsonl")]
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
@given(st.sampled_from(FUTURES_REAL), st.data(), JSON)
def test_mexc_futures_mutated_real_frames_never_raise_typed_equals_generic(frame, data, value):
    path = data.draw(st.sampled_from(list(_paths(frame))))
    copy = json.loads(json.dumps(frame))
    node = copy
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    text = json.dumps(copy)
    parsed = FUT.parse(text, 0)
    assert parsed.events == FUT._parse_generic(text, 0).events or any(
        isinstance(e, BookDelta) and any(math.isnan(x) for lv in e.bids + e.asks for x in lv) for e in parsed.events)
    assert all(isinstance(e, (BookDelta, Trade, FeedError)) for e in parsed.events)

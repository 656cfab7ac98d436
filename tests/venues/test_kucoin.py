"""KuCoin classic driver: naming, frames, the token handshake (Sans-I/O half),
parsing recorded and documented frames, the sequence rule on real ids and on
hand-built frames (straddle, gap), garbage refused, and every capture replayed
through tools/replay.py equal level by level to the independent reference."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.sync import FeedRouter
from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues import make_driver
from engine.venues.base import Subscription, Verdict
from engine.venues.kucoin import KucoinDriver, KucoinRule
from tests.venues.reference import DATA, kucoin_books, read_records
from tests.venues.test_wire import _near_misses, canon

ROOT = Path(__file__).resolve().parents[2]
SPOT = KucoinDriver(Market.SPOT)
FUT = KucoinDriver(Market.FUTURES)


def lines(name: str) -> list[str]:
    return (DATA / "kucoin" / name).read_text().splitlines()


# ------------------------------------------------------------------ naming


def test_kucoin_spot_symbol_dash_pair():
    assert SPOT.pair("BCHSV-USDT") == "BCHSV/USDT" and SPOT.symbol("SNX/BTC") == "SNX-BTC"


def test_kucoin_futures_symbol_xbt_and_margin_suffix():
    assert FUT.pair("XBTUSDTM") == "BTC/USDT"
    assert FUT.pair("ETHUSDCM") == "ETH/USDC"
    assert FUT.pair("XBTUSDM") == "BTC/USD"  # inverse
    assert FUT.symbol("BTC/USDT") == "XBTUSDTM" and FUT.symbol("SOL/USDT") == "SOLUSDTM"
    with pytest.raises(ValueError):
        FUT.pair("XBTMZ25")  # dated: needs an explicit map entry
    dated = KucoinDriver(Market.FUTURES, symbols={"BTC/USD-251226": "XBTMZ25"})
    assert dated.pair("XBTMZ25") == "BTC/USD-251226"


# ------------------------------------------------------------ subscribing


def test_kucoin_spot_subscribe_joins_symbols_in_one_topic():
    frames = [json.loads(f) for f in SPOT.subscribe([Subscription("BTC/USDT"), Subscription("ETH/BTC")])]
    assert [f["topic"] for f in frames] == ["/market/level2:BTC-USDT,ETH-BTC", "/market/match:BTC-USDT,ETH-BTC"]
    assert all(f["type"] == "subscribe" and f["response"] is True and f["privateChannel"] is False
               for f in frames)
    assert len({f["id"] for f in frames}) == 2


def test_kucoin_spot_subscribe_splits_at_100_topics():
    subs = [Subscription(f"C{i}/USDT", trades=False) for i in range(150)]
    frames = [json.loads(f) for f in SPOT.subscribe(subs)]
    assert [len(f["topic"].split(":")[1].split(",")) for f in frames] == [100, 50]


def test_kucoin_futures_subscribe_one_contract_per_topic():
    frames = [json.loads(f)["topic"] for f in FUT.subscribe([Subscription("BTC/USDT"), Subscription("ETH/USDT")])]
    assert frames == ["/contractMarket/level2:XBTUSDTM", "/contractMarket/level2:ETHUSDTM",
                      "/contractMarket/execution:XBTUSDTM", "/contractMarket/execution:ETHUSDTM"]
    assert json.loads(FUT.unsubscribe([Subscription("BTC/USDT")])[0])["type"] == "unsubscribe"


def test_kucoin_ack_names_the_books_its_subscribe_carried():
    driver = KucoinDriver(Market.SPOT)
    book_frame, trade_frame = (json.loads(f) for f in driver.subscribe([Subscription("BTC/USDT")]))
    ack = lines("control.docs.jsonl")[2].replace("1545910660739", book_frame["id"])
    assert driver.parse(ack, 0).subscribed == ("BTC/USDT",)
    assert driver.parse(ack, 0).subscribed == ()  # answered once
    assert driver.parse(json.dumps({"id": trade_frame["id"], "type": "ack"}), 0).subscribed == ()


# --------------------------------------------------------------- connecting


def test_kucoin_token_request_before_each_connect_to_the_venue():
    req = SPOT.connect_request(SPOT.connect_url([]))
    assert (req.method, req.url, req.weight) == ("POST", "https://api.kucoin.com/api/v1/bullet-public", 10)
    assert FUT.connect_request("x").url == "https://api-futures.kucoin.com/api/v1/bullet-public"


def test_kucoin_explicit_ws_url_connects_without_token():
    local = KucoinDriver(Market.SPOT, "http://127.0.0.1:9", "ws://127.0.0.1:9/ws")
    assert local.connect_request(local.connect_url([])) is None
    assert local.connect_url([]) == "ws://127.0.0.1:9/ws"


def test_kucoin_grant_from_documented_token_reply():
    grant = SPOT.connect_grant(SPOT.connect_url([]), lines("bullet_public.docs.jsonl")[0])
    parts = urlsplit(grant.url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "wss://ws-api-spot.kucoin.com/"
    assert query["token"][0].startswith("2neAiuYvAU61ZDXANAGAsiL4") and len(query["connectId"][0]) == 32
    hb = grant.heartbeat
    assert hb.client_ping == '{"id":"hb","type":"ping"}' and hb.client_ping_interval_s == pytest.approx(14.4)
    assert hb.timeout_s == pytest.approx(28.0)
    again = SPOT.connect_grant("x", lines("bullet_public.docs.jsonl")[0])
    assert parse_qs(urlsplit(again.url).query)["connectId"] != query["connectId"]  # unique per connection


@pytest.mark.parametrize("body", [
    '{"code":"429000","msg":"Too Many Requests"}', "<html>", '{"code":"200000","data":{}}',
    '{"code":"200000","data":{"token":"","instanceServers":[{"endpoint":"wss://x","pingInterval":18000,'
    '"pingTimeout":10000}]}}',
    '{"code":"200000","data":{"token":"t","instanceServers":[]}}',
    '{"code":"200000","data":{"token":"t","instanceServers":[{"endpoint":"https://x","pingInterval":18000,'
    '"pingTimeout":10000}]}}',
    '{"code":"200000","data":{"token":"t","instanceServers":[{"endpoint":"wss://x","pingInterval":"18000",'
    '"pingTimeout":10000}]}}'])
def test_kucoin_grant_refuses_error_and_malformed_replies(body):
    with pytest.raises((ValueError, KeyError, IndexError, TypeError)):
        SPOT.connect_grant("x", body)


# ------------------------------------------------------------------ parsing


def test_kucoin_parse_real_spot_increments_price_zero_moves_sequence_only():
    noop, real, _ = (SPOT.parse(f, 9).events[0] for f in lines("book_delta.cf.jsonl"))
    assert isinstance(noop, BookDelta) and noop.bids == [] and noop.asks == []
    assert (noop.first_seq, noop.last_seq) == (1613277183874, 1613277183874)
    assert real.asks == [(244.351, 150.0)] and real.pair == "BCHSV/USDT" and real.recv_ns == 9


def test_kucoin_parse_documented_frames():
    spot, fut = lines("book_delta.docs.jsonl")
    (delta,) = SPOT.parse(spot, 0).events
    assert delta.asks == [(67993.3, 1.21427407)] and delta.exch_ns == 1729816425625 * 1_000_000
    assert FUT.parse(spot, 0).events == [] and SPOT.parse(fut, 0).events == []  # other market
    (fdelta,) = FUT.parse(fut, 0).events
    assert (fdelta.pair, fdelta.asks, fdelta.bids, fdelta.last_seq) == ("BTC/USDT", [(90631.2, 2.0)], [],
                                                                        1709400450243)
    (trade,) = FUT.parse(lines("trade.docs.jsonl")[0], 0).events
    assert (trade.price, trade.size, trade.taker_side, trade.trade_id, trade.exch_ns) == (
        90503.9, 2.0, Side.BUY, "1794100537695", 1731898619520000000)


def test_kucoin_parse_probe_2026_classic_futures_delta_and_ignores_uta_frames():
    uta1, uta2, classic = lines("book_delta.obs2026.jsonl")
    (delta,) = FUT.parse(classic, 0).events
    assert delta.bids == [(83614.0, 12.0)] and delta.first_seq == delta.last_seq == 1747821025244
    assert FUT.parse(uta1, 0).events == [] and FUT.parse(uta2, 0).events == []


def test_kucoin_parse_real_trades_side_is_taker():
    for raw in lines("trade.cf.jsonl"):
        (trade,) = SPOT.parse(raw, 0).events
        data = json.loads(raw)["data"]
        assert isinstance(trade, Trade) and trade.taker_side is Side(data["side"])
        assert trade.exch_ns == int(data["time"]) and trade.trade_id == data["tradeId"]


@pytest.mark.parametrize("name", ["welcome.cf.jsonl", "sub_ack.cf.jsonl", "control.docs.jsonl",
                                  "heartbeat.obs2026.jsonl", "welcome.obs2026.jsonl", "other.obs2026.jsonl"])
def test_kucoin_control_frames_yield_nothing(name):
    for raw in lines(name):
        assert SPOT.parse(raw, 0).events == [] and FUT.parse(raw, 0).events == []


def test_kucoin_venue_errors_are_feed_errors():
    classic = [raw for raw in lines("error.obs2026.jsonl") if '"type":"error"' in raw]
    assert len(classic) == 2
    for raw in classic:
        (err,) = FUT.parse(raw, 0).events
        assert isinstance(err, FeedError) and "venue error" in err.reason


@pytest.mark.parametrize("frame", [
    "not json", b"\xff\xfe", "[1]", '{"type":"message","topic":"/market/level2:BTC-USDT"}',
    '{"type":"message","topic":"/market/level2:BTC-USDT","data":{"symbol":"BTC-USDT","sequenceStart":5,'
    '"sequenceEnd":4,"changes":{"asks":[],"bids":[]}}}',
    '{"type":"message","topic":"/market/level2:BTC-USDT","data":{"symbol":"BTC-USDT","sequenceStart":1.5,'
    '"sequenceEnd":2,"changes":{"asks":[],"bids":[]}}}',
    '{"type":"message","topic":"/market/level2:BTC-USDT","data":{"symbol":"BTC-USDT","sequenceStart":1,'
    '"sequenceEnd":1,"changes":{"asks":[["1","2"]],"bids":[]}}}',
    '{"type":"message","topic":"/market/level2:BTC-USDT","data":{"symbol":"BTC-USDT","sequenceStart":1,'
    '"sequenceEnd":1,"changes":{"asks":[[true,"2","1"]],"bids":[]}}}',
    '{"type":"message","topic":"/market/level2:BTC-USDT","data":{"symbol":"BTC-USDT","sequenceStart":"-1",'
    '"sequenceEnd":1,"changes":{"asks":[],"bids":[]}}}',
    '{"type":"message","topic":"/market/match:BTC-USDT","data":{"symbol":"BTC-USDT","side":"buy",'
    '"size":"-1","price":"5","tradeId":"1","time":"1"}}',
    '{"type":"message","topic":"/market/match:BTC-USDT","data":{"symbol":"BTC-USDT","side":"up",'
    '"size":"1","price":"5","tradeId":"1","time":"1"}}',
    '{"type":"message","topic":"/market/match:BTC-USDT","data":{"symbol":"BTC-USDT","side":"buy",'
    '"size":"1","price":"nan","tradeId":"1","time":"1"}}'])
def test_kucoin_parse_malformed_spot_yields_feed_error(frame):
    (event,) = SPOT.parse(frame, 0).events
    assert isinstance(event, FeedError) and event.venue == "kucoin"


@pytest.mark.parametrize("change", ["1,buy", "1,hold,2", "x,buy,1", "1,buy,y", "1,buy,2,3"])
def test_kucoin_parse_malformed_futures_change_yields_feed_error(change):
    frame = json.dumps({"type": "message", "topic": "/contractMarket/level2:XBTUSDTM",
                        "data": {"sequence": 5, "change": change, "timestamp": 1}})
    (event,) = FUT.parse(frame, 0).events
    assert isinstance(event, FeedError)


def test_kucoin_nan_and_negative_levels_are_refused_by_the_book_not_a_crash():
    """They parse as numbers (float() reads them); the book writer refuses the
    level, counts an error and resyncs the book."""
    store = BookStore.create(f"kucoin-garbage-{uuid.uuid4().hex[:8]}", 8, 5)
    try:
        router = FeedRouter(KucoinDriver(Market.FUTURES), BookWriter(store))
        router.on_snapshot_response("BTC/USDT", lines("book_snapshot_rest.docs.jsonl")[0].replace(
            "XBTUSDM", "XBTUSDTM"), 0)
        assert router.stats("BTC/USDT")["state"] == "synced"
        for n, change in enumerate(["nan,buy,1", "66000,sell,-3"]):
            router.on_frame("c", json.dumps({"type": "message", "topic": "/contractMarket/level2:XBTUSDTM",
                                             "data": {"sequence": 1697895963340 + n, "change": change}}), 0)
            stats = router.stats("BTC/USDT")
            assert stats["state"] == "resyncing" and stats["errors"] == n + 1
            router.on_snapshot_response("BTC/USDT", lines("book_snapshot_rest.docs.jsonl")[0].replace(
                "1697895963339", str(1697895963340 + n)), 0)
            assert router.stats("BTC/USDT")["state"] == "synced"  # a fresh snapshot repairs it
    finally:
        store.close()


def test_kucoin_mutated_frames_typed_and_generic_agree():
    """KuCoin has one parser (parse == _parse_generic); near misses of every
    recorded and documented frame still never raise."""
    frames = [json.loads(raw) for name in ("book_delta.cf.jsonl", "book_delta.docs.jsonl", "trade.cf.jsonl",
                                           "trade.docs.jsonl") for raw in lines(name)[:2]]
    for frame in frames:
        for mutated in _near_misses(frame):
            for driver in (SPOT, FUT):
                assert canon(driver.parse(mutated, 7)) == canon(driver._parse_generic(mutated, 7))


# ------------------------------------------------------------------- REST


def test_kucoin_snapshot_request_and_pair_of_recorded_url():
    req = SPOT.snapshot_request("BTC/USDT", 20)
    assert (req.url, req.params, req.weight) == (
        "https://api.kucoin.com/api/v1/market/orderbook/level2_100", {"symbol": "BTC-USDT"}, 4)
    assert FUT.snapshot_request("BTC/USDT", 20).url == "https://api-futures.kucoin.com/api/v1/level2/snapshot"
    assert SPOT.snapshot_pair("https://api.kucoin.com/api/v3/market/orderbook/level2?symbol=SNX-BTC") == "SNX/BTC"
    assert FUT.snapshot_pair("https://api.kucoin.com/api/v3/market/orderbook/level2?symbol=SNX-BTC") is None
    assert SPOT.snapshot_pair("https://api-futures.kucoin.com/api/v1/level2/snapshot?symbol=XBTUSDTM") is None


def test_kucoin_parse_snapshot_real_spot_and_documented_futures():
    snap = SPOT.parse_snapshot("BCHSV/USDT", lines("book_snapshot_rest.cf.jsonl")[0], 3)
    assert isinstance(snap, BookSnapshot) and snap.seq == 1613277183892
    assert snap.bids[0] == (242.649, 5.0) and snap.exch_ns == 1619378326628 * 1_000_000
    fut = FUT.parse_snapshot("BTC/USD", lines("book_snapshot_rest.docs.jsonl")[0], 3)
    assert (fut.seq, fut.bids[0], fut.asks[0], fut.exch_ns) == (1697895963339, (66968.0, 2.0),
                                                                (66968.1, 13501.0), 1729168101216000000)


@pytest.mark.parametrize("body", ['{"code":"400100","msg":"symbol not exists"}', "[]",
                                  lines("book_snapshot_rest.docs.jsonl")[1],  # docs show the data part only
                                  '{"code":"200000","data":{"bids":[],"asks":[]}}',
                                  '{"code":"200000","data":{"sequence":"x","bids":[],"asks":[]}}'])
def test_kucoin_parse_snapshot_error_or_unbridgeable_body_raises(body):
    with pytest.raises((ValueError, KeyError, TypeError)):
        SPOT.parse_snapshot("BTC/USDT", body, 0)


# --------------------------------------------------------------------- rule


def _delta(first: int, last: int, bids=(), asks=(), seqs=None) -> BookDelta:
    extra = {"seqs": seqs} if seqs is not None else {}
    return BookDelta("kucoin", Market.SPOT, "X/Y", list(bids), list(asks), first, last, -1, 0, 0, extra)


def _snap(seq: int) -> BookSnapshot:
    return BookSnapshot("kucoin", Market.SPOT, "X/Y", [], [], seq)


def test_kucoin_rule_real_bchsv_ids_drop_bridge_apply_gap():
    # BCHSV-USDT: REST sequence 1613277183892; recorded increments 1613277183874.. one per message.
    rule = KucoinRule()
    rule.on_snapshot(_snap(1613277183892))
    assert rule.check(_delta(1613277183874, 1613277183874)) is Verdict.DROP
    assert rule.check(_delta(1613277183892, 1613277183892)) is Verdict.DROP
    assert rule.check(_delta(1613277183893, 1613277183893)) is Verdict.APPLY
    assert rule.check(_delta(1613277183893, 1613277183893)) is Verdict.DROP  # duplicate
    assert rule.check(_delta(1613277183895, 1613277183895)) is Verdict.GAP


def test_kucoin_rule_straddling_message_keeps_only_changes_after_snapshot():
    """The docs' calibration example: snapshot sequence 16; a message spanning
    15..19 applies only its changes numbered 18 and 19 (16 and 15 are in the
    snapshot already)."""
    rule = KucoinRule()
    rule.on_snapshot(_snap(16))
    delta = _delta(15, 19, bids=[(3988.50, 44.0)], asks=[(3988.59, 3.0), (3988.61, 0.0), (3988.62, 8.0)],
                   seqs=([18], [16, 19, 15]))
    assert rule.check(delta) is Verdict.APPLY
    assert delta.bids == [(3988.50, 44.0)] and delta.asks == [(3988.61, 0.0)]
    assert rule.check(_delta(20, 21)) is Verdict.APPLY and rule.check(_delta(23, 23)) is Verdict.GAP


def test_kucoin_parse_multi_change_message_carries_change_ids():
    frame = json.dumps({"type": "message", "topic": "/market/level2:BTC-USDT", "subject": "trade.l2update",
                        "data": {"symbol": "BTC-USDT", "sequenceStart": 15, "sequenceEnd": 19, "time": 1,
                                 "changes": {"bids": [["3988.50", "44", "18"]],
                                             "asks": [["3988.59", "3", "16"], ["0", "0", "17"],
                                                      ["3988.61", "0", "19"], ["3988.62", "8", "15"]]}}})
    (delta,) = SPOT.parse(frame, 0).events
    assert delta.extra == {"seqs": ([18], [16, 19, 15])} and len(delta.asks) == 3


# ------------------------------------------------------------------- replay


def replay(market: str, path: Path, *extra: str) -> list[dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "replay.py"), "book", "--exchange", "kucoin",
                           "--market", market, "--input", str(path), *extra],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def pair_of(symbol: str, futures: bool) -> str:
    """Independent of engine.venues: the shapes these captures use."""
    if futures:
        return f"{symbol[:-len('USDTM')]}/USDT"
    base, quote = symbol.split("-")
    return f"{base}/{quote}"


CAPTURES = [("spot", "spot_classic_2021-04-25.capture.jsonl.zst", 9),
            ("spot", "spot_BCHSV-USDT.capture.jsonl.zst", 1),
            ("spot", "spot_SNX-BTC.capture.jsonl", 1),
            ("futures", "futures_BSVUSDTM.recorded-style.capture.jsonl", 1)]


@pytest.mark.parametrize("market,name,books", CAPTURES)
def test_kucoin_replay_every_capture_no_gap_books_equal_reference(market, name, books):
    path = DATA / "kucoin" / name
    reports = replay(market, path, "--depth", "5000")
    futures = market == "futures"
    expected = {pair_of(s, futures): b for s, b in kucoin_books(read_records(path), futures).items()}
    assert len(reports) == len(expected) == books
    for report in reports:
        ref = expected[report["pair"]]
        assert report["synced"] is True
        assert (report["gaps"], report["resyncs"], report["errors"]) == (0, 0, 0)
        assert report["deltas_applied"] == ref.applied and report["seq"] == ref.last
        assert [report["bids"], report["asks"]] == list(ref.top(5000))


def test_kucoin_replay_capture_with_a_lost_message_reports_resyncing(tmp_path):
    rows = (DATA / "kucoin" / "spot_SNX-BTC.capture.jsonl").read_text().splitlines()
    del rows[100]  # a level2 increment after the snapshot
    path = tmp_path / "gap.jsonl"
    path.write_text("\n".join(rows) + "\n")
    (report,) = replay("spot", path)
    assert report["synced"] is False and report["gaps"] == 1 and report["resyncs"] == 1


def test_kucoin_futures_capture_is_reproducible_from_the_recording(tmp_path):
    """The recorded-style futures capture is exactly what its generator makes."""
    script = DATA / "kucoin" / "make_futures_capture.py"
    original = (DATA / "kucoin" / "futures_BSVUSDTM.recorded-style.capture.jsonl").read_bytes()
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert (DATA / "kucoin" / "futures_BSVUSDTM.recorded-style.capture.jsonl").read_bytes() == original


def test_kucoin_make_driver_both_markets():
    assert make_driver("kucoin", "spot").market is Market.SPOT
    assert make_driver("kucoin", "futures").limits.max_args_per_subscribe == 1


def test_kucoin_docs_calibration_example_end_to_end_through_the_router():
    """The docs' worked example: snapshot sequence 16; a buffered message with
    changes 15..19 turns the book into the docs' result table."""
    store = BookStore.create(f"kucoin-calib-{uuid.uuid4().hex[:8]}", 8, 10)
    try:
        router = FeedRouter(KucoinDriver(Market.SPOT), BookWriter(store))
        router.on_frame("c", json.dumps({
            "type": "message", "topic": "/market/level2:BTC-USDT", "subject": "trade.l2update",
            "data": {"symbol": "BTC-USDT", "sequenceStart": 15, "sequenceEnd": 19, "time": 1,
                     "changes": {"asks": [["3988.59", "3", "16"], ["3988.61", "0", "19"], ["3988.62", "8", "15"]],
                                 "bids": [["3988.50", "44", "18"]]}}}), 0)
        router.on_snapshot_response("BTC/USDT", json.dumps({"code": "200000", "data": {
            "sequence": "16", "time": 1,
            "asks": [["3988.62", "8"], ["3988.61", "32"], ["3988.60", "47"], ["3988.59", "3"]],
            "bids": [["3988.51", "56"], ["3988.50", "15"], ["3988.49", "100"], ["3988.48", "10"]]}}), 0)
        book = router.books["BTC/USDT"]
        assert router.stats("BTC/USDT")["state"] == "synced" and router.stats("BTC/USDT")["seq"] == 19
        bids, asks = router.writer.levels(book.index, 10)
        assert list(asks) == [(3988.59, 3.0), (3988.60, 47.0), (3988.62, 8.0)]
        assert list(bids) == [(3988.51, 56.0), (3988.50, 44.0), (3988.49, 100.0), (3988.48, 10.0)]
    finally:
        store.close()


def test_kucoin_futures_rule_on_documented_frames_with_a_gap(tmp_path):
    """Futures frames in the documented shape (docs example ids): snapshot
    1709400450242, then 243 applies, 243 again drops, 245 is a gap."""
    def frame(seq: int) -> BookDelta:
        (delta,) = FUT.parse(lines("book_delta.docs.jsonl")[1].replace("1709400450243", str(seq)), 0).events
        return delta

    rule = KucoinRule()
    rule.on_snapshot(_snap(1709400450242))
    assert [rule.check(frame(s)) for s in (1709400450241, 1709400450243, 1709400450243, 1709400450244,
                                           1709400450246)] == [
        Verdict.DROP, Verdict.APPLY, Verdict.DROP, Verdict.APPLY, Verdict.GAP]
    rows = (DATA / "kucoin" / "futures_BSVUSDTM.recorded-style.capture.jsonl").read_text().splitlines()
    del rows[200]
    path = tmp_path / "gap.jsonl"
    path.write_text("\n".join(rows) + "\n")
    (report,) = replay("futures", path)
    assert report["synced"] is False and report["gaps"] == 1

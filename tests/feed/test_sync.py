"""BookSync/FeedRouter over real recorded traffic and a real shared-memory
BookStore: every book ends level-by-level equal to the independent reference;
a dropped message is detected, resyncs that one book, and the book is correct
again after the fresh snapshot; Bybit's u=1 snapshot resets; OKX checksums."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.sync import WS_SNAPSHOT_PATIENCE, FeedRouter
from engine.model import Market, SyncState, book_key
from engine.venues import make_driver
from engine.venues.base import Subscription
from tests.venues.reference import DATA, RefBook, binance_books, bybit_books, okx_books, read_records


@pytest.fixture
def store():
    s = BookStore.create(f"t-sync-{uuid.uuid4().hex[:10]}", 64, 20)
    yield s
    s.close()


def feed(router: FeedRouter, records: list[dict]) -> None:
    for rec in records:
        if rec["src"] == "ws":
            router.on_frame(rec["conn"], rec["data"], rec["t"])
        else:
            pair = router.driver.snapshot_pair(rec["url"])
            router.on_snapshot_response(pair, rec["data"], rec["t"], rec["url"])


def levels(router: FeedRouter, pair: str, depth: int = 5000) -> list[list]:
    """[bids, asks] as [[price, size], ...] best first, from the writer's full book."""
    bids, asks = router.writer.levels(router.books[pair].index, depth)
    return [[list(lv) for lv in bids], [list(lv) for lv in asks]]


def binance_snapshot_body(book: RefBook) -> str:
    bids, asks = book.top_strings(5000)
    return json.dumps({"lastUpdateId": book.last, "bids": [list(b) for b in bids],
                       "asks": [list(a) for a in asks]})


# ------------------------------------------------------------ real captures


@pytest.mark.parametrize("name,market", [("spot_NKNUSDT.capture.jsonl", "spot"),
                                         ("usdm_SUSHIUSDT.capture.jsonl", "futures"),
                                         ("coinm_BTCUSD_211231.capture.jsonl", "futures")])
def test_router_binance_real_sequence_no_gap_matches_reference(store, name, market):
    records = read_records(DATA / "binance" / name)
    router = FeedRouter(make_driver("binance", market), BookWriter(store))
    feed(router, records)
    (symbol, ref), = binance_books(records, futures=market == "futures").items()
    pair = router.driver.pair(symbol)
    stats = router.stats(pair)
    assert (stats["state"], stats["gaps"], stats["resyncs"], stats["errors"]) == ("synced", 0, 0, 0)
    assert stats["deltas_applied"] == ref.applied and stats["seq"] == ref.last
    assert levels(router, pair) == list(ref.top(5000))


def test_router_bybit_real_history_no_gap_matches_reference(store):
    records = read_records(DATA / "bybit" / "linear_XRPUSDT_2024-12-01.capture.jsonl")
    router = FeedRouter(make_driver("bybit", "futures"), BookWriter(store))
    feed(router, records)
    ref = bybit_books(records)["XRPUSDT"]
    stats = router.stats("XRP/USDT")
    assert (stats["state"], stats["gaps"], stats["deltas_applied"]) == ("synced", 0, ref.applied)
    assert levels(router, "XRP/USDT") == list(ref.top(5000))


def test_router_okx_real_books_checksums_verified_match_reference(store):
    records = read_records(DATA / "okx" / "public_2022-05-13.capture.jsonl.zst")
    refs, verified = okx_books(records)
    assert verified > 250  # every 2022 message carried a non-zero checksum
    for market, inst_ids in (("spot", ["BTC-USDT"]), ("futures", ["UNI-USD-SWAP", "BTC-USD-220527"])):
        router = FeedRouter(make_driver("okx", market), BookWriter(store))
        feed(router, records)
        for inst in inst_ids:
            pair = router.driver.pair(inst)
            stats = router.stats(pair)
            assert (stats["state"], stats["gaps"], stats["resyncs"], stats["errors"]) == ("synced", 0, 0, 0)
            assert levels(router, pair) == list(refs[inst].top(5000))


# ------------------------------------------------------------ gap injection


@pytest.mark.parametrize("name,market,drop", [("spot_NKNUSDT.capture.jsonl", "spot", 40),
                                              ("usdm_SUSHIUSDT.capture.jsonl", "futures", 100)])
def test_router_binance_dropped_delta_resyncs_then_book_correct(store, name, market, drop):
    records = read_records(DATA / "binance" / name)
    futures = market == "futures"
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", market), BookWriter(store), request_snapshot=requested.append)
    kept = records[:drop] + records[drop + 1:]
    assert kept[drop]["src"] == "ws" and records[drop]["src"] == "ws"
    feed(router, kept[:drop + 1])  # the message after the dropped one shows the gap
    pair = next(iter(router.books))
    assert router.stats(pair)["state"] == "resyncing" and requested == [pair, pair]  # initial + resync
    reader = BookReader(store)
    assert reader.read(book_key("binance", market, pair)).state is SyncState.RESYNCING
    feed(router, kept[drop + 1:drop + 4])  # buffered while the snapshot is "in flight"
    # The venue's book as of two messages after the gap (from the undropped stream).
    venue_now = binance_books(records[:drop + 3], futures)[router.driver.symbol(pair)]
    router.on_snapshot_response(pair, binance_snapshot_body(venue_now), 0, "")
    feed(router, kept[drop + 4:])
    stats = router.stats(pair)
    assert (stats["state"], stats["gaps"], stats["resyncs"]) == ("synced", 1, 1)
    expected = binance_books(records, futures)[router.driver.symbol(pair)]
    assert levels(router, pair) == list(expected.top(5000))
    assert stats["seq"] == expected.last


def test_router_binance_snapshot_older_than_buffer_is_fetched_again(store):
    records = read_records(DATA / "binance" / "spot_NKNUSDT.capture.jsonl")
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store), request_snapshot=requested.append)
    ws = [r for r in records if r["src"] == "ws"]
    feed(router, ws[5:8])  # the stream starts after message 5
    stale = binance_books(records[:3], futures=False)["NKNUSDT"]  # venue book at message 2
    router.on_snapshot_response("NKN/USDT", binance_snapshot_body(stale), 0, "")
    assert router.stats("NKN/USDT")["state"] == "empty"
    assert router.stats("NKN/USDT")["snapshot_retries"] == 1 and requested == ["NKN/USDT", "NKN/USDT"]
    fresh = binance_books(records[:9], futures=False)["NKNUSDT"]  # rest record is line 1
    router.on_snapshot_response("NKN/USDT", binance_snapshot_body(fresh), 0, "")
    feed(router, ws[8:])
    expected = binance_books(records, futures=False)["NKNUSDT"]
    assert router.stats("NKN/USDT")["state"] == "synced"
    assert levels(router, "NKN/USDT") == list(expected.top(5000))


def test_router_gap_in_one_book_leaves_neighbours_synced(store):
    records = read_records(DATA / "binance" / "spot_2021-10-12.capture.jsonl")
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))
    nkn = [i for i, r in enumerate(records) if r["src"] == "ws" and '"s":"NKNUSDT"' in r["data"]]
    feed(router, records[:nkn[60]] + records[nkn[60] + 1:])
    assert router.stats("NKN/USDT")["state"] == "resyncing"
    assert router.stats("NKN/USDT")["gaps"] == 1
    for pair in ("BLZ/ETH", "LRC/BTC", "RUNE/EUR"):
        assert router.stats(pair)["state"] == "synced" and router.stats(pair)["resyncs"] == 0


def test_router_buffer_overflow_drops_oldest_and_refetches(store):
    records = read_records(DATA / "binance" / "spot_NKNUSDT.capture.jsonl")
    ws = [r for r in records if r["src"] == "ws"]
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store),
                        request_snapshot=requested.append, buffer_limit=10)
    feed(router, ws[:30])
    assert router.stats("NKN/USDT")["overflows"] == 20
    snap = next(r for r in records if r["src"] == "rest")  # older than the kept buffer
    router.on_snapshot_response("NKN/USDT", snap["data"], 0, snap["url"])
    assert router.stats("NKN/USDT")["state"] == "empty" and len(requested) == 2


# ---------------------------------------------------- snapshots and resets


def test_router_bybit_u1_snapshot_resets_book_without_resync(store):
    lines = (DATA / "bybit" / "bybit_history_ob500_XRPUSDT_2024-12-01.v5.jsonl").read_text().splitlines()
    router = FeedRouter(make_driver("bybit", "futures"), BookWriter(store))
    for line in lines[:10]:
        router.on_frame("c", line, 0)
    restart = json.loads(lines[0])
    restart["data"]["u"] = 1
    restart["data"]["b"] = [["1.9000", "5"], ["1.8000", "7"]]
    restart["data"]["a"] = [["2.1000", "3"]]
    router.on_frame("c", json.dumps(restart), 0)
    delta = json.loads(lines[1])
    delta["data"].update(u=2, b=[["1.9000", "0"], ["1.8500", "4"]], a=[])
    router.on_frame("c", json.dumps(delta), 0)
    stats = router.stats("XRP/USDT")
    assert (stats["state"], stats["seq"], stats["gaps"], stats["resyncs"]) == ("synced", 2, 0, 0)
    assert levels(router, "XRP/USDT") == [[[1.85, 4.0], [1.8, 7.0]], [[2.1, 3.0]]]


def test_router_bybit_skipped_u_asks_resubscribe_then_snapshot_resyncs(store):
    lines = (DATA / "bybit" / "bybit_history_ob500_XRPUSDT_2024-12-01.v5.jsonl").read_text().splitlines()
    resub: list[str] = []
    router = FeedRouter(make_driver("bybit", "futures"), BookWriter(store),
                        request_snapshot=lambda p: pytest.fail("Bybit has no REST resync"),
                        request_resubscribe=resub.append)
    for line in lines[:20] + lines[21:30]:
        router.on_frame("c", line, 0)
    assert resub == ["XRP/USDT"] and router.stats("XRP/USDT")["state"] == "resyncing"
    # The venue answers the resubscribe with a snapshot of its current book.
    records = [{"src": "ws", "data": line} for line in lines]
    venue_now = bybit_books(records[:30])["XRPUSDT"]
    bids, asks = venue_now.top_strings(5000)
    snap = json.loads(lines[0])
    snap["data"].update(u=venue_now.last, b=[list(b) for b in bids], a=[list(a) for a in asks])
    router.on_frame("c", json.dumps(snap), 0)
    for line in lines[30:]:
        router.on_frame("c", line, 0)
    stats = router.stats("XRP/USDT")
    assert (stats["state"], stats["gaps"], stats["resyncs"]) == ("synced", 1, 1)
    assert levels(router, "XRP/USDT") == list(bybit_books(records)["XRPUSDT"].top(5000))


def test_router_okx_tampered_update_fails_checksum_and_resyncs(store):
    frames = [json.loads(line)["raw"] for line in
              (DATA / "okx" / "book_seq.cf_books.BTC-USDT.jsonl").read_text().splitlines()]
    resub: list[str] = []
    router = FeedRouter(make_driver("okx", "spot"), BookWriter(store), request_resubscribe=resub.append)
    bad = json.loads(frames[1])
    assert bad["data"][0]["asks"][0][0] == "30243.5"  # the best ask: inside the checksummed top 25
    bad["data"][0]["asks"][0][1] = "9.99"  # a size the venue does not have
    for frame in frames[:1] + [json.dumps(bad)]:
        router.on_frame("c", frame, 0)
    assert router.stats("BTC/USDT")["gaps"] == 1 and resub == ["BTC/USDT"]
    router.on_frame("c", frames[0], 0)  # the resubscribe's snapshot
    assert router.stats("BTC/USDT")["state"] == "synced"


def test_router_okx_missing_ws_snapshot_falls_back_to_rest(store):
    rest: list[str] = []
    router = FeedRouter(make_driver("okx", "spot"), BookWriter(store), request_snapshot=rest.append,
                        request_resubscribe=lambda p: None)
    update = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
              "data": [{"asks": [["101", "1", "0", "1"]], "bids": [], "ts": "1", "checksum": 0}]}
    for seq in range(1, WS_SNAPSHOT_PATIENCE + 1):
        update["data"][0].update(seqId=seq + 1, prevSeqId=seq)
        router.on_frame("c", json.dumps(update), 0)
    assert rest == ["BTC/USDT"]
    body = {"code": "0", "msg": "", "data": [{"asks": [["102", "2", "0", "1"]], "bids": [["99", "3", "0", "1"]],
                                              "ts": "1", "seqId": 40}]}
    router.on_snapshot_response("BTC/USDT", json.dumps(body), 0)
    assert router.stats("BTC/USDT")["state"] == "synced" and router.stats("BTC/USDT")["seq"] == 51
    assert levels(router, "BTC/USDT") == [[[99.0, 3.0]], [[101.0, 1.0], [102.0, 2.0]]]


def test_router_reconnect_marks_resyncing_and_rest_refetches_on_first_delta(store):
    records = read_records(DATA / "binance" / "spot_NKNUSDT.capture.jsonl")
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store), request_snapshot=requested.append)
    feed(router, records[:50])
    assert requested == ["NKN/USDT"]
    router.on_reconnect(["NKN/USDT"])
    assert router.stats("NKN/USDT")["state"] == "resyncing" and router.stats("NKN/USDT")["resyncs"] == 1
    assert requested == ["NKN/USDT"]  # not yet: the snapshot must follow the new stream
    feed(router, records[50:51])
    assert requested == ["NKN/USDT", "NKN/USDT"]


def test_router_stale_rest_snapshot_while_synced_is_ignored(store):
    records = read_records(DATA / "binance" / "spot_NKNUSDT.capture.jsonl")
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))
    feed(router, records)
    before = levels(router, "NKN/USDT")
    snap = next(r for r in records if r["src"] == "rest")
    router.on_snapshot_response("NKN/USDT", snap["data"], 0, snap["url"])
    assert levels(router, "NKN/USDT") == before and router.stats("NKN/USDT")["state"] == "synced"


def test_router_error_body_counts_and_asks_again(store):
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store), request_snapshot=requested.append)
    router.add_book("NKN/USDT")
    router.on_snapshot_response("NKN/USDT", '{"code":-1003,"msg":"Too many requests"}', 0)
    router.on_snapshot_failed("NKN/USDT", "timeout")
    assert router.stats("NKN/USDT")["errors"] == 1 and requested == ["NKN/USDT", "NKN/USDT"]


def test_router_crossed_snapshot_is_rejected_and_refetched(store):
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store), request_snapshot=requested.append)
    router.add_book("A/USDT")
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":5,"bids":[["2","1"]],"asks":[["1","1"]]}', 0)
    assert router.stats("A/USDT")["state"] == "empty" and requested == ["A/USDT"]


def test_router_nan_level_counted_and_resyncs(store):
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":5,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    frame = ('{"e":"depthUpdate","E":1,"s":"AUSDT","U":6,"u":6,"b":[["nan","1"]],"a":[]}')
    router.on_frame("c", frame, 0)
    stats = router.stats("A/USDT")
    assert (stats["state"], stats["errors"], stats["resyncs"]) == ("resyncing", 1, 1)


@pytest.mark.parametrize("price,size", [("nan", "1"), ("inf", "1"), ("-1", "1"), ("0", "1"),
                                        ("1", "-1"), ("1", "nan"), ("1e400", "1"), ("-0", "1")])
def test_router_bad_level_in_combined_frame_refused_and_resyncs(store, price, size):
    """The typed path (combined frames) reads these as float() does; the book refuses them."""
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":5,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    frame = json.dumps({"stream": "ausdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "s": "AUSDT", "U": 6, "u": 6, "b": [[price, size]], "a": []}})
    router.on_frame("c", frame, 0)
    stats = router.stats("A/USDT")
    assert (stats["state"], stats["errors"], stats["resyncs"], stats["deltas_applied"]) == ("resyncing", 1, 1, 0)


@pytest.mark.parametrize("price", ["abc", "", "0x10", None, [1]])
def test_router_garbage_level_is_feed_error_book_untouched(store, price):
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":5,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    frame = json.dumps({"stream": "ausdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "s": "AUSDT", "U": 6, "u": 6, "b": [[price, "1"]], "a": []}})
    router.on_frame("c", frame, 0)
    stats = router.stats("A/USDT")
    assert router.errors == 1
    assert (stats["state"], stats["seq"], stats["messages"], stats["errors"]) == ("synced", 5, 1, 0)


def test_router_two_threads_two_books_both_correct(store):
    records = read_records(DATA / "binance" / "spot_2021-10-12.capture.jsonl")
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))

    def only(symbol: str) -> list[dict]:
        return [r for r in records if symbol in r["data"] or symbol in r["url"]]

    threads = [threading.Thread(target=feed, args=(router, only(s))) for s in ("NKNUSDT", "LRCBTC")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refs = binance_books(records, futures=False)
    for symbol, pair in (("NKNUSDT", "NKN/USDT"), ("LRCBTC", "LRC/BTC")):
        assert router.stats(pair)["state"] == "synced"
        assert levels(router, pair) == list(refs[symbol].top(5000))


def test_router_reader_in_shared_memory_sees_synced_top_levels(store):
    records = read_records(DATA / "binance" / "spot_NKNUSDT.capture.jsonl")
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))
    feed(router, records)
    view = BookReader(store).read(book_key("binance", Market.SPOT, "NKN/USDT"), 5)
    ref = binance_books(records, futures=False)["NKNUSDT"]
    assert view.synced and view.seq == ref.last
    assert view.bids.tolist() == ref.top(5)[0] and view.asks.tolist() == ref.top(5)[1]


# ------------------------------------------------------------------ fuzz

FUZZ_FRAMES = (DATA / "binance" / "book_delta.cf.jsonl").read_text().splitlines()[:3]
NUMBERS = st.sampled_from(["nan", "-1", "0", "1e400", "", "abc", "0.5", "1e-300", "99999999999"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 2), NUMBERS, NUMBERS, st.integers(-5, 5)), max_size=12))
def test_router_mutated_real_frames_never_raise(store, edits):
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))
    router.on_snapshot_response("NKN/USDT", (DATA / "binance" / "book_snapshot_rest.cf.jsonl")
                                .read_text().splitlines()[0], 0)
    for which, price, size, shift in edits:
        msg = json.loads(FUZZ_FRAMES[which])
        msg["data"]["b"] = [[price, size]]
        msg["data"]["u"] += shift
        router.on_frame("c", json.dumps(msg), 0)
    assert router.stats("NKN/USDT")["state"] in ("synced", "resyncing")


# ------------------------------------------- subscribe acks (quiet books)


def subscribe_ack(router: FeedRouter, pairs: list[str]) -> str:
    """The venue's answer to the driver's SUBSCRIBE for ``pairs``: {"result":null,"id":N}."""
    (frame,) = router.driver.subscribe([Subscription(p) for p in pairs])
    return json.dumps({"result": None, "id": json.loads(frame)["id"]})


def test_router_binance_quiet_book_subscribe_ack_snapshot_syncs_without_delta(store):
    records = read_records(DATA / "binance" / "spot_NKNUSDT.capture.jsonl")
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store),
                        request_snapshot=requested.append)
    router.add_book("NKN/USDT")
    router.on_frame("c", subscribe_ack(router, ["NKN/USDT"]), 0)
    assert requested == ["NKN/USDT"]  # at the ack: no delta needed
    rest = next(r for r in records if r["src"] == "rest")
    router.on_snapshot_response("NKN/USDT", rest["data"], 0, rest["url"])
    stats = router.stats("NKN/USDT")
    assert (stats["state"], stats["seq"], stats["buffered"]) == ("synced", 499869752, 0)
    # The stream that follows: u <= L dropped, the first applied straddles L+1.
    feed(router, [r for r in records if r["src"] == "ws"])
    stats = router.stats("NKN/USDT")
    assert (stats["state"], stats["gaps"], stats["resyncs"]) == ("synced", 0, 0)
    assert requested == ["NKN/USDT"]
    expected = binance_books(records, futures=False)["NKNUSDT"]
    assert levels(router, "NKN/USDT") == list(expected.top(5000))


def test_router_binance_ack_then_first_delta_requests_snapshot_once(store):
    records = read_records(DATA / "binance" / "spot_NKNUSDT.capture.jsonl")
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store),
                        request_snapshot=requested.append)
    router.on_frame("c", subscribe_ack(router, ["NKN/USDT"]), 0)
    feed(router, [r for r in records if r["src"] == "ws"][:5])  # buffered while in flight
    router.on_frame("c", subscribe_ack(router, ["NKN/USDT"]), 0)  # a second ack: still in flight
    assert requested == ["NKN/USDT"] and router.stats("NKN/USDT")["buffered"] == 5


def test_router_binance_snapshot_before_stream_started_first_event_gap_refetches(store):
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store),
                        request_snapshot=requested.append)
    router.on_frame("c", subscribe_ack(router, ["A/USDT"]), 0)
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":5,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    assert router.stats("A/USDT")["state"] == "synced"
    # The venue had moved on before it streamed to us: the first event skips 6..9.
    router.on_frame("c", '{"e":"depthUpdate","E":1,"s":"AUSDT","U":10,"u":11,"b":[],"a":[]}', 0)
    stats = router.stats("A/USDT")
    assert (stats["state"], stats["gaps"], stats["resyncs"]) == ("resyncing", 1, 1)
    assert requested == ["A/USDT", "A/USDT"]


def test_router_binance_reconnect_quiet_book_ack_requests_snapshot(store):
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store),
                        request_snapshot=requested.append)
    router.on_frame("c", subscribe_ack(router, ["A/USDT"]), 0)
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":5,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    router.on_reconnect(["A/USDT"])
    assert router.stats("A/USDT")["state"] == "resyncing" and requested == ["A/USDT"]
    router.on_frame("c2", subscribe_ack(router, ["A/USDT"]), 0)  # the new socket's subscribe
    assert requested == ["A/USDT", "A/USDT"]
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":9,"bids":[["1","2"]],"asks":[["2","1"]]}', 0)
    stats = router.stats("A/USDT")
    assert (stats["state"], stats["seq"], stats["resyncs"]) == ("synced", 9, 1)


def test_router_binance_snapshot_answered_while_stream_lost_is_discarded_and_asked_again(store):
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store),
                        request_snapshot=requested.append)
    router.on_frame("c", subscribe_ack(router, ["A/USDT"]), 0)
    router.on_reconnect(["A/USDT"])  # the socket died while that snapshot was fetched
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":5,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    router.on_snapshot_failed("A/USDT", "timeout")  # nor is a failure retried while down
    assert router.stats("A/USDT")["state"] == "empty" and requested == ["A/USDT"]
    router.on_frame("c2", subscribe_ack(router, ["A/USDT"]), 0)
    assert requested == ["A/USDT", "A/USDT"]
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":9,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    assert router.stats("A/USDT")["state"] == "synced" and router.stats("A/USDT")["seq"] == 9


def test_router_binance_ack_of_synced_book_or_unknown_request_asks_nothing(store):
    requested: list[str] = []
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store),
                        request_snapshot=requested.append)
    router.on_snapshot_response("A/USDT", '{"lastUpdateId":5,"bids":[["1","1"]],"asks":[["2","1"]]}', 0)
    router.on_frame("c", subscribe_ack(router, ["A/USDT"]), 0)  # a rotation's new socket
    router.on_frame("c", '{"result":null,"id":999999}', 0)  # not a request of ours
    (frame,) = router.driver.unsubscribe([Subscription("B/USDT")])
    router.on_frame("c", json.dumps({"result": None, "id": json.loads(frame)["id"]}), 0)
    assert requested == [] and set(router.books) == {"A/USDT"}


# ------------------------------------------------- repeated messages


def test_router_bybit_repeated_and_older_deltas_dropped_without_resync(store):
    lines = (DATA / "bybit" / "bybit_history_ob500_XRPUSDT_2024-12-01.v5.jsonl").read_text().splitlines()
    resub: list[str] = []
    router = FeedRouter(make_driver("bybit", "futures"), BookWriter(store),
                        request_resubscribe=resub.append)
    for line in lines[:20] + [lines[19], lines[19], lines[12]] + lines[20:]:
        router.on_frame("c", line, 0)
    stats = router.stats("XRP/USDT")
    assert (stats["state"], stats["gaps"], stats["resyncs"]) == ("synced", 0, 0) and resub == []
    records = [{"src": "ws", "data": line} for line in lines]
    assert levels(router, "XRP/USDT") == list(bybit_books(records)["XRPUSDT"].top(5000))


def okx_frame(action: str, seq: int, prev: int, bids: list, asks: list) -> str:
    return json.dumps({"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": action,
                       "data": [{"asks": [[p, s, "0", "1"] for p, s in asks],
                                 "bids": [[p, s, "0", "1"] for p, s in bids],
                                 "ts": "1", "checksum": 0, "seqId": seq, "prevSeqId": prev}]})


def test_router_okx_repeated_and_older_updates_dropped_without_resync(store):
    resub: list[str] = []
    router = FeedRouter(make_driver("okx", "spot"), BookWriter(store), request_resubscribe=resub.append)
    snapshot = okx_frame("snapshot", 100, -1, [("99", "1")], [("101", "1")])
    first = okx_frame("update", 103, 100, [("98", "2")], [])
    second = okx_frame("update", 107, 103, [("99", "0")], [("102", "3")])
    keepalive = okx_frame("update", 107, 107, [], [])
    third = okx_frame("update", 110, 107, [], [("101", "4")])
    for frame in (snapshot, first, second, second, keepalive, first, third, second):
        router.on_frame("c", frame, 0)
    stats = router.stats("BTC/USDT")
    assert (stats["state"], stats["seq"], stats["gaps"], stats["resyncs"]) == ("synced", 110, 0, 0)
    assert resub == []
    assert levels(router, "BTC/USDT") == [[[98.0, 2.0]], [[101.0, 4.0], [102.0, 3.0]]]


def test_router_okx_unchained_update_not_seen_before_is_gap(store):
    resub: list[str] = []
    router = FeedRouter(make_driver("okx", "spot"), BookWriter(store), request_resubscribe=resub.append)
    router.on_frame("c", okx_frame("snapshot", 100, -1, [("99", "1")], [("101", "1")]), 0)
    router.on_frame("c", okx_frame("update", 103, 100, [("98", "2")], []), 0)
    router.on_frame("c", okx_frame("update", 102, 101, [("97", "2")], []), 0)  # older, never applied
    stats = router.stats("BTC/USDT")
    assert (stats["state"], stats["gaps"], stats["resyncs"]) == ("resyncing", 1, 1)
    assert resub == ["BTC/USDT"]


def test_router_on_frame_says_which_frames_carried_data(store):
    """The connection's stall clock counts only frames with market data or a
    venue event: a subscribe ack or an unparseable frame is not data."""
    router = FeedRouter(make_driver("binance", "spot"), BookWriter(store))
    replies, had_data = router.on_frame("c", subscribe_ack(router, ["A/USDT"]), 0)
    assert (replies, had_data) == ([], False)
    assert router.on_frame("c", "not json at all", 0)[1] is False
    assert router.errors == 1  # the bad frame was a FeedError, counted
    delta = '{"e":"depthUpdate","E":1,"s":"AUSDT","U":10,"u":11,"b":[["1","1"]],"a":[]}'
    assert router.on_frame("c", delta, 0)[1] is True
    trade = ('{"e":"trade","E":1,"s":"AUSDT","t":7,"p":"1.5","q":"2","T":1,"m":true}')
    assert router.on_frame("c", trade, 0)[1] is True

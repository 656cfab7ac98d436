"""HTX driver: naming and endpoints per market, frames, gzip frames (real,
corrupt, truncated, bombs), the docs' examples and the 2021/2022/2026 recorded
frames, the seqNum/version rule on hand-built frames with gaps, and every
capture replayed through tools/replay.py equal level by level to the
independent reference (tests/venues/reference.py)."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import zstandard

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.sync import FeedRouter
from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues import make_driver
from engine.venues.base import ResyncMethod, Subscription, Verdict, inflate_gzip
from engine.venues.htx import HtxDriver, HtxRule
from tests.support import scripts_htx
from tests.venues.reference import DATA, htx_books, read_records

ROOT = Path(__file__).resolve().parents[2]
HTX = DATA / "htx"
SPOT = HtxDriver(Market.SPOT)
SWAP = HtxDriver(Market.FUTURES)
DOCS_SPOT = (HTX / "docs.spot.jsonl").read_text().splitlines()
DOCS_SWAP = (HTX / "docs.swap.jsonl").read_text().splitlines()
GZ_FRAMES = [base64.b64decode(line) for line in (HTX / "raw_gzip_frames.cf.b64.txt").read_text().split()]


def gz(obj: dict | str) -> bytes:
    return gzip.compress((obj if isinstance(obj, str) else json.dumps(obj)).encode(), mtime=0)


# ------------------------------------------------------------------ naming, frames


def test_htx_symbols_per_market():
    assert SPOT.symbol("BTC/USDT") == "btcusdt"
    assert SPOT.pair("yfihusd") == "YFI/HUSD" and SPOT.pair("fil3susdt") == "FIL3S/USDT"
    assert SPOT.pair("eosht") == "EOS/HT" and SPOT.pair("trioeth") == "TRIO/ETH"
    assert SWAP.symbol("BTC/USDT") == "BTC-USDT" and SWAP.symbol("BTC/USD") == "BTC-USD"
    assert SWAP.symbol("BTC/USDT-210625") == "BTC-USDT-210625"
    assert SWAP.pair("ATOM-USD") == "ATOM/USD" and SWAP.pair("BTC-USDT-210625") == "BTC/USDT-210625"
    with pytest.raises(ValueError):
        SPOT.symbol("BTC/USDT-210625")


def test_htx_endpoints_spot_books_on_feed_trades_on_ws():
    plan = SPOT.endpoints([Subscription("BTC/USDT"), Subscription("ETH/USDT", trades=False)])
    assert list(plan) == ["wss://api.huobi.pro/feed", "wss://api.huobi.pro/ws"]
    assert [s.pair for s in plan["wss://api.huobi.pro/feed"]] == ["BTC/USDT", "ETH/USDT"]
    assert [(s.pair, s.book) for s in plan["wss://api.huobi.pro/ws"]] == [("BTC/USDT", False)]
    aws = HtxDriver(Market.SPOT, ws_url="wss://api-aws.huobi.pro")
    assert aws.connect_url([]) == "wss://api-aws.huobi.pro/feed"
    local = HtxDriver(Market.SPOT, ws_url="ws://127.0.0.1:9/ws")  # an explicit endpoint: one socket
    assert list(local.endpoints([Subscription("BTC/USDT")])) == ["ws://127.0.0.1:9/ws"]
    assert SWAP.endpoints([Subscription("BTC/USDT")]) == {
        "wss://api.hbdm.com/linear-swap-ws": [Subscription("BTC/USDT")]}
    assert SPOT.resync is ResyncMethod.RESUBSCRIBE and SPOT.snapshot_request("BTC/USDT", 20) is None
    assert SPOT.stream_snapshot_bridges and not SWAP.stream_snapshot_bridges


def test_htx_subscribe_spot_sub_then_req_one_topic_per_frame():
    frames = [json.loads(f) for f in SPOT.subscribe([Subscription("BTC/USDT")])]
    assert frames == [{"sub": "market.btcusdt.mbp.150", "id": "sub:market.btcusdt.mbp.150"},
                      {"req": "market.btcusdt.mbp.150", "id": "req:market.btcusdt.mbp.150"},
                      {"sub": "market.btcusdt.trade.detail", "id": "sub:market.btcusdt.trade.detail"}]
    assert [json.loads(f) for f in SPOT.resubscribe([Subscription("BTC/USDT")])] == [frames[1]]
    assert [json.loads(f)["unsub"] for f in SPOT.unsubscribe([Subscription("BTC/USDT")])] == [
        "market.btcusdt.mbp.150", "market.btcusdt.trade.detail"]


def test_htx_subscribe_swap_size_and_data_type():
    (book, trades) = [json.loads(f) for f in SWAP.subscribe([Subscription("BTC/USDT", depth=20)])]
    assert book == {"sub": "market.BTC-USDT.depth.size_20.high_freq", "data_type": "incremental",
                    "id": "sub:market.BTC-USDT.depth.size_20.high_freq"}
    assert trades == {"sub": "market.BTC-USDT.trade.detail", "id": "sub:market.BTC-USDT.trade.detail"}
    deep = [json.loads(f) for f in SWAP.resubscribe([Subscription("ETH/USDT", depth=50)])]
    assert [list(f)[0] for f in deep] == ["unsub", "sub"]
    assert deep[1]["sub"] == "market.ETH-USDT.depth.size_150.high_freq"


# ------------------------------------------------------------------ parsing


def test_htx_parse_docs_spot_increments_refresh_and_step0():
    one_side, blank_side, empty = (SPOT.parse(line, 7).events[0] for line in DOCS_SPOT[1:4])
    assert isinstance(one_side, BookDelta) and one_side.bids == []
    assert (one_side.prev_seq, one_side.last_seq) == (100020146794, 100020146795)
    assert one_side.asks == [(645.14, 26.755973959140651643)] and one_side.exch_ns == 1573199608679 * 10**6
    assert blank_side.asks == [(645.14, 26.75597395914065)] and blank_side.recv_ns == 7
    assert (empty.bids, empty.asks, empty.prev_seq, empty.last_seq) == ([], [], 100772868476, 100772868478)
    rep, refresh, step0 = (SPOT.parse(line, 0).events[0] for line in DOCS_SPOT[4:7])
    assert isinstance(rep, BookSnapshot) and rep.seq == 100020142010 and len(rep.bids) == 5
    assert rep.asks[0] == (650.59, 14.909733438479636)
    assert isinstance(refresh, BookSnapshot) and refresh.seq == 100020142010
    assert isinstance(step0, BookSnapshot) and step0.seq == 136998124622 and step0.bids[0] == (52690.69, 0.36281)


def test_htx_parse_docs_trades_taker_side_and_ids():
    (spot,) = SPOT.parse(DOCS_SPOT[7], 0).events
    assert isinstance(spot, Trade)
    assert (spot.pair, spot.price, spot.size, spot.taker_side, spot.trade_id) == (
        "BTC/USDT", 52648.62, 0.006754, Side.BUY, "102523573486")  # tradeId, not the float id
    (swap,) = SWAP.parse(DOCS_SWAP[3], 0).events
    assert (swap.pair, swap.size, swap.trade_id) == ("BTC/USDT", 2.0, "1316022650000")  # contracts
    assert SWAP.parse(DOCS_SWAP[4], 0).events == []  # a trade-history rep is not a book


def test_htx_parse_docs_swap_snapshot_and_merged_step():
    snap = SWAP.parse(DOCS_SWAP[1], 0).events[0]
    assert isinstance(snap, BookSnapshot) and snap.seq == 1512467 and snap.bids == [(13071.9, 38.0), (13060.0, 400.0)]
    step6 = SWAP.parse(DOCS_SWAP[2], 0).events[0]
    assert isinstance(step6, BookSnapshot) and step6.seq == 1603707576


@pytest.mark.parametrize("line", [DOCS_SPOT[0], DOCS_SPOT[8], DOCS_SPOT[9], DOCS_SWAP[0], DOCS_SWAP[5]]
                         + (HTX / "sub_ack.cf.jsonl").read_text().splitlines()
                         + (HTX / "sub_ack.obs2026.jsonl").read_text().splitlines()
                         + (HTX / "other.obs2026.jsonl").read_text().splitlines())
def test_htx_parse_acks_bbo_and_notices_yield_nothing(line):
    for driver in (SPOT, SWAP):
        assert driver.parse(line, 0).events == []


def test_htx_ping_answered_with_same_number():
    assert SPOT.parse(DOCS_SPOT[10], 0).replies == ['{"pong":1492420473027}']
    assert SWAP.parse(gz({"ping": 1790134831961}), 0).replies == ['{"pong":1790134831961}']
    assert SWAP.parse('{"op":"ping","ts":"1492420473058"}', 0).replies == [
        '{"op":"pong","ts":"1492420473058"}']
    pings = [SPOT.parse(f, 0).replies for f in GZ_FRAMES if b"ping" in gzip.decompress(f)]
    assert pings == [['{"pong":1618678073643}'], ['{"pong":1618678078643}'], ['{"pong":1645289389594}']]


def test_htx_parse_real_gzip_frames_byte_exact():
    kinds = [[type(e).__name__ for e in d.parse(f, 0).events] for f in GZ_FRAMES for d in (SPOT, SWAP)]
    assert kinds.count(["BookSnapshot"]) == 2  # the spot depth frame (spot) and the swap one (futures)
    assert all(k in ([], ["BookSnapshot"]) for k in kinds)


def test_htx_parse_2026_high_freq_frames():
    snap = SWAP.parse((HTX / "book_snapshot_TRIMMED.obs2026.jsonl").read_text(), 0).events[0]
    delta = SWAP.parse((HTX / "book_delta.obs2026.jsonl").read_text().splitlines()[0], 0).events[0]
    assert isinstance(snap, BookSnapshot) and isinstance(delta, BookDelta)
    assert delta.prev_seq == snap.seq == 1789895280797 and delta.last_seq == 1789895280798
    assert delta.bids == [(86853.4, 2.0), (86848.5, 0.0)]
    rule = HtxRule()
    rule.on_snapshot(snap)
    assert rule.check(delta) is Verdict.APPLY


def test_htx_other_market_frames_are_skipped_not_errors():
    assert SPOT.parse(DOCS_SWAP[1], 0).events == []
    assert SWAP.parse(DOCS_SPOT[4], 0).events == []


@pytest.mark.parametrize("frame", [
    (HTX / "error.obs2026.jsonl").read_text().splitlines()[0],
    gz((HTX / "error.obs2026.jsonl").read_text().splitlines()[1]),
    '{"ch":"market.btcusdt.mbp.150","ts":1,"tick":{"seqNum":5,"bids":[]}}',  # no prevSeqNum
    '{"ch":"market.BTC-USDT.depth.size_20.high_freq","ts":1,"tick":{"event":"x","version":3}}',
    '{"ch":"market.BTC-USDT.depth.size_20.high_freq","ts":1,"tick":{"event":"update"}}',
    '{"ch":"market.btcusdt.trade.detail","ts":1,"tick":{"data":[{"price":1,"amount":1,"direction":"up","ts":1,"id":1}]}}',
    '{"ch":"market.btcusdt.trade.detail","ts":1,"tick":{"data":[{"price":-1,"amount":1,"direction":"buy","ts":1,"id":1}]}}',
    '{"ch":"market.btcusdt.trade.detail","ts":1,"tick":{"data":[{"price":"nan","amount":1,"direction":"buy","ts":1,"id":1}]}}',
    '{"ch":"market.btcusdt.mbp.150","ts":1,"tick":{"seqNum":5,"prevSeqNum":4,"bids":[["x",1]]}}',
    b"\x1f\x8b garbage", b"\x00\x01", "not json", "[1,2]", '"ping"'])
def test_htx_parse_bad_frames_yield_feed_error(frame):
    events = (SPOT.parse(frame, 0).events or SWAP.parse(frame, 0).events)
    assert len(events) == 1 and isinstance(events[0], FeedError)


def test_htx_corrupt_truncated_trailing_and_bomb_gzip_are_feed_errors():
    good = GZ_FRAMES[3]  # a real spot depth frame
    corrupt = scripts_htx.HtxScript("spot").corrupt(good)
    bomb = gzip.compress(b" " * (65 << 20), compresslevel=1)  # 64 MB + 1 MB of blanks, ~65 KB on the wire
    for frame in (corrupt, good[: len(good) // 2], good + b"\x00", good[:-1], bomb):
        (event,) = SPOT.parse(frame, 0).events
        assert isinstance(event, FeedError) and event.reason.startswith("bad gzip frame"), event
    assert inflate_gzip(good) == gzip.decompress(good)
    with pytest.raises(ValueError, match="beyond"):
        inflate_gzip(gzip.compress(b"x" * 1000), limit=100)


def test_htx_req_refused_429_asks_again_other_errors_do_not():
    busy = {"status": "error", "ts": 1, "id": "req:market.btcusdt.mbp.150", "err-code": "bad-request",
            "err-msg": "429 too many request"}
    parsed = SPOT.parse(gz(busy), 0)
    assert isinstance(parsed.events[0], FeedError)
    assert [json.loads(r) for r in parsed.replies] == [{"req": "market.btcusdt.mbp.150",
                                                        "id": "req:market.btcusdt.mbp.150"}]
    assert SPOT.parse(gz(dict(busy, **{"err-msg": "invalid topic"})), 0).replies == []


# ------------------------------------------------------------------ sync rule (hand-built)


def _delta(seq: int, prev: int) -> BookDelta:
    return BookDelta("htx", Market.SPOT, "X/Y", [], [], seq, seq, prev)


def test_htx_rule_spot_prevseqnum_chain_duplicates_and_gap():
    rule = HtxRule()
    rule.on_snapshot(BookSnapshot("htx", Market.SPOT, "X/Y", [], [], 100020142010))
    assert rule.check(_delta(100020140000, 100020130000)) is Verdict.DROP  # buffered before the refresh
    assert rule.check(_delta(100020142015, 100020142010)) is Verdict.APPLY  # ids are not consecutive
    assert rule.check(_delta(100020142015, 100020142010)) is Verdict.DROP  # the same push twice
    assert rule.check(_delta(100020142090, 100020142015)) is Verdict.APPLY
    assert rule.check(_delta(100020142200, 100020142100)) is Verdict.GAP  # 100020142090 -> ? lost


def test_htx_rule_swap_version_plus_one_and_gap():
    frames = [gz({"ch": "market.BTC-USDT.depth.size_20.high_freq", "ts": 1, "tick": {
        "asks": [[2.0, 1]], "bids": [[1.0, 1]], "event": event, "version": version, "ts": 1}})
        for event, version in (("snapshot", 10), ("update", 11), ("update", 11), ("update", 13))]
    snap, *deltas = (SWAP.parse(f, 0).events[0] for f in frames)
    rule = HtxRule()
    rule.on_snapshot(snap)  # type: ignore[arg-type]
    assert [rule.check(d) for d in deltas] == [Verdict.APPLY, Verdict.DROP, Verdict.GAP]  # type: ignore[arg-type]


def _router(driver: HtxDriver) -> tuple[FeedRouter, BookStore, list[str]]:
    store = BookStore.create(f"htx{uuid.uuid4().hex[:10]}", 16, 20)
    asked: list[str] = []
    return FeedRouter(driver, BookWriter(store), request_resubscribe=asked.append), store, asked


def _mbp(seq: int, prev: int, bids: list, asks: list) -> bytes:
    return gz({"ch": "market.xyzusdt.mbp.150", "ts": 1, "tick": {"seqNum": seq, "prevSeqNum": prev,
                                                                  "bids": bids, "asks": asks}})


def _rep(seq: int, bids: list, asks: list) -> bytes:
    return gz({"id": "req:market.xyzusdt.mbp.150", "rep": "market.xyzusdt.mbp.150", "status": "ok",
               "data": {"seqNum": seq, "bids": bids, "asks": asks}})


def test_htx_router_gap_resyncs_with_req_then_refresh_heals():
    router, store, asked = _router(SPOT)
    try:
        router.on_frame("c", _rep(100, [[1.0, 1]], [[2.0, 1]]), 1)
        router.on_frame("c", _mbp(105, 100, [[1.0, 3]], []), 2)
        router.on_frame("c", _mbp(120, 110, [[1.1, 1]], []), 3)  # prev 110: 105 -> 110 was lost
        stats = router.stats("XYZ/USDT")
        assert (stats["state"], stats["gaps"], stats["resyncs"], asked) == ("resyncing", 1, 1, ["XYZ/USDT"])
        assert [json.loads(f) for f in SPOT.resubscribe([Subscription("XYZ/USDT")])] == [
            {"req": "market.xyzusdt.mbp.150", "id": "req:market.xyzusdt.mbp.150"}]
        router.on_frame("c", _rep(120, [[1.0, 3], [1.1, 1]], [[2.0, 1]]), 4)
        router.on_frame("c", _mbp(130, 120, [], [[2.0, 0], [2.5, 4]]), 5)
        stats = router.stats("XYZ/USDT")
        assert (stats["state"], stats["seq"]) == ("synced", 130)
        assert router.writer.levels(router.books["XYZ/USDT"].index, 5) == (
            [(1.1, 1.0), (1.0, 3.0)], [(2.5, 4.0)])
    finally:
        store.close()


def test_htx_router_negative_nan_and_crossed_levels_are_refused_not_fatal():
    router, store, asked = _router(SWAP)
    try:
        def push(event: str, version: int, bids: list, asks: list) -> None:
            router.on_frame("c", gz({"ch": "market.XYZ-USDT.depth.size_20.high_freq", "ts": 1, "tick": {
                "asks": asks, "bids": bids, "event": event, "version": version, "ts": 1}}), 1)

        push("snapshot", 1, [[1.0, 1]], [[2.0, 1]])
        push("update", 2, [[1.0, -5]], [])  # negative size
        stats = router.stats("XYZ/USDT")
        assert (stats["state"], stats["errors"], len(asked)) == ("resyncing", 1, 1)
        push("snapshot", 3, [["nan", 1]], [[2.0, 1]])  # NaN price: the snapshot is refused
        assert router.stats("XYZ/USDT")["state"] != "synced"
        push("snapshot", 4, [[3.0, 1]], [[2.0, 1]])  # crossed
        assert router.stats("XYZ/USDT")["state"] != "synced"
        push("snapshot", 5, [[1.0, 1]], [[2.0, 1]])
        assert router.stats("XYZ/USDT")["state"] == "synced"
    finally:
        store.close()


def test_htx_router_refresh_older_than_buffered_increments_bridges_without_resync():
    router, store, asked = _router(SPOT)
    try:
        router.on_frame("c", _mbp(110, 100, [[1.0, 2]], []), 1)  # before the refresh: buffered
        router.on_frame("c", _mbp(120, 110, [[1.1, 1]], []), 2)
        router.on_frame("c", _rep(110, [[1.0, 2]], [[2.0, 1]]), 3)  # the refresh is at 110
        router.on_frame("c", _mbp(130, 120, [], [[2.5, 1]]), 4)
        stats = router.stats("XYZ/USDT")
        assert (stats["state"], stats["seq"], stats["gaps"], stats["resyncs"]) == ("synced", 130, 0, 0)
        assert router.writer.levels(router.books["XYZ/USDT"].index, 5) == (
            [(1.1, 1.0), (1.0, 2.0)], [(2.0, 1.0), (2.5, 1.0)])
    finally:
        store.close()


# ------------------------------------------------------------------ captures, replay CLI


CAPTURES = [("spot", "spot_mbp150_derived.capture.jsonl.zst"),
            ("futures", "linear_high_freq150_derived.capture.jsonl.zst"),
            ("spot", "spot_2021-04-17.capture.jsonl.zst"),
            ("futures", "linear_swap_2022-02-19.capture.jsonl.zst"),
            ("futures", "coinm_swap_2022-02-19.capture.jsonl.zst")]


def _replay(market: str, path: Path) -> list[dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "replay.py"), "book", "--exchange", "htx",
                           "--market", market, "--input", str(path), "--depth", "5000"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _pair(symbol: str) -> str:
    """Independent of the driver: the quotes these captures use."""
    if "-" in symbol:
        return symbol.replace("-", "/")
    quote = next(q for q in ("usdt", "husd", "btc", "eth", "ht") if symbol.endswith(q))
    return f"{symbol[:-len(quote)].upper()}/{quote.upper()}"


@pytest.mark.parametrize("market,name", CAPTURES)
def test_htx_replay_cli_every_capture_no_gap_books_equal_reference(market, name):
    expected = {_pair(s): b for s, b in htx_books(read_records(HTX / name)).items()}
    reports = _replay(market, HTX / name)
    assert sorted(r["pair"] for r in reports) == sorted(expected)
    for report in reports:
        ref = expected[report["pair"]]
        assert report["synced"] and report["gaps"] == 0 and report["resyncs"] == 0, report
        assert report["errors"] == 0
        bids, asks = ref.top(5000)
        assert report["bids"] == bids and report["asks"] == asks, report["pair"]
        if "derived" in name:
            assert report["deltas_applied"] == ref.applied > 0


def test_htx_derived_captures_end_at_the_recorded_full_books():
    """The increments rebuild exactly the books the venue recorded in full."""
    for derived, source in ((scripts_htx.SPOT_DERIVED, scripts_htx.SPOT_SOURCE),
                            (scripts_htx.SWAP_DERIVED, scripts_htx.SWAP_SOURCE)):
        built, recorded = htx_books(read_records(derived)), htx_books(read_records(source))
        assert set(built) == set(recorded)
        for symbol, book in recorded.items():
            assert built[symbol].top(200) == book.top(200), symbol


def test_htx_derived_captures_are_reproducible():
    for derived, source, spot in ((scripts_htx.SPOT_DERIVED, scripts_htx.SPOT_SOURCE, True),
                                  (scripts_htx.SWAP_DERIVED, scripts_htx.SWAP_SOURCE, False)):
        text = zstandard.ZstdDecompressor().stream_reader(derived.read_bytes()).read()
        fresh = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n"
                         for line in scripts_htx.derive(source, spot))
        assert fresh == text, derived.name


def test_htx_bench_file_names_existing_captures():
    lines = [line.split("#")[0].split() for line in (HTX / "BENCH").read_text().splitlines()]
    for market, name in (line for line in lines if line):
        assert (HTX / name).is_file() and make_driver("htx", market).venue == "htx"

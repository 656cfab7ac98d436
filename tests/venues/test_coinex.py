"""CoinEx v2 driver: frames, gzip frames (real, corrupt, truncated), the docs'
examples and the 2026 recorded frames, the CRC32 rule on hand-built frames
(a lost push, a reordered push, the signed/unsigned checksum, an unreproducible
recipe), and every capture replayed through tools/replay.py equal level by level
to the independent reference (tests/venues/reference.py)."""

from __future__ import annotations

import base64
import gzip
import json
import subprocess
import sys
import uuid
import zlib
from pathlib import Path

import pytest
import zstandard

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.sync import FeedRouter
from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues.base import ResyncMethod, Subscription, Verdict
from engine.venues.coinex import CoinexDriver, CoinexRule, checksum_of
from tests.support import scripts_coinex
from tests.venues.reference import DATA, coinex_books, read_records

ROOT = Path(__file__).resolve().parents[2]
COINEX = DATA / "coinex"
SPOT = CoinexDriver(Market.SPOT)
SWAP = CoinexDriver(Market.FUTURES)
DOCS = (COINEX / "docs.server.jsonl").read_text().splitlines()


def gz(obj: dict | str) -> bytes:
    return gzip.compress((obj if isinstance(obj, str) else json.dumps(obj)).encode(), mtime=0)


def push(market: str, full: bool, bids: list, asks: list, checksum: int | None, ts: int = 1) -> bytes:
    depth: dict = {"asks": asks, "bids": bids, "last": "1", "updated_at": ts}
    if checksum is not None:
        depth["checksum"] = checksum
    return gz({"method": "depth.update", "data": {"market": market, "is_full": full, "depth": depth},
               "id": None})


def signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


# ------------------------------------------------------------------ frames


def test_coinex_endpoints_and_resync_by_resubscribe():
    assert SPOT.connect_url([]) == "wss://socket.coinex.com/v2/spot"
    assert SWAP.connect_url([]) == "wss://socket.coinex.com/v2/futures"
    assert SPOT.resync is ResyncMethod.RESUBSCRIBE and SPOT.snapshot_request("BTC/USDT", 20) is None
    assert SPOT.symbol("BTC/USDT") == "BTCUSDT" and SWAP.pair("BTCUSD") == "BTC/USD"
    assert json.loads(SPOT.heartbeat.client_ping or "") == {"method": "server.ping", "params": {}, "id": 0}


def test_coinex_subscribe_incremental_depth_50_and_deals():
    book, deals = (json.loads(f) for f in SPOT.subscribe([Subscription("BTC/USDT"),
                                                          Subscription("ETH/USDT", trades=False)]))
    assert book == {"method": "depth.subscribe", "id": 1, "params": {
        "market_list": [["BTCUSDT", 50, "0", False], ["ETHUSDT", 50, "0", False]]}}
    assert deals == {"method": "deals.subscribe", "id": 10001, "params": {"market_list": ["BTCUSDT"]}}
    again = [json.loads(f) for f in SPOT.resubscribe([Subscription("BTC/USDT")])]
    assert [f["method"] for f in again] == ["depth.unsubscribe", "depth.subscribe"]
    assert again[0]["params"] == {"market_list": ["BTCUSDT"]}


def test_coinex_subscribe_batches_thirty_markets_never_an_empty_list():
    frames = [json.loads(f) for f in SPOT.subscribe([Subscription(f"C{i}/USDT", trades=False)
                                                      for i in range(65)])]
    assert [len(f["params"]["market_list"]) for f in frames] == [30, 30, 5]
    assert SPOT.unsubscribe([]) == []  # an empty market_list would mean every market


def test_coinex_parse_docs_full_push_and_deals():
    snap = SPOT.parse(DOCS[1], 5).events[0]
    assert isinstance(snap, BookSnapshot) and snap.pair == "ETH/USDT" and snap.recv_ns == 5
    assert snap.asks == [(30740.0, 0.31763545), (30769.0, 1.45155)]
    assert snap.bids[-1] == (30422.0, 0.0)  # a "0" in a full push: the writer leaves it out
    assert snap.extra["checksum"] == 2578768879 and snap.exch_ns == 1689152421692 * 10**6
    trades = SPOT.parse(DOCS[2], 0).events
    assert [(t.price, t.size, t.taker_side, t.trade_id) for t in trades] == [  # type: ignore[union-attr]
        (30718.42, 0.00000325, Side.BUY, "3514376759"), (30718.42, 0.00015729, Side.BUY, "3514376758"),
        (30718.42, 0.00154936, Side.SELL, "3514376757")]
    assert all(isinstance(t, Trade) for t in trades)


def test_coinex_docs_example_checksum_does_not_describe_its_own_levels():
    """The docs' example is illustrative: neither reading of its checksum matches
    its levels (docs/venues/coinex.md). The rule then checks nothing."""
    snap = SPOT.parse(DOCS[1], 0).events[0]
    bids, asks = snap.extra["raw"]
    assert checksum_of([lv for lv in bids if lv[1] != "0"], asks) != 2578768879
    rule = CoinexRule()
    rule.on_snapshot(snap)
    assert rule.verified is False


@pytest.mark.parametrize("name", ["book_snapshot.obs2026.jsonl", "book_snapshot_TRIMMED.obs2026.jsonl"])
def test_coinex_parse_2026_full_pushes(name):
    (snap,) = SWAP.parse((COINEX / name).read_text(), 0).events
    assert isinstance(snap, BookSnapshot)
    if "TRIMMED" not in name:  # the ceased futures: an empty book, checksum 0 = CRC32 of ""
        rule = CoinexRule()
        rule.on_snapshot(snap)
        assert snap.bids == snap.asks == [] and snap.extra["checksum"] == 0 and rule.verified


@pytest.mark.parametrize("line", [DOCS[0], (COINEX / "heartbeat.obs2026.jsonl").read_text(),
                                  (COINEX / "sub_ack.obs2026.jsonl").read_text(),
                                  (COINEX / "other.obs2026.jsonl").read_text()])
def test_coinex_acks_pongs_and_state_yield_nothing(line):
    assert SPOT.parse(line, 0).events == [] and SPOT.parse(gz(line), 0).events == []


@pytest.mark.parametrize("frame", [
    (COINEX / "error.obs2026.jsonl").read_text(),
    '{"method":"depth.update","data":{"market":"BTCUSDT","is_full":"yes","depth":{}},"id":null}',
    '{"method":"depth.update","data":{"market":"BTCUSDT","is_full":false,"depth":{"bids":[[1,2]]}},"id":null}',
    '{"method":"depth.update","data":{"market":"BTCUSDT","is_full":false,"depth":{"bids":[["1"]]}},"id":null}',
    '{"method":"deals.update","data":{"market":"BTCUSDT","deal_list":[{"deal_id":1,"created_at":1,'
    '"side":"up","price":"1","amount":"1"}]},"id":null}',
    '{"method":"deals.update","data":{"market":"BTCUSDT","deal_list":[{"deal_id":1,"created_at":1,'
    '"side":"buy","price":"-1","amount":"1"}]},"id":null}',
    '{"method":"deals.update","data":{"market":"BTCUSDT","deal_list":[{"deal_id":1,"created_at":1,'
    '"side":"buy","price":"nan","amount":"1"}]},"id":null}',
    b"\x1f\x8b\x08\x00junk", b"\x00\x01", "not json", "[]", '{"id":1}'])
def test_coinex_bad_frames_yield_feed_error(frame):
    events = SPOT.parse(frame, 0).events
    assert len(events) == 1 and isinstance(events[0], FeedError), events


def test_coinex_corrupt_truncated_and_trailing_gzip_are_feed_errors():
    good = gz(DOCS[2])
    for frame in (scripts_coinex.CoinexScript("spot").corrupt(good), good[: len(good) // 2], good + b"!"):
        (event,) = SPOT.parse(frame, 0).events
        assert isinstance(event, FeedError) and event.reason.startswith("bad gzip frame"), event
    assert len(SPOT.parse(good, 0).events) == 3


# ------------------------------------------------------------------ CRC32 rule (hand-built)


BIDS = [["100.5", "1.0"], ["100.4", "2.50"]]
ASKS = [["100.6", "0.3"], ["100.9", "7"]]


def _rule_after_snapshot(checksum: int) -> CoinexRule:
    rule = CoinexRule()
    rule.on_snapshot(SPOT.parse(push("BTCUSDT", True, BIDS, ASKS, checksum), 0).events[0])  # type: ignore[arg-type]
    return rule


def _delta(bids: list, asks: list, checksum: int | None) -> BookDelta:
    return SPOT.parse(push("BTCUSDT", False, bids, asks, checksum), 0).events[0]  # type: ignore[return-value]


def test_coinex_checksum_recipe_bids_then_asks_wire_strings():
    text = "100.5:1.0:100.4:2.50:100.6:0.3:100.9:7"
    assert checksum_of(BIDS, ASKS) == zlib.crc32(text.encode())
    assert checksum_of([], ASKS) == zlib.crc32(b"100.6:0.3:100.9:7")  # no bids: asks only


@pytest.mark.parametrize("form", [lambda v: v, signed])
def test_coinex_rule_checks_every_push_signed_or_unsigned(form):
    rule = _rule_after_snapshot(form(checksum_of(BIDS, ASKS)))
    assert rule.verified
    after = checksum_of([["100.5", "1.0"], ["100.45", "3"], ["100.4", "2.50"]], ASKS[1:])
    assert rule.check(_delta([["100.45", "3"]], [["100.6", "0"]], form(after))) is Verdict.APPLY


def test_coinex_rule_lost_push_is_a_gap():
    rule = _rule_after_snapshot(checksum_of(BIDS, ASKS))
    # Push 1 (lost) moved 100.5 to 4.0; push 2 adds 101 on the asks: its checksum covers both.
    after_both = checksum_of([["100.5", "4.0"], ["100.4", "2.50"]], [["100.6", "0.3"], ["100.9", "7"],
                                                                     ["101", "1"]])
    assert rule.check(_delta([], [["101", "1"]], signed(after_both))) is Verdict.GAP


def test_coinex_rule_reordered_pushes_are_a_gap():
    rule = _rule_after_snapshot(checksum_of(BIDS, ASKS))
    first = checksum_of([["100.5", "4.0"], ["100.4", "2.50"]], ASKS)
    second = checksum_of([["100.5", "4.0"], ["100.4", "2.50"]], ASKS + [["101", "1"]])
    assert rule.check(_delta([], [["101", "1"]], second)) is Verdict.GAP  # arrived first
    assert first != second


def test_coinex_rule_unreproducible_full_push_checks_nothing_until_one_matches():
    rule = _rule_after_snapshot(12345)  # a checksum our recipe cannot produce
    assert not rule.verified
    assert rule.check(_delta([["100.5", "9"]], [], 999)) is Verdict.APPLY  # unchecked
    rule.on_snapshot(SPOT.parse(push("BTCUSDT", True, BIDS, ASKS, checksum_of(BIDS, ASKS)), 0).events[0])  # type: ignore[arg-type]
    assert rule.verified and rule.check(_delta([["100.5", "9"]], [], 999)) is Verdict.GAP


def test_coinex_rule_truncates_to_the_subscribed_fifty_levels():
    bids = [[str(1000 - i), "1"] for i in range(60)]  # a book deeper than the venue's window
    rule = CoinexRule()
    rule.on_snapshot(SPOT.parse(push("BTCUSDT", True, bids, [], checksum_of(bids[:50], [])), 0).events[0])  # type: ignore[arg-type]
    assert rule.verified


def _router(driver: CoinexDriver) -> tuple[FeedRouter, BookStore, list[str]]:
    store = BookStore.create(f"cx{uuid.uuid4().hex[:10]}", 16, 20)
    asked: list[str] = []
    return FeedRouter(driver, BookWriter(store), request_resubscribe=asked.append), store, asked


def test_coinex_router_gap_resubscribes_and_minute_full_push_heals():
    router, store, asked = _router(SPOT)
    try:
        router.on_frame("c", push("BTCUSDT", True, BIDS, ASKS, checksum_of(BIDS, ASKS)), 1)
        router.on_frame("c", push("BTCUSDT", False, [], [["101", "1"]], 7), 2)  # wrong checksum
        stats = router.stats("BTC/USDT")
        assert (stats["state"], stats["gaps"], stats["resyncs"], asked) == ("resyncing", 1, 1, ["BTC/USDT"])
        full = [["100.5", "4.0"]]
        router.on_frame("c", push("BTCUSDT", True, full, ASKS, checksum_of(full, ASKS)), 3)
        assert router.stats("BTC/USDT")["state"] == "synced"
        assert router.writer.levels(router.books["BTC/USDT"].index, 5) == (
            [(100.5, 4.0)], [(100.6, 0.3), (100.9, 7.0)])
    finally:
        store.close()


def test_coinex_router_negative_and_nan_levels_refused_not_fatal():
    router, store, asked = _router(SWAP)
    try:
        router.on_frame("c", push("BTCUSD", True, BIDS, ASKS, None), 1)  # no checksum: unchecked
        router.on_frame("c", push("BTCUSD", False, [["100.4", "-3"]], [], None), 2)
        assert router.stats("BTC/USD")["state"] == "resyncing" and len(asked) == 1
        router.on_frame("c", push("BTCUSD", True, [["nan", "1"]], ASKS, None), 3)
        assert router.stats("BTC/USD")["state"] != "synced"
        router.on_frame("c", push("BTCUSD", True, BIDS, ASKS, None), 4)
        assert router.stats("BTC/USD")["state"] == "synced"
    finally:
        store.close()


# ------------------------------------------------------------------ captures, replay CLI


CAPTURES = [("spot", "spot_derived.capture.jsonl.zst"), ("futures", "futures_derived.capture.jsonl.zst"),
            ("futures", "futures_linear_derived.capture.jsonl.zst")]


def _pair(market: str) -> str:
    """Independent of the driver: the quotes these captures use."""
    quote = next(q for q in ("USDT", "BTC", "ETH", "USD") if market.endswith(q))
    return f"{market[:-len(quote)]}/{quote}"


@pytest.mark.parametrize("market,name", CAPTURES)
def test_coinex_replay_cli_every_capture_synced_checksummed_books_equal_reference(market, name):
    books, verified = coinex_books(read_records(COINEX / name))
    assert verified == sum(b.applied + 1 for b in books.values())  # every push checked
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "replay.py"), "book", "--exchange", "coinex",
                           "--market", market, "--input", str(COINEX / name), "--depth", "5000"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    expected = {_pair(m): b for m, b in books.items()}
    assert sorted(r["pair"] for r in reports) == sorted(expected)
    for report in reports:
        ref = expected[report["pair"]]
        assert report["synced"] and report["resyncs"] == 0 and report["gaps"] == 0 and report["errors"] == 0
        assert report["deltas_applied"] == ref.applied > 0
        bids, asks = ref.top(5000)
        assert report["bids"] == bids and report["asks"] == asks, report["pair"]


def test_coinex_lost_push_the_next_push_overwrites_leaves_no_trace():
    """A checksum-only venue's blind spot, on recorded USDT-M dynamics: SOSUSDT's
    push 30 is wholly overwritten by push 31, so losing it changes nothing the
    checksum could see — and nothing in the book either."""
    driver, frames, snap = CoinexDriver(Market.FUTURES), [], None
    for rec in read_records(COINEX / "futures_linear_derived.capture.jsonl.zst"):
        msg = json.loads(gzip.decompress(base64.b64decode(rec["data"])))
        if msg.get("method") == "depth.update" and msg["data"]["market"] == "SOSUSDT":
            if msg["data"]["is_full"]:
                snap = driver.parse(gzip.compress(json.dumps(msg).encode()), 0).events[0]
            else:
                frames.append(driver.parse(gzip.compress(json.dumps(msg).encode()), 0).events[0])
    lost = next(i for i in range(1, len(frames) - 1)
                if {p for p, _ in frames[i].bids + frames[i].asks}
                <= {p for p, _ in frames[i + 1].bids + frames[i + 1].asks})
    rule = CoinexRule()
    rule.on_snapshot(snap)  # type: ignore[arg-type]
    verdicts = [rule.check(d) for i, d in enumerate(frames) if i != lost]
    assert rule.verified and verdicts == [Verdict.APPLY] * (len(frames) - 1)


def test_coinex_derived_captures_are_reproducible():
    for path, source, market in ((scripts_coinex.SPOT_DERIVED, scripts_coinex.SPOT_SOURCE, "spot"),
                                 (scripts_coinex.FUTURES_DERIVED, scripts_coinex.COINM_SOURCE, "futures"),
                                 (scripts_coinex.LINEAR_DERIVED, scripts_coinex.SWAP_SOURCE, "futures")):
        text = zstandard.ZstdDecompressor().stream_reader(path.read_bytes()).read()
        fresh = b"".join(json.dumps(line, separators=(",", ":")).encode() + b"\n"
                         for line in scripts_coinex.derive(source, market))
        assert fresh == text, path.name


def test_coinex_bench_file_names_existing_captures():
    lines = [line.split("#")[0].split() for line in (COINEX / "BENCH").read_text().splitlines()]
    assert all((COINEX / name).is_file() for market, name in (line for line in lines if line))

"""Hyperliquid driver: coin naming for perpetuals and spot, the instrument list
that keeps unknown coins out of subscriptions, subscribe frames, parsing the
real 2025 recording and the 2026 probe frames, the whole-book rule (an older
frame is refused), the replay CLI against the independent reference, and
refusing bad values."""

from __future__ import annotations

import json
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.feed.sync import FeedRouter
from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues.base import ResyncMethod, Subscription, Verdict
from engine.venues.hyperliquid import HyperliquidDriver, HyperliquidRule
from tests.feed.test_replay import replay
from tests.venues.reference import DATA, hyperliquid_books, read_records
from tests.venues.test_parsers_fuzz import FUZZ, JSON
from tests.venues.test_wire import _near_misses, _paths, _replaced, canon

HL = DATA / "hyperliquid"
CAPTURE = HL / "perp_BTC_2025-01-26.capture.jsonl"
# Shapes of the docs' ``meta`` / ``spotMeta`` replies (field lists on the Info
# endpoint pages; no recorded body exists here), trimmed to a few entries.
META = {"universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
                     {"name": "kPEPE", "szDecimals": 0, "maxLeverage": 10},
                     {"name": "LOOM", "szDecimals": 1, "maxLeverage": 3, "onlyIsolated": True,
                      "isDelisted": True}],
        "marginTables": []}
SPOT_META = {"tokens": [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0},
                        {"name": "PURR", "szDecimals": 0, "weiDecimals": 5, "index": 1},
                        {"name": "HFUN", "szDecimals": 2, "weiDecimals": 8, "index": 2}],
             "universe": [{"name": "PURR/USDC", "tokens": [1, 0], "index": 0, "isCanonical": True},
                          {"name": "@1", "tokens": [2, 0], "index": 1, "isCanonical": False}]}


def perp(loaded: bool = False) -> HyperliquidDriver:
    driver = HyperliquidDriver(Market.FUTURES)
    if loaded:
        driver.load_instruments(json.dumps(META))
    return driver


def spot(loaded: bool = False) -> HyperliquidDriver:
    driver = HyperliquidDriver(Market.SPOT)
    if loaded:
        driver.load_instruments(json.dumps(SPOT_META))
    return driver


def lines(name: str) -> list[str]:
    return (HL / name).read_text().splitlines()


def book(coin: str, time: int, bids: list, asks: list) -> str:
    return json.dumps({"channel": "l2Book", "data": {"coin": coin, "time": time, "levels": [
        [{"px": p, "sz": s, "n": 1} for p, s in bids], [{"px": p, "sz": s, "n": 1} for p, s in asks]]}})


# ----------------------------------------------------------- naming, list


def test_hyperliquid_markets_endpoints_and_instrument_requests():
    assert HyperliquidDriver.markets == (Market.SPOT, Market.FUTURES)
    assert perp().connect_url([]) == spot().connect_url([]) == "wss://api.hyperliquid.xyz/ws"
    assert perp().resync is ResyncMethod.RESUBSCRIBE and perp().snapshot_request("BTC/USDC", 20) is None
    req = perp().instruments_request()
    assert (req.url, req.method, req.body) == ("https://api.hyperliquid.xyz/info", "POST", {"type": "meta"})
    assert spot().instruments_request().body == {"type": "spotMeta"}


def test_hyperliquid_perp_coins_keep_the_venue_case():
    assert perp().symbol("BTC/USDC") == "BTC" and perp().pair("BTC") == "BTC/USDC"
    assert perp().symbol("kPEPE/USDC") == "kPEPE"
    assert perp(loaded=True).symbol("KPEPE/USDC") == "kPEPE"  # the list knows the exact case
    with pytest.raises(ValueError):
        perp().symbol("BTC/USDT")


def test_hyperliquid_spot_index_coins_need_the_list():
    assert spot().symbol("PURR/USDC") == "PURR/USDC"
    with pytest.raises(ValueError):
        spot().pair("@1")
    loaded = spot(loaded=True)
    assert loaded.symbol("HFUN/USDC") == "@1" and loaded.pair("@1") == "HFUN/USDC"


def test_hyperliquid_refused_before_and_after_the_list():
    subs = [Subscription("BTC/USDC"), Subscription("DOGE2/USDC"), Subscription("LOOM/USDC"),
            Subscription("ETH/USDT")]
    assert list(perp().refused(subs)) == ["ETH/USDT"]  # nothing loaded: only what can't be named
    refused = perp(loaded=True).refused(subs)
    assert sorted(refused) == ["DOGE2/USDC", "ETH/USDT", "LOOM/USDC"]
    assert "delisted" in refused["LOOM/USDC"] and "close the socket" in refused["DOGE2/USDC"]
    assert spot(loaded=True).refused([Subscription("HFUN/USDC"), Subscription("XYZ/USDC")]) == {
        "XYZ/USDC": "'XYZ/USDC' is not listed (subscribing would close the socket)"}


@pytest.mark.parametrize("body", ["", "{}", '{"universe":[]}', '{"universe":[{"name":5}]}', "[1]",
                                  '{"code":429,"msg":"rate limited"}'])
def test_hyperliquid_bad_instrument_list_raises_and_keeps_the_old_one(body):
    driver = perp(loaded=True)
    with pytest.raises(ValueError):
        driver.load_instruments(body)
    assert driver.refused([Subscription("DOGE2/USDC")])  # the old list still answers


# ------------------------------------------------------------------ frames


def test_hyperliquid_subscribe_one_subscription_per_frame():
    sent = [json.loads(line) for line in lines("sent.obs2026.jsonl")]
    frames = [json.loads(f) for f in perp().subscribe([Subscription("BTC/USDC")])]
    assert frames == [sent[0], {"method": "subscribe", "subscription": {"type": "trades", "coin": "BTC"}}]
    (fast,) = perp().subscribe([Subscription("BTC/USDC", depth=5, trades=False)])
    assert json.loads(fast) == sent[1]  # depth <= 5: the 5-level, ~0.5 s book
    assert [json.loads(f)["method"] for f in perp().unsubscribe([Subscription("BTC/USDC")])] == [
        "unsubscribe", "unsubscribe"]


def test_hyperliquid_resubscribe_cycles_the_book_only_and_refused_coins_are_never_sent():
    frames = [json.loads(f) for f in perp().resubscribe([Subscription("BTC/USDC")])]
    assert [(f["method"], f["subscription"]["type"]) for f in frames] == [
        ("unsubscribe", "l2Book"), ("subscribe", "l2Book")]
    sent = perp(loaded=True).subscribe([Subscription("DOGE2/USDC"), Subscription("KPEPE/USDC")])
    assert {json.loads(f)["subscription"]["coin"] for f in sent} == {"kPEPE"}


# ----------------------------------------------------------------- parsing


def test_hyperliquid_parse_recorded_book_whole_and_typed_equals_generic():
    driver = perp()
    records = read_records(CAPTURE)
    books = 0
    for rec in records:
        parsed = driver.parse(rec["data"], 1)
        assert parsed == driver._parse_generic(rec["data"], 1) == driver._parse_typed(rec["data"], 1)
        for event in parsed.events:
            if isinstance(event, BookSnapshot):
                data = json.loads(rec["data"])["data"]
                assert event.seq == data["time"] and event.exch_ns == data["time"] * 1_000_000
                assert event.bids == [(float(lv["px"]), float(lv["sz"])) for lv in data["levels"][0]]
                assert len(event.asks) == 20
                books += 1
    assert books == 46


@pytest.mark.parametrize("name", ["trade.hftbt.jsonl", "trade.obs2026.jsonl"])
def test_hyperliquid_trades_side_is_the_aggressor(name):
    for line in lines(name):
        data = json.loads(line)["data"]
        trades = perp().parse(line, 0).events
        assert [t.taker_side for t in trades] == [Side.BUY if d["side"] == "B" else Side.SELL for d in data]
        assert all(isinstance(t, Trade) and t.pair == "BTC/USDC" for t in trades)
        assert [t.trade_id for t in trades] == [str(d["tid"]) for d in data]  # type: ignore[union-attr]


def test_hyperliquid_probe_frames_acks_pong_other_channels_and_welcome_have_no_events():
    for name in ("sub_ack.obs2026.jsonl", "heartbeat.obs2026.jsonl", "other.obs2026.jsonl"):
        for line in lines(name):
            assert perp().parse(line, 0).events == []
    assert perp().parse("Websocket connection established.", 0).events == []
    (empty,) = perp().parse(lines("book_snapshot.obs2026.jsonl")[0], 0).events
    assert isinstance(empty, BookSnapshot) and empty.pair == "MATIC/USDC" and empty.bids == empty.asks == []


def test_hyperliquid_venue_errors_are_feed_errors():
    for line in lines("error.obs2026.jsonl"):
        (event,) = perp().parse(line, 0).events
        assert isinstance(event, FeedError) and "venue error" in event.reason


def test_hyperliquid_each_market_takes_only_its_coins():
    frame = book("@1", 1, [("1", "1")], [("2", "1")])
    assert perp().parse(frame, 0).events == []
    (snap,) = spot(loaded=True).parse(frame, 0).events
    assert snap.pair == "HFUN/USDC"  # type: ignore[union-attr]
    assert spot().parse(book("BTC", 1, [], []), 0).events == []


@pytest.mark.parametrize("frame", [
    book("BTC", 2**62, [("1", "1")], []),  # ms time past the int64 ns range
    book("BTC", 1, [("abc", "1")], []),
    json.dumps({"channel": "l2Book", "data": {"coin": "BTC", "time": 1, "levels": [[]]}}),
    json.dumps({"channel": "l2Book", "data": {"coin": "BTC", "time": "1", "levels": [[], []]}}),
    json.dumps({"channel": "trades", "data": [{"coin": "BTC", "side": "X", "px": "1", "sz": "1",
                                               "time": 1, "tid": 1}]}),
    json.dumps({"channel": "trades", "data": [{"coin": "BTC", "side": "B", "px": "nan", "sz": "1",
                                               "time": 1, "tid": 1}]}),
    json.dumps({"channel": "trades", "data": [{"coin": "BTC", "side": "A", "px": "1", "sz": "-2",
                                               "time": 1, "tid": 1}]}),
    "{", "", "[]", b"\x00\xff"])
def test_hyperliquid_bad_frames_yield_feed_error(frame):
    (event,) = perp().parse(frame, 0).events
    assert isinstance(event, FeedError)


# ------------------------------------------------------------------- rules


def test_hyperliquid_rule_refuses_an_older_book_and_has_no_deltas():
    rule = HyperliquidRule()
    newer = BookSnapshot("hyperliquid", Market.FUTURES, "BTC/USDC", [], [], 200)
    rule.on_snapshot(newer)
    assert rule.verify_snapshot(newer)  # the same book again (a repeat) is fine
    assert not rule.verify_snapshot(BookSnapshot("hyperliquid", Market.FUTURES, "BTC/USDC", [], [], 199))
    assert rule.check(BookDelta("hyperliquid", Market.FUTURES, "BTC/USDC", [], [])) is Verdict.GAP


def test_hyperliquid_router_older_frame_resubscribes_and_bad_level_is_refused():
    store = BookStore.create(f"hl{uuid.uuid4().hex[:10]}", 8, 10)
    asked: list[str] = []
    try:
        router = FeedRouter(perp(), BookWriter(store), request_resubscribe=asked.append)
        router.on_frame("c", book("BTC", 20, [("10", "1")], [("11", "1")]), 1)
        router.on_frame("c", book("BTC", 19, [("9", "1")], [("11", "1")]), 2)
        assert router.stats("BTC/USDC")["state"] == "resyncing" and asked == ["BTC/USDC"]
        router.on_frame("c", book("BTC", 21, [("10", "2")], [("11", "1")]), 3)
        assert router.stats("BTC/USDC")["state"] == "synced"
        router.on_frame("c", book("BTC", 22, [("nan", "2")], [("11", "1")]), 4)
        assert router.stats("BTC/USDC")["state"] == "resyncing" and router.stats("BTC/USDC")["errors"] == 2
    finally:
        store.close()


# ------------------------------------------------------------------ replay


def test_hyperliquid_replay_cli_recorded_books_match_reference_level_by_level():
    (report,) = replay("hyperliquid", "futures", CAPTURE, "--depth", "50")
    ref = hyperliquid_books(read_records(CAPTURE))["BTC"]
    bids, asks = ref.top(50)
    assert report["pair"] == "BTC/USDC" and report["synced"]
    assert report["gaps"] == report["resyncs"] == report["errors"] == 0
    assert report["messages"] == ref.applied == 46 and report["seq"] == ref.last
    assert (report["bids"], report["asks"]) == (bids, asks)


# -------------------------------------------------------------------- fuzz


def _frames_to_mutate() -> list[dict]:
    first = json.loads(lines("book_snapshot.hftbt.jsonl")[0])
    first["data"]["levels"] = [side[:3] for side in first["data"]["levels"]]
    return [first, json.loads(lines("trade.obs2026.jsonl")[0]), json.loads(lines("sub_ack.obs2026.jsonl")[0]),
            json.loads(lines("error.obs2026.jsonl")[0])]


@FUZZ
@given(st.sampled_from(_frames_to_mutate()), st.data(), JSON)
def test_hyperliquid_mutated_frames_never_raise_and_typed_equals_generic(frame, data, value):
    mutated = _replaced(frame, data.draw(st.sampled_from(list(_paths(frame)))), value)
    for driver in (perp(), spot(loaded=True)):
        parsed = driver.parse(mutated, 7)
        assert all(isinstance(e, (BookDelta, BookSnapshot, Trade, FeedError)) for e in parsed.events)
        assert canon(parsed) == canon(driver._parse_generic(mutated, 7))


def test_hyperliquid_every_near_miss_of_its_frames_typed_equals_generic():
    drivers = (perp(), spot(loaded=True))
    for frame in _frames_to_mutate():
        for mutated in _near_misses(frame):
            for driver in drivers:
                assert canon(driver.parse(mutated, 7)) == canon(driver._parse_generic(mutated, 7)), mutated

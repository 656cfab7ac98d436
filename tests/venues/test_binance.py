"""Binance driver: naming, frames, endpoints, parsing real recorded frames, and
the spot/futures sync rules on real update ids."""

from __future__ import annotations

import dataclasses
import json

import orjson
import pytest

from engine.model import BookDelta, BookSnapshot, FeedError, Market, Side, Trade
from engine.venues.base import Parsed, Subscription, Verdict
from engine.venues.binance import (
    PENDING_SUBSCRIBES,
    BinanceDriver,
    BinanceFuturesRule,
)
from tests.venues.reference import DATA

SPOT = BinanceDriver(Market.SPOT)
FUT = BinanceDriver(Market.FUTURES)


def lines(name: str) -> list[str]:
    return (DATA / "binance" / name).read_text().splitlines()


def test_binance_symbol_concatenated_splits_by_known_quote():
    assert SPOT.pair("BTCUSDT") == "BTC/USDT"
    assert SPOT.pair("LRCBTC") == "LRC/BTC"
    assert SPOT.pair("RUNEEUR") == "RUNE/EUR"
    assert SPOT.pair("ETHFDUSD") == "ETH/FDUSD"
    assert SPOT.symbol("BTC/USDT") == "BTCUSDT"


def test_binance_coinm_symbol_maps_perp_and_expiry():
    assert FUT.pair("BTCUSD_PERP") == "BTC/USD"
    assert FUT.pair("BTCUSD_211231") == "BTC/USD-211231"
    assert FUT.symbol("BTC/USD-211231") == "BTCUSD_211231"


def test_binance_explicit_symbol_map_wins_over_rule():
    driver = BinanceDriver(Market.FUTURES, symbols={"BTC/USD": "BTCUSD_PERP"})
    assert driver.symbol("BTC/USD") == "BTCUSD_PERP"
    assert driver.pair("BTCUSD_PERP") == "BTC/USD"


def test_binance_subscribe_lists_depth_and_trade_streams():
    driver = BinanceDriver(Market.SPOT)
    frames = driver.subscribe([Subscription("BTC/USDT"), Subscription("ETH/BTC", trades=False)])
    assert [json.loads(f) for f in frames] == [{
        "method": "SUBSCRIBE", "id": 1,
        "params": ["btcusdt@depth@100ms", "btcusdt@aggTrade", "ethbtc@depth@100ms"]}]
    unsubscribe = json.loads(driver.unsubscribe([Subscription("BTC/USDT")])[0])
    assert (unsubscribe["method"], unsubscribe["id"]) == ("UNSUBSCRIBE", 2)  # ids never repeat


def _ack(frame: str) -> str:
    return json.dumps({"result": None, "id": json.loads(frame)["id"]})


def test_binance_subscribe_ack_names_its_book_pairs_once():
    driver = BinanceDriver(Market.SPOT)
    driver.limits = dataclasses.replace(driver.limits, max_args_per_subscribe=3)
    subs = [Subscription("BTC/USDT"), Subscription("ETH/BTC", trades=False),
            Subscription("LRC/BTC", book=False)]
    first, second = driver.subscribe(subs)  # 4 streams, 3 a frame
    assert BinanceDriver(Market.SPOT).parse(_ack(first), 0).subscribed == ()  # not its request
    assert driver.parse(_ack(second), 0) == Parsed([])  # only a trade stream in it
    parsed = driver.parse(_ack(first), 0)
    assert (parsed.events, parsed.subscribed) == ([], ("BTC/USDT", "ETH/BTC"))
    assert driver.parse(_ack(first), 0).subscribed == ()  # answered once
    (unsub,) = driver.unsubscribe(subs[:1])
    assert driver.parse(_ack(unsub), 0).subscribed == ()


def test_binance_subscribe_refused_is_feed_error_and_forgotten():
    driver = BinanceDriver(Market.SPOT)
    (frame,) = driver.subscribe([Subscription("BTC/USDT")])
    request_id = json.loads(frame)["id"]
    refused = json.dumps({"code": 2, "msg": "Invalid request: unknown stream", "id": request_id})
    (event,) = driver.parse(refused, 0).events
    assert isinstance(event, FeedError)
    assert driver.parse(json.dumps({"result": None, "id": request_id}), 0).subscribed == ()


def test_binance_pending_subscribes_bounded_oldest_forgotten():
    driver = BinanceDriver(Market.SPOT)
    frames = [driver.subscribe([Subscription("BTC/USDT")])[0]
              for _ in range(PENDING_SUBSCRIBES + 1)]  # requests lost with their sockets
    assert driver.parse(_ack(frames[0]), 0).subscribed == ()
    assert driver.parse(_ack(frames[-1]), 0).subscribed == ("BTC/USDT",)


def test_binance_futures_endpoints_split_public_depth_from_market_trades():
    plan = FUT.endpoints([Subscription("BTC/USDT"), Subscription("ETH/USDT")])
    assert set(plan) == {"wss://fstream.binance.com/public/stream",
                         "wss://fstream.binance.com/market/stream"}
    public = FUT.subscribe(plan["wss://fstream.binance.com/public/stream"])
    market = FUT.subscribe(plan["wss://fstream.binance.com/market/stream"])
    assert json.loads(public[0])["params"] == ["btcusdt@depth@100ms", "ethusdt@depth@100ms"]
    assert json.loads(market[0])["params"] == ["btcusdt@aggTrade", "ethusdt@aggTrade"]


def test_binance_spot_endpoints_single_socket():
    subs = [Subscription("BTC/USDT")]
    assert SPOT.endpoints(subs) == {"wss://stream.binance.com:9443/stream": subs}


def test_binance_endpoint_override_used_verbatim():
    local = BinanceDriver(Market.SPOT, rest_url="http://127.0.0.1:8765/", ws_url="ws://127.0.0.1:8765/ws")
    assert local.connect_url([]) == "ws://127.0.0.1:8765/ws"
    req = local.snapshot_request("BTC/USDT", 20)
    assert req.url == "http://127.0.0.1:8765/api/v3/depth"
    assert req.params == {"symbol": "BTCUSDT", "limit": 100}  # 5x the depth, tier 100


def test_binance_snapshot_request_names_symbol_and_weight():
    assert FUT.snapshot_request("BTC/USDT", 20).url == "https://fapi.binance.com/fapi/v1/depth"
    # Sized to the book: 5x the subscribed depth, rounded up to a documented tier.
    assert FUT.snapshot_request("BTC/USDT", 20).weight == 5
    assert SPOT.snapshot_request("BTC/USDT", 20).weight == 5
    assert SPOT.snapshot_request("BTC/USDT", 100).params["limit"] == 500
    assert SPOT.snapshot_request("BTC/USDT", 100).weight == 25
    assert SPOT.snapshot_request("BTC/USDT", 200).weight == 50
    assert SPOT.snapshot_request("BTC/USDT", 2000).params == {"symbol": "BTCUSDT", "limit": 5000}
    assert FUT.snapshot_request("BTC/USDT", 2000).params["limit"] == 1000  # USD-M's deepest
    coinm = BinanceDriver(Market.FUTURES, rest_url="https://dapi.binance.com")
    assert coinm.snapshot_request("BTC/USD", 20).url == "https://dapi.binance.com/dapi/v1/depth"
    assert SPOT.snapshot_pair("https://api.binance.com/api/v3/depth?symbol=NKNUSDT&limit=1000") == "NKN/USDT"


def test_binance_parse_real_spot_depth_yields_delta_with_ids():
    frame = lines("book_delta.cf.jsonl")[1]
    (delta,) = SPOT.parse(frame, 7).events
    assert isinstance(delta, BookDelta)
    assert (delta.pair, delta.first_seq, delta.last_seq, delta.prev_seq) == ("NKN/USDT", 499869753, 499869754, -1)
    assert delta.bids == [(0.3517, 4265.0)] and delta.asks == [(0.3529, 10968.0)]
    assert delta.exch_ns == 1633998512568 * 1_000_000 and delta.recv_ns == 7


def test_binance_parse_real_futures_depth_carries_pu():
    frame = next(f for f in lines("book_delta.cf.jsonl") if '"pu"' in f)
    (delta,) = FUT.parse(frame, 0).events
    data = json.loads(frame)["data"]
    assert (delta.first_seq, delta.last_seq, delta.prev_seq) == (data["U"], data["u"], data["pu"])


def test_binance_parse_real_aggtrade_buyer_maker_is_taker_sell():
    frames = [json.loads(f) for f in lines("trade.cf.jsonl")]
    for raw, frame in zip(lines("trade.cf.jsonl"), frames):
        (trade,) = SPOT.parse(raw, 0).events
        assert isinstance(trade, Trade)
        assert trade.taker_side == (Side.SELL if frame["data"]["m"] else Side.BUY)
        assert trade.trade_id == str(frame["data"]["a"])
        assert trade.price == float(frame["data"]["p"])


def test_binance_parse_raw_stream_without_wrapper():
    frame = json.loads(lines("book_delta.cf.jsonl")[0])["data"]
    (delta,) = SPOT.parse(orjson.dumps(frame), 0).events
    assert delta.last_seq == frame["u"]


@pytest.mark.parametrize("frame", ['{"result":null,"id":1}',
                                   '{"stream":"nknusdt@bookTicker","data":{"u":1,"s":"NKNUSDT"}}'])
def test_binance_parse_ack_and_other_streams_yield_nothing(frame):
    assert SPOT.parse(frame, 0).events == []


@pytest.mark.parametrize("frame", ["not json", b"\xff\xfe", "[1,2]",
                                   '{"e":"depthUpdate","s":"NKNUSDT","U":1}',
                                   '{"e":"depthUpdate","s":"NKNUSDT","U":1,"u":2,"E":3,"b":[["1"]],"a":[]}',
                                   '{"code":-1121,"msg":"Invalid symbol."}'])
def test_binance_parse_malformed_yields_feed_error(frame):
    (event,) = SPOT.parse(frame, 0).events
    assert isinstance(event, FeedError) and event.venue == "binance"


def test_binance_parse_server_shutdown_asks_reconnect():
    assert SPOT.parse('{"e":"serverShutdown","E":1}', 0).reconnect is True


def test_binance_parse_snapshot_real_rest_body():
    body = lines("book_snapshot_rest.cf.jsonl")[0]
    snap = SPOT.parse_snapshot("NKN/USDT", body, 5)
    assert isinstance(snap, BookSnapshot) and snap.seq == 499869752
    assert snap.bids[0] == (0.3521, 672.0)
    with pytest.raises(ValueError):
        SPOT.parse_snapshot("NKN/USDT", '{"code":-1121,"msg":"Invalid symbol."}', 0)


def _delta(first: int, last: int, prev: int = -1) -> BookDelta:
    return BookDelta("binance", Market.SPOT, "X/Y", [], [], first, last, prev)


def _snap(seq: int) -> BookSnapshot:
    return BookSnapshot("binance", Market.SPOT, "X/Y", [], [], seq)


def test_binance_spot_rule_real_first_events_drop_then_bridge():
    # NKNUSDT capture: snapshot 499869752; first event U=499869750 u=499869752 is covered.
    rule = SPOT.sync_rule()
    rule.on_snapshot(_snap(499869752))
    assert rule.check(_delta(499869750, 499869752)) is Verdict.DROP
    assert rule.check(_delta(499869753, 499869754)) is Verdict.APPLY
    assert rule.check(_delta(499869755, 499869757)) is Verdict.APPLY
    assert rule.check(_delta(499869760, 499869761)) is Verdict.GAP


def test_binance_spot_rule_snapshot_older_than_first_event_is_gap():
    rule = SPOT.sync_rule()
    rule.on_snapshot(_snap(100))
    assert rule.check(_delta(105, 110)) is Verdict.GAP


def test_binance_futures_rule_first_brackets_then_pu_chain():
    rule = BinanceFuturesRule()
    rule.on_snapshot(_snap(600859605926))
    assert rule.check(_delta(600859599090, 600859600917, 600859598061)) is Verdict.DROP
    assert rule.check(_delta(600859605000, 600859606000, 600859604824)) is Verdict.APPLY
    assert rule.check(_delta(600859606100, 600859606200, 600859606000)) is Verdict.APPLY
    assert rule.check(_delta(600859606300, 600859606400, 600859606250)) is Verdict.GAP


def test_binance_futures_rule_first_event_after_snapshot_id_is_gap():
    rule = BinanceFuturesRule()
    rule.on_snapshot(_snap(100))
    assert rule.check(_delta(101, 120, 99)) is Verdict.GAP

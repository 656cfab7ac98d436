"""Paper mode: our orders on a local venue matched against a "live" book in
shared memory and "live" trades, through Binance's wire format. Fills only
when the live market crosses our price or trades through it (after the size
that was ahead of us), with maker and taker fees and partial fills."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config import VenueSymbolConfig
from engine.model import Market, Side, Trade
from engine.sim import orders as o
from engine.sim.paper import PaperPair, PaperVenue, QueueModel
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually

KEY = "binance:spot:BTC/USDT"
RULES = VenueSymbolConfig("BTCUSDT", "BTC", "USDT", tick_size="0.01", step_size="0.00001",
                          min_notional="5", maker_fee="0.001", taker_fee="0.002")


# ------------------------------------------------------------ the queue model


def test_queue_model_new_order_waits_behind_the_visible_size_at_its_price():
    model = QueueModel()
    model.sync([(1, o.BUY, 100)], {(o.BUY, 100): 30})
    assert model.fills(100, 20, o.SELL, {1: 10}) == []  # 20 of the 30 ahead traded
    assert model.fills(100, 15, o.SELL, {1: 10}) == [(1, 5)]  # 10 ahead, then 5 of ours
    assert model.fills(100, 50, o.SELL, {1: 5}) == [(1, 5)]


def test_queue_model_trade_through_fills_fully_and_other_side_never():
    model = QueueModel()
    model.sync([(1, o.BUY, 100), (2, o.SELL, 110)], {(o.BUY, 100): 1000})
    assert model.fills(99, 1, o.SELL, {1: 10, 2: 10}) == [(1, 10)]
    assert model.fills(100, 1, o.BUY, {1: 10, 2: 10}) == []  # buyers lift asks, not our bid


def test_queue_model_a_shrinking_level_moves_us_up():
    model = QueueModel()
    model.sync([(1, o.BUY, 100)], {(o.BUY, 100): 30})
    model.sync([(1, o.BUY, 100)], {(o.BUY, 100): 4})  # cancels: at most 4 ahead now
    assert model.fills(100, 6, o.SELL, {1: 10}) == [(1, 2)]


# --------------------------------------------------------------- paper venue


@pytest.fixture
def live() -> Iterator[tuple[BookStore, BookWriter]]:
    store = BookStore.create(f"test_paper_{uuid.uuid4().hex[:12]}", 4, 20)
    yield store, BookWriter(store)
    store.close()


@pytest.fixture
def paper(live, tmp_path: Path) -> Iterator[tuple[PaperVenue, BinanceClient]]:
    store, _ = live
    reader = BookReader(store)
    venue = PaperVenue("binance", "spot", [PaperPair("BTC/USDT", RULES)], lambda: reader,
                       tmp_path, {"USDT": "100000", "BTC": "1"}, poll_s=0.005)
    venue.start()
    yield venue, BinanceClient(venue.rest_url, venue.api_key, venue.api_secret)
    venue.stop(2.0)


def book(live, bids, asks) -> None:
    store, writer = live
    writer.apply_snapshot(store.register(KEY), bids, asks)


def trade(venue: PaperVenue, price: float, size: float, taker: Side) -> None:
    venue.on_event(Trade("binance", Market.SPOT, "BTC/USDT", price, size, taker, "t"))


def mine(client: BinanceClient) -> list[dict]:
    return client.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()


def order(client: BinanceClient, cid: str) -> dict:
    return client.signed("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId=cid).json()


def test_paper_crossing_order_takes_the_live_ask_with_the_taker_fee_and_post_only_is_refused(
        live, paper):
    venue, client = paper
    book(live, [(29990.0, 1.0)], [(30010.0, 0.002), (30020.0, 1.0)])
    eventually(lambda: venue.status()["mirrored_levels"]["BTCUSDT"] == 3)
    refused = client.order(symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity="0.01",
                           price="30010")
    assert refused.status_code == 400 and refused.json()["code"] == -2010
    assert client.limit("BUY", "0.003", "30020").status_code == 200
    fills = sorted((t["price"], t["qty"], t["commission"], t["isMaker"]) for t in mine(client))
    assert fills == [("30010.00000000", "0.00200000", "0.00000400", False),
                     ("30020.00000000", "0.00100000", "0.00000200", False)]


def test_paper_resting_order_fills_only_past_the_size_ahead_then_partially(live, paper):
    venue, client = paper
    book(live, [(29990.0, 0.5), (29980.0, 1.0)], [(30010.0, 1.0)])
    eventually(lambda: venue.status()["mirrored_levels"]["BTCUSDT"] == 3)
    assert client.limit("BUY", "0.2", "29990", newClientOrderId="ours").status_code == 200
    eventually(lambda: venue.models["BTCUSDT"].resting)  # joined behind the 0.5 shown
    trade(venue, 29990.0, 0.4, Side.SELL)  # 0.4 of the 0.5 ahead
    trade(venue, 29995.0, 5.0, Side.BUY)  # the other side: nothing for our bid
    trade(venue, 29990.0, 0.15, Side.SELL)  # 0.1 ahead left, then 0.05 of ours
    eventually(lambda: order(client, "ours")["executedQty"] == "0.05000000")
    assert [(t["qty"], t["isMaker"], t["commission"]) for t in mine(client)] == \
        [("0.05000000", True, "0.00005000")]  # maker fee, in BTC for a buyer
    trade(venue, 29980.0, 0.01, Side.SELL)  # traded through our price: all of the rest
    eventually(lambda: order(client, "ours")["status"] == "FILLED")


def test_paper_live_ask_moving_onto_our_bid_fills_us_as_maker_at_our_price(live, paper):
    venue, client = paper
    book(live, [(29990.0, 1.0)], [(30010.0, 1.0)])
    eventually(lambda: venue.status()["mirrored_levels"]["BTCUSDT"] == 2)
    assert client.limit("BUY", "0.01", "30000", newClientOrderId="ours").status_code == 200
    book(live, [(29980.0, 1.0)], [(29999.0, 0.004)])  # the live ask crosses our 30000 bid
    eventually(lambda: order(client, "ours")["executedQty"] == "0.00400000")
    assert [(t["price"], t["isMaker"]) for t in mine(client)] == [("30000.00000000", True)]
    assert order(client, "ours")["status"] == "PARTIALLY_FILLED"
    assert venue.health()[0].ok


def test_paper_rules_fall_back_to_configured_symbols_when_the_live_venue_is_away():
    from engine.model_trade import TradingEndpoints
    from engine.sim.paper import live_pairs
    from engine.venues import make_trading_driver

    # discard port: nothing answers
    away = make_trading_driver("binance", "spot", TradingEndpoints("http://127.0.0.1:9"), "", "")
    found = live_pairs(away, ["BTC/USDT"], "0.0002", "0.0004", fallback=[RULES], timeout_s=1)
    assert [(p.pair, p.rules.tick_size, p.rules.maker_fee) for p in found] == \
        [("BTC/USDT", "0.01", "0.0002")]
    with pytest.raises(RuntimeError, match="no rules"):
        live_pairs(away, ["ETH/USDT"], "0.001", "0.001", fallback=[RULES], timeout_s=1)

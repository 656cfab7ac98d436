"""Our own Binance USD-M feed driver (engine/venues/binance.py, Market.FUTURES)
against the venue's USD-M dialect over real sockets: it connects to the
split /public and /market paths, subscribes, and keeps a synced book with
the futures rule (first event U <= L <= u, then pu == previous u) through
random order flow; the result matches the venue's own book level for level."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import requests
import websocket

from engine.model import BookDelta, Market, Trade
from engine.sim.server import LocalVenue
from engine.venues.base import Subscription, Verdict
from engine.venues.binance import BinanceDriver
from tests.sim.binance_client import BinanceClient


def test_binance_futures_driver_keeps_a_synced_book_on_the_usdm_dialect(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(usdm=True)
    assert venue.usdm is not None
    driver = BinanceDriver(Market.FUTURES, rest_url=venue.usdm.url, ws_url=venue.usdm.ws_url)
    subscription = Subscription("BTC/USDT", depth=20, trades=True)
    plan = driver.endpoints([subscription])
    assert sorted(url.rsplit("/", 2)[-2] for url in plan) == ["market", "public"]
    book_url = next(url for url in plan if "/public/" in url)
    trade_url = next(url for url in plan if "/market/" in url)
    book_ws = websocket.create_connection(book_url, timeout=15)
    trade_ws = websocket.create_connection(trade_url, timeout=15)
    alice = BinanceClient(venue.usdm.url, "alice-key", "alice-secret")
    bob = BinanceClient(venue.usdm.url, "bob-key", "bob-secret")
    rng = random.Random(7)

    def flow(n: int) -> None:
        for _ in range(n):
            who = rng.choice((alice, bob))
            side = rng.choice(("BUY", "SELL"))
            low, high = (29900, 30010) if side == "BUY" else (29990, 30100)  # some cross
            price = f"{rng.randint(low, high)}.{rng.randint(0, 99):02d}"
            if rng.random() < 0.2:
                who.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side=side,
                           type="MARKET", quantity="0.002")
            else:
                who.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side=side,
                           type="LIMIT", timeInForce="GTC", quantity="0.003", price=price)
    try:
        for frame in driver.subscribe([Subscription("BTC/USDT", 20, trades=False)]):
            book_ws.send(frame)
        for frame in driver.subscribe([Subscription("BTC/USDT", 20, trades=True, book=False)]):
            trade_ws.send(frame)
        flow(30)
        buffered: list[BookDelta] = []
        while not buffered:  # diffs are flowing before the snapshot is taken
            buffered += [e for e in driver.parse(book_ws.recv(), time.time_ns()).events
                         if isinstance(e, BookDelta)]
        request = driver.snapshot_request("BTC/USDT", 20)
        snapshot = driver.parse_snapshot(
            "BTC/USDT", requests.get(request.url, params=request.params, timeout=10).content,
            time.time_ns())
        rule = driver.sync_rule()
        rule.on_snapshot(snapshot)
        bids = dict(snapshot.bids)
        asks = dict(snapshot.asks)
        verdicts: list[Verdict] = []

        def apply(delta: BookDelta) -> None:
            verdict = rule.check(delta)
            verdicts.append(verdict)
            if verdict is Verdict.APPLY:
                for levels, side in ((delta.bids, bids), (delta.asks, asks)):
                    for price, size in levels:
                        if size:
                            side[price] = size
                        else:
                            side.pop(price, None)
        for delta in buffered:
            apply(delta)
        last = 0
        for _ in range(6):  # each chunk of orders shows up in a diff of its own
            flow(20)
            got = False
            while not got:
                for event in driver.parse(book_ws.recv(), time.time_ns()).events:
                    if isinstance(event, BookDelta):
                        apply(event)
                        last, got = event.last_seq, True
        target = requests.get(venue.usdm.url + "/fapi/v1/depth",
                              params={"symbol": "BTCUSDT", "limit": 1000}, timeout=10).json()
        deadline = time.monotonic() + 30
        while last < target["lastUpdateId"] and time.monotonic() < deadline:
            for event in driver.parse(book_ws.recv(), time.time_ns()).events:
                if isinstance(event, BookDelta):
                    apply(event)
                    last = event.last_seq
        assert Verdict.GAP not in verdicts and verdicts.count(Verdict.APPLY) >= 5
        assert last == target["lastUpdateId"]
        assert sorted(bids.items(), reverse=True) == [
            (float(p), float(q)) for p, q in target["bids"]]
        assert sorted(asks.items()) == [(float(p), float(q)) for p, q in target["asks"]]
        assert len(target["bids"]) >= 3 and len(target["asks"]) >= 3
        trades: list[Trade] = []
        while not trades:
            trades += [e for e in driver.parse(trade_ws.recv(), time.time_ns()).events
                       if isinstance(e, Trade)]
        assert trades[0].pair == "BTC/USDT" and trades[0].size > 0
    finally:
        book_ws.close()
        trade_ws.close()

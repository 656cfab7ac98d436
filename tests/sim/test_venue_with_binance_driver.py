"""Our own Binance driver (engine/venues/binance.py) against the local venue,
end to end over real sockets: its subscribe frames, parser, snapshot request
and spot sync rule must accept everything the venue sends."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests
import websocket

from engine.model import BookDelta, Market, Side, Trade
from engine.sim.server import LocalVenue
from engine.venues.base import Subscription, Verdict
from engine.venues.binance import BinanceDriver
from tests.sim.binance_client import BinanceClient


def test_binance_driver_syncs_and_parses_the_venue_feed(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(market="synthetic", tick_ms=20)
    driver = BinanceDriver(Market.SPOT, rest_url=venue.rest_url, ws_url=venue.ws_url)
    subscription = Subscription("BTC/USDT")
    ws = websocket.create_connection(driver.connect_url([subscription]), timeout=5)
    try:
        for frame in driver.subscribe([subscription]):
            ws.send(frame)
        buffered = []
        while not any(isinstance(e, BookDelta) for e in buffered):  # diffs are flowing
            buffered += driver.parse(ws.recv(), time.time_ns()).events
        request = driver.snapshot_request("BTC/USDT", 20)
        body = requests.get(request.url, params=request.params, timeout=5).content
        snapshot = driver.parse_snapshot("BTC/USDT", body, time.time_ns())
        rule = driver.sync_rule()
        rule.on_snapshot(snapshot)
        BinanceClient(venue.rest_url, "alice-key", "alice-secret").order(
            symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.001")
        verdicts: list[Verdict] = []
        trades: list[Trade] = []
        deadline = time.monotonic() + 5
        while (verdicts.count(Verdict.APPLY) < 5 or not trades) and time.monotonic() < deadline:
            events, buffered = buffered or driver.parse(ws.recv(), time.time_ns()).events, []
            for event in events:
                if isinstance(event, BookDelta):
                    verdicts.append(rule.check(event))
                elif isinstance(event, Trade):
                    trades.append(event)
        assert Verdict.GAP not in verdicts and verdicts.count(Verdict.APPLY) >= 5
        assert trades and all(t.pair == "BTC/USDT" and t.size > 0 for t in trades)
        assert {t.taker_side for t in trades} <= {Side.BUY, Side.SELL}
    finally:
        ws.close()

"""The monitor role end to end with no internet: the daemon's Binance feed
(real connection thread, REST snapshot, sync rule, shared-memory book) keeps
a book of the local venue in sync through order flow, level by level."""

import random
import uuid

import pytest
import requests

from engine import config as cfg
from engine.app import Daemon
from engine.sim.server import LocalVenue
from engine.sim.testkit import venue_config
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually


@pytest.fixture
def venue(tmp_path):
    v = LocalVenue(venue_config(market="none"), tmp_path / "venue", fresh=True)
    v.start()
    yield v
    v.stop()


def venue_levels(venue, depth: int):
    d = requests.get(venue.rest_url + "/api/v3/depth", params={"symbol": "BTCUSDT", "limit": depth},
                     timeout=5).json()
    return ([[float(p), float(q)] for p, q in d["bids"]], [[float(p), float(q)] for p, q in d["asks"]],
            d["lastUpdateId"])


def flow(client: BinanceClient, rng: random.Random, n: int, open_ids: list) -> None:
    for _ in range(n):
        if open_ids and rng.random() < 0.3:
            oid = open_ids.pop(rng.randrange(len(open_ids)))
            client.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=oid)
            continue
        side = rng.choice(["BUY", "SELL"])
        ticks = rng.randint(1, 40)
        price = 100 - ticks * 0.01 if side == "BUY" else 100 + ticks * 0.01
        r = client.limit(side, f"{rng.randint(10, 50) / 100:.5f}", f"{price:.2f}")
        assert r.status_code == 200, r.text
        open_ids.append(r.json()["orderId"])


def test_monitor_feed_keeps_local_venue_book_in_sync(tmp_path, venue):
    client = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    rng = random.Random(5)
    open_ids: list = []
    flow(client, rng, 40, open_ids)
    c = cfg.parse({
        "daemon": {"data_dir": str(tmp_path / "d"), "id": f"t-{uuid.uuid4().hex[:8]}"},
        "http": {"port": 0}, "books": {"capacity": 8, "depth": 20},
        "exchanges": {"binance": {"spot": {"rest": venue.rest_url, "ws": venue.ws_url}}},
        "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT", "depth": 20}],
                 "stall_timeout_s": 10},
    })
    d = Daemon(c, "monitor")
    d.start()
    try:
        reader = d.book_reader()
        key = "binance:spot:BTC/USDT"
        eventually(lambda: key in reader.keys() and reader.read(key).synced, timeout=20)
        flow(client, rng, 60, open_ids)  # changes while the feed runs

        def same():
            bids, asks, last_id = venue_levels(venue, 20)
            view = reader.read(key, 20)
            return view.synced and view.seq >= last_id and \
                view.bids.tolist() == bids and view.asks.tolist() == asks

        eventually(same, timeout=20, message="daemon book never matched the venue's")
        health = requests.get(d.http.url + "/health", timeout=5)
        assert health.status_code == 200, health.text
        stats = d.feed.status()
        assert stats  # the pool reports its connections
    finally:
        d.stop()

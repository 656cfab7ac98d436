"""Our own Bybit feed (engine/venues/bybit.py inside the monitor daemon: real
connection threads, the RESUBSCRIBE sync rule, the shared-memory book)
against the venue's Bybit dialect, spot and linear: through order flow the
daemon's books stay synced and equal the venue's own book level by level."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import config as cfg
from engine.app import Daemon
from engine.sim.server import LocalVenue
from tests.sim.bybit_client import BybitClient
from tests.support.eventually import eventually

DEPTH = 20


def _flow(client: BybitClient, category: str, rng: random.Random, n: int,
          open_ids: list[str]) -> None:
    for _ in range(n):
        if open_ids and rng.random() < 0.3:
            order_id = open_ids.pop(rng.randrange(len(open_ids)))
            client.post("/v5/order/cancel", category=category, symbol="BTCUSDT",
                        orderId=order_id)
            continue
        side = rng.choice(["Buy", "Sell"])
        if rng.random() < 0.1:  # some trades too
            client.post("/v5/order/create", category=category, symbol="BTCUSDT", side=side,
                        orderType="Market", qty="0.001" if category == "linear" else (
                            "30" if side == "Buy" else "0.001"))
            continue
        ticks = rng.randint(1, 60)
        price = 30000 - ticks if side == "Buy" else 30000 + ticks
        placed = client.ok("POST", "/v5/order/create", category=category, symbol="BTCUSDT",
                           side=side, orderType="Limit", qty=f"{rng.randint(1, 50) / 1000:.3f}",
                           price=f"{price}.{rng.randint(0, 99):02d}")
        open_ids.append(placed["orderId"])


def _venue_levels(client: BybitClient, category: str) -> tuple[list, list]:
    book = client.public("/v5/market/orderbook", category=category, symbol="BTCUSDT",
                         limit=DEPTH)["result"]
    return ([[float(p), float(q)] for p, q in book["b"]],
            [[float(p), float(q)] for p, q in book["a"]])


@pytest.mark.parametrize("market,category", [("spot", "spot"), ("futures", "linear")])
def test_monitor_bybit_feed_keeps_the_venue_book_in_sync(
        start_venue: Callable[..., LocalVenue], tmp_path: Path, market: str,
        category: str) -> None:
    venue = start_venue(bybit=True)
    assert venue.bybit is not None
    limiter = venue.bybit.limiter  # the flow is faster than Bybit's default tier allows
    limiter.spot_orders_per_s = limiter.linear_orders_per_s = 10**6
    key, secret = venue.bybit.keys["alice"]
    client = BybitClient(venue.bybit.url, key, secret)
    rng = random.Random(11)
    open_ids: list[str] = []
    _flow(client, category, rng, 40, open_ids)
    ws = f"{venue.bybit.ws_url}/v5/public/{category}"
    c = cfg.parse({
        "daemon": {"data_dir": str(tmp_path / "d"), "id": f"t-{uuid.uuid4().hex[:8]}"},
        "http": {"port": 0}, "books": {"capacity": 8, "depth": DEPTH},
        "exchanges": {"bybit": {market: {"rest": venue.bybit.url, "ws": ws}}},
        "feed": {"subscriptions": [{"exchange": "bybit", "pair": "BTC/USDT", "market": market,
                                    "depth": DEPTH, "trades": True}],
                 "stall_timeout_s": 10},
    })
    daemon = Daemon(c, "monitor")
    daemon.start()
    try:
        reader = daemon.book_reader()
        name = f"bybit:{market}:BTC/USDT"
        eventually(lambda: name in reader.keys() and reader.read(name).synced, timeout=30)
        synced_seq = reader.read(name).seq
        _flow(client, category, rng, 60, open_ids)  # changes while the feed runs

        def same() -> bool:
            bids, asks = _venue_levels(client, category)
            view = reader.read(name, DEPTH)
            return view.synced and view.bids.tolist() == bids and view.asks.tolist() == asks

        eventually(same, timeout=30, message="the daemon's Bybit book never matched the venue's")
        bids, asks = _venue_levels(client, category)
        assert len(bids) >= 5 and len(asks) >= 5
        # Kept in sync by deltas (the venue batches changes per push interval, so
        # how many frames 60 orders make depends on how fast they were placed).
        assert reader.read(name).seq > synced_seq
        connections = daemon.feed.status()["connections"]
        assert connections and all(c["reconnects"] == 0 and c["messages"] >= 2
                                   for c in connections)
    finally:
        daemon.stop()

"""Our own feed (FeedPool + OkxDriver + the shared-memory BookStore, as the
monitor runs them) against the venue's OKX dialect over real sockets: the
books stay synced through random order flow, SPOT and SWAP, with the CRC32
checksum on (every update verified) and off (OKX since 2026-06-23), and end
equal, level for level, to the venue's own book."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config import FeedConfig, OkxVenueConfig
from engine.feed.pool import FeedPool
from engine.model import Market, book_key
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from engine.venues import make_driver
from engine.venues.base import Subscription
from tests.sim.okx_client import OkxClient, okx_key
from tests.support.eventually import eventually

DEPTH = 50


@pytest.fixture(params=[True, False], ids=["checksum", "checksum0"])
def venue(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LocalVenue]:
    config = dataclasses.replace(
        venue_config(accounts=(account_config("alice"), account_config("bob"))),
        okx=OkxVenueConfig(enabled=True, checksum=request.param))
    started = LocalVenue(config, tmp_path / "venue")
    started.start()
    yield started
    started.stop()


@pytest.mark.parametrize(("market", "inst_id", "symbol"), [
    (Market.SPOT, "BTC-USDT", "BTCUSDT"), (Market.FUTURES, "BTC-USDT-SWAP", "BTCUSDT-PERP")])
def test_okx_feed_books_stay_synced_and_equal_the_venues(
        venue: LocalVenue, market: Market, inst_id: str, symbol: str) -> None:
    okx = venue.okx
    assert okx is not None
    store = BookStore.create(f"okx{uuid.uuid4().hex[:12]}", 8, DEPTH, lock_stripes=4)
    reader = BookReader(store)
    pool = FeedPool(FeedConfig(stall_timeout_s=5.0, reconnect_min_s=0.05, reconnect_max_s=0.5),
                    BookWriter(store))
    driver = make_driver("okx", market, okx.url, f"{okx.ws_url}/ws/v5/public")
    router = pool.add_feed(driver)
    alice = OkxClient(okx.url, okx_key(venue, "alice"))
    bob = OkxClient(okx.url, okx_key(venue, "bob"))
    rng = random.Random(11)
    mode = "cash" if market == Market.SPOT else "cross"

    def flow(n: int) -> None:
        for _ in range(n):
            who = rng.choice((alice, bob))
            side = rng.choice(("buy", "sell"))
            low, high = (29900, 30010) if side == "buy" else (29990, 30100)  # some cross
            args = {"instId": inst_id, "tdMode": mode, "side": side, "ordType": "limit",
                    "px": f"{rng.randint(low, high)}.{rng.randint(0, 99):02d}", "sz": "0.003"}
            if rng.random() < 0.15:
                args.update(ordType="market", sz="0.002")
                args.pop("px")
                if market == Market.SPOT and side == "buy":
                    args["tgtCcy"] = "base_ccy"
            assert who.post("/api/v5/trade/order", args).json()["data"][0]["sCode"] in (
                "0", "51008")

    def equal() -> bool:
        view = reader.read(book_key("okx", market, "BTC/USDT"))
        _, bids, asks = venue.exchange.depth(symbol, DEPTH)  # type: ignore[union-attr]
        spec = venue.exchange.engine.specs[symbol]  # type: ignore[union-attr]
        scale = 10**spec.price_decimals, 10**spec.qty_decimals
        want = ([(p / scale[0], q / scale[1]) for p, q in bids],
                [(p / scale[0], q / scale[1]) for p, q in asks])
        got = ([tuple(r) for r in view.bids.tolist()], [tuple(r) for r in view.asks.tolist()])
        return view.synced and got == want
    try:
        flow(20)
        pool.subscribe("okx", market, [Subscription("BTC/USDT", depth=DEPTH, trades=True)])
        pool.start()
        eventually(equal, timeout=30, message="first sync")
        for _ in range(5):
            flow(15)
            eventually(equal, timeout=30, message="after a burst of orders")
        stats = router.stats("BTC/USDT")
        assert stats["gaps"] == 0 and stats["resyncs"] == 0, stats
        assert stats["deltas_applied"] >= 5, stats
    finally:
        pool.stop(3.0)
        reader.close()
        store.close()

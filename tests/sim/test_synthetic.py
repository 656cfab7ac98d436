"""The synthetic market: a seeded walk, a maker ladder, a taker, and user
orders that trade against them."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from engine.config import SyntheticMarketConfig
from engine.sim.server import LocalVenue
from engine.sim.synthetic import SYNTHETIC_MAKER, SyntheticMarket
from engine.sim.testkit import venue_config
from tests.sim.binance_client import BinanceClient
from tests.support.eventually import eventually


def test_synthetic_market_quotes_both_sides_and_trades(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(market="synthetic", tick_ms=20, levels=10)
    public = BinanceClient(venue.rest_url)
    depth = eventually(lambda: (d := public.public("GET", "/api/v3/depth",
                                                    symbol="BTCUSDT").json())["bids"] and d)
    assert len(depth["bids"]) >= 5 and len(depth["asks"]) >= 5
    assert Decimal(depth["bids"][0][0]) < Decimal(depth["asks"][0][0])
    assert abs(Decimal(depth["bids"][0][0]) - 30000) < 1500
    eventually(lambda: len(public.public("GET", "/api/v3/trades", symbol="BTCUSDT").json()) > 3)
    assert venue.health()[0]


def test_user_orders_trade_against_the_bots(start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(market="synthetic", tick_ms=20, levels=10)
    alice = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    eventually(lambda: alice.public("GET", "/api/v3/depth", symbol="BTCUSDT").json()["asks"])
    bought = alice.order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.001").json()
    assert bought["status"] == "FILLED"
    top = alice.public("GET", "/api/v3/ticker/bookTicker", symbol="BTCUSDT").json()
    inside = (Decimal(top["bidPrice"]) + Decimal(top["askPrice"])) / 2
    placed = alice.limit("BUY", "0.001", str(inside.quantize(Decimal("0.01")))).json()

    def filled() -> bool:
        order = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT",
                             orderId=placed["orderId"]).json()
        return order["status"] == "FILLED"
    eventually(filled, timeout=20)


def test_same_seed_gives_the_same_market(start_venue: Callable[..., LocalVenue]) -> None:
    books = []
    for _ in range(2):
        venue = start_venue()
        engine = venue.exchange.engine
        config = SyntheticMarketConfig(start_prices={"BTCUSDT": "30000"}, seed=42, levels=5)
        market = SyntheticMarket(venue.exchange, engine.specs, config)
        for _ in range(30):
            market.step()
        books.append((venue.exchange.depth("BTCUSDT", 20), engine.next_trade_id["BTCUSDT"]))
    assert books[0] == books[1] and books[0][1] > 1


def test_restart_replaces_the_old_ladder_instead_of_stacking(tmp_path: Path) -> None:
    config = venue_config(market="synthetic", tick_ms=20, levels=5)
    first = LocalVenue(config, tmp_path)
    first.start()
    eventually(lambda: len(first.exchange.depth("BTCUSDT", 50)[1]) == 5)
    first.stop()
    again = LocalVenue(config, tmp_path)
    again.start()
    try:
        def ladder_size() -> int:
            return len(again.exchange.open_orders(SYNTHETIC_MAKER, "BTCUSDT"))
        eventually(lambda: ladder_size() == 10)
        assert ladder_size() <= 10
    finally:
        again.stop()

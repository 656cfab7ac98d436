"""LocalVenue as a component: ports, health, stop, and state that survives a
restart in its SQLite file (or not, when started fresh)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, symbol_config, venue_config
from tests.sim.binance_client import BinanceClient


def test_port_zero_picks_a_free_port_and_urls_follow(venue: LocalVenue) -> None:
    port = int(venue.rest_url.rsplit(":", 1)[1])
    assert port > 0 and venue.ws_url == f"ws://127.0.0.1:{port}"
    assert venue.health() == (True, f"serving {venue.rest_url} market=none")


def test_stop_is_idempotent_and_releases_the_port(tmp_path: Path) -> None:
    venue = LocalVenue(venue_config(), tmp_path)
    venue.start()
    port = int(venue.rest_url.rsplit(":", 1)[1])
    venue.stop()
    venue.stop()
    assert venue.health()[0] is False
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))


def test_restart_keeps_orders_trades_and_balances(tmp_path: Path) -> None:
    venue = LocalVenue(venue_config(), tmp_path)
    venue.start()
    alice = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    bob = BinanceClient(venue.rest_url, "bob-key", "bob-secret")
    alice.limit("SELL", "0.02", "30000", newClientOrderId="kept")
    bob.limit("BUY", "0.01", "30000")
    balances = alice.balances()
    venue.stop()

    again = LocalVenue(venue_config(), tmp_path)
    again.start()
    try:
        alice = BinanceClient(again.rest_url, "alice-key", "alice-secret")
        assert alice.balances() == balances
        kept = alice.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()
        assert [(x["clientOrderId"], x["status"], x["executedQty"]) for x in kept] == [
            ("kept", "PARTIALLY_FILLED", "0.01000000")]
        depth = alice.public("GET", "/api/v3/depth", symbol="BTCUSDT").json()
        assert depth["asks"] == [["30000.00000000", "0.01000000"]]
        assert len(alice.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()) == 1
        assert alice.public("GET", "/api/v3/ticker/price", symbol="BTCUSDT").json()[
            "price"] == "30000.00000000"
        bob = BinanceClient(again.rest_url, "bob-key", "bob-secret")
        placed = bob.limit("BUY", "0.01", "30000").json()
        assert placed["status"] == "FILLED" and placed["fills"][0]["tradeId"] == 2
        assert placed["orderId"] == 3
    finally:
        again.stop()


def test_fresh_start_forgets_saved_state(tmp_path: Path) -> None:
    venue = LocalVenue(venue_config(), tmp_path)
    venue.start()
    BinanceClient(venue.rest_url, "alice-key", "alice-secret").limit("BUY", "0.01", "20000")
    venue.stop()
    fresh = LocalVenue(venue_config(), tmp_path, fresh=True)
    fresh.start()
    try:
        alice = BinanceClient(fresh.rest_url, "alice-key", "alice-secret")
        assert alice.signed("GET", "/api/v3/openOrders").json() == []
        assert alice.balances()["USDT"] == ("100000.00000000", "0.00000000")
    finally:
        fresh.stop()


def start_and_stop(config: object, data_dir: Path) -> None:
    venue = LocalVenue(config, data_dir)  # type: ignore[arg-type]
    venue.start()
    venue.stop()


def test_changed_tick_size_refuses_old_state(tmp_path: Path) -> None:
    start_and_stop(venue_config(), tmp_path)
    coarser = venue_config(symbols=[symbol_config("BTCUSDT", tick_size="0.1")])
    with pytest.raises(ValueError, match="start it fresh"):
        LocalVenue(coarser, tmp_path).start()


def test_new_account_in_config_gets_its_configured_balance(tmp_path: Path) -> None:
    start_and_stop(venue_config(), tmp_path)
    accounts = [account_config("alice"), account_config("carol", {"USDT": "5"})]
    venue = LocalVenue(venue_config(accounts=accounts), tmp_path)
    venue.start()
    try:
        carol = BinanceClient(venue.rest_url, "carol-key", "carol-secret")
        assert carol.balances() == {"USDT": ("5.00000000", "0.00000000")}
    finally:
        venue.stop()


def test_config_without_symbols_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one symbol"):
        LocalVenue(venue_config(symbols=[]), tmp_path)


def test_per_account_fees_apply_when_the_config_carries_them(tmp_path: Path) -> None:
    from dataclasses import dataclass

    from engine.config import VenueAccountConfig

    @dataclass(frozen=True)
    class AccountWithFees(VenueAccountConfig):  # the config change docs/venue.md proposes
        maker_fee: str = ""
        taker_fee: str = ""

    vip = AccountWithFees("vip", "vip-key", "vip-secret", {"USDT": "1000"}, "0", "0.0002")
    venue = LocalVenue(venue_config(accounts=[account_config("alice"), vip]), tmp_path)
    venue.start()
    try:
        BinanceClient(venue.rest_url, "alice-key", "alice-secret").limit("SELL", "0.01", "30000")
        client = BinanceClient(venue.rest_url, "vip-key", "vip-secret")
        fill = client.limit("BUY", "0.01", "30000").json()["fills"][0]
        assert fill["commission"] == "0.00000200"  # 0.02% of 0.01 BTC
        assert client.signed("GET", "/api/v3/account").json()["commissionRates"]["taker"] == \
            "0.00020000"
    finally:
        venue.stop()

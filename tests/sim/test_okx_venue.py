"""The OKX v5 dialect over real sockets with a docs-only client: signing and
its error codes, the envelope with per-order sCode/sMsg, SPOT and SWAP
orders on the one shared engine (a fill through OKX shows through Binance),
post-only cancel-on-arrival, rate limits, batches and the account endpoints."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from loguru import logger

from engine.config import OkxVenueConfig, OkxVenueKeyConfig, UsdmVenueConfig
from engine.sim.server import LocalVenue
from engine.sim.testkit import account_config, venue_config
from tests.sim.binance_client import BinanceClient
from tests.sim.okx_client import OkxClient, okx_key


@pytest.fixture
def okx(tmp_path: Path) -> Iterator[Callable[..., LocalVenue]]:
    started: list[LocalVenue] = []

    def start(usdm: bool = True, **okx_options: Any) -> LocalVenue:
        accounts = (account_config("alice"), account_config("bob"),
                    account_config("carol", {"USDT": "300"}))
        config = dataclasses.replace(
            venue_config(accounts=accounts), usdm=UsdmVenueConfig(enabled=usdm),
            okx=OkxVenueConfig(enabled=True, **okx_options))
        venue = LocalVenue(config, tmp_path / f"v{len(started)}")
        venue.start()
        started.append(venue)
        return venue
    yield start
    for venue in started:
        venue.stop()


def client(venue: LocalVenue, account: str | None) -> OkxClient:
    assert venue.okx is not None
    return OkxClient(venue.okx.url, okx_key(venue, account) if account else None)


def place(c: OkxClient, **args: Any) -> Any:
    args.setdefault("instId", "BTC-USDT")
    args.setdefault("tdMode", "cash")
    return c.post("/api/v5/trade/order", args)


def test_okx_public_instruments_and_books_answer_in_okx_shape(
        okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    public = client(venue, None)
    spot = public.get("/api/v5/public/instruments", instType="SPOT").json()
    assert spot["code"] == "0"
    assert [(i["instId"], i["tickSz"], i["lotSz"]) for i in spot["data"]] == [
        ("BTC-USDT", "0.01", "0.00001")]
    swap = public.get("/api/v5/public/instruments", instType="SWAP").json()["data"]
    assert [(i["instId"], i["ctVal"], i["settleCcy"]) for i in swap] == [
        ("BTC-USDT-SWAP", "1", "USDT")]
    assert public.get("/api/v5/market/books", instId="XRP-USDT").json()["code"] == "51001"
    bob = client(venue, "bob")
    assert place(bob, side="sell", ordType="limit", px="30000.5", sz="0.1").json()["code"] == "0"
    book = public.get("/api/v5/market/books", instId="BTC-USDT", sz="5").json()["data"][0]
    assert book["asks"] == [["30000.5", "0.1", "0", "1"]] and book["bids"] == []
    assert isinstance(book["seqId"], int) and book["seqId"] > 0


def test_okx_signing_failures_use_okx_codes(okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    alice = client(venue, "alice")
    assert alice.get("/api/v5/account/balance").json()["code"] == "0"
    anonymous = client(venue, None).get("/api/v5/account/balance")
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "50103")
    key = okx_key(venue, "alice")
    wrong = OkxClient(venue.okx.url, dataclasses.replace(key, secret_key="0" * 32))  # type: ignore[union-attr]
    answer = wrong.get("/api/v5/account/balance")
    assert (answer.status_code, answer.json()["code"]) == (401, "50113")
    bad_pass = OkxClient(venue.okx.url, dataclasses.replace(key, passphrase="nope"))  # type: ignore[union-attr]
    assert bad_pass.get("/api/v5/account/balance").json()["code"] == "50105"
    stale = alice.session.get(venue.okx.url + "/api/v5/account/balance", headers={  # type: ignore[union-attr]
        **alice._headers("GET", "/api/v5/account/balance", ""),
        "OK-ACCESS-TIMESTAMP": "2020-12-08T09:08:57.715Z"})
    assert stale.json()["code"] == "50102"


def test_okx_spot_fill_shows_through_the_binance_dialect(okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    alice, bob = client(venue, "alice"), client(venue, "bob")
    sell = place(bob, side="sell", ordType="limit", px="30000", sz="0.1", clOrdId="ask1")
    assert sell.json()["data"][0]["sCode"] == "0"
    buy = place(alice, side="buy", ordType="limit", px="30000", sz="0.1", clOrdId="bid1")
    body = buy.json()
    assert body["code"] == "0" and "inTime" in body
    ord_id = body["data"][0]["ordId"]
    status = alice.get("/api/v5/trade/order", instId="BTC-USDT", ordId=ord_id).json()["data"][0]
    assert (status["state"], status["accFillSz"], status["avgPx"], status["clOrdId"]) == (
        "filled", "0.1", "30000", "bid1")
    assert status["fee"] == "-0.0001" and status["feeCcy"] == "BTC"
    by_client = alice.get("/api/v5/trade/order", instId="BTC-USDT", clOrdId="bid1").json()
    assert by_client["data"][0]["ordId"] == ord_id
    fills = alice.get("/api/v5/trade/fills", instType="SPOT").json()["data"]
    assert [(f["side"], f["fillSz"], f["execType"], f["clOrdId"]) for f in fills] == [
        ("buy", "0.1", "T", "bid1")]
    binance = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    account = binance.signed("GET", "/api/v3/account").json()
    btc = next(b for b in account["balances"] if b["asset"] == "BTC")
    assert btc["free"].startswith("10.0999")  # 10 + 0.1 - 0.0001 fee, seen by Binance's dialect
    balance = alice.get("/api/v5/account/balance", ccy="BTC").json()["data"][0]["details"]
    assert balance[0]["availBal"] == "10.0999"


def test_okx_order_rejections_carry_scode(okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    alice, carol = client(venue, "alice"), client(venue, "carol")
    bad_id = place(alice, side="buy", ordType="limit", px="29000", sz="0.1", clOrdId="no-dash")
    assert bad_id.json()["code"] == "1"
    assert bad_id.json()["data"][0]["sCode"] == "51000"
    poor = place(carol, side="buy", ordType="limit", px="29000", sz="1").json()
    assert (poor["code"], poor["msg"], poor["data"][0]["sCode"]) == ("1", "Operation failed.",
                                                                     "51008")
    assert place(alice, side="buy", ordType="limit", px="29000.001",
                 sz="0.1").json()["data"][0]["sCode"] == "51000"
    assert place(alice, side="buy", ordType="limit", px="29000", sz="0.1",
                 instId="DOGE-USDT").json()["data"][0]["sCode"] == "51001"
    assert place(alice, side="buy", ordType="limit", px="29000", sz="0.1",
                 clOrdId="dup1").json()["code"] == "0"
    assert place(alice, side="buy", ordType="limit", px="29000", sz="0.1",
                 clOrdId="dup1").json()["data"][0]["sCode"] == "51016"
    missing = alice.post("/api/v5/trade/cancel-order", {"instId": "BTC-USDT", "ordId": "77"})
    assert missing.json()["data"][0]["sCode"] == "51400"
    unknown = alice.get("/api/v5/trade/order", instId="BTC-USDT", clOrdId="nothere").json()
    assert unknown["code"] == "51603"


def test_okx_post_only_that_would_take_is_canceled_on_arrival(
        okx: Callable[..., LocalVenue]) -> None:
    venue = okx()
    alice, bob = client(venue, "alice"), client(venue, "bob")
    place(bob, side="sell", ordType="limit", px="30000", sz="0.1")
    crossing = place(alice, side="buy", ordType="post_only", px="30000", sz="0.1",
                     clOrdId="po1").json()
    assert crossing["code"] == "0" and crossing["data"][0]["sCode"] == "0"
    order = alice.get("/api/v5/trade/order", instId="BTC-USDT",
                      ordId=crossing["data"][0]["ordId"]).json()["data"][0]
    assert (order["state"], order["cancelSource"], order["accFillSz"]) == ("canceled", "31", "0")
    assert alice.get("/api/v5/trade/orders-pending").json()["data"] == []
    broke = place(client(venue, "carol"), side="buy", ordType="post_only", px="30000",
                  sz="0.1").json()  # 3000 USDT needed, 300 held: refused before the kill
    assert broke["data"][0]["sCode"] == "51008"
    resting = place(alice, side="buy", ordType="post_only", px="29999.99", sz="0.1").json()
    pending = alice.get("/api/v5/trade/orders-pending", instType="SPOT").json()["data"]
    assert [(p["ordId"], p["ordType"], p["state"]) for p in pending] == [
        (resting["data"][0]["ordId"], "post_only", "live")]


def test_okx_batch_orders_and_cancels_answer_per_order(okx: Callable[..., LocalVenue]) -> None:
    alice = client(okx(), "alice")
    placed = alice.post("/api/v5/trade/batch-orders", [
        {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit",
         "px": "29000", "sz": "0.01", "clOrdId": "b1"},
        {"instId": "BTC-USDT", "tdMode": "cash", "side": "buy", "ordType": "limit",
         "px": "29000", "sz": "0.01", "clOrdId": "bad_id"}]).json()
    assert (placed["code"], [d["sCode"] for d in placed["data"]]) == ("2", ["0", "51000"])
    canceled = alice.post("/api/v5/trade/cancel-batch-orders", [
        {"instId": "BTC-USDT", "clOrdId": "b1"}, {"instId": "BTC-USDT", "clOrdId": "b2"}]).json()
    assert [d["sCode"] for d in canceled["data"]] == ["0", "51400"]
    history = alice.get("/api/v5/trade/orders-history", instType="SPOT").json()["data"]
    assert [(h["clOrdId"], h["state"]) for h in history] == [("b1", "canceled")]


def test_okx_keys_for_an_unknown_account_are_refused(tmp_path: Path) -> None:
    config = dataclasses.replace(venue_config(), okx=OkxVenueConfig(enabled=True, keys=(
        OkxVenueKeyConfig("mallory", "k", "s", "p"),)))
    with pytest.raises(ValueError, match="venue.okx.keys: account 'mallory'"):
        LocalVenue(config, tmp_path / "v").start()


def test_okx_rate_limit_answers_50011_with_429(okx: Callable[..., LocalVenue], tmp_path: Path
                                               ) -> None:
    venue = okx()
    assert venue.okx is not None
    venue.okx.rest.window.limits["order"] = (3, 60_000)
    alice = client(venue, "alice")
    codes = [place(alice, side="buy", ordType="limit", px="29000", sz="0.01") for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[-1].json() == {"code": "50011", "msg": "Too Many Requests", "data": []}


@pytest.mark.parametrize("usdm", [True, False])
def test_okx_swap_position_leverage_and_shared_book(okx: Callable[..., LocalVenue],
                                                    usdm: bool) -> None:
    errors: list[str] = []
    sink = logger.add(lambda m: errors.append(str(m)), level="ERROR")
    venue = okx(usdm=usdm)
    alice, bob = client(venue, "alice"), client(venue, "bob")
    lever = alice.post("/api/v5/account/set-leverage", {
        "instId": "BTC-USDT-SWAP", "lever": "5", "mgnMode": "cross"}).json()
    assert lever["data"] == [{"lever": "5", "mgnMode": "cross", "instId": "BTC-USDT-SWAP",
                              "posSide": ""}]
    assert place(bob, instId="BTC-USDT-SWAP", tdMode="cross", side="sell", ordType="limit",
                 px="30000", sz="0.5").json()["code"] == "0"
    taken = place(alice, instId="BTC-USDT-SWAP", tdMode="cross", side="buy", ordType="market",
                  sz="0.2").json()
    assert taken["code"] == "0", taken
    positions = alice.get("/api/v5/account/positions", instType="SWAP").json()["data"]
    assert [(p["instId"], p["pos"], p["avgPx"], p["lever"], p["mgnMode"]) for p in positions] \
        == [("BTC-USDT-SWAP", "0.2", "30000", "5", "cross")]
    short = bob.get("/api/v5/account/positions").json()["data"]
    assert short[0]["pos"] == "-0.2"
    if usdm:  # the same perpetual book through Binance's USD-M dialect
        assert venue.usdm is not None
        binance = BinanceClient(venue.usdm.url, "alice-key", "alice-secret")
        risk = binance.signed("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT").json()
        assert float(risk[0]["positionAmt"]) == 0.2
    fee = alice.get("/api/v5/account/trade-fee", instType="SWAP").json()["data"][0]
    assert (fee["maker"], fee["taker"]) == ("-0.0002", "-0.0005")
    config = alice.get("/api/v5/account/config").json()["data"][0]
    assert config["posMode"] == "net_mode"
    assert alice.get("/api/v5/public/funding-rate",
                     instId="BTC-USDT-SWAP").json()["data"][0]["instId"] == "BTC-USDT-SWAP"
    assert alice.get("/api/v5/public/mark-price",
                     instId="BTC-USDT").json()["code"] == "51001"
    # the spot dialect's hub must never see the perpetual's operations: two
    # requests in a row on its loop, so it has polled its outbox in between
    for _ in range(2):
        requests.get(venue.rest_url + "/api/v3/time", timeout=10)
    logger.remove(sink)
    assert errors == []

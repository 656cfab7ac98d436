"""The Bybit v5 dialect's REST over real sockets, with a docs-only client:
signing and its errors, the retCode envelope, spot and linear orders on the
venue's one engine (a fill made through the Binance dialect shows here),
orderLinkId uniqueness, PostOnly that would take, positions, wallet, and the
per-UID rate limit (10006 with X-Bapi-Limit* headers)."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from engine.sim.server import LocalVenue
from tests.sim.binance_client import BinanceClient
from tests.sim.bybit_client import BybitClient


def _clients(venue: LocalVenue) -> tuple[BybitClient, BybitClient]:
    assert venue.bybit is not None
    (alice_key, alice_secret), (bob_key, bob_secret) = (venue.bybit.keys["alice"],
                                                        venue.bybit.keys["bob"])
    return (BybitClient(venue.bybit.url, alice_key, alice_secret),
            BybitClient(venue.bybit.url, bob_key, bob_secret))


def test_bybit_keys_have_bybits_shape_and_bad_auth_gets_its_codes(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    alice, _ = _clients(venue)
    assert re.fullmatch(r"[A-Za-z0-9]{18}", alice.api_key)
    assert re.fullmatch(r"[A-Za-z0-9]{36}", alice.api_secret)
    assert alice.ok("GET", "/v5/account/info")["unifiedMarginStatus"] >= 3
    bad_sign = alice.get("/v5/account/info", signature="0" * 64).json()
    assert bad_sign["retCode"] == 10004
    stale = alice.get("/v5/account/info", timestamp=int(time.time() * 1000) - 60_000).json()
    assert stale["retCode"] == 10002
    stranger = BybitClient(alice.base_url, "X" * 18, alice.api_secret)
    assert stranger.get("/v5/account/info").json()["retCode"] == 10003
    answer = alice.session.get(alice.base_url + "/v5/market/time", timeout=10)
    assert answer.status_code == 200 and set(answer.json()) == {
        "retCode", "retMsg", "result", "retExtInfo", "time"}


def test_bybit_spot_order_lifecycle_and_link_id_unique_forever(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    alice, _ = _clients(venue)
    info = alice.public("/v5/market/instruments-info", category="spot", symbol="BTCUSDT")
    assert info["result"]["list"][0]["priceFilter"]["tickSize"] == "0.01"
    placed = alice.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT",
                      side="Buy", orderType="Limit", qty="0.01000", price="29000.00",
                      orderLinkId="grid-1")
    assert placed["orderLinkId"] == "grid-1" and placed["orderId"].isdigit()
    open_ = alice.ok("GET", "/v5/order/realtime", category="spot", symbol="BTCUSDT")["list"]
    assert [(o["orderLinkId"], o["orderStatus"], o["price"], o["qty"]) for o in open_] == [
        ("grid-1", "New", "29000.00", "0.01000")]
    book = alice.public("/v5/market/orderbook", category="spot", symbol="BTCUSDT", limit=5)
    assert book["result"]["b"] == [["29000.00", "0.01000"]]
    cancelled = alice.ok("POST", "/v5/order/cancel", category="spot", symbol="BTCUSDT",
                         orderLinkId="grid-1")
    assert cancelled == {"orderId": placed["orderId"], "orderLinkId": "grid-1"}
    assert alice.ok("GET", "/v5/order/realtime", category="spot")["list"] == []
    named = alice.ok("GET", "/v5/order/realtime", category="spot", orderLinkId="grid-1")
    assert named["list"][0]["orderStatus"] == "Cancelled"
    again = alice.post("/v5/order/create", category="spot", symbol="BTCUSDT", side="Buy",
                       orderType="Limit", qty="0.01", price="29000", orderLinkId="grid-1").json()
    assert again["retCode"] == 170141  # unique per account, closed orders included
    missing = alice.post("/v5/order/cancel", category="spot", symbol="BTCUSDT",
                         orderId="999999").json()
    assert missing["retCode"] == 170213
    history = alice.ok("GET", "/v5/order/history", category="spot")["list"]
    assert [o["orderLinkId"] for o in history] == ["grid-1"]
    poor = alice.post("/v5/order/create", category="spot", symbol="BTCUSDT", side="Buy",
                      orderType="Limit", qty="1000", price="29000").json()
    assert poor["retCode"] == 170131


def test_bybit_post_only_that_would_take_is_accepted_then_cancelled(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    alice, bob = _clients(venue)
    bob.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT", side="Sell",
           orderType="Limit", qty="0.01", price="30000")
    placed = alice.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT",
                      side="Buy", orderType="Limit", qty="0.01", price="30000.00",
                      timeInForce="PostOnly", orderLinkId="maker-1")
    found = alice.ok("GET", "/v5/order/realtime", category="spot", orderId=placed["orderId"])
    row = found["list"][0]
    assert (row["orderStatus"], row["rejectReason"], row["cumExecQty"], row["timeInForce"]) \
        == ("Cancelled", "EC_PostOnlyWillTakeLiquidity", "0.00000", "PostOnly")
    book = alice.public("/v5/market/orderbook", category="spot", symbol="BTCUSDT")["result"]
    assert book["a"] == [["30000.00", "0.01000"]] and book["b"] == []  # nothing traded
    resting = alice.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT",
                       side="Buy", orderType="Limit", qty="0.01", price="29999.99",
                       timeInForce="PostOnly")
    assert resting["orderLinkId"] == "" and int(resting["orderId"]) > int(placed["orderId"])


def test_bybit_sees_a_fill_made_through_the_binance_dialect(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    alice, _ = _clients(venue)
    alice.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT", side="Sell",
             orderType="Limit", qty="0.02", price="30100", orderLinkId="ask-1")
    bob_binance = BinanceClient(venue.rest_url, "bob-key", "bob-secret")
    taken = bob_binance.signed("POST", "/api/v3/order", symbol="BTCUSDT", side="BUY",
                               type="LIMIT", timeInForce="GTC", quantity="0.015",
                               price="30100").json()
    assert taken["status"] == "FILLED", taken
    order = alice.ok("GET", "/v5/order/realtime", category="spot", orderLinkId="ask-1")
    row = order["list"][0]
    assert (row["orderStatus"], row["cumExecQty"], row["leavesQty"], row["avgPrice"]) == (
        "PartiallyFilled", "0.01500", "0.00500", "30100.0000")
    fills = alice.ok("GET", "/v5/execution/list", category="spot")["list"]
    assert [(f["execQty"], f["execPrice"], f["isMaker"], f["feeCurrency"]) for f in fills] == [
        ("0.01500", "30100.00", True, "USDT")]
    assert fills[0]["execFee"] == "0.45150000"  # 451.5 USDT x 0.001 maker fee
    coins = {c["coin"]: c for c in alice.ok("GET", "/v5/account/wallet-balance",
                                            accountType="UNIFIED")["list"][0]["coin"]}
    assert coins["USDT"]["walletBalance"] == "100451.04850000"
    assert coins["BTC"]["locked"] == "0.00500000"


def test_bybit_linear_order_opens_a_position_on_the_shared_perpetual(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    alice, bob = _clients(venue)
    assert venue.usdm is not None  # the perpetual books come from the USD-M core
    alice.ok("POST", "/v5/position/set-leverage", category="linear", symbol="BTCUSDT",
             buyLeverage="10", sellLeverage="10")
    same = alice.post("/v5/position/set-leverage", category="linear", symbol="BTCUSDT",
                      buyLeverage="10", sellLeverage="10").json()
    assert same["retCode"] == 110043
    bob.ok("POST", "/v5/order/create", category="linear", symbol="BTCUSDT", side="Sell",
           orderType="Limit", qty="0.100", price="30000")
    alice.ok("POST", "/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
             orderType="Market", qty="0.1", orderLinkId="open-long")
    rows = alice.ok("GET", "/v5/position/list", category="linear", symbol="BTCUSDT")["list"]
    assert [(r["side"], r["size"], r["avgPrice"], r["leverage"]) for r in rows] == [
        ("Buy", "0.10000", "30000.0000", "10")]
    usdm = BinanceClient(venue.usdm.url, "alice-key", "alice-secret")
    risk = usdm.signed("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT").json()
    assert [p["positionAmt"] for p in risk] == ["0.10000"]  # one position, both dialects
    fills = alice.ok("GET", "/v5/execution/list", category="linear", symbol="BTCUSDT")
    assert [(f["execQty"], f["isMaker"], f["execFee"]) for f in fills["list"]] == [
        ("0.10000", False, "1.50000000")]  # 3000 USDT x 0.0005 taker
    reduce = alice.post("/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
                        orderType="Market", qty="0.1", reduceOnly=True).json()
    assert reduce["retCode"] == 110017
    dup = alice.post("/v5/order/create", category="linear", symbol="BTCUSDT", side="Buy",
                     orderType="Limit", qty="0.1", price="1000", orderLinkId="open-long").json()
    assert dup["retCode"] == 110072
    switched = alice.post("/v5/position/switch-mode", category="linear", symbol="BTCUSDT",
                          mode=3).json()
    assert switched["retCode"] == 110024  # a position is open


def test_bybit_order_rate_limit_answers_10006_with_limit_headers(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    assert venue.bybit is not None
    venue.bybit.limiter.spot_orders_per_s = 3
    alice, _ = _clients(venue)
    answers, codes = [], []
    for i in range(60):  # passing 60 at 3/s would take 20 s; stop at the first refusal
        answers.append(alice.post("/v5/order/create", category="spot", symbol="BTCUSDT",
                                  side="Buy", orderType="Limit", qty="0.001",
                                  price=f"{20000 + i}"))
        codes.append(answers[-1].json()["retCode"])
        if codes[-1] != 0:
            break
    assert codes[-1] == 10006 and codes.count(0) >= 3
    limited = answers[codes.index(10006)]
    assert limited.status_code == 200
    assert limited.headers["X-Bapi-Limit"] == "3" and limited.headers["X-Bapi-Limit-Status"] == "0"
    assert int(limited.headers["X-Bapi-Limit-Reset-Timestamp"]) > 0
    assert answers[0].headers["X-Bapi-Limit-Status"] == "2"


def test_bybit_bad_input_gets_a_clear_code_and_changes_nothing(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    alice, _ = _clients(venue)
    base = {"category": "spot", "symbol": "BTCUSDT", "side": "Buy", "orderType": "Limit",
            "qty": "0.01", "price": "29000"}
    cases = {
        "triggerPrice": (base | {"triggerPrice": "28000"}, 10001),
        "isLeverage": (base | {"isLeverage": 1}, 10001),
        "price ticks": (base | {"price": "29000.001"}, 170134),
        "qty decimals": (base | {"qty": "0.000001"}, 170137),
        "symbol": (base | {"symbol": "NOPEUSDT"}, 170121),
        "side": (base | {"side": "BUY"}, 10001),
        "category": (base | {"category": "margin"}, 10001),
        "orderLinkId": (base | {"orderLinkId": "has space"}, 10001),
        "linear symbol": (base | {"category": "linear", "symbol": "NOPEUSDT"}, 10001),
    }
    for name, (body, code) in cases.items():
        answer = alice.post("/v5/order/create", **body).json()
        assert answer["retCode"] == code, (name, answer)
        assert answer["retMsg"], name
    raw = alice.session.post(alice.base_url + "/v5/order/create", data="{not json",
                             headers=alice._headers("{not json", None, None), timeout=10).json()
    assert raw["retCode"] == 10001 and "JSON" in raw["retMsg"]
    assert alice.ok("GET", "/v5/order/history", category="spot")["list"] == []
    book = alice.public("/v5/market/orderbook", category="spot", symbol="BTCUSDT")["result"]
    assert book["b"] == [] and book["a"] == []


def test_bybit_cancel_all_paging_and_recent_closed(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    alice, _ = _clients(venue)
    for i in range(5):
        alice.ok("POST", "/v5/order/create", category="spot", symbol="BTCUSDT", side="Buy",
                 orderType="Limit", qty="0.001", price=f"{29000 + i}", orderLinkId=f"o{i}")
    first = alice.ok("GET", "/v5/order/realtime", category="spot", limit=3)
    second = alice.ok("GET", "/v5/order/realtime", category="spot", limit=3,
                      cursor=first["nextPageCursor"])
    assert [o["orderLinkId"] for o in first["list"] + second["list"]] == [
        "o4", "o3", "o2", "o1", "o0"] and second["nextPageCursor"] == ""
    cancelled = alice.ok("POST", "/v5/order/cancel-all", category="spot")
    assert sorted(x["orderLinkId"] for x in cancelled["list"]) == [f"o{i}" for i in range(5)]
    assert alice.ok("GET", "/v5/order/realtime", category="spot")["list"] == []
    closed = alice.ok("GET", "/v5/order/realtime", category="spot", openOnly=1)["list"]
    assert {o["orderStatus"] for o in closed} == {"Cancelled"} and len(closed) == 5
    linear = alice.post("/v5/order/cancel-all", category="linear").json()
    assert linear["retCode"] == 10001  # linear needs symbol, baseCoin or settleCoin


def test_bybit_ip_limit_answers_403(start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(bybit=True)
    assert venue.bybit is not None
    venue.bybit.limiter.ip_requests_per_5s = 5
    alice, _ = _clients(venue)
    statuses: list[int] = []
    while len(statuses) < 60 and 403 not in statuses:  # 60 at 5 per 5 s would take 60 s
        statuses.append(alice.session.get(alice.base_url + "/v5/market/time",
                                          timeout=10).status_code)
    assert statuses[-1] == 403 and statuses[:5] == [200] * 5

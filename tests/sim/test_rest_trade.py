"""Account REST endpoints over a real socket, written from rest-api.md
("Account endpoints") and errors.md: every order type, every error."""

from __future__ import annotations

import pytest

from engine.sim.server import LocalVenue
from tests.sim.binance_client import BinanceClient


def error(reply: object) -> tuple[int, str]:
    body = reply.json()  # type: ignore[attr-defined]
    return body["code"], body["msg"]


# ------------------------------------------------------------ new orders


def test_limit_full_response_shape(alice: BinanceClient, bob: BinanceClient) -> None:
    alice.limit("SELL", "0.01", "30000")
    reply = bob.limit("BUY", "0.02", "30000", newClientOrderId="grid-7")
    body = reply.json()
    assert reply.status_code == 200
    assert {k: body[k] for k in ("symbol", "clientOrderId", "orderListId", "price", "origQty",
                                 "executedQty", "cummulativeQuoteQty", "status", "timeInForce",
                                 "type", "side", "selfTradePreventionMode")} == {
        "symbol": "BTCUSDT", "clientOrderId": "grid-7", "orderListId": -1,
        "price": "30000.00000000", "origQty": "0.02000000", "executedQty": "0.01000000",
        "cummulativeQuoteQty": "300.00000000", "status": "PARTIALLY_FILLED",
        "timeInForce": "GTC", "type": "LIMIT", "side": "BUY",
        "selfTradePreventionMode": "EXPIRE_MAKER"}
    assert body["fills"] == [{"price": "30000.00000000", "qty": "0.01000000",
                              "commission": "0.00001000", "commissionAsset": "BTC",
                              "tradeId": 1}]
    assert body["transactTime"] == body["workingTime"]


@pytest.mark.parametrize("response_type, present, absent", [
    ("ACK", {"orderId", "transactTime"}, {"status", "fills"}),
    ("RESULT", {"status", "executedQty"}, {"fills"}),
    ("FULL", {"status", "fills"}, set()),
])
def test_new_order_response_types(alice: BinanceClient, response_type: str, present: set,
                                  absent: set) -> None:
    body = alice.limit("BUY", "0.01", "20000", newOrderRespType=response_type).json()
    assert present <= set(body) and not absent & set(body)


def test_limit_maker_default_response_is_ack_and_crossing_is_rejected(
        alice: BinanceClient, bob: BinanceClient) -> None:
    alice.limit("SELL", "0.01", "30000")
    ok = bob.order(symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity="0.01",
                   price="29999")
    assert "status" not in ok.json()
    crossing = bob.order(symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity="0.01",
                         price="30000")
    assert crossing.status_code == 400
    assert error(crossing) == (-2010, "Order would immediately match and take.")


def test_ioc_and_fok_over_rest(alice: BinanceClient, bob: BinanceClient) -> None:
    alice.limit("SELL", "0.01", "30000")
    fok = bob.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="FOK",
                    quantity="0.02", price="30000").json()
    assert (fok["status"], fok["executedQty"]) == ("EXPIRED", "0.00000000")
    ioc = bob.order(symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC",
                    quantity="0.02", price="30000").json()
    assert (ioc["status"], ioc["executedQty"]) == ("EXPIRED", "0.01000000")


def test_market_by_quote_order_qty(alice: BinanceClient, bob: BinanceClient) -> None:
    alice.limit("SELL", "1", "30000")
    body = bob.order(symbol="BTCUSDT", side="BUY", type="MARKET", quoteOrderQty="150").json()
    assert (body["status"], body["executedQty"], body["cummulativeQuoteQty"]) == (
        "FILLED", "0.00500000", "150.00000000")


def test_stop_loss_limit_waits_then_fires(alice: BinanceClient, bob: BinanceClient) -> None:
    alice.limit("SELL", "0.01", "30000")
    bob.limit("BUY", "0.01", "30000")  # last price 30000
    stop = alice.order(symbol="BTCUSDT", side="SELL", type="STOP_LOSS_LIMIT",
                       timeInForce="GTC", quantity="0.01", price="29000", stopPrice="29500")
    assert stop.status_code == 200 and "status" not in stop.json()  # ACK by default
    waiting = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT",
                           orderId=stop.json()["orderId"]).json()
    assert (waiting["isWorking"], waiting["stopPrice"], waiting["workingTime"]) == (
        False, "29500.00000000", -1)
    bob.limit("BUY", "0.01", "29400")
    alice.limit("SELL", "0.01", "29400")  # prints 29400 <= 29500: fires, rests at 29000
    fired = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT",
                         orderId=stop.json()["orderId"]).json()
    assert fired["isWorking"] and fired["status"] == "NEW"


def test_stop_that_would_trigger_immediately_is_rejected(alice: BinanceClient,
                                                         bob: BinanceClient) -> None:
    alice.limit("SELL", "0.01", "30000")
    bob.limit("BUY", "0.01", "30000")
    reply = alice.order(symbol="BTCUSDT", side="SELL", type="STOP_LOSS", quantity="0.01",
                        stopPrice="30100")
    assert error(reply) == (-2010, "Order would trigger immediately.")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("params, expected", [
    ({"side": "UP"}, (-1117, "Invalid side.")),
    ({"type": "ICEBERG"}, (-1116, "Invalid orderType.")),
    ({"timeInForce": "GTX"}, (-1115, "Invalid timeInForce.")),
    ({"symbol": "DOGEUSDT"}, (-1121, "Invalid symbol.")),
    ({"quantity": "abc"}, (-1100, "Illegal characters found in parameter 'quantity'; legal "
                                  "range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")),
    ({"quantity": "0.000000001"}, (-1111, "Parameter 'quantity' has too much precision.")),
    ({"quantity": "0.000001"}, (-1013, "Filter failure: LOT_SIZE")),
    ({"price": "30000.001"}, (-1013, "Filter failure: PRICE_FILTER")),
    ({"quantity": "0.0001"}, (-1013, "Filter failure: NOTIONAL")),
    ({"price": None}, (-1102, "Mandatory parameter 'price' was not sent, was empty/null, or "
                              "malformed.")),
    ({"timeInForce": None}, (-1102, "Mandatory parameter 'timeInForce' was not sent, was "
                                    "empty/null, or malformed.")),
    ({"stopPrice": "100"}, (-1106, "Parameter 'stopPrice' sent when not required.")),
    ({"newClientOrderId": "no spaces!"}, (-1100, "Illegal characters found in parameter "
                                                 "'newClientOrderId'; legal range is "
                                                 "'^[a-zA-Z0-9-_]{1,36}$'.")),
    ({"quantity": "100"}, (-2010, "Account has insufficient balance for requested action.")),
    ({"colour": "red"}, (-1104, "Not all sent parameters were read; read '8' parameter(s) "
                                "but was sent '9'.")),
])
def test_new_order_errors(alice: BinanceClient, params: dict, expected: tuple[int, str]) -> None:
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
             "quantity": "0.01", "price": "30000", **params}
    reply = alice.order(**order)
    assert reply.status_code == 400 and error(reply) == expected


def test_market_with_price_is_1106(alice: BinanceClient) -> None:
    reply = alice.order(symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01",
                        price="1")
    assert error(reply) == (-1106, "Parameter 'price' sent when not required.")


def test_market_without_quantity_is_1102(alice: BinanceClient) -> None:
    reply = alice.order(symbol="BTCUSDT", side="BUY", type="MARKET")
    assert error(reply) == (-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but "
                                   "both were empty/null!")


def test_order_test_validates_without_placing(alice: BinanceClient) -> None:
    ok = alice.signed("POST", "/api/v3/order/test", symbol="BTCUSDT", side="BUY", type="LIMIT",
                      timeInForce="GTC", quantity="0.01", price="20000")
    assert ok.status_code == 200 and ok.json() == {}
    assert alice.signed("GET", "/api/v3/openOrders").json() == []
    bad = alice.signed("POST", "/api/v3/order/test", symbol="BTCUSDT", side="BUY",
                       type="LIMIT", timeInForce="GTC", quantity="0.01", price="0.001")
    assert error(bad) == (-1013, "Filter failure: PRICE_FILTER")
    rates = alice.signed("POST", "/api/v3/order/test", symbol="BTCUSDT", side="BUY",
                         type="MARKET", quantity="0.01", computeCommissionRates="true").json()
    assert rates["standardCommissionForOrder"] == {"maker": "0.00100000", "taker": "0.00100000"}


# ------------------------------------------------------ query and cancel


def test_query_order_by_id_and_client_id_then_2013(alice: BinanceClient) -> None:
    placed = alice.limit("BUY", "0.01", "20000", newClientOrderId="q1").json()
    by_id = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=placed["orderId"])
    by_client = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT", origClientOrderId="q1")
    assert by_id.json() == by_client.json()
    assert by_id.json()["status"] == "NEW" and by_id.json()["isWorking"] is True
    missing = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT", orderId=999)
    assert error(missing) == (-2013, "Order does not exist.")
    neither = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT")
    assert error(neither) == (-1102, "Param 'origClientOrderId' or 'orderId' must be sent, but "
                                     "both were empty/null!")


def test_cancel_order_then_query_shows_canceled(alice: BinanceClient) -> None:
    placed = alice.limit("BUY", "0.01", "20000", newClientOrderId="c1").json()
    canceled = alice.signed("DELETE", "/api/v3/order", symbol="BTCUSDT",
                            origClientOrderId="c1", newClientOrderId="undo-c1").json()
    assert (canceled["status"], canceled["origClientOrderId"], canceled["clientOrderId"]) == (
        "CANCELED", "c1", "undo-c1")
    again = alice.signed("DELETE", "/api/v3/order", symbol="BTCUSDT",
                         orderId=placed["orderId"])
    assert error(again) == (-2011, "Unknown order sent.")
    queried = alice.signed("GET", "/api/v3/order", symbol="BTCUSDT",
                           orderId=placed["orderId"]).json()
    assert queried["status"] == "CANCELED" and queried["isWorking"] is True
    assert alice.balances()["USDT"] == ("100000.00000000", "0.00000000")


def test_cancel_restrictions_over_rest(alice: BinanceClient) -> None:
    placed = alice.limit("BUY", "0.01", "20000").json()
    bad = alice.signed("DELETE", "/api/v3/order", symbol="BTCUSDT", orderId=placed["orderId"],
                       cancelRestrictions="SOMETIMES")
    assert error(bad) == (-1145, "Invalid cancelRestrictions")
    refused = alice.signed("DELETE", "/api/v3/order", symbol="BTCUSDT",
                           orderId=placed["orderId"], cancelRestrictions="ONLY_PARTIALLY_FILLED")
    assert error(refused) == (-2011, "Order was not canceled due to cancel restrictions.")


def test_open_orders_and_cancel_all(alice: BinanceClient) -> None:
    for price in ("20000", "21000"):
        alice.limit("BUY", "0.01", price)
    assert len(alice.signed("GET", "/api/v3/openOrders", symbol="BTCUSDT").json()) == 2
    assert len(alice.signed("GET", "/api/v3/openOrders").json()) == 2
    canceled = alice.signed("DELETE", "/api/v3/openOrders", symbol="BTCUSDT").json()
    assert [x["status"] for x in canceled] == ["CANCELED", "CANCELED"]
    assert alice.signed("GET", "/api/v3/openOrders").json() == []
    nothing = alice.signed("DELETE", "/api/v3/openOrders", symbol="BTCUSDT")
    assert error(nothing) == (-2011, "Unknown order sent.")


def test_all_orders_and_my_trades(alice: BinanceClient, bob: BinanceClient) -> None:
    sell = alice.limit("SELL", "0.02", "30000").json()
    bob.limit("BUY", "0.01", "30000")
    alice.limit("BUY", "0.01", "10000")
    orders = alice.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT").json()
    assert [(x["side"], x["status"]) for x in orders] == [("SELL", "PARTIALLY_FILLED"),
                                                          ("BUY", "NEW")]
    from_second = alice.signed("GET", "/api/v3/allOrders", symbol="BTCUSDT",
                               orderId=orders[1]["orderId"]).json()
    assert len(from_second) == 1
    trades = alice.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()
    assert len(trades) == 1
    trade = trades[0]
    assert (trade["orderId"], trade["isBuyer"], trade["isMaker"], trade["commission"],
            trade["commissionAsset"], trade["quoteQty"]) == (
        sell["orderId"], False, True, "0.30000000", "USDT", "300.00000000")
    bobs = bob.signed("GET", "/api/v3/myTrades", symbol="BTCUSDT").json()
    assert bobs[0]["isBuyer"] and not bobs[0]["isMaker"]


def test_account_balances_move_with_fills(alice: BinanceClient, bob: BinanceClient) -> None:
    alice.limit("SELL", "0.1", "30000")
    bob.limit("BUY", "0.1", "30000")
    bob.limit("BUY", "0.1", "20000")
    balances = bob.balances()
    assert balances["BTC"] == ("10.09990000", "0.00000000")  # 0.1 minus 0.1% fee
    assert balances["USDT"] == ("95000.00000000", "2000.00000000")
    account = bob.signed("GET", "/api/v3/account").json()
    assert account["commissionRates"]["taker"] == "0.00100000" and account["canTrade"]


# --------------------------------------------------------- cancel-replace


def test_cancel_replace_success(alice: BinanceClient) -> None:
    old = alice.limit("BUY", "0.01", "20000").json()
    reply = alice.signed("POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", side="BUY",
                         type="LIMIT", timeInForce="GTC", quantity="0.02", price="20500",
                         cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId=old["orderId"])
    body = reply.json()
    assert reply.status_code == 200
    assert (body["cancelResult"], body["newOrderResult"]) == ("SUCCESS", "SUCCESS")
    assert body["cancelResponse"]["status"] == "CANCELED"
    assert body["newOrderResponse"]["price"] == "20500.00000000"


def test_cancel_replace_stop_on_failure_does_not_place(alice: BinanceClient) -> None:
    reply = alice.signed("POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", side="BUY",
                         type="LIMIT", timeInForce="GTC", quantity="0.02", price="20500",
                         cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId=12345)
    assert reply.status_code == 400
    assert reply.json() == {"code": -2022, "msg": "Order cancel-replace failed.", "data": {
        "cancelResult": "FAILURE", "newOrderResult": "NOT_ATTEMPTED",
        "cancelResponse": {"code": -2011, "msg": "Unknown order sent."},
        "newOrderResponse": None}}
    assert alice.signed("GET", "/api/v3/openOrders").json() == []


def test_cancel_replace_allow_failure_places_anyway(alice: BinanceClient) -> None:
    reply = alice.signed("POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", side="BUY",
                         type="LIMIT", timeInForce="GTC", quantity="0.02", price="20500",
                         cancelReplaceMode="ALLOW_FAILURE", cancelOrigClientOrderId="nope")
    assert reply.status_code == 409
    body = reply.json()
    assert body["code"] == -2021 and body["data"]["newOrderResult"] == "SUCCESS"


def test_cancel_replace_new_order_failing_after_cancel(alice: BinanceClient,
                                                       bob: BinanceClient) -> None:
    bob.limit("SELL", "0.01", "30000")
    old = alice.limit("BUY", "0.01", "20000").json()
    reply = alice.signed("POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", side="BUY",
                         type="LIMIT_MAKER", quantity="0.01", price="30000",
                         cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId=old["orderId"])
    body = reply.json()
    assert body["code"] == -2021
    assert body["data"]["cancelResult"] == "SUCCESS"
    assert body["data"]["newOrderResponse"] == {"code": -2010, "msg": "Order would immediately "
                                                                      "match and take."}


def test_cancel_replace_filter_failure_is_a_plain_error(alice: BinanceClient) -> None:
    old = alice.limit("BUY", "0.01", "20000").json()
    reply = alice.signed("POST", "/api/v3/order/cancelReplace", symbol="BTCUSDT", side="BUY",
                         type="LIMIT", timeInForce="GTC", quantity="0.01", price="0.001",
                         cancelReplaceMode="STOP_ON_FAILURE", cancelOrderId=old["orderId"])
    assert error(reply) == (-1013, "Filter failure: PRICE_FILTER")
    assert len(alice.signed("GET", "/api/v3/openOrders").json()) == 1


# ------------------------------------------------------ user data stream


@pytest.mark.legacy_listen_keys
def test_listen_key_lifecycle(venue: LocalVenue, alice: BinanceClient) -> None:
    key = alice.keyed("POST", "/api/v3/userDataStream").json()["listenKey"]
    assert alice.keyed("POST", "/api/v3/userDataStream").json()["listenKey"] == key
    assert alice.keyed("PUT", "/api/v3/userDataStream", listenKey=key).json() == {}
    assert alice.keyed("DELETE", "/api/v3/userDataStream", listenKey=key).json() == {}
    gone = alice.keyed("PUT", "/api/v3/userDataStream", listenKey=key)
    assert error(gone) == (-1125, "This listenKey does not exist.")
    anonymous = BinanceClient(venue.rest_url).public("POST", "/api/v3/userDataStream")
    assert anonymous.status_code == 401


def test_listen_key_endpoints_are_gone_as_on_binance(venue: LocalVenue,
                                                     alice: BinanceClient) -> None:
    """Binance retired the spot listenKey endpoints on 2026-02-20 (CHANGELOG
    2026-01-21); the venue answers them like any path it does not serve."""
    for method in ("POST", "PUT", "DELETE"):
        assert alice.keyed(method, "/api/v3/userDataStream").status_code == 404


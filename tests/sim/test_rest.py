"""REST security, weights and limits over a real venue socket (rest-api.md
"Endpoint security type", "SIGNED ... security", "LIMITS"; errors.md)."""

from __future__ import annotations

import time
from collections.abc import Callable

import requests

from engine.sim.ratelimit import Limits
from engine.sim.server import LocalVenue
from tests.sim.binance_client import BinanceClient


def test_signed_endpoint_without_api_key_is_2014(public: BinanceClient) -> None:
    reply = public.public("GET", "/api/v3/account", timestamp=int(time.time() * 1000))
    assert reply.status_code == 401
    assert reply.json() == {"code": -2014, "msg": "API-key format invalid."}


def test_signed_endpoint_with_unknown_api_key_is_2015(venue: LocalVenue) -> None:
    stranger = BinanceClient(venue.rest_url, "nobody", "nothing")
    reply = stranger.signed("GET", "/api/v3/account")
    assert reply.status_code == 401
    assert reply.json() == {"code": -2015,
                            "msg": "Invalid API-key, IP, or permissions for action."}


def test_signed_endpoint_with_wrong_secret_is_1022(venue: LocalVenue) -> None:
    forger = BinanceClient(venue.rest_url, "alice-key", "not-alices-secret")
    reply = forger.signed("GET", "/api/v3/account")
    assert reply.status_code == 400 and reply.json()["code"] == -1022


def test_signed_endpoint_without_signature_is_1102(alice: BinanceClient) -> None:
    reply = alice.keyed("GET", "/api/v3/account", timestamp=int(time.time() * 1000))
    assert reply.json() == {"code": -1102, "msg": "Mandatory parameter 'signature' was not "
                                                  "sent, was empty/null, or malformed."}


def test_stale_timestamp_is_1021(alice: BinanceClient) -> None:
    reply = alice.signed("GET", "/api/v3/account", timestamp=int(time.time() * 1000) - 10_000)
    assert reply.status_code == 400
    assert reply.json() == {"code": -1021, "msg": "Timestamp for this request is outside of "
                                                  "the recvWindow."}


def test_wider_recv_window_accepts_the_same_timestamp(alice: BinanceClient) -> None:
    reply = alice.signed("GET", "/api/v3/account", timestamp=int(time.time() * 1000) - 10_000,
                         recvWindow=20_000)
    assert reply.status_code == 200


def test_signed_parameters_in_the_body_are_accepted(alice: BinanceClient) -> None:
    reply = alice.signed("POST", "/api/v3/order", in_body=True, symbol="BTCUSDT", side="BUY",
                         type="LIMIT", timeInForce="GTC", quantity="0.001", price="10000")
    assert reply.status_code == 200, reply.text


def test_every_response_carries_used_weight(public: BinanceClient) -> None:
    first = public.public("GET", "/api/v3/exchangeInfo")
    second = public.public("GET", "/api/v3/depth", symbol="BTCUSDT", limit=500)
    assert int(second.headers["X-MBX-USED-WEIGHT-1M"]) - \
        int(first.headers["X-MBX-USED-WEIGHT-1M"]) == 25  # today's weight
    assert public.public("GET", "/api/v3/nothing").status_code == 404


def test_order_responses_carry_order_counts(alice: BinanceClient) -> None:
    reply = alice.limit("BUY", "0.001", "10000")
    assert reply.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert reply.headers["X-MBX-ORDER-COUNT-1D"] == "1"


def test_weight_over_limit_is_429_then_418_with_retry_after(
        start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(limits=Limits(weight_per_minute=5, strikes_before_ban=2))
    session = requests.Session()
    statuses = [session.get(venue.rest_url + "/api/v3/ping") for _ in range(9)]
    codes = [r.status_code for r in statuses]
    assert codes[:5] == [200] * 5 and codes[5:7] == [429, 429] and codes[7:] == [418, 418]
    too_many = statuses[5]
    assert too_many.json()["code"] == -1003 and "request weight" in too_many.json()["msg"]
    assert 1 <= int(too_many.headers["Retry-After"]) <= 60
    assert int(statuses[7].headers["Retry-After"]) == 120
    assert "IP banned until" in statuses[8].json()["msg"]


def test_too_many_new_orders_is_429_1015(start_venue: Callable[..., LocalVenue]) -> None:
    venue = start_venue(limits=Limits(orders_per_10s=2))
    alice = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    replies = [alice.limit("BUY", "0.001", "10000") for _ in range(3)]
    assert [r.status_code for r in replies[:2]] == [200, 200]
    if replies[2].status_code == 200:  # the 10 s window rolled over between requests
        replies[2] = alice.limit("BUY", "0.001", "10000")
    assert replies[2].status_code == 429
    assert replies[2].json()["code"] == -1015
    assert 1 <= int(replies[2].headers["Retry-After"]) <= 10  # until the 10 s window ends


def test_filled_orders_do_not_count_toward_the_order_limit(
        start_venue: Callable[..., LocalVenue]) -> None:
    """faqs/order_count_decrement.md: an order's first fill takes it off the
    unfilled order count, so a taker whose orders trade can keep going."""
    venue = start_venue(limits=Limits(orders_per_10s=2))
    bob = BinanceClient(venue.rest_url, "bob-key", "bob-secret")
    assert bob.limit("SELL", "1", "30000").status_code == 200
    alice = BinanceClient(venue.rest_url, "alice-key", "alice-secret")
    replies = [alice.limit("BUY", "0.01", "30000") for _ in range(6)]
    assert [r.status_code for r in replies] == [200] * 6
    assert all(r.json()["status"] == "FILLED" for r in replies)
    assert all(int(r.headers["X-MBX-ORDER-COUNT-10S"]) <= 1 for r in replies)

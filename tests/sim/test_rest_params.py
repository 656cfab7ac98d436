"""Signing and parameter rules against Binance's own worked examples
(rest-api.md, "SIGNED Endpoint Examples for POST /api/v3/order")."""

from __future__ import annotations

import pytest

from engine.sim.rest_params import (
    ApiError,
    Params,
    check_signature,
    check_timestamp,
    parse_params,
    total_params,
)

DOC_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
DOC_PARAMS = ("symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1"
              "&recvWindow=5000&timestamp=1499827319559")


def test_signature_docs_example_1_body_is_accepted() -> None:
    body = f"{DOC_PARAMS}&signature=c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"
    check_signature(DOC_SECRET, "", body.encode(),
                    "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71")


def test_signature_docs_example_3_mixed_query_and_body_is_accepted() -> None:
    query = "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC"
    body = (b"quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559&signature="
            b"0fd168b8ddb4876a0358a8d14d0c9f3da0e9b20c5d52b2a00fcf7d1c602f9a77")
    assert total_params(query, body) == (query + "quantity=1&price=0.1&recvWindow=5000"
                                         "&timestamp=1499827319559").encode()
    check_signature(DOC_SECRET, query, body,
                    "0FD168B8DDB4876A0358A8D14D0C9F3DA0E9B20C5D52B2A00FCF7D1C602F9A77")


def test_signature_wrong_is_1022() -> None:
    with pytest.raises(ApiError) as err:
        check_signature(DOC_SECRET, DOC_PARAMS, b"", "00" * 32)
    assert (err.value.code, err.value.msg) == (-1022, "Signature for this request is not "
                                                      "valid.")


@pytest.mark.parametrize("timestamp, window, message", [
    (10_000 - 5_001, None, "Timestamp for this request is outside of the recvWindow."),
    (10_000 + 1_000, None, "Timestamp for this request was 1000ms ahead of the server's time."),
    (10_000 - 7_000, "6000", "Timestamp for this request is outside of the recvWindow."),
])
def test_timestamp_rules_reject_with_1021(timestamp: int, window: str | None,
                                          message: str) -> None:
    params = {"timestamp": str(timestamp)}
    if window:
        params["recvWindow"] = window
    with pytest.raises(ApiError) as err:
        check_timestamp(params, 10_000)
    assert (err.value.code, err.value.msg) == (-1021, message)


def test_timestamp_within_window_and_up_to_999ms_ahead_passes() -> None:
    check_timestamp({"timestamp": str(10_000 - 5_000)}, 10_000)
    check_timestamp({"timestamp": str(10_999)}, 10_000)


def test_recv_window_above_60000_is_rejected() -> None:
    with pytest.raises(ApiError) as err:
        check_timestamp({"timestamp": "10000", "recvWindow": "60001"}, 10_000)
    assert err.value.code == -1131


def test_duplicate_parameter_is_1101_and_query_wins_over_body() -> None:
    with pytest.raises(ApiError) as err:
        parse_params("a=1&a=2", b"")
    assert err.value.code == -1101
    assert parse_params("a=query", b"a=body&b=2") == {"a": "query", "b": "2"}


def test_decimal_with_illegal_characters_is_1100() -> None:
    with pytest.raises(ApiError) as err:
        Params({"quantity": "1e-5"}).units("quantity", 8)
    assert err.value.code == -1100
    assert err.value.msg == ("Illegal characters found in parameter 'quantity'; legal range "
                             "is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.")


def test_decimal_beyond_precision_is_1111_and_trailing_zeros_are_fine() -> None:
    assert Params({"price": "1.100000000000"}).units("price", 8) == 110_000_000
    with pytest.raises(ApiError) as err:
        Params({"price": "1.000000001"}).units("price", 8)
    assert err.value.code == -1111


def test_missing_mandatory_is_1102_and_empty_optional_is_1105() -> None:
    with pytest.raises(ApiError) as err:
        Params({}).text("symbol", required=True)
    assert (err.value.code, err.value.msg) == (
        -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    with pytest.raises(ApiError) as err:
        Params({"price": ""}).text("price")
    assert (err.value.code, err.value.msg) == (-1105, "Parameter 'price' was empty.")

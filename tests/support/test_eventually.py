"""``eventually()`` returns as soon as its predicate holds and explains a timeout."""

from __future__ import annotations

import itertools

import pytest

from tests.support.eventually import eventually


def test_eventually_condition_met_returns_first_truthy_value() -> None:
    calls = itertools.count()
    assert eventually(lambda: next(calls) >= 3 and "ready", timeout=5, interval=0) == "ready"


def test_eventually_assertion_retried_until_it_holds() -> None:
    calls = itertools.count()

    def settled() -> bool:
        assert next(calls) >= 2, "not yet"
        return True

    assert eventually(settled, timeout=5, interval=0) is True


def test_eventually_timeout_raises_with_last_value_and_message() -> None:
    with pytest.raises(AssertionError, match=r"book synced: .*not true within 0\.05 s .*last value: 0"):
        eventually(lambda: 0, timeout=0.05, interval=0.01, message="book synced")


def test_eventually_timeout_reports_last_ignored_error() -> None:
    def refused() -> bool:
        raise ConnectionRefusedError("server down")

    with pytest.raises(AssertionError, match="last error: ConnectionRefusedError") as raised:
        eventually(refused, timeout=0.05, interval=0.01, ignoring=(OSError,))
    assert isinstance(raised.value.__cause__, ConnectionRefusedError)


def test_eventually_unexpected_error_propagates_at_once() -> None:
    def broken() -> bool:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        eventually(broken, timeout=30)

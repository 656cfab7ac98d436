"""``eventually()``: wait for a condition by polling, instead of sleeping a
guessed time. Owns nothing else; never retries an action, only a check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.02, *,
               ignoring: tuple[type[BaseException], ...] = (AssertionError,),
               message: str = "") -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something
    truthy, and return that; after ``timeout`` seconds raise AssertionError
    naming the predicate, the last value and the last exception.

    A predicate may also assert: an exception in ``ignoring`` counts as "not
    yet" (pass e.g. ``ignoring=(AssertionError, OSError)`` while a server
    restarts); any other exception propagates at once. An assert-style
    predicate must end with ``return True``.

    ``timeout`` trades a slow failure for fewer flakes on a loaded machine:
    a passing test waits only as long as the condition needs.
    """
    deadline = time.monotonic() + timeout
    attempts = 0
    value: T | None = None
    last_error: BaseException | None = None
    while True:
        attempts += 1
        try:
            value = predicate()
            last_error = None
        except ignoring as error:
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    name = getattr(predicate, "__qualname__", repr(predicate))
    detail = f"last error: {last_error!r}" if last_error is not None else f"last value: {value!r}"
    raise AssertionError(
        f"{message + ': ' if message else ''}{name} not true within {timeout} s "
        f"({attempts} attempts); {detail}") from last_error

"""Query parameters read with their range checked: a bad one raises
BadRequest naming the parameter (answered 400), never reaches a store as a
value it cannot hold (an integer past 64 bits used to give a 500)."""

from __future__ import annotations

from engine.api.http import Request

INT64_MAX = (1 << 63) - 1
INT64_MIN = -(1 << 63)
MAX_DIGITS = 20  # longer text is refused before int() parses it


class BadRequest(ValueError):
    """Answered 400 with its message."""


def int_param(req: Request, name: str, default: int, low: int = INT64_MIN,
              high: int = INT64_MAX) -> int:
    text = req.query.get(name)
    if text is None or text == "":
        return default
    stripped = text.strip()
    if len(stripped) > MAX_DIGITS or not stripped.lstrip("+-").isdigit():
        raise BadRequest(f"{name}: {text[:40]!r} is not an integer in {low}..{high}")
    value = int(stripped)
    if not low <= value <= high:
        raise BadRequest(f"{name}: {value} is not in {low}..{high}")
    return value


def choice_param(req: Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = req.query.get(name, default) or default
    if value not in allowed:
        raise BadRequest(f"{name}: {value[:40]!r} is not one of {', '.join(allowed)}")
    return value


def text_param(req: Request, name: str, max_len: int = 64) -> str | None:
    value = req.query.get(name)
    if value is None or value == "":
        return None
    if len(value) > max_len:
        raise BadRequest(f"{name}: longer than {max_len} characters")
    return value

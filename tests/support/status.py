"""Reading a daemon's /status in tests: find the component that reports a key."""

from __future__ import annotations

from typing import Any


def find_with(node: Any, key: str) -> Any:
    """The first dict under ``node`` (dicts and lists, depth first) that has ``key``; None if none."""
    if isinstance(node, dict):
        if key in node:
            return node
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = find_with(child, key)
        if found is not None:
            return found
    return None

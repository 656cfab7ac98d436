"""listenKey validity: create returns the active key, keepalive extends,
close and expiry end the streams."""

from __future__ import annotations

import pytest

from engine.sim.listen_keys import VALIDITY_MS, ListenKeys, UnknownListenKey


def test_create_reuses_the_active_key_and_keepalive_extends() -> None:
    keys = ListenKeys()
    key = keys.create("alice", 0)
    assert keys.create("alice", 10) == key and len(key) == 60
    keys.keepalive(key, "alice", VALIDITY_MS - 1)
    assert keys.account_of(key, VALIDITY_MS + 10) == "alice"


def test_expiry_and_close_notify_and_forget() -> None:
    keys = ListenKeys()
    closed: list[tuple[str, str]] = []
    keys.on_close.append(lambda key, reason: closed.append((key, reason)))
    old = keys.create("alice", 0)
    assert keys.expire(VALIDITY_MS) == [old]
    assert keys.account_of(old, VALIDITY_MS) is None
    new = keys.create("alice", VALIDITY_MS)
    assert new != old
    with pytest.raises(UnknownListenKey):
        keys.close(new, "bob")
    keys.close(new, "alice")
    assert closed == [(old, "expired"), (new, "closed")]

"""User data stream listenKeys: which account a key belongs to and until when.

user-data-stream.md: a key is valid 60 minutes after creation or its last
keepalive (PUT); POST on an account that has an active key returns that key
and extends it; DELETE invalidates it. Expired or closed keys end their
streams (the stream hub listens via ``on_close``). Thread-safe.
"""

from __future__ import annotations

import secrets
import string
import threading
from collections.abc import Callable

VALIDITY_MS = 60 * 60 * 1000
_ALPHABET = string.ascii_letters + string.digits


class UnknownListenKey(Exception):
    pass


class ListenKeys:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[str, int]] = {}  # key -> (account, expires_ms)
        self._by_account: dict[str, str] = {}
        self.on_close: list[Callable[[str, str], None]] = []  # (key, reason)

    def create(self, account: str, now_ms: int) -> str:
        with self._lock:
            key = self._by_account.get(account)
            if key is None:
                key = "".join(secrets.choice(_ALPHABET) for _ in range(60))
                self._by_account[account] = key
            self._keys[key] = (account, now_ms + VALIDITY_MS)
            return key

    def keepalive(self, key: str, account: str, now_ms: int) -> None:
        with self._lock:
            owner = self._keys.get(key)
            if owner is None or owner[0] != account or owner[1] <= now_ms:
                raise UnknownListenKey(key)
            self._keys[key] = (account, now_ms + VALIDITY_MS)

    def close(self, key: str, account: str) -> None:
        with self._lock:
            owner = self._keys.get(key)
            if owner is None or owner[0] != account:
                raise UnknownListenKey(key)
            self._forget(key, account)
        self._notify(key, "closed")

    def account_of(self, key: str, now_ms: int) -> str | None:
        with self._lock:
            owner = self._keys.get(key)
            return owner[0] if owner is not None and owner[1] > now_ms else None

    def expire(self, now_ms: int) -> list[str]:
        with self._lock:
            gone = [(k, a) for k, (a, until) in self._keys.items() if until <= now_ms]
            for key, account in gone:
                self._forget(key, account)
        for key, _ in gone:
            self._notify(key, "expired")
        return [key for key, _ in gone]

    def _forget(self, key: str, account: str) -> None:
        del self._keys[key]
        if self._by_account.get(account) == key:
            del self._by_account[account]

    def _notify(self, key: str, reason: str) -> None:
        for callback in self.on_close:
            callback(key, reason)

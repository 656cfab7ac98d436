"""A docs-only OKX v5 client for the venue's tests: signs REST requests and
WebSocket logins exactly as docs-v5 "Authentication" describes, nothing more
(third-party clients are tested in test_clients_okx.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from typing import Any

import orjson
import requests
import websocket

from engine.sim.okx.auth import OkxKey
from engine.sim.server import LocalVenue


def okx_key(venue: LocalVenue, account: str) -> OkxKey:
    assert venue.okx is not None
    return next(k for k in venue.okx.keys.values() if k.account == account)


def iso_now() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def sign(secret: str, prehash: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), prehash.encode(),
                                     hashlib.sha256).digest()).decode()


class OkxClient:
    def __init__(self, url: str, key: OkxKey | None) -> None:
        self.url = url
        self.key = key
        self.session = requests.Session()

    def get(self, path: str, **params: Any) -> requests.Response:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        target = f"{path}?{query}" if query else path
        return self.session.get(self.url + target, headers=self._headers("GET", target, ""),
                                timeout=15)

    def post(self, path: str, body: Any) -> requests.Response:
        text = orjson.dumps(body).decode()
        return self.session.post(self.url + path, data=text, headers=self._headers(
            "POST", path, text), timeout=15)

    def _headers(self, method: str, target: str, body: str) -> dict[str, str]:
        if self.key is None:
            return {}
        stamp = iso_now()
        return {"OK-ACCESS-KEY": self.key.api_key, "OK-ACCESS-PASSPHRASE": self.key.passphrase,
                "OK-ACCESS-TIMESTAMP": stamp, "Content-Type": "application/json",
                "OK-ACCESS-SIGN": sign(self.key.secret_key, stamp + method + target + body)}


def ws_login(ws: websocket.WebSocket, key: OkxKey) -> None:
    stamp = str(int(time.time()))
    ws.send(orjson.dumps({"op": "login", "args": [{
        "apiKey": key.api_key, "passphrase": key.passphrase, "timestamp": stamp,
        "sign": sign(key.secret_key, stamp + "GET/users/self/verify")}]}).decode())

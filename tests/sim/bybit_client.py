"""A plain Bybit v5 REST client written from Bybit's docs (v5 "Integration
Guidance": X-BAPI-* headers, HMAC-SHA256 over timestamp + key + recv window
+ query string or JSON body) and nothing of the venue; the tests use it the
way any third-party client would."""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlencode

import orjson
import requests

RECV_WINDOW = "5000"


class BybitClient:
    def __init__(self, base_url: str, api_key: str = "", api_secret: str = "") -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.session = requests.Session()

    def sign(self, payload: str) -> str:
        return hmac.new(self.api_secret.encode(), payload.encode(), hashlib.sha256).hexdigest()

    def _headers(self, payload: str, timestamp: int | None, signature: str | None
                 ) -> dict[str, str]:
        stamp = str(timestamp if timestamp is not None else int(time.time() * 1000))
        return {"X-BAPI-API-KEY": self.api_key, "X-BAPI-TIMESTAMP": stamp,
                "X-BAPI-RECV-WINDOW": RECV_WINDOW, "Content-Type": "application/json",
                "X-BAPI-SIGN": signature if signature is not None else
                self.sign(stamp + self.api_key + RECV_WINDOW + payload)}

    def public(self, path: str, **params: Any) -> Any:
        return self.session.get(self.base_url + path, params=params, timeout=10).json()

    def get(self, path: str, *, timestamp: int | None = None, signature: str | None = None,
            **params: Any) -> requests.Response:
        query = urlencode(params)
        return self.session.get(f"{self.base_url}{path}?{query}", timeout=10,
                                headers=self._headers(query, timestamp, signature))

    def post(self, path: str, *, timestamp: int | None = None, signature: str | None = None,
             **body: Any) -> requests.Response:
        text = orjson.dumps(body).decode()
        return self.session.post(self.base_url + path, data=text, timeout=10,
                                 headers=self._headers(text, timestamp, signature))

    def ok(self, method: str, path: str, **params: Any) -> Any:
        """The result of a call that must succeed (retCode 0)."""
        answer = (self.get if method == "GET" else self.post)(path, **params).json()
        assert answer["retCode"] == 0, answer
        return answer["result"]

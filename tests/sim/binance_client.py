"""A plain Binance spot REST client, written from Binance's rest-api.md
("SIGNED (TRADE and USER_DATA) Endpoint security") and nothing of the venue:
the acceptance tests use it the way any third-party client would."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

import requests


class BinanceClient:
    def __init__(self, base_url: str, api_key: str = "", api_secret: str = "") -> None:
        self.base_url = base_url
        self.api_key = api_key
        self.api_secret = api_secret
        self.session = requests.Session()

    def public(self, method: str, path: str, **params: object) -> requests.Response:
        return self.session.request(method, self.base_url + path, params=params, timeout=10)

    def keyed(self, method: str, path: str, **params: object) -> requests.Response:
        """USER_STREAM / MARKET_DATA: API key header, no signature."""
        return self.session.request(method, self.base_url + path, params=params, timeout=10,
                                    headers={"X-MBX-APIKEY": self.api_key})

    def sign(self, total_params: str) -> str:
        return hmac.new(self.api_secret.encode(), total_params.encode(),
                        hashlib.sha256).hexdigest()

    def signed(self, method: str, path: str, *, in_body: bool = False,
               timestamp: int | None = None, **params: object) -> requests.Response:
        """TRADE / USER_DATA: timestamp + HMAC-SHA256 over the query (or body)."""
        params.setdefault("timestamp", timestamp if timestamp is not None
                          else int(time.time() * 1000))
        query = urlencode({k: v for k, v in params.items() if v is not None})
        signed = f"{query}&signature={self.sign(query)}"
        headers = {"X-MBX-APIKEY": self.api_key}
        url = self.base_url + path
        if in_body:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            return self.session.request(method, url, data=signed, headers=headers, timeout=10)
        return self.session.request(method, f"{url}?{signed}", headers=headers, timeout=10)

    # conveniences used across tests
    def order(self, **params: object) -> requests.Response:
        return self.signed("POST", "/api/v3/order", **params)

    def limit(self, side: str, quantity: str, price: str, symbol: str = "BTCUSDT",
              **extra: object) -> requests.Response:
        return self.order(symbol=symbol, side=side, type="LIMIT", timeInForce="GTC",
                          quantity=quantity, price=price, **extra)

    def balances(self) -> dict[str, tuple[str, str]]:
        account = self.signed("GET", "/api/v3/account").json()
        return {b["asset"]: (b["free"], b["locked"]) for b in account["balances"]}

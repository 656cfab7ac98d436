"""OKX v5 request signing, as the venue checks it (Sans-I/O).

REST: OK-ACCESS-SIGN = base64(HMAC-SHA256(secret, timestamp + METHOD +
requestPath(?query) + body)), OK-ACCESS-TIMESTAMP an ISO-8601 UTC time with
milliseconds ("2020-12-08T09:08:57.715Z"), 30 s either side of the server
clock. WebSocket login: the same HMAC over timestamp + "GET" +
"/users/self/verify", timestamp in Unix seconds.
Docs: https://www.okx.com/docs-v5/en/#overview-rest-authentication,
#overview-websocket-login.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime

from engine.config import LocalVenueConfig

WINDOW_MS = 30_000  # OKX: a request whose timestamp is 30 s off is refused (50102)
LOGIN_PATH = "/users/self/verify"
_KEY_NAMESPACE = uuid.UUID("6f6b782d-7665-6e75-652d-6c6f63616c00")  # "okx-venue-local"


@dataclass(frozen=True)
class OkxKey:
    account: str
    api_key: str
    secret_key: str
    passphrase: str


def sign(secret: str, prehash: str) -> str:
    digest = hmac.new(secret.encode(), prehash.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def signature_ok(secret: str, prehash: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, prehash), signature)


def iso_ms(text: str) -> int | None:
    """"2020-12-08T09:08:57.715Z" -> epoch ms; None if it is not that shape."""
    if not text.endswith("Z") or "T" not in text:
        return None
    try:
        when = datetime.fromisoformat(text[:-1] + "+00:00")
    except ValueError:
        return None
    return int(when.timestamp() * 1000)


def keys_for(config: LocalVenueConfig) -> dict[str, OkxKey]:
    """API key -> OkxKey: the configured ones, and for every other account a
    key derived from its Binance-style credentials (OKX's shapes: a UUID key,
    a 32-hex secret, a passphrase). Local test credentials only."""
    keys: dict[str, OkxKey] = {}
    names = {a.name for a in config.accounts}
    for k in config.okx.keys:
        if k.account not in names:
            raise ValueError(f"venue.okx.keys: account {k.account!r} is not one of "
                             f"venue.accounts")
        if not k.api_key or not k.secret_key or not k.passphrase:
            raise ValueError(f"venue.okx.keys.{k.account}: api_key, secret_key and passphrase "
                             f"are all required")
        keys[k.api_key] = OkxKey(k.account, k.api_key, k.secret_key, k.passphrase)
    given = {k.account for k in keys.values()}
    for account in config.accounts:
        if account.name in given:
            continue
        api_key = str(uuid.uuid5(_KEY_NAMESPACE, account.api_key))
        secret = hashlib.sha256(account.api_secret.encode()).hexdigest()[:32].upper()
        keys[api_key] = OkxKey(account.name, api_key, secret, f"{account.name}-Passphrase-1")
    return keys

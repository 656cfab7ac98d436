"""Request signatures by API key type: HMAC-SHA256 (hex) with the secret, or
Ed25519 / RSA (PKCS#1 v1.5, SHA-256; base64) with the account's public key.

Binance's rest-api.md and web-socket-api.md, "SIGNED request example (HMAC /
RSA / Ed25519)": HMAC signatures are case-insensitive hex; RSA and Ed25519
signatures are base64 of the signature over the ASCII payload. The payload is
totalParams for REST and, for the WebSocket API, every param but
``signature`` sorted by name as ``name=value`` joined with '&'.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from typing import Any
from urllib.parse import quote

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from engine.sim.rest_params import ApiError

HMAC, RSA, ED25519 = "HMAC", "RSA", "ED25519"


def load_public_key(pem: str, where: str) -> Ed25519PublicKey | RSAPublicKey:
    """A PEM public key from config; ValueError naming ``where`` otherwise."""
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError as exc:
        raise ValueError(f"{where}: not a PEM public key ({exc})") from None
    if not isinstance(key, (Ed25519PublicKey, RSAPublicKey)):
        raise ValueError(f"{where}: only Ed25519 and RSA public keys are supported")
    return key


def key_type(public_key: Any) -> str:
    if public_key is None:
        return HMAC
    return ED25519 if isinstance(public_key, Ed25519PublicKey) else RSA


def _invalid() -> ApiError:
    return ApiError(-1022, "Signature for this request is not valid.")


def verify(secret: str, public_key: Any, payload: bytes, signature: str) -> None:
    """-1022 unless ``signature`` signs ``payload`` for this key."""
    if public_key is None:
        expected = hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            raise _invalid()
        return
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid() from None
    try:
        if isinstance(public_key, Ed25519PublicKey):
            public_key.verify(raw, payload)
        else:
            public_key.verify(raw, payload, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise _invalid() from None


def ws_payload(params: dict[str, str], encoded: bool = False) -> bytes:
    """web-socket-api.md signature payload: sorted name=value pairs, no signature.
    ``encoded``: values percent-encoded as RFC 3986 (what Binance asks of REST
    payloads since 2026-01-15, CHANGELOG 2025-12-17; some clients do it here too)."""
    return "&".join(f"{name}={quote(value, safe='-_.~') if encoded else value}"
                    for name, value in sorted(params.items()) if name != "signature").encode()


def verify_ws(secret: str, public_key: Any, params: dict[str, str], signature: str) -> None:
    """-1022 unless ``signature`` signs the payload, raw or percent-encoded."""
    try:
        verify(secret, public_key, ws_payload(params), signature)
    except ApiError:
        encoded = ws_payload(params, encoded=True)
        if encoded == ws_payload(params):
            raise
        verify(secret, public_key, encoded, signature)

"""WebSocket API sessions: who a connection is logged on as, and its user
data stream subscriptions.

web-socket-api.md, "Session Authentication": ``session.logon`` (Ed25519 keys
only), ``session.status``, ``session.logout``; after logon, SIGNED requests
may omit ``apiKey`` and ``signature`` but still need ``timestamp``; an
explicit ``apiKey`` + ``signature`` overrides the session key. "User Data
Stream requests": ``userDataStream.subscribe`` (needs a logged-on session),
``userDataStream.subscribe.signature`` (any key type, any session),
``userDataStream.unsubscribe`` (one ``subscriptionId`` or all),
``session.subscriptions``; one subscription per account per connection, up
to 1,000 active and 65,535 over a session's life; ``session.logout`` ends
only the subscription ``userDataStream.subscribe`` made. Network thread only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.sim.rest import ApiAccount, VenueContext
from engine.sim.rest_params import ApiError, check_timestamp, mandatory
from engine.sim.signing import ED25519, key_type, verify_ws

MAX_ACTIVE_SUBSCRIPTIONS = 1000
MAX_LIFETIME_SUBSCRIPTIONS = 65535
SESSION_WEIGHT = 2  # every session.* and userDataStream.* request


@dataclass
class Session:
    connected_since: int
    return_rate_limits: bool = True  # the connection's default (?returnRateLimits=)
    account: ApiAccount | None = None
    authorized_since: int | None = None
    subscriptions: dict[int, str] = field(default_factory=dict)  # subscriptionId -> account
    logon_subscription: int | None = None  # made by userDataStream.subscribe
    opened: int = 0  # subscriptions started over the session's life

    def status(self, now_ms: int) -> dict[str, Any]:
        return {"apiKey": self.account.api_key if self.account else None,
                "authorizedSince": self.authorized_since,
                "connectedSince": self.connected_since,
                "returnRateLimits": self.return_rate_limits, "serverTime": now_ms,
                "userDataStream": bool(self.subscriptions)}


def signed_account(ctx: VenueContext, session: Session, params: dict[str, str],
                   now_ms: int, *, explicit: bool = False) -> ApiAccount:
    """The account a SIGNED request acts for: its own apiKey + signature, or the
    session's key (``explicit`` forbids the latter); timestamp checked."""
    if "signature" in params or explicit or session.account is None:
        key = params.get("apiKey") or (session.account.api_key if session.account
                                       and not explicit else "")
        if not key:
            raise mandatory("apiKey")
        account = ctx.accounts.get(key)
        if account is None:
            raise ApiError(-2015, "Invalid API-key, IP, or permissions for action.",
                           status=401)
        signature = params.get("signature")
        if not signature:
            raise mandatory("signature")
        verify_ws(account.api_secret, account.public_key, params, signature)
    else:
        account = session.account
    check_timestamp(params, now_ms)
    return account


def logon(ctx: VenueContext, session: Session, params: dict[str, str],
          now_ms: int) -> dict[str, Any]:
    account = signed_account(ctx, session, params, now_ms, explicit=True)
    if key_type(account.public_key) != ED25519:
        raise ApiError(-4056, f"{'HMAC_SHA256' if account.public_key is None else 'RSA'} "
                              f"API key is not supported.")
    if session.account is not None and session.account.name != account.name:
        _end(session, session.logon_subscription)
    session.account, session.authorized_since = account, now_ms
    return session.status(now_ms)


def logout(session: Session, now_ms: int) -> list[tuple[int, str]]:
    """Forget the key; returns the subscriptions this ended."""
    ended = _end(session, session.logon_subscription)
    session.account = session.authorized_since = None
    return ended


def subscribe(session: Session, account: str, *, logon: bool) -> int:
    if account in session.subscriptions.values():
        raise ApiError(-2035, "User Data Stream subscription already active.")
    if len(session.subscriptions) >= MAX_ACTIVE_SUBSCRIPTIONS:
        raise ApiError(-2039, f"Maximum active subscriptions exceeded "
                              f"({MAX_ACTIVE_SUBSCRIPTIONS}).")
    if session.opened >= MAX_LIFETIME_SUBSCRIPTIONS:
        raise ApiError(-2040, "Maximum subscription ID reached for this connection; "
                              "reconnect.")
    subscription_id = session.opened
    session.opened += 1
    session.subscriptions[subscription_id] = account
    if logon:
        session.logon_subscription = subscription_id
    return subscription_id


def unsubscribe(session: Session, params: dict[str, str]) -> list[tuple[int, str]]:
    raw = params.get("subscriptionId")
    if raw is None:
        return _end_all(session)
    try:
        subscription_id = int(raw)
    except ValueError:
        raise ApiError(-1100, "Illegal characters found in parameter 'subscriptionId'; "
                              "legal range is '^[0-9]{1,5}$'.") from None
    if subscription_id not in session.subscriptions:
        raise ApiError(-2036, "User Data Stream subscription not active.")
    return _end(session, subscription_id)


def _end(session: Session, subscription_id: int | None) -> list[tuple[int, str]]:
    if subscription_id is None or subscription_id not in session.subscriptions:
        return []
    account = session.subscriptions.pop(subscription_id)
    if session.logon_subscription == subscription_id:
        session.logon_subscription = None
    return [(subscription_id, account)]


def _end_all(session: Session) -> list[tuple[int, str]]:
    ended = list(session.subscriptions.items())
    session.subscriptions.clear()
    session.logon_subscription = None
    return ended

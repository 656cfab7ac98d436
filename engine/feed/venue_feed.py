"""One venue+market's feed: its subscriptions, the connections carrying them
(by socket URL), its instrument vetting before a subscribe, and when its
sockets rotate before the venue's lifetime cut. pool.py decides placement."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import requests
from loguru import logger

from engine.feed.connection import Connection
from engine.feed.dialing import RotationPlan
from engine.feed.limiter import RestLimiter
from engine.feed.snapshots import SnapshotFetcher
from engine.model import book_key
from engine.venues.base import Driver, Subscription

log = logger.bind(component="feed")

# Planned rotation before Limits.max_connection_lifetime_s (Binance: 24 h):
# start this long before the cut (a quarter of the lifetime if that is less).
# Room for a slow connect, a paced subscribe and retries; earlier only costs
# rotating a little more often.
ROTATION_LEAD_S = 600.0
# Both sockets carry the stream this long before the old one closes (at most a
# quarter of the lead); the new one's frames are held meanwhile. Longer covers
# more skew between the two sockets (the held stream must start before the old
# one's last frame, or the sync rule sees a gap and resyncs); it costs a
# duplicate stream and the held frames' memory.
ROTATION_OVERLAP_S = 1.0


def rotation_plan(lifetime_s: float) -> RotationPlan:
    """When connections of a venue that cuts sockets at ``lifetime_s`` replace them."""
    if lifetime_s <= 0:
        return RotationPlan()
    lead = min(ROTATION_LEAD_S, lifetime_s / 4)
    return RotationPlan(lifetime_s - lead, min(ROTATION_OVERLAP_S, lead / 4), lead / 8)


class InstrumentsUnavailable(RuntimeError):
    """The venue's instrument list, needed before subscribing, could not be loaded."""


# A venue that must vet symbols before subscribing (Hyperliquid closes the whole
# socket on an unknown coin) has its instrument list reloaded when older than
# this: shorter notices listings sooner, at one REST call per reload.
INSTRUMENTS_MAX_AGE_S = 3600.0
INSTRUMENTS_TIMEOUT_S = 10.0


@dataclass
class Feed:
    """One driver's (venue + market) subscriptions, connections and resync path.

    ``lanes`` maps each socket URL the driver asks for (``driver.endpoints``;
    Binance USD-M has one for depth and one for trades) to its connections."""

    driver: Driver
    router: Any  # FeedRouter
    limit: int  # pairs per connection
    fetcher: SnapshotFetcher | None = None  # drivers with REST snapshots only
    limiter: RestLimiter | None = None
    subs: dict[str, Subscription] = field(default_factory=dict)
    lanes: dict[str, list[Connection]] = field(default_factory=dict)
    book_conn: dict[str, Connection] = field(default_factory=dict)  # pair -> socket with its book
    known: set[str] = field(default_factory=set)  # pairs ever registered with the router
    instruments_at: float = 0.0  # monotonic time the instrument list was loaded; 0: never
    refused: dict[str, str] = field(default_factory=dict)  # pair -> why it is not carried

    def key(self, pair: str) -> str:
        return book_key(self.driver.venue, self.driver.market, pair)

    def connections(self) -> list[Connection]:
        return [c for conns in self.lanes.values() for c in conns]


def vet_instruments(feed: Feed) -> None:
    """Load (or refresh) the instrument list of a venue that needs one before
    any subscribe; raises InstrumentsUnavailable if it never loaded."""
    req = feed.driver.instruments_request()
    if req is None:
        return
    now = time.monotonic()
    if feed.instruments_at and now - feed.instruments_at < INSTRUMENTS_MAX_AGE_S:
        return
    if feed.limiter is not None:
        feed.limiter.acquire(req.weight, timeout_s=INSTRUMENTS_TIMEOUT_S)
    try:
        resp = requests.request(req.method, req.url, params=req.params or None,
                                json=req.body, timeout=INSTRUMENTS_TIMEOUT_S)
        if resp.status_code != 200:
            raise ValueError(f"HTTP {resp.status_code}")
        feed.driver.load_instruments(resp.content)
    except (requests.RequestException, ValueError) as e:
        if feed.instruments_at:  # keep the older list; try again next time
            log.warning("instrument list refresh failed venue={}: {}", feed.driver.venue, e)
            return
        raise InstrumentsUnavailable(
            f"{feed.driver.venue}: cannot load its instrument list from {req.url}: {e}; "
            f"not subscribing (an unknown symbol would close the socket)") from e
    feed.instruments_at = now

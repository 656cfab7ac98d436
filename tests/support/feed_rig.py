"""FeedRig: the real engine pieces (BookStore in shared memory, FeedPool, the
venue's driver) wired to a FaultServer for tests, with the comparisons tests
assert on. The only test-support module that uses engine feed code."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable

from engine.book.reader import BookReader
from engine.book.store import BookStore
from engine.book.writer import BookWriter
from engine.config import FeedConfig
from engine.feed.pool import FeedPool
from engine.model import book_key
from engine.venues import make_driver
from engine.venues.base import Subscription
from tests.support.fault_server import Fault, FaultServer
from tests.support.venue_scripts import SCRIPTS
from tests.support.venue_streams import Stream, build_streams


class FeedRig:
    """``with FeedRig("binance-spot", pairs=3, faults=[...]) as rig:`` starts a
    server, a BookStore, a FeedPool subscribed to every stream, and stops all.
    ``faults`` may be a function of the streams (to aim at symbols and lengths).
    ``driver_limits``/``driver_heartbeat`` replace fields of the driver's Limits and
    Heartbeat before any connection exists; other keywords go to FaultServer."""

    DEPTH = 50  # mirrored levels compared with the reference book

    def __init__(self, script: str, pairs: int = 3,
                 faults: list[Fault] | Callable[[dict[str, Stream]], list[Fault]] | tuple[()] = (),
                 config: FeedConfig | None = None, pairs_per_connection: int = 0,
                 pool_kw: dict | None = None, driver_limits: dict | None = None,
                 driver_heartbeat: dict | None = None, subscribe: bool = True,
                 max_frames: int = 0, **server_kw: object) -> None:
        self.script = SCRIPTS[script]()
        self.streams = build_streams(self.script, pairs, max_frames)
        plan = faults(self.streams) if callable(faults) else list(faults)
        self.server = FaultServer(self.script, self.streams, plan,
                                  fault_gate=self.synced, **server_kw)  # type: ignore[arg-type]
        self.store = BookStore.create(f"rig{uuid.uuid4().hex[:12]}", max(64, pairs * 2),
                                      self.DEPTH, lock_stripes=8)
        self.reader = BookReader(self.store)
        self.config = config or FeedConfig(stall_timeout_s=0.5, reconnect_min_s=0.01,
                                           reconnect_max_s=0.05)
        self.pool = FeedPool(self.config, BookWriter(self.store), **(pool_kw or {}))
        self.driver = make_driver(self.script.venue, self.script.market, self.server.rest_url,
                                  self.server.ws_url)
        if driver_limits:
            self.driver.limits = dataclasses.replace(self.driver.limits, **driver_limits)
        if driver_heartbeat:
            self.driver.heartbeat = dataclasses.replace(self.driver.heartbeat, **driver_heartbeat)
        self.router = self.pool.add_feed(self.driver, pairs_per_connection)
        self._subscribe = subscribe

    def __enter__(self) -> FeedRig:
        self.server.start()
        if self._subscribe:
            self.subscribe(list(self.streams))
        self.pool.start()
        return self

    def subscribe(self, symbols: list[str]) -> None:
        self.pool.subscribe(self.script.venue, self.script.market,
                            [Subscription(self.streams[s].pair) for s in symbols])

    def unsubscribe(self, symbols: list[str]) -> None:
        self.pool.unsubscribe(self.script.venue, self.script.market,
                              [self.streams[s].pair for s in symbols])

    def __exit__(self, *exc: object) -> None:
        self.pool.stop(3.0)
        self.server.stop()
        self.reader.close()
        self.store.close()

    def key(self, symbol: str) -> str:
        return book_key(self.script.venue, self.script.market, self.streams[symbol].pair)

    def stats(self, symbol: str) -> dict:
        return self.router.stats(self.streams[symbol].pair)

    def stall_verdicts(self) -> int:
        """How many data stalls the connections declared, each checked against
        the silence the server really kept before it: a loaded host can starve
        the server's sending thread past the stall timeout, and reconnecting
        then is the right decision (it resyncs every book on that socket once)."""
        verdicts = [v for conn in self.pool.connections() for v in conn.stats.stalls]
        for verdict in verdicts:
            silence = self.server.silence_before(verdict)
            assert silence >= self.config.stall_timeout_s, \
                f"stall declared after only {silence:.3f}s of silence"
        return len(verdicts)

    def synced(self, symbols: list[str]) -> bool:
        pairs = [self.streams[s].pair for s in symbols]
        return all(p in self.router.books and self.router.stats(p)["state"] == "synced"
                   for p in pairs)

    def mismatches(self, symbols: list[str] | None = None) -> list[str]:
        """Books that differ from the venue's (top DEPTH levels), or are not synced."""
        bad = []
        for sym in symbols or self.streams:
            ref = self.server.reference(sym).top(self.DEPTH)
            try:
                view = self.reader.read(self.key(sym))
            except KeyError:
                bad.append(f"{sym}: no book")
                continue
            got = ([tuple(r) for r in view.bids.tolist()], [tuple(r) for r in view.asks.tolist()])
            if not view.synced or got != (list(ref[0]), list(ref[1])):
                bad.append(f"{sym}: state={view.state.name} bids={len(got[0])} asks={len(got[1])}")
        return bad

    def settled(self) -> bool:
        """Everything sent, every fault fired, every book synced and equal to the venue's."""
        return self.server.finished() and not self.mismatches()

    def snapshots_served(self, symbol: str) -> int:
        return self.server.rest_served[symbol] + self.server.ws_snapshots[symbol]

"""The pool over real sockets: packing pairs up to the per-connection limit,
the daemon-wide connection cap, and adding or removing pairs at run time
without disturbing the pairs that stay."""

from __future__ import annotations

import time

import pytest

from engine.config import FeedConfig
from engine.feed.pool import PoolFull
from tests.support.eventually import eventually
from tests.support.feed_rig import FeedRig

# How long a wait for an outcome may take before it counts as never: generous,
# two shared cores at load 30 starve the feed threads for seconds. Only a
# failing test waits this long.
WAIT_S = 60.0


def _stall_resyncs(rig: FeedRig) -> int:
    """Resyncs the connections' stall reconnects cause: every book on the
    stalled socket once per stall (at most, where pairs joined later)."""
    return sum(len(c.stats.stalls) * c.count() for c in rig.pool.connections())


def test_pool_packs_pairs_up_to_the_per_connection_limit() -> None:
    with FeedRig("binance-spot", pairs=7, pairs_per_connection=3, interval_s=0.001) as rig:
        assert sorted(c.count() for c in rig.pool.connections()) == [1, 3, 3]
        # A stall the server's real silence justifies (a loaded host starves its
        # sender) reconnects that socket and resyncs each of its books once:
        # wait until any such reconnect is done and its books are synced again.
        eventually(lambda: rig.settled() and rig.server.connections == 3 + rig.stall_verdicts()
                   and sum(rig.stats(s)["resyncs"] for s in rig.streams) == _stall_resyncs(rig),
                   WAIT_S)


def test_pool_connection_cap_rejects_whole_request_and_changes_nothing() -> None:
    config = FeedConfig(max_connections=2, stall_timeout_s=0.5, reconnect_min_s=0.01,
                        reconnect_max_s=0.05)
    with FeedRig("binance-spot", pairs=5, pairs_per_connection=2, config=config,
                 subscribe=False, interval_s=0.002) as rig:
        syms = list(rig.streams)
        with pytest.raises(PoolFull, match="max_connections=2"):
            rig.subscribe(syms)  # 5 pairs need 3 connections
        assert rig.pool.connections() == [] and rig.router.books == {}
        rig.subscribe(syms[:4])
        assert len(rig.pool.connections()) == 2
        with pytest.raises(PoolFull):
            rig.subscribe(syms[4:])
        assert sorted(c.count() for c in rig.pool.connections()) == [2, 2]
        eventually(lambda: not rig.mismatches(syms[:4]), WAIT_S)


def test_pool_adds_pairs_at_run_time_without_disturbing_others() -> None:
    with FeedRig("binance-futures", pairs=4, pairs_per_connection=3, subscribe=False,
                 interval_s=0.002) as rig:
        syms = list(rig.streams)
        rig.subscribe(syms[:2])
        eventually(lambda: rig.synced(syms[:2]), WAIT_S)
        first = rig.pool.connections()[0]
        rig.subscribe(syms[2:])  # one fits on the live socket, one needs a new socket
        assert [c.count() for c in rig.pool.connections()] == [3, 1]
        eventually(lambda: rig.settled() and rig.server.connections == 2 + rig.stall_verdicts(),
                   WAIT_S)  # stalls justified by the server's silence, as above
        assert first.stats.reconnects == len(first.stats.stalls)
        # The new pairs never touched the old socket's books: only stalls resync them.
        assert sum(rig.stats(s)["resyncs"] for s in syms) <= _stall_resyncs(rig)
        assert rig.stall_verdicts() or all(rig.stats(s)["resyncs"] == 0 for s in syms)
        # The live socket got a SUBSCRIBE for the third pair only.
        subs = [f for f in rig.server.client_frames if '"SUBSCRIBE"' in f]
        assert any(syms[2].lower() in f and syms[0].lower() not in f for f in subs)


def test_pool_removes_pairs_at_run_time_closing_only_empty_connections() -> None:
    with FeedRig("binance-futures", pairs=4, pairs_per_connection=2, interval_s=0.003) as rig:
        syms = list(rig.streams)
        eventually(lambda: rig.synced(syms), WAIT_S)
        keep, drop = rig.pool.connections()
        rig.unsubscribe(syms[2:])  # every pair of the second socket: it closes
        eventually(lambda: not drop.alive, WAIT_S)
        assert rig.pool.connections() == [keep]
        eventually(lambda: 1000 in rig.server.close_codes, WAIT_S)
        # Nothing keeps the dropped books current: they must not claim to be synced.
        assert all(rig.stats(s)["state"] != "synced" for s in syms[2:])

        rig.unsubscribe(syms[1:2])  # one pair of a socket that stays
        eventually(lambda: any('"UNSUBSCRIBE"' in f and syms[1].lower() in f
                               for f in rig.server.client_frames), WAIT_S)
        assert keep.alive and keep.count() == 1
        # A frame of it still in flight when the venue processed the UNSUBSCRIBE:
        # the router wants a snapshot for a pair nobody carries any more.
        late = rig.streams[syms[1]]
        rig.router.on_frame(keep.conn_id, late.frames[late.pos], time.time_ns())
        rig.subscribe(syms[1:2])  # and back, into the free slot
        assert rig.pool.connections() == [keep] and keep.count() == 2
        eventually(lambda: not rig.mismatches(syms[:2]) and rig.streams[syms[1]].pos == len(
            rig.streams[syms[1]].frames), WAIT_S)
        rig.stall_verdicts()  # any stall is justified by the server's silence
        assert keep.stats.reconnects == len(keep.stats.stalls)
        assert rig.stats(syms[0])["resyncs"] == len(keep.stats.stalls)  # never the removals


def test_pool_status_lists_connections_and_feeds() -> None:
    with FeedRig("okx", pairs=2, interval_s=0.002) as rig:
        eventually(rig.settled, WAIT_S)
        status = rig.pool.status()
        assert status["max_connections"] == rig.config.max_connections
        (conn,) = status["connections"]
        assert conn["state"] == "live" and conn["pairs"] == 2 and conn["messages"] > 0
        (feed,) = status["feeds"]
        assert feed["venue"] == "okx" and feed["pairs"] == 2 and feed["connections"] == 1

"""A strategy worker process of the pool (spawned by pool.StrategyPool): attaches
the BookStore by name, runs its hosted strategies on the newest version of each
watched book, sends their intents to the daemon and waits for its acknowledging
state. Reads books and decides; never touches an order or the task DB. Also the
pool's settings (PoolSettings), which both sides read."""

from __future__ import annotations

import os
import queue
import signal
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from engine.trade.strategy import OwnState, StrategySpec, build, load_modules, make_view

BUSY_CODE, BUSY_SINCE_NS, DECISIONS = 0, 1, 2  # a worker's shared counters (RawArray "q")


@dataclass(frozen=True)
class PoolSettings:
    # Worker processes. Strategies in one worker run one after another, so
    # more workers isolate slow strategies better; each costs a process and
    # its polling. Two is the least that can move work away from a stuck one.
    workers: int = 2
    # Idle sleep between book-version polls: the worst-case added latency from
    # a book change to a decision. Shorter reacts sooner and burns more CPU.
    poll_s: float = 0.001
    # A decision running longer than this moves the worker's other strategies
    # to other workers; longer than hung_strategy_s kills the worker.
    slow_strategy_s: float = 0.5
    hung_strategy_s: float = 10.0
    # After sending intents a strategy waits for the daemon's acknowledging
    # state (so it never decides twice on the same stale view); at most this long.
    ack_timeout_s: float = 2.0
    # A strategy on this many crashed workers within crash_window_s is not
    # run again (it would take every worker down in turn).
    max_crashes: int = 3
    crash_window_s: float = 300.0
    book_depth: int = 20  # levels per side copied for each decision
    start_timeout_s: float = 60.0  # spawn + import of a worker
    heartbeat_s: float = 1.0
    # Modules that register strategies from outside engine/strategies
    # (strategy.register); every worker imports them at start.
    strategy_modules: tuple[str, ...] = ()


def pool_settings(config: Any) -> PoolSettings:
    """From ``config.trader`` once engine/config.py has these keys (workers,
    strategy_poll_s, slow_strategy_s, hung_strategy_s, strategy_modules);
    the defaults for any it lacks."""
    trader = getattr(config, "trader", None)
    d = PoolSettings()
    return PoolSettings(
        workers=getattr(trader, "workers", d.workers),
        poll_s=getattr(trader, "strategy_poll_s", d.poll_s),
        slow_strategy_s=getattr(trader, "slow_strategy_s", d.slow_strategy_s),
        hung_strategy_s=getattr(trader, "hung_strategy_s", d.hung_strategy_s),
        strategy_modules=tuple(getattr(trader, "strategy_modules", d.strategy_modules)))


@dataclass
class _Hosted:
    code: int
    spec: StrategySpec
    strategy: Any
    state: OwnState
    indexes: list[int | None]
    versions: list[int] = field(default_factory=list)
    changed: bool = True
    next_wake: float = 0.0
    seq: int = 0  # intents batches sent
    ack: int = 0  # the last batch the daemon has answered
    wait_until: float = 0.0


def worker_main(index: int, segment: str, inbox: Any, conn: Connection, busy: Any,
                settings: PoolSettings, parent_pid: int) -> None:
    """A worker process: runs its strategies until told to stop (or orphaned)."""
    from engine.book.reader import BookReader

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the daemon decides when workers stop
    load_modules(settings.strategy_modules)
    reader: BookReader | None = None
    hosted: dict[str, _Hosted] = {}
    conn.send(("ready", index, os.getpid()))
    next_beat = 0.0
    while True:
        while True:
            try:
                message = inbox.get_nowait()
            except queue.Empty:
                break
            kind = message[0]
            if kind == "stop":
                return
            if kind == "add":
                _, code, spec, ack, state = message
                hosted[spec.strategy_id] = _Hosted(code, spec, build(spec), state,
                                                   [None] * len(spec.books), ack=ack, seq=ack)
            elif kind == "remove":
                hosted.pop(message[1], None)
            elif kind == "state":
                h = hosted.get(message[1])
                if h is not None:
                    h.ack, h.state, h.changed = max(h.ack, message[2]), message[3], True
        now = time.monotonic()
        if now >= next_beat:
            if os.getppid() != parent_pid:
                return  # the daemon is gone
            conn.send(("beat", index, len(hosted)))
            next_beat = now + settings.heartbeat_s
        if reader is None:
            try:
                reader = BookReader.attach(segment)
            except FileNotFoundError:
                time.sleep(0.05)
                continue
        ran = False
        for h in list(hosted.values()):
            if h.seq > h.ack and now < h.wait_until:
                continue
            ran = _maybe_decide(h, reader, conn, busy, settings, now) or ran
        if not ran:
            time.sleep(settings.poll_s)


def _maybe_decide(h: _Hosted, reader: Any, conn: Connection, busy: Any,
                  settings: PoolSettings, now: float) -> bool:
    """Decide once if a watched book moved (or state changed, or it is time)."""
    for n, key in enumerate(h.spec.books):
        if h.indexes[n] is None:
            h.indexes[n] = reader.store.keys().get(key)
    versions = [reader.version(i) if i is not None else -1 for i in h.indexes]
    if versions == h.versions and not h.changed and now < h.next_wake:
        return False
    books = {}
    for key, i in zip(h.spec.books, h.indexes):
        if i is not None:
            try:
                books[key] = reader.read(i, settings.book_depth)  # the newest version only
            except Exception:  # noqa: BLE001, S112 - a torn read: next loop reads again
                continue
    h.versions = [books[k].version if k in books else -1 for k in h.spec.books]
    h.changed, h.next_wake = False, now + h.strategy.wake_s
    busy[BUSY_SINCE_NS] = time.monotonic_ns()
    busy[BUSY_CODE] = h.code
    try:
        intents = list(h.strategy.decide(make_view(h.spec, time.time_ns(), books, h.state)))
    except Exception:  # noqa: BLE001 - a strategy bug is reported, the worker lives on
        conn.send(("error", h.spec.strategy_id, traceback.format_exc(limit=8)))
        intents = []
    finally:
        busy[BUSY_CODE] = 0
        busy[DECISIONS] += 1
    if intents:
        own = books.get(h.spec.key)
        h.seq += 1
        h.wait_until = time.monotonic() + settings.ack_timeout_s
        conn.send(("intents", h.spec.strategy_id, h.seq, own.recv_ns if own else 0, intents))
    return True

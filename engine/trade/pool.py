"""The strategy worker pool: N spawned processes that attach the BookStore by
name, run their strategies on the latest version of each watched book, and
send intents back; the daemon side assigns strategies to workers, routes
intents to the slot manager and state back to the workers, restarts a crashed
worker (its strategies move at once), and moves strategies away from a worker
stuck in a slow one. Owns the processes and their pipes; decides no trades.
The worker processes' own loop is pool_worker.py.

 daemon (router thread)                          worker process (spawn) x N
   set_strategies ─ attach ─ ("add", spec) ──► inbox (mp.Queue) ─► hosted strategies
   ◄──────────── ("intents", sid, seq, ...) ── pipe ◄── loop: versions moved? (coalesced:
   sink.handle(intents) ─► executor               only the newest book is read)
   ("state", sid, ack, OwnState) ──────────────► ─► decide(view) ─► intents
   watchdog: exitcode set ─► restart + move | busy > slow_s ─► move the others away
             busy > hung_s ─► kill (counts as a crash) | crashes >= max ─► quarantine
"""

from __future__ import annotations

import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from loguru import logger

from engine.lifecycle import Health
from engine.strategies.base import Intent
from engine.trade.gate import TradingGate
from engine.trade.pool_worker import (
    BUSY_CODE,
    BUSY_SINCE_NS,
    DECISIONS,
    PoolSettings,
    pool_settings,
    worker_main,
)
from engine.trade.strategy import OwnState, StrategySpec, load_modules

__all__ = ["PoolSettings", "StrategyPool", "pool_settings"]  # settings live with the worker

log = logger.bind(component="strategy-pool")

# A strategy's last exception shows on /health this long. Longer keeps a rare
# failure visible; shorter lets health recover sooner once the cause is gone.
ERROR_SHOWN_S = 300.0


class IntentSink(Protocol):
    """The daemon side strategies act through (engine.trade.slots.SlotManager)."""

    def attach(self, spec: StrategySpec) -> None: ...

    def detach(self, strategy_id: str) -> None: ...

    def handle(self, strategy_id: str, intents: Iterable[Intent]) -> list[str]: ...

    def snapshot(self, strategy_id: str) -> OwnState: ...

    def listen(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(strategy_id)`` when a strategy's slots or orders change."""
        ...

    def unlisten(self, listener: Callable[[str], None]) -> None: ...


# --------------------------------------------------------------------- daemon


@dataclass
class _Worker:
    index: int
    incarnation: int
    process: Any
    inbox: Any
    conn: Connection
    busy: Any
    ready: bool = False
    strategies: set[str] = field(default_factory=set)
    stuck_on: str = ""  # strategy it was found stuck in (its others moved away)


class StrategyPool:
    """A lifecycle Component. ``set_strategies`` is the whole wanted set;
    ``notify(strategy_id)`` (a listener of the sink while the pool runs) pushes fresh state."""

    name = "strategy-pool"

    def __init__(self, segment: str, sink: IntentSink,
                 settings: PoolSettings | None = None, gate: TradingGate | None = None) -> None:
        self.segment = segment
        self.sink = sink
        self.gate = gate  # halts and breakers: strategies told, placements stopped here
        self.settings = settings or PoolSettings()
        assert self.settings.workers >= 1
        load_modules(self.settings.strategy_modules)
        self._ctx = mp.get_context("spawn")
        self._lock = threading.RLock()
        self._workers: list[_Worker] = []
        self._specs: dict[str, StrategySpec] = {}
        self._where: dict[str, int] = {}  # strategy -> worker index
        self._codes: dict[int, str] = {}
        self._next_code = 1
        self._acks: dict[str, int] = {}
        # Its own leaf lock: the sink calls notify() while holding its lock, and
        # the pool calls the sink while holding self._lock (order: pool, sink, dirty).
        self._dirty_lock = threading.Lock()
        self._dirty: set[str] = set()
        self._crashes: dict[str, list[float]] = {}
        self._quarantined: dict[str, str] = {}
        self._errors: dict[str, tuple[int, str, float]] = {}  # strategy -> count, last, when
        self._slow: dict[str, int] = {}
        self.restarts = 0
        self.decisions_routed = 0
        self.refusals = 0
        self.on_intents: Any = None  # (strategy_id, book_recv_ns, intents): bench/metrics hook
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._stop = threading.Event()
        self._router: threading.Thread | None = None
        self._incarnations = 0

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        for index in range(self.settings.workers):
            self._workers.append(self._spawn(index))
        deadline = time.monotonic() + self.settings.start_timeout_s
        while not all(w.ready for w in self._workers):
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop(2.0)
                raise RuntimeError(f"strategy workers not ready after "
                                   f"{self.settings.start_timeout_s}s")
            for conn in wait([w.conn for w in self._workers if not w.ready], left):
                self._receive(self._worker_of(conn))
        self._router = threading.Thread(target=self._route, name="strategy-router", daemon=True)
        self._router.start()
        self.sink.listen(self.notify)
        log.info("strategy pool started workers={} segment={}", len(self._workers), self.segment)

    def _spawn(self, index: int) -> _Worker:
        self._incarnations += 1
        inbox = self._ctx.Queue()
        receive, send = self._ctx.Pipe(duplex=False)
        busy = self._ctx.RawArray("q", 3)
        process = self._ctx.Process(
            target=worker_main, name=f"strategy-worker-{index}", daemon=True,
            args=(index, self.segment, inbox, send, busy, self.settings, os.getpid()))
        process.start()
        send.close()  # the child holds its end; EOF here means it died
        return _Worker(index, self._incarnations, process, inbox, receive, busy)

    def stop(self, timeout_s: float) -> None:
        self.sink.unlisten(self.notify)  # before the wake-up pipe closes
        self._stop.set()
        self._wake()
        if self._router is not None:
            self._router.join(timeout_s / 2)
        deadline = time.monotonic() + timeout_s / 2
        for w in self._workers:
            try:
                w.inbox.put(("stop",))
            except (OSError, ValueError):
                pass
        for w in self._workers:
            w.process.join(max(0.05, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join(1.0)
            w.inbox.close()
            w.inbox.cancel_join_thread()
            w.conn.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    # ----------------------------------------------------------- assignment

    def set_strategies(self, specs: Sequence[StrategySpec]) -> None:
        """Run exactly ``specs``: new ones are attached and placed on the least
        loaded worker, gone ones removed, changed ones restarted."""
        wanted = {s.strategy_id: s for s in specs}
        with self._lock:
            for sid in [s for s in self._specs if wanted.get(s) != self._specs[s]]:
                self._remove(sid)
            for sid, spec in wanted.items():
                if sid in self._specs or sid in self._quarantined:
                    continue
                try:
                    self.sink.attach(spec)
                except Exception as exc:  # one bad strategy never stops the others
                    log.exception("strategy not attached strategy={}", sid)
                    self._error(sid, f"attach failed: {exc}")
                    continue
                self._specs[sid] = spec
                self._codes[self._next_code] = sid
                self._next_code += 1
                self._place(sid)

    def _remove(self, sid: str) -> None:
        self._specs.pop(sid, None)
        index = self._where.pop(sid, None)
        if index is not None:
            worker = self._workers[index]
            worker.strategies.discard(sid)
            worker.inbox.put(("remove", sid))
        self._quarantined.pop(sid, None)
        self.sink.detach(sid)

    def _place(self, sid: str, avoid: int | None = None) -> None:
        """Put ``sid`` on the least loaded healthy worker (not ``avoid``)."""
        candidates = [w for w in self._workers if w.index != avoid and not w.stuck_on] or \
            [w for w in self._workers if w.index != avoid] or self._workers
        worker = min(candidates, key=lambda w: (len(w.strategies), w.index))
        code = next(c for c, s in self._codes.items() if s == sid)
        self._acks[sid] = 0
        self._where[sid] = worker.index
        worker.strategies.add(sid)
        worker.inbox.put(("add", code, self._specs[sid], 0, self.sink.snapshot(sid)))

    def notify(self, strategy_id: str) -> None:
        """A strategy's orders or slots changed: send its worker fresh state."""
        with self._dirty_lock:
            self._dirty.add(strategy_id)
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # a wake-up is already pending (or we are stopping)

    # ---------------------------------------------------------------- router

    def _route(self) -> None:
        while not self._stop.is_set():
            try:
                conns: list[Any] = [w.conn for w in self._workers]
                for ready in wait(conns + [self._wake_r], timeout=0.05):
                    if ready == self._wake_r:
                        os.read(self._wake_r, 4096)
                    else:
                        self._receive(self._worker_of(ready))
                if self.gate is not None:
                    self.gate.poll(list(self._specs.values()), self.notify)
                self._push_dirty()
                self._watch()
            except Exception:  # the router must outlive any one failure
                log.exception("strategy router pass failed")
                time.sleep(0.05)

    def _worker_of(self, conn: Any) -> _Worker:
        return next(w for w in self._workers if w.conn is conn)

    def _receive(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                self._dispatch(worker, worker.conn.recv())
        except (EOFError, OSError):
            pass  # died: the watchdog restarts it

    def _dispatch(self, worker: _Worker, message: tuple) -> None:
        kind = message[0]
        if kind == "ready":
            worker.ready = True
        elif kind == "intents":
            _, sid, seq, recv_ns, intents = message
            with self._lock:
                if self._where.get(sid) != worker.index or sid not in worker.strategies:
                    return  # moved away meanwhile: the new worker decides for it now
            if self.on_intents is not None:
                self.on_intents(sid, recv_ns, intents)
            spec = self._specs.get(sid)
            if self.gate is not None and spec is not None:
                intents = self.gate.filter(spec, intents)
            try:
                self.refusals += len(self.sink.handle(sid, intents))
            except Exception as exc:  # e.g. the task DB is away: the strategy
                log.exception("intents not carried out strategy={}", sid)  # decides again
                self._error(sid, f"intents not carried out: {exc}")
            # Hand the GIL to the executor now, while its job is fresh: state
            # pushes (pickling) can wait a moment, the order should not.
            time.sleep(0)
            self.decisions_routed += 1
            with self._lock:
                self._acks[sid] = max(self._acks.get(sid, 0), seq)
            self.notify(sid)  # the acknowledging state, even if nothing changed
        elif kind == "error":
            _, sid, text = message
            count = self._error(sid, text.strip().splitlines()[-1] if text.strip() else text)
            if count <= 3 or count % 100 == 0:
                log.error("strategy raised strategy={} count={}\n{}", sid, count, text)

    def _error(self, sid: str, text: str) -> int:
        count = self._errors.get(sid, (0, "", 0.0))[0] + 1
        self._errors[sid] = (count, text, time.monotonic())
        return count

    def _push_dirty(self) -> None:
        with self._dirty_lock:
            dirty, self._dirty = self._dirty, set()
        with self._lock:
            for sid in dirty:
                index = self._where.get(sid)
                if index is not None:
                    state = self.sink.snapshot(sid)
                    if self.gate is not None and sid in self._specs:
                        state = self.gate.mark(self._specs[sid], state)
                    self._workers[index].inbox.put(("state", sid, self._acks.get(sid, 0), state))

    # --------------------------------------------------------------- watchdog

    def _watch(self) -> None:
        with self._lock:
            for worker in list(self._workers):
                if worker.process.exitcode is not None:
                    self._restart(worker, f"exit code {worker.process.exitcode}")
                    continue
                code, since = worker.busy[BUSY_CODE], worker.busy[BUSY_SINCE_NS]
                busy_s = (time.monotonic_ns() - since) / 1e9 if code else 0.0
                sid = self._codes.get(code, "")
                if busy_s > self.settings.hung_strategy_s:
                    log.error("strategy hung, killing its worker strategy={} busy_s={:.1f} "
                              "worker={}", sid, busy_s, worker.index)
                    worker.process.kill()
                    worker.process.join(1.0)
                    self._restart(worker, f"hung in strategy {sid} for {busy_s:.1f}s")
                elif busy_s > self.settings.slow_strategy_s and not worker.stuck_on:
                    worker.stuck_on = sid
                    self._slow[sid] = self._slow.get(sid, 0) + 1
                    others = sorted(worker.strategies - {sid})
                    log.warning("slow strategy, moving the others away strategy={} busy_s={:.2f}"
                                " moved={}", sid, busy_s, others)
                    for other in others:
                        self._move(other, worker)
                elif not code and worker.stuck_on:
                    worker.stuck_on = ""

    def _move(self, sid: str, source: _Worker) -> None:
        source.strategies.discard(sid)
        try:
            source.inbox.put(("remove", sid))
        except (OSError, ValueError):
            pass
        self._place(sid, avoid=source.index)

    def _restart(self, dead: _Worker, why: str) -> None:
        self.restarts += 1
        now = time.monotonic()
        log.error("strategy worker died, restarting worker={} why={} strategies={}",
                  dead.index, why, sorted(dead.strategies))
        try:
            dead.conn.close()
            dead.inbox.close()
            dead.inbox.cancel_join_thread()
        except (OSError, ValueError):
            pass
        fresh = self._spawn(dead.index)
        self._workers[dead.index] = fresh
        for sid in sorted(dead.strategies):
            recent = [t for t in self._crashes.get(sid, []) if now - t < self.settings.crash_window_s]
            self._crashes[sid] = recent + [now]
            if len(self._crashes[sid]) >= self.settings.max_crashes:
                self._quarantined[sid] = f"on {len(self._crashes[sid])} crashed workers " \
                                         f"within {self.settings.crash_window_s:.0f}s ({why})"
                self._where.pop(sid, None)
                log.error("strategy quarantined strategy={} reason={}", sid,
                          self._quarantined[sid])
                continue
            self._where.pop(sid, None)
            self._place(sid, avoid=dead.index if len(self._workers) > 1 else None)

    # ------------------------------------------------------------------ views

    def running(self) -> dict[str, int]:
        """strategy -> worker index."""
        with self._lock:
            return dict(self._where)

    def worker_pids(self) -> list[int]:
        with self._lock:
            return [w.process.pid for w in self._workers]

    def health(self) -> list[Health]:
        out: list[Health] = []
        with self._lock:
            dead = [w.index for w in self._workers if not w.process.is_alive()]
            out.append(Health(self.name, not dead and self._router is not None and
                              self._router.is_alive(),
                              f"workers down: {dead}" if dead else
                              f"{len(self._workers)} workers, {len(self._where)} strategies"))
            for sid, reason in sorted(self._quarantined.items()):
                out.append(Health(f"strategy:{sid}", False, f"quarantined: {reason}"))
            for w in self._workers:
                if w.stuck_on:
                    out.append(Health(f"strategy:{w.stuck_on}", False,
                                      f"slow: one decision running for over "
                                      f"{self.settings.slow_strategy_s}s; others moved away"))
            now = time.monotonic()
            for sid, (count, last, when) in sorted(self._errors.items()):
                if sid in self._specs and now - when < ERROR_SHOWN_S:
                    out.append(Health(f"strategy:{sid}", False, f"raised {count} times: {last}"))
        return out

    def status(self) -> dict:
        with self._lock:
            return {"workers": [{"index": w.index, "pid": w.process.pid,
                                 "alive": w.process.is_alive(), "ready": w.ready,
                                 "strategies": sorted(w.strategies),
                                 "decisions": int(w.busy[DECISIONS]),
                                 "stuck_on": w.stuck_on or None} for w in self._workers],
                    "restarts": self.restarts, "decisions_routed": self.decisions_routed,
                    "refusals": self.refusals, "quarantined": dict(self._quarantined),
                    "slow": dict(self._slow),
                    "gate": self.gate.status() if self.gate is not None else None,
                    "errors": {s: c for s, (c, _, _) in self._errors.items()}}

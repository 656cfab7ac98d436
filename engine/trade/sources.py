"""Which strategies this daemon runs: those named in config
(``trader.strategies``) plus the TRADE rows it holds a lease on (claimed,
renewed and released like MONITORING leases, so a dead daemon's strategies
move to another one). Rebuilds the whole wanted set every cycle and hands it
to the pool; a row that cannot run (unknown strategy, bad params, a venue
this daemon does not trade) is reported on /health, never half-started.

  every cycle_s: config strategies ─┐
     TaskFetcher.trade_tasks() ─► tx: renew ours, claim up to capacity ─┤
     ─► rules (instruments) ─► make_spec (params validated) ─► pool.set_strategies
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from engine.lifecycle import Health
from engine.model_trade import trading_venue
from engine.store import leases
from engine.store.taskdb import TaskDb, TaskDbError
from engine.strategies.base import Rules
from engine.trade.strategy import ParamError, StrategySpec, make_spec

log = logger.bind(component="strategy-tasks")

# How often the wanted set is rebuilt and leases renewed. Shorter picks up a
# new TRADE row (or a dead daemon's) sooner; each cycle is two small transactions.
CYCLE_S = 2.0
# TRADE lease length: a dead daemon's strategies move after this. Shorter moves
# them sooner but loses them to a DB hiccup sooner; renewed every CYCLE_S.
LEASE_S = 30.0


@dataclass(frozen=True)
class ConfiguredStrategy:
    """One ``trader.strategies`` entry (engine/config.py's StrategyConfig)."""

    id: str  # letters first ("grid1"): TRADE ids are numbers, the two never meet
    strategy: str = "grid"
    exchange: str = "binance"
    market: str = "spot"
    pair: str = "BTC/USDT"
    params: dict[str, Any] = field(default_factory=dict)


class StrategySource:
    """A lifecycle Component (start after the slot manager and the pool)."""

    name = "strategy-tasks"

    def __init__(self, configured: Sequence[Any], apply: Callable[[list[StrategySpec]], None],
                 rules_for: Callable[[str, str], Rules], daemon_id: str,
                 trade_tasks: Callable[[], list] | None = None, db: TaskDb | None = None,
                 capacity: int = 100, cycle_s: float = CYCLE_S, lease_s: float = LEASE_S,
                 ensure_book: Callable[[str, str, str], None] | None = None) -> None:
        """``rules_for(venue, pair)``: the instrument's rules (may load them);
        ``trade_tasks``: TaskFetcher.trade_tasks, with ``db`` for the leases
        (None: config strategies only); ``ensure_book(venue, market, pair)``:
        have the feed carry that book."""
        self.configured = list(configured)
        self.apply = apply
        self.rules_for = rules_for
        self.daemon_id = daemon_id
        self.trade_tasks = trade_tasks
        self.db = db
        self.capacity = capacity
        self.cycle_s = cycle_s
        self.lease_ms = int(lease_s * 1000)
        self.ensure_book = ensure_book
        self.bad: dict[str, str] = {}  # strategy id -> why it does not run
        self.running: list[str] = []
        self._error = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.cycle()  # config strategies run from the first second
        self._thread = threading.Thread(target=self._run, name="strategy-tasks", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.db is not None:
            try:
                if self.db.connected:
                    leases.release_all(self.db, self.daemon_id, leases.TRADE)
            except TaskDbError as e:
                log.warning("TRADE leases not released at stop, they lapse error={}", e)
            self.db.close()

    def _run(self) -> None:
        while not self._stop.wait(self.cycle_s):
            try:
                self.cycle()
            except Exception as e:  # the loop outlives any one failure
                self._error = f"{type(e).__name__}: {e}"
                log.exception("strategy task cycle failed")

    def cycle(self) -> None:
        """Rebuild the wanted set and hand it to the pool."""
        wanted: list[tuple[str, str, str, str, str, dict]] = [
            (c.id, c.strategy, c.exchange, c.market, c.pair, dict(c.params))
            for c in self.configured]
        if self.trade_tasks is not None and self.db is not None:
            wanted += [(str(t.id), t.strategy, t.exchange, t.market, t.pair, dict(t.params))
                       for t in self._leased()]
        specs: list[StrategySpec] = []
        bad: dict[str, str] = {}
        for sid, name, venue, market, pair, params in wanted:
            try:
                if market not in ("spot", "futures"):
                    raise ParamError(f"market {market!r}: expected spot or futures")
                if market == "spot" and params.get("direction", "long") != "long":
                    raise ParamError(f"direction {params.get('direction')!r} needs a market "
                                     f"that can go short (futures)")
                if self.ensure_book is not None:
                    self.ensure_book(venue, market, pair)
                specs.append(make_spec(sid, name, venue, market, pair, params,
                                       self.rules_for(trading_venue(venue, market), pair)))
            except Exception as e:  # noqa: BLE001 - reported per strategy, others run
                bad[sid] = f"{type(e).__name__}: {e}"
        for sid, reason in bad.items():
            if self.bad.get(sid) != reason:
                log.error("strategy not run strategy={} reason={}", sid, reason)
        self.bad = bad
        self.apply(specs)
        self.running = [s.strategy_id for s in specs]
        self._error = ""

    def _leased(self) -> list:
        """The TRADE rows this daemon holds now (renewing and claiming)."""
        assert self.db is not None and self.trade_tasks is not None
        rows = {t.id: t for t in self.trade_tasks()}
        kind = leases.TRADE
        with self.db.transaction():
            mine = leases.renew(self.db, kind, self.daemon_id, self.lease_ms)
            keep = sorted((i for i in mine if i in rows), key=lambda i: (-rows[i].priority, i))
            keep = keep[:self.capacity]
            leases.release(self.db, kind, self.daemon_id, mine - set(keep))
        room = self.capacity - len(keep)
        if room > 0:
            candidates = [t.id for t in rows.values() if t.id not in keep]  # priority order
            with self.db.transaction():
                keep += leases.claim(self.db, kind, self.daemon_id, candidates, room,
                                     self.lease_ms)
        return [rows[i] for i in keep]

    def health(self) -> list[Health]:
        out = [Health(f"strategy:{sid}", False, f"not running: {why}")
               for sid, why in sorted(self.bad.items())]
        if self._error:
            out.append(Health(self.name, False, self._error))
        return out or [Health(self.name, True, f"{len(self.running)} strategies")]

    def status(self) -> dict:
        return {"running": self.running, "not_running": dict(self.bad)}


def rules_from(service: Any) -> Callable[[str, str], Rules]:
    """``rules_for`` from a started TraderService: its instrument rules,
    loading a pair's from the venue the first time (``ensure_pair``)."""
    def rules_for(venue: str, pair: str) -> Rules:
        if service.instruments.find(venue, pair) is None:
            service.ensure_pair(venue, pair)
        i = service.instruments.get(venue, pair)
        return Rules(i.tick_size, i.step_size, i.min_qty, i.min_notional)
    return rules_for

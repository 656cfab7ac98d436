"""While trading is halted or a breaker is open for a strategy's pair, its
new orders stop before they become intents: the strategy is told (its state
carries the reason, so it can stop emitting), and the refusal is counted and
logged once per episode, not once per attempt. Cancels always pass.

  router: intents ─► gate.filter ─► (Place/Amend dropped while blocked) ─► slots
          every pass ─► gate.poll ─► strategies whose blocked reason changed ─► notify
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from loguru import logger

from engine.strategies.base import Cancel, Intent
from engine.trade.strategy import OwnState, StrategySpec

log = logger.bind(component="trader")

# How often the router asks whether a blocked reason changed (a halt, a
# resume, a breaker that cooled down): the delay before strategies hear of it.
POLL_INTERVAL_S = 0.2


class TradingGate:
    """``blocked(account, pair)`` -> the reason new orders stop, or None
    (RiskGuard.breaker.blocked: halt, error burst, stale book, price jump,
    daily loss). Thread-safe: the router thread filters and polls."""

    def __init__(self, blocked: Callable[[str, str], str | None],
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._blocked = blocked
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._episodes: dict[str, str] = {}  # strategy -> reason of its current blocked episode
        self._told: dict[str, str] = {}  # strategy -> reason its worker last saw ("" = free)
        self._polled = 0.0
        self.refused_episodes = 0  # one per strategy per blocked episode (logged once)
        self.dropped = 0  # every Place/Amend dropped while blocked

    def reason(self, spec: StrategySpec) -> str:
        return self._blocked(spec.account, spec.pair) or ""

    def filter(self, spec: StrategySpec, intents: Sequence[Intent]) -> Sequence[Intent]:
        """The intents that may go on: all of them, or only the cancels."""
        why = self.reason(spec)
        sid = spec.strategy_id
        if not why:
            with self._lock:
                self._episodes.pop(sid, None)
            return intents
        kept = [i for i in intents if isinstance(i, Cancel)]
        dropped = len(intents) - len(kept)
        if not dropped:
            return intents
        with self._lock:
            self.dropped += dropped
            first = self._episodes.get(sid) != why
            if first:
                self._episodes[sid] = why
                self.refused_episodes += 1
        if first:
            log.warning("strategy orders stopped strategy={} reason={} (told the strategy; "
                        "further attempts are counted, not logged)", sid, why)
        return kept

    def mark(self, spec: StrategySpec, state: OwnState) -> OwnState:
        """The state a worker gets, carrying why new orders stop ('' if they don't)."""
        why = self.reason(spec)
        with self._lock:
            self._told[spec.strategy_id] = why
        return dataclasses.replace(state, halted=why) if why != state.halted else state

    def poll(self, specs: Iterable[StrategySpec], notify: Callable[[str], None]) -> None:
        """Tell the strategies whose reason changed since their last state."""
        now = self._monotonic()
        if now - self._polled < POLL_INTERVAL_S:
            return
        self._polled = now
        for spec in specs:
            why = self.reason(spec)
            with self._lock:
                changed = self._told.get(spec.strategy_id, "") != why
                if not why:
                    self._episodes.pop(spec.strategy_id, None)
            if changed:
                notify(spec.strategy_id)

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {"blocked": {sid: why for sid, why in self._told.items() if why},
                    "refused_episodes": self.refused_episodes, "dropped_intents": self.dropped}

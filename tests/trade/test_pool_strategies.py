"""Strategies for the pool tests (no tests here): each registers itself, and
the pool's workers import this module (PoolSettings.strategy_modules), the
way a user's strategy module outside engine/strategies would be loaded.

Each emits one Place whose price is the best bid it saw, so the recording
sink learns which book version every decision read."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from engine.model import Side
from engine.strategies.base import Intent, Place, Strategy, View
from engine.trade.strategy import STRATEGIES, register


@dataclass(frozen=True)
class EchoParams:
    sleep_s: float = 0.0  # every decision takes this long
    slow_at: float = 0.0  # a bid equal to this makes one decision take slow_s
    slow_s: float = 0.0
    crash_at: float = 0.0  # a bid equal to this kills the worker process
    raise_at: float = 0.0  # a bid equal to this raises


class Echo(Strategy):
    name = "test_echo"
    Params = EchoParams
    wake_s = 3600.0  # decide on book changes only

    def __init__(self, params: EchoParams) -> None:
        super().__init__(params)
        self.params: EchoParams = params
        self.last = -1.0

    def decide(self, view: View) -> Sequence[Intent]:
        book = view.book
        if book is None or not book.synced or book.best_bid == self.last:
            return []
        bid = self.last = book.best_bid
        p = self.params
        if p.crash_at and bid == p.crash_at:
            os._exit(3)
        if p.raise_at and bid == p.raise_at:
            raise ValueError(f"bid {bid} is cursed")
        time.sleep(p.slow_s if p.slow_at and bid == p.slow_at else p.sleep_s)
        return [Place(Side.BUY, Decimal(repr(bid)), Decimal(1))]


if STRATEGIES.get(Echo.name) is not Echo:
    STRATEGIES.pop(Echo.name, None)  # a re-import under another module name
    register(Echo)

"""The API's views of the trade side and the task database
(engine.api.views.TradingView / TasksView), built over the running objects
by app.py. The only place that knows both the API's shapes and where the
trader keeps its state: when the trader changes, this file follows."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from engine.api.views import ChangeListener, fill_dict, order_dict
from engine.store import leases


class TraderView:
    """engine.api.views.TradingView over the trader (wiring only: the API reads
    the trade side through this and nothing else)."""

    RECENT = 1000  # finished orders kept for GET /orders?status=recent
    FILLS_LOOKBACK_MS = 7 * 86400 * 1000  # /fills without since_ms looks back this far

    def __init__(self, trader: Any, slots: Any, pool: Any) -> None:
        """``trader``: the started TraderService; ``slots``: its SlotManager;
        ``pool``: the StrategyPool (None where the role has none)."""
        self.trader, self.slots, self.pool = trader, slots, pool
        self._recent: dict[tuple[str, str], dict] = {}  # insertion order = change order
        self._listeners: list[ChangeListener] = []
        self.trader.store.listeners.append(self._on_change)

    def _on_change(self, record: Any, fills: list) -> None:
        order = order_dict(record)
        key = (record.venue, record.client_order_id)
        self._recent.pop(key, None)
        self._recent[key] = order
        while len(self._recent) > self.RECENT:
            self._recent.pop(next(iter(self._recent)))
        for listener in list(self._listeners):
            listener("order", order)
            for fill in fills:
                listener("fill", fill_dict(fill))

    def subscribe(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def orders(self, open_only: bool, venue: str | None, pair: str | None,
               strategy: str | None, limit: int) -> list[dict]:
        rows = {(r.venue, r.client_order_id): order_dict(r)
                for r in self.trader.store.live_orders(venue)}
        if not open_only:
            rows = {**dict(list(self._recent.items())), **rows}
        out = [o for o in rows.values() if (venue is None or o["venue"] == venue) and
               (pair is None or o["pair"] == pair) and
               (strategy is None or o["strategy_id"] == strategy)]
        return sorted(out, key=lambda o: -o["updated_ms"])[:limit]

    def fills(self, venue: str | None, pair: str | None, since_ms: int, limit: int) -> list[dict]:
        since = since_ms or time.time_ns() // 1_000_000 - self.FILLS_LOOKBACK_MS
        found = [fill_dict(f) for f in self.trader.store.fills(venue, since)
                 if pair is None or f.pair == pair]
        return found[::-1][:limit]

    def positions(self) -> list[dict]:
        return [{"venue": k.split(":", 1)[0], "pair": k.split(":", 1)[1], **v}
                for k, v in self.trader.positions.status()["positions"].items()]

    def balances(self) -> list[dict]:
        return [{"venue": k.split(":", 1)[0], "asset": k.split(":", 1)[1], **v}
                for k, v in self.trader.positions.status()["balances"].items()]

    def pnl(self) -> dict:
        rows = self.trader.positions.status()["positions"].values()
        realized = sum((Decimal(p["realized_pnl"]) for p in rows), Decimal(0))
        unrealized = sum((Decimal(p["unrealized_pnl"]) for p in rows), Decimal(0))
        return {"realized": str(realized), "unrealized": str(unrealized),
                "total": str(realized + unrealized), "time_ms": time.time_ns() // 1_000_000}

    def strategies(self) -> list[dict]:
        slots, pool = self.slots, self.pool
        specs = dict(getattr(pool, "_specs", {}))  # the pool's running specs
        state = slots.status() if slots is not None else {}
        out = []
        for sid, spec in sorted(specs.items()):
            levels = [{"slot_id": x.slot_id, "state": x.state.value,
                       "side": x.entry_side.value, "entry_price": str(x.entry_price),
                       "exit_price": str(x.exit_price), "quantity": str(x.quantity)}
                      for x in (slots.slots(sid) if slots is not None else [])]
            out.append({"id": sid, "strategy": spec.name, "venue": spec.venue,
                        "market": spec.market, "pair": spec.pair, "params": dict(spec.params),
                        "state": state.get(sid, {}), "levels": levels})
        return out

    def halted(self) -> bool:
        return bool(self.trader.risk.halted)

    def halt(self, reason: str) -> dict:
        return self.trader.halt(reason)

    def resume(self) -> dict:
        return self.trader.resume()


@dataclass
class TasksFromDb:
    """engine.api.views.TasksView over the task fetcher and the lease table."""

    fetcher: Any  # engine.store.tasks.TaskFetcher
    daemon_id: str

    def tasks(self) -> dict:
        status = self.fetcher.status()
        try:
            held = {(x.kind, x.task_id): x for x in leases.leases(self.fetcher.db)}
        except Exception as e:  # noqa: BLE001 - the DB may be down; the tasks still show
            held, status["error"] = {}, f"leases unreadable: {e}"

        def lease(kind: str, task_id: int) -> dict:
            x = held.get((kind, task_id))
            return {"lease_holder": x.daemon_id if x else None,
                    "lease_expires_ms": x.expires_ms if x else None}
        return {"daemon_id": self.daemon_id,
                "monitor": [t | lease(leases.MONITORING, t["id"]) for t in status["tasks"]],
                "trade": [{"id": t.id, "exchange": t.exchange, "market": t.market,
                           "pair": t.pair, "strategy": t.strategy, "params": dict(t.params),
                           "priority": t.priority} | lease(leases.TRADE, t.id)
                          for t in self.fetcher.trade_tasks()],
                "leases": [dataclasses.asdict(x) for x in held.values()],
                "error": status["error"]}

"""Pre-trade limits and the circuit breaker. Decides whether a new order may
leave and says why not; never cancels or sends anything itself (the trader
service does, e.g. cancel-all on a halt). Cancels are never blocked.

  check_place(order) ─► breaker trips (halt, error burst, book stale/resyncing,
                        price jump) ─► open orders ─► notional ─► position ─► daily loss
  trips and their reasons ─► health() (/health) and status()
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from engine.clock import SYSTEM, Clock
from engine.lifecycle import Health
from engine.model import Side
from engine.trade.actions import PlaceOrder
from engine.trade.positions import PositionBook
from engine.trade.settings import RiskConfig

ALL = "*"  # scope of a trip that stops every venue


@dataclass(frozen=True)
class Trip:
    reason: str
    until: float | None  # monotonic seconds; None: until cleared


@dataclass(frozen=True)
class BookState:
    synced: bool
    recv_ns: int  # when the book last changed (our clock)
    mid: float


class CircuitBreaker:
    """Named trips per scope ("*", "venue", "venue:pair"); thread-safe."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._lock = threading.Lock()
        self._trips: dict[tuple[str, str], Trip] = {}  # (scope, kind) -> trip
        self._monotonic = monotonic
        self.trip_count = 0

    def trip(self, scope: str, kind: str, reason: str, for_s: float | None = None) -> None:
        with self._lock:
            until = None if for_s is None else self._monotonic() + for_s
            if (scope, kind) not in self._trips:
                self.trip_count += 1
            self._trips[(scope, kind)] = Trip(reason, until)

    def clear(self, scope: str, kind: str) -> None:
        with self._lock:
            self._trips.pop((scope, kind), None)

    def active(self) -> dict[str, str]:
        """"scope/kind" -> reason for every trip in force."""
        with self._lock:
            now = self._monotonic()
            for key in [k for k, t in self._trips.items() if t.until is not None and t.until <= now]:
                del self._trips[key]
            return {f"{scope}/{kind}": t.reason for (scope, kind), t in self._trips.items()}

    def blocked(self, venue: str, pair: str) -> str | None:
        """The reason new orders on ``pair`` are stopped (the widest scope first)."""
        active = self.active()
        for scope in (ALL, venue, f"{venue}:{pair}"):
            for name, reason in active.items():
                if name.rsplit("/", 1)[0] == scope:
                    return reason
        return None


class RiskGuard:
    def __init__(self, config: RiskConfig, positions: PositionBook,
                 open_orders: Callable[[str], list], live_count: Callable[[str], int], clock: Clock = SYSTEM,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.positions = positions
        self.open_orders = open_orders  # venue -> live OrderRecords
        self.live_count = live_count  # venue -> how many (cheap)
        self.clock = clock
        self.monotonic = monotonic
        self.breaker = CircuitBreaker(monotonic)
        self._errors: deque[float] = deque()
        self._prices: dict[tuple[str, str], deque[tuple[float, float]]] = {}
        self._lock = threading.Lock()
        self.refused: dict[str, int] = {}  # limit name -> orders refused

    # ------------------------------------------------------------- inputs

    def record_send(self, venue: str, ok: bool, reason: str = "") -> None:
        """Every send's outcome: a burst of failures trips the breaker."""
        if ok:
            return
        with self._lock:
            now = self.monotonic()
            self._errors.append(now)
            while self._errors and self._errors[0] < now - self.config.error_window_s:
                self._errors.popleft()
            burst = len(self._errors) >= self.config.error_burst
        if burst:
            self.breaker.trip(venue, "error_burst",
                              f"{len(self._errors)} failed sends within "
                              f"{self.config.error_window_s:g}s (last: {reason})",
                              self.config.cooldown_s)

    def on_book(self, venue: str, pair: str, state: BookState | None) -> None:
        """A look at the pair's book (the service samples it): stale, resyncing
        or a jump beyond price_jump_pct within price_jump_window_s trips it."""
        scope = f"{venue}:{pair}"
        now_ns = self.clock.now_ns()
        if state is None or not state.synced:
            self.breaker.trip(scope, "book", f"book {scope} is "
                              f"{'missing' if state is None else 'resyncing'}")
            return
        age_s = (now_ns - state.recv_ns) / 1e9
        if age_s > self.config.book_stale_s:
            self.breaker.trip(scope, "book", f"book {scope} stale for {age_s:.1f}s")
            return
        self.breaker.clear(scope, "book")
        if self.config.price_jump_pct <= 0 or not state.mid == state.mid:  # NaN: one-sided book
            return
        now = self.monotonic()
        with self._lock:
            samples = self._prices.setdefault((venue, pair), deque())
            samples.append((now, state.mid))
            while samples and samples[0][0] < now - self.config.price_jump_window_s:
                samples.popleft()
            low = min(p for _, p in samples)
            high = max(p for _, p in samples)
        move_pct = (high - low) / low * 100 if low > 0 else 0.0
        if move_pct > self.config.price_jump_pct:
            self.breaker.trip(scope, "price_jump", f"{scope} moved {move_pct:.2f}% within "
                              f"{self.config.price_jump_window_s:g}s (limit "
                              f"{self.config.price_jump_pct:g}%)", self.config.cooldown_s)

    def halt(self, reason: str) -> None:
        self.breaker.trip(ALL, "halt", reason)

    def resume(self) -> None:
        self.breaker.clear(ALL, "halt")

    @property
    def halted(self) -> bool:
        return any(name.startswith(f"{ALL}/halt") for name in self.breaker.active())

    # -------------------------------------------------------------- check

    def check_place(self, order: PlaceOrder) -> str | None:
        """None if ``order`` may leave; else the reason (logged and reported)."""
        blocked = self.breaker.blocked(order.venue, order.pair)
        if blocked:
            return self._refuse("breaker", f"circuit breaker: {blocked}")
        c = self.config
        if self.live_count(order.venue) >= c.max_open_orders:
            return self._refuse("max_open_orders", f"max_open_orders {c.max_open_orders} reached")
        if c.max_order_notional and order.notional > Decimal(c.max_order_notional):
            return self._refuse("max_order_notional", f"notional {order.notional} above "
                                f"max_order_notional {c.max_order_notional}")
        limit = c.max_position.get(f"{order.venue}:{order.pair}", c.max_position_default)
        if limit:
            position = self.positions.position(order.venue, order.pair).quantity
            live = self.open_orders(order.venue)
            same_side = sum((Decimal(r.quantity) - Decimal(r.filled) for r in live
                             if r.pair == order.pair and r.side == order.side), Decimal(0))
            sign = 1 if order.side == Side.BUY else -1
            worst = position + sign * (same_side + order.quantity)
            if abs(worst) > Decimal(limit) and abs(worst) > abs(position):
                return self._refuse("max_position", f"position could reach {worst} "
                                    f"(limit {limit}) on {order.pair}")
        if c.max_daily_loss:
            pnl = self.positions.daily_pnl(self.clock.now_ns())
            if pnl < -Decimal(c.max_daily_loss):
                now_s = self.clock.now_ns() / 1e9
                until_midnight = 86_400 - now_s % 86_400  # the loss limit is per UTC day
                self.breaker.trip(ALL, "daily_loss", f"daily PnL {pnl} below "
                                  f"-{c.max_daily_loss}", until_midnight)
                return self._refuse("max_daily_loss", f"daily loss limit: PnL {pnl}")
        return None

    def _refuse(self, limit: str, reason: str) -> str:
        with self._lock:
            self.refused[limit] = self.refused.get(limit, 0) + 1
        return f"risk: {reason}"

    # -------------------------------------------------------------- views

    def health(self) -> list[Health]:
        trips = self.breaker.active()
        if not trips:
            return [Health("risk", True, "")]
        return [Health("risk", False, "; ".join(f"{k}: {v}" for k, v in sorted(trips.items())))]

    def status(self) -> dict:
        return {"trips": self.breaker.active(), "refused": dict(self.refused),
                "halted": self.halted}

"""The trader's Prometheus metrics (docs/metrics.md lists each one).

Counters are fed by the executor's listeners (results, committed fills, the
wire hook); gauges are read from the trader's own state at scrape time, so
nothing here runs on a timer and a scrape never blocks order flow for long
(each read takes the component's own lock once). Labels are bounded: venue,
market, pair, strategy, path, outcome, reason class; never an order id or a
price.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from loguru import logger
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

log = logger.bind(component="trader-metrics")

# Decision-to-wire buckets (seconds): the executor's share is sub-millisecond
# when idle, a queued burst waits for order tokens (up to seconds).
WIRE_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                2.5, 5.0, 10.0)

# Reason classes of a rejection: the label stays bounded whatever a venue says.
REASON_CLASSES = ("post_only", "balance", "filter", "rate_limit", "risk", "auth", "unknown_order",
                  "venue")


def reason_class(code: int, reason: str) -> str:
    """A rejection's class from its code and text (venue-neutral keywords)."""
    text = reason.lower()
    if text.startswith("risk:") or text.startswith("halted") or "breaker" in text:
        return "risk"
    if "immediately match" in text or "post only" in text or "post-only" in text \
            or "as maker" in text or code == -5022:
        return "post_only"
    if "balance" in text or "insufficient" in text or "margin" in text:
        return "balance"
    if "rate" in text or "too many" in text or code in (-1003, -1015, 429):
        return "rate_limit"
    if "signature" in text or "api-key" in text or "api key" in text or code in (-1022, -2014, -2015):
        return "auth"
    if "unknown order" in text or "does not exist" in text or code in (-2011, -2013):
        return "unknown_order"
    if "filter" in text or "tick" in text or "lot" in text or "notional" in text \
            or "precision" in text or text.startswith("local:"):
        return "filter"
    return "venue"


def _decimal(value: Any) -> float:
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError, TypeError):
        return float("nan")


class TraderMetrics:
    """A lifecycle component placed right after the TraderService: its
    ``start`` attaches to the (then started) executor and registers the state
    collector. ``slots`` gives the slot manager's status."""

    name = "trader-metrics"

    def __init__(self, registry: CollectorRegistry, trader: Any = None,
                 slots: Callable[[], dict] | None = None) -> None:
        self.registry = registry
        self.trader = trader
        self.slots = slots
        self.orders = Counter(
            "engine_trader_orders", "Order actions settled, by outcome (accepted / rejected / "
            "unknown) and rejection reason class",
            ("venue", "market", "kind", "path", "outcome", "reason"), registry=registry)
        self.fallbacks = Counter(
            "engine_trader_post_only_fallbacks", "Post-only rejections answered by the "
            "configured fallback", ("venue", "market", "fallback"), registry=registry)
        self.fills = Counter("engine_trader_fills", "Fills of our orders committed",
                             ("venue", "market", "side", "liquidity"), registry=registry)
        self.traded = Counter("engine_trader_traded_quote", "Quote value traded (price x "
                              "quantity of our fills)", ("venue", "market"), registry=registry)
        self.fees = Counter("engine_trader_fees", "Fees paid on our fills, in the fee asset",
                            ("venue", "market", "asset"), registry=registry)
        self.wire = Histogram(
            "engine_trader_decision_to_wire_seconds", "From the executor taking an action to "
            "its request being written to the venue", ("venue", "path"), buckets=WIRE_BUCKETS,
            registry=registry)
        self.listener_errors = Counter(
            "engine_trader_metrics_errors", "Metric updates that failed (logged)", ("where",),
            registry=registry)
        self._state: _StateCollector | None = None

    # ------------------------------------------------------------ feeding

    def on_result(self, result: Any) -> None:
        """Executor result listener: one settled action."""
        try:
            action = result.action
            order = getattr(action, "replacement", action)
            venue, market = action.venue, _value(getattr(order, "market", ""))
            kind = type(action).__name__.replace("Order", "").lower() or "place"
            outcome = _value(result.outcome)
            outcome = {"acknowledged": "accepted"}.get(outcome, outcome)
            reason = reason_class(result.code, result.reason) if outcome == "rejected" else ""
            path = result.path or "none"  # "none": refused before any send
            self.orders.labels(venue, market, kind, path, outcome, reason).inc()
            if result.fallback:
                self.fallbacks.labels(venue, market, result.fallback).inc()
        except Exception:  # noqa: BLE001 - metrics never stop order flow; counted
            self._failed("on_result")

    def on_update(self, record: Any, fills: list[Any]) -> None:
        """Order-store listener: committed fills (each exactly once)."""
        for fill in fills:
            try:
                market = _value(fill.market)
                self.fills.labels(fill.venue, market, _value(fill.side),
                                  "maker" if fill.is_maker else "taker").inc()
                self.traded.labels(fill.venue, market).inc(
                    abs(_decimal(fill.price) * _decimal(fill.quantity)))
                fee = _decimal(fill.fee)
                if fee == fee and fee > 0:
                    self.fees.labels(fill.venue, market, fill.fee_asset or "?").inc(fee)
            except Exception:  # noqa: BLE001
                self._failed("on_update")

    def on_wire(self, venue: str, path: str, seconds: float) -> None:
        try:
            self.wire.labels(venue, path).observe(max(0.0, seconds))
        except Exception:  # noqa: BLE001
            self._failed("on_wire")

    def _failed(self, where: str) -> None:
        self.listener_errors.labels(where).inc()
        log.exception("trader metric update failed where={}", where)

    # ---------------------------------------------------------- lifecycle

    def start(self) -> None:
        if self.trader is not None:
            self.attach(self.trader, self.slots)

    def stop(self, timeout_s: float) -> None:
        """Nothing runs here; the collectors stay readable until exit."""

    def health(self) -> list[Any]:
        return []

    def status(self) -> dict:
        errors = sum(sample.value for metric in self.listener_errors.collect()
                     for sample in metric.samples if sample.name.endswith("_total"))
        return {"attached": self._state is not None, "update_errors": int(errors)}

    # ---------------------------------------------------------- attaching

    def attach(self, trader: Any, slots: Callable[[], dict] | None = None) -> None:
        """Listen to ``trader``'s executor and read its state at scrape time.
        ``slots``: the slot manager's status (strategy -> slots, cycles)."""
        executor = trader.executor
        if executor is not None:
            executor.on_result(self.on_result)
            executor.on_update(self.on_update)
            add_wire = getattr(executor, "add_wire_listener", None)
            if add_wire is not None:
                add_wire(self.on_wire)
        if self._state is None:
            self._state = _StateCollector(trader, slots)
            self.registry.register(self._state)


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


class _StateCollector:
    """Gauges read from the trader at scrape time."""

    def __init__(self, trader: Any, slots: Callable[[], dict] | None) -> None:
        self.trader = trader
        self.slots = slots

    def describe(self) -> list[Metric]:
        return []  # families vary with state; nothing to pre-declare

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._collect()
        except Exception:  # a scrape must not fail whole; logged
            log.exception("trader state metrics failed")

    def _collect(self) -> Iterator[Metric]:
        t = self.trader
        executor = t.executor
        queue = GaugeMetricFamily("engine_trader_executor_queue_depth",
                                  "Actions waiting in the executor")
        queue.add_metric([], executor.queued() if executor is not None else 0)
        yield queue
        yield from self._rate_limits(executor)
        yield from self._risk(t)
        yield from self._positions(t)
        yield from self._orders(t)
        yield from self._streams(t)
        yield from self._reconcile(t)
        if self.slots is not None:
            yield from self._slots(self.slots())

    def _rate_limits(self, executor: Any) -> Iterator[Metric]:
        used = GaugeMetricFamily("engine_trader_rate_limit_used", "Rate-limit budget used in the "
                                 "current window, by limit", labels=("venue", "limit"))
        cap = GaugeMetricFamily("engine_trader_rate_limit_limit", "Rate-limit budget of the "
                                "window, by limit", labels=("venue", "limit"))
        if executor is not None:
            for venue, rate in getattr(executor, "rates", {}).items():
                now = time.monotonic()
                window = getattr(rate, "window_used", None)
                used.add_metric([venue, "orders_1s"],
                                window(now) if callable(window) else 0)
                cap.add_metric([venue, "orders_1s"], rate.window_cap)
            for venue, session in getattr(executor, "sessions", {}).items():
                # the venue's own count (usage header) against our share of its limit
                used.add_metric([venue, "rest_weight_1m"], getattr(session, "used_weight", 0))
                limiter = getattr(session, "limiter", None)
                budget = getattr(limiter, "budget", None)
                if callable(budget):
                    cap.add_metric([venue, "rest_weight_1m"], budget(time.monotonic()))
        yield used
        yield cap

    def _risk(self, t: Any) -> Iterator[Metric]:
        active = t.risk.breaker.active()
        trips = GaugeMetricFamily("engine_trader_breaker_trips", "Circuit-breaker trips in force "
                                  "(0: trading allowed everywhere)")
        trips.add_metric([], len(active))
        yield trips
        breaker = GaugeMetricFamily("engine_trader_breaker_open", "1 for each circuit-breaker "
                                    "trip in force, by scope and reason kind",
                                    labels=("scope", "kind"))
        for key in active:
            scope, _, kind = key.rpartition("/")
            breaker.add_metric([scope, kind], 1)
        yield breaker
        halted = GaugeMetricFamily("engine_trader_halted", "1 while trading is halted")
        halted.add_metric([], 1 if t.risk.halted else 0)
        yield halted

    def _positions(self, t: Any) -> Iterator[Metric]:
        status = t.positions.status().get("positions", {})
        families = {
            "quantity": GaugeMetricFamily("engine_trader_position_quantity", "Signed position "
                                          "size in the base asset", labels=("venue", "pair")),
            "realized_pnl": GaugeMetricFamily("engine_trader_realized_pnl", "Realized PnL in "
                                              "the quote asset (fees and funding included)",
                                              labels=("venue", "pair")),
            "unrealized_pnl": GaugeMetricFamily("engine_trader_unrealized_pnl", "Unrealized PnL "
                                                "at the last mark, quote asset",
                                                labels=("venue", "pair")),
            "funding": GaugeMetricFamily("engine_trader_funding", "Funding paid (negative) or "
                                         "received on perpetuals, quote asset",
                                         labels=("venue", "pair")),
        }
        entry = GaugeMetricFamily("engine_trader_entry_price", "Average entry price of the "
                                  "position (quote per base)", labels=("venue", "pair"))
        liquidations = CounterMetricFamily("engine_trader_liquidations", "Liquidation fills of "
                                           "ours seen on perpetuals", labels=("venue", "pair"))
        liquidation_price = GaugeMetricFamily(
            "engine_trader_liquidation_price", "The venue's liquidation price of the position, "
            "per leg (BOTH in one-way mode, LONG/SHORT in hedge mode)",
            labels=("venue", "pair", "leg"))
        for key, position in status.items():
            venue, _, pair = key.partition(":")
            for field, family in families.items():
                value = position.get(field, position.get(f"{field}_quote", "0"))
                family.add_metric([venue, pair], _decimal(value if value is not None else 0))
            entry.add_metric([venue, pair], _decimal(position.get("average_price", 0)))
            liquidations.add_metric([venue, pair], float(position.get("liquidations", 0) or 0))
            for leg, report in (position.get("venue") or {}).items():
                price = report.get("liquidation_price")
                if price not in (None, ""):
                    liquidation_price.add_metric([venue, pair, str(leg)], _decimal(price))
        yield from families.values()
        yield entry
        yield liquidations
        yield liquidation_price

    def _orders(self, t: Any) -> Iterator[Metric]:
        live = GaugeMetricFamily("engine_trader_live_orders", "Our orders that are (or may be) "
                                 "on a venue's book", labels=("venue",))
        unknown = GaugeMetricFamily("engine_trader_unknown_orders", "Orders whose outcome is "
                                    "not yet known (being looked up)", labels=("venue",))
        for venue in t.sessions:
            live.add_metric([venue], t.store.live_count(venue))
            unknown.add_metric([venue], sum(1 for r in t.store.live_orders(venue)
                                            if r.state == "unknown"))
        yield live
        yield unknown

    def _streams(self, t: Any) -> Iterator[Metric]:
        up = GaugeMetricFamily("engine_trader_user_stream_connected", "1 while the venue's "
                               "private stream is connected and caught up", labels=("venue",))
        lag = GaugeMetricFamily("engine_trader_user_stream_lag_seconds", "Seconds since the "
                                "private stream last delivered a frame (or went down)",
                                labels=("venue",))
        frames = CounterMetricFamily("engine_trader_user_stream_frames", "Private-stream "
                                     "frames received", labels=("venue",))
        now = time.monotonic()
        for stream in t.streams:
            up.add_metric([stream.venue], 1 if stream.connected.is_set() else 0)
            last = stream.last_frame_mono  # a frame, or the (re)connect; stall detection's clock
            lag.add_metric([stream.venue], max(0.0, now - last))
            frames.add_metric([stream.venue], stream.frames)
        yield up
        yield lag
        yield frames

    def _reconcile(self, t: Any) -> Iterator[Metric]:
        drift = GaugeMetricFamily("engine_trader_reconcile_drift", "Differences between our "
                                  "orders (and positions) and the venue's at the last "
                                  "reconciliation", labels=("venue",))
        for venue, report in t.reports.items():
            drift.add_metric([venue], len(report.drift))
        yield drift

    def _slots(self, status: dict) -> Iterator[Metric]:
        slots = GaugeMetricFamily("engine_trader_slots", "Grid slots by state",
                                  labels=("strategy", "venue", "pair", "state"))
        cycles = CounterMetricFamily("engine_trader_grid_cycles", "Grid cycles completed "
                                     "(entry filled, exit filled)",
                                     labels=("strategy", "venue", "pair"))
        for strategy, s in status.items():
            venue, _, pair = s["pair"].partition(":")
            for state, count in s["slots"].items():
                slots.add_metric([strategy, venue, pair, state], count)
            cycles.add_metric([strategy, venue, pair], s["cycles"])
        yield slots
        yield cycles

"""The daemon's Prometheus registry: prometheus-client's standard process and
platform collectors (``process_resident_memory_bytes``, ``process_cpu_seconds_total``,
``python_info``: the names stock dashboards and alerts know) plus the daemon's
own uptime and thread count. Components add their metrics to ``registry``;
every exported name is documented in docs/metrics.md (a test holds that)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class DaemonCollector:
    """Figures the standard collectors lack, read at scrape time (no thread)."""

    def __init__(self, started_monotonic: float) -> None:
        self.started = started_monotonic
        self.proc = psutil.Process()

    def collect(self):
        yield GaugeMetricFamily("engine_uptime_seconds", "Seconds since the daemon started",
                                value=time.monotonic() - self.started)
        yield GaugeMetricFamily("engine_process_threads", "Threads in the daemon process",
                                value=self.proc.num_threads())


class HealthCollector:
    """``engine_component_healthy{component}``: /health as a metric, so an
    alert sees a background task (a feed thread, the recorder, a user stream)
    fail. Read at scrape time from ``health()`` (lifecycle.Health items)."""

    def __init__(self, health: Callable[[], list[Any]]) -> None:
        self.health = health

    def collect(self):
        family = GaugeMetricFamily("engine_component_healthy", "1 when every health check of "
                                   "the component passes, 0 when one fails (see /health)",
                                   labels=("component",))
        worst: dict[str, bool] = {}
        for item in self.health():
            worst[item.component] = worst.get(item.component, True) and bool(item.ok)
        for component, ok in sorted(worst.items()):
            family.add_metric([component], 1 if ok else 0)
        yield family


def new_registry(started_monotonic: float) -> CollectorRegistry:
    # No ``*_created`` gauge beside every counter: it doubles the series and
    # no dashboard or alert reads it (process-wide, as prometheus-client has it).
    disable_created_metrics()
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(DaemonCollector(started_monotonic))
    return registry


class HttpCollector:
    """The API server's counters (refusals, timeouts, rate limits, WebSocket
    drops) and open connections, read at scrape time from ``server()``."""

    def __init__(self, server) -> None:
        self.server = server  # () -> HttpServer | None (None while stopped)

    def collect(self):
        server = self.server()
        if server is None:
            return
        status = server.status()
        events = CounterMetricFamily("engine_http_events", "HTTP server events by kind",
                                     labels=["event"])
        for name, value in server.counts.items():
            events.add_metric([name], value)
        yield events
        yield GaugeMetricFamily("engine_http_connections", "Open client connections",
                                value=status["connections"])

"""The daemon's Prometheus registry: prometheus-client's standard process and
platform collectors (``process_resident_memory_bytes``, ``process_cpu_seconds_total``,
``python_info``: the names stock dashboards and alerts know) plus the daemon's
own uptime and thread count. Components add their metrics to ``registry``;
every exported name is documented in docs/metrics.md (a test holds that)."""

from __future__ import annotations

import time

import psutil
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import GaugeMetricFamily


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


def new_registry(started_monotonic: float) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(DaemonCollector(started_monotonic))
    return registry

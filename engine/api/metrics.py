"""The daemon's Prometheus registry and the process-level collector (RSS, CPU,
uptime via psutil). Components add their own metrics to ``registry``."""

from __future__ import annotations

import time

import psutil
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily


class ProcessCollector:
    """Reads the process's figures at scrape time (no background thread)."""

    def __init__(self, started_monotonic: float) -> None:
        self.started = started_monotonic
        self.proc = psutil.Process()

    def collect(self):
        with self.proc.oneshot():
            mem = self.proc.memory_info()
            cpu = self.proc.cpu_times()
            threads = self.proc.num_threads()
        yield GaugeMetricFamily("engine_process_resident_memory_bytes",
                                "Resident set size of the daemon process", value=mem.rss)
        yield CounterMetricFamily("engine_process_cpu_seconds",
                                  "User plus system CPU time of the daemon process",
                                  value=cpu.user + cpu.system)
        yield GaugeMetricFamily("engine_process_threads", "Threads in the daemon process",
                                value=threads)
        yield GaugeMetricFamily("engine_uptime_seconds", "Seconds since the daemon started",
                                value=time.monotonic() - self.started)


def new_registry(started_monotonic: float) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(ProcessCollector(started_monotonic))
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

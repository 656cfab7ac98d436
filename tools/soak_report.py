"""The soak's analysis (tools/soak.py samples, this turns them into a report):
memory growth as a least-squares slope per hour with a 95 % confidence band,
latency percentiles from histogram buckets, the figures that only grew, the
bounds broken, a markdown summary and PNG plots (matplotlib, Agg backend).

Pure functions over the sample list, so tests drive them on made-up samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Two-sided 95 % Student-t quantiles by degrees of freedom (beyond: normal).
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
        10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02, 60: 2.00,
        120: 1.98}


def t95(df: int) -> float:
    if df <= 0:
        return float("inf")
    for limit in sorted(_T95):
        if df <= limit:
            return _T95[limit]
    return 1.96


@dataclass
class Slope:
    per_hour: float  # units per hour
    low: float  # 95 % band
    high: float
    n: int


def slope(times_s: Sequence[float], values: Sequence[float]) -> Slope:
    """Least-squares slope of values over time, per hour, with its 95 % band."""
    n = len(times_s)
    if n < 3:
        return Slope(float("nan"), float("nan"), float("nan"), n)
    hours = [t / 3600.0 for t in times_s]
    mx, my = sum(hours) / n, sum(values) / n
    sxx = sum((x - mx) ** 2 for x in hours)
    if sxx == 0:
        return Slope(float("nan"), float("nan"), float("nan"), n)
    b = sum((x - mx) * (y - my) for x, y in zip(hours, values)) / sxx
    a = my - b * mx
    residual = sum((y - a - b * x) ** 2 for x, y in zip(hours, values))
    se = math.sqrt(residual / (n - 2) / sxx)
    half = t95(n - 2) * se
    return Slope(b, b - half, b + half, n)


def quantile_from_buckets(buckets: dict[float, float], q: float) -> float:
    """Prometheus's histogram_quantile over cumulative bucket counts (le -> count)."""
    bounds = sorted(buckets)
    if not bounds:
        return float("nan")
    total = buckets[bounds[-1]]
    if total <= 0:
        return float("nan")
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (
                count - previous_count)
        previous_bound, previous_count = bound, count
    return bounds[-1]


def bucket_delta(later: dict[float, float], earlier: dict[float, float]) -> dict[float, float]:
    return {le: later[le] - earlier.get(le, 0.0) for le in later}


@dataclass
class Bounds:
    max_growth_pct: float = 10.0
    max_dropped: float = 0.0
    max_errors: float | None = None


@dataclass
class Analysis:
    duration_s: float
    samples: int
    warmup_s: float
    rss_start_mb: float
    rss_end_mb: float
    rss_slope_mb_h: Slope
    growth_pct: float  # slope x run length after warm-up, against the warm-up level
    growth_pct_high: float  # the same at the band's upper end
    cpu_pct_mean: float
    latency: dict[str, dict[str, float]]
    totals: dict[str, float]
    only_grew: list[str]
    broken: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.broken


# Gauges of held resources: one that only grows is a leak suspect. Counters,
# uptime, PnL and slot states grow or move by design and are not listed.
RESOURCE_GAUGES = ("process_resident_memory_bytes", "process_virtual_memory_bytes",
                   "process_open_fds", "engine_process_threads", "soak_", "_queue_", "_buffered",
                   "_backlog_", "_spill_", "_memory_", "_pending", "live_orders")


def only_grew(samples: list[dict[str, Any]], min_rise: float = 0.10) -> list[str]:
    """Resource gauges that never fell after warm-up and rose by more than
    ``min_rise`` of their first value: the suspects for a leak."""
    if len(samples) < 5:
        return []
    suspects = []
    names = {n for n in set(samples[0]["gauges"]) & set(samples[-1]["gauges"])
             if any(part in n for part in RESOURCE_GAUGES)}
    for name in sorted(names):
        series = [s["gauges"].get(name) for s in samples]
        if any(v is None for v in series):
            continue
        first, last = series[0], series[-1]
        steady = all(b >= a for a, b in zip(series, series[1:]))
        if steady and last > first and (first <= 0 or (last - first) / abs(first) > min_rise):
            suspects.append(f"{name}: {first:g} -> {last:g}")
    return suspects


def analyse(samples: list[dict[str, Any]], warmup_s: float, bounds: Bounds,
            daemon_died: str = "") -> Analysis:
    if not samples:
        raise ValueError("no samples: the daemon never answered /metrics")
    t0 = samples[0]["t"]
    steady = [s for s in samples if s["t"] - t0 >= warmup_s] or samples[-3:]
    times = [s["t"] - t0 for s in steady]
    rss_mb = [s["rss"] / 1e6 for s in steady]
    fit = slope(times, rss_mb)
    span_h = (times[-1] - times[0]) / 3600.0 if len(times) > 1 else 0.0
    base = rss_mb[0] if rss_mb else float("nan")
    growth = 100.0 * fit.per_hour * span_h / base if base else float("nan")
    growth_high = 100.0 * fit.high * span_h / base if base else float("nan")
    cpu = [s["cpu_pct"] for s in samples[1:] if s.get("cpu_pct") is not None]
    latency = {}
    for name in ("decision_to_wire", "receive_to_book"):
        first = samples[0]["histograms"].get(name, {})
        last = samples[-1]["histograms"].get(name, {})
        window = bucket_delta(last, first) if last else {}
        latency[name] = {f"p{int(q * 100)}_ms": 1000 * quantile_from_buckets(window, q)
                         for q in (0.5, 0.9, 0.99)}
    totals = {k: samples[-1]["counters"].get(k, 0.0) - samples[0]["counters"].get(k, 0.0)
              for k in samples[-1]["counters"]}
    analysis = Analysis(samples[-1]["t"] - t0, len(samples), warmup_s, samples[0]["rss"] / 1e6,
                        samples[-1]["rss"] / 1e6, fit, growth, growth_high,
                        sum(cpu) / len(cpu) if cpu else float("nan"), latency, totals,
                        only_grew(steady))
    if daemon_died:
        analysis.broken.append(f"daemon died: {daemon_died}")
    if growth == growth and growth > bounds.max_growth_pct:
        analysis.broken.append(f"memory grew {growth:.1f} % after warm-up "
                               f"(bound {bounds.max_growth_pct:g} %)")
    dropped = totals.get("recorder_dropped", 0.0)
    if dropped > bounds.max_dropped:
        analysis.broken.append(f"recorder dropped {dropped:g} events (bound {bounds.max_dropped:g})")
    errors = totals.get("errors", 0.0)
    if bounds.max_errors is not None and errors > bounds.max_errors:
        analysis.broken.append(f"{errors:g} errors (bound {bounds.max_errors:g})")
    return analysis


def markdown(a: Analysis, command: str, load: str) -> str:
    s = a.rss_slope_mb_h
    lines = [
        "# Soak report", "",
        f"- command: `{command}`",
        f"- duration: {a.duration_s / 3600:.2f} h, {a.samples} samples, warm-up "
        f"{a.warmup_s:.0f} s excluded from the fit",
        f"- machine load at the end: {load}",
        f"- verdict: **{'PASS' if a.ok else 'FAIL'}**" + ("" if a.ok else ": " + "; ".join(a.broken)),
        "", "## Memory", "",
        f"- RSS {a.rss_start_mb:.1f} MB at start, {a.rss_end_mb:.1f} MB at the end",
        f"- slope after warm-up: {s.per_hour:+.3f} MB/h (95 % band {s.low:+.3f} .. "
        f"{s.high:+.3f} MB/h, n={s.n})",
        f"- growth over the run after warm-up: {a.growth_pct:+.2f} % (upper band "
        f"{a.growth_pct_high:+.2f} %)",
        f"- only grew (suspected leaks): {', '.join(a.only_grew) or 'none'}",
        "", "## CPU and latency", "",
        f"- CPU: {a.cpu_pct_mean:.1f} % of one core on average",
    ]
    for name, figures in a.latency.items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    lines += ["", "## Totals over the run", ""]
    lines += [f"- {k}: {v:g}" for k, v in sorted(a.totals.items())]
    lines += ["", "## Plots", ""]
    lines += [f"![{name}]({name}.png)" for name in [*PLOTS, "latency"]]
    return "\n".join(lines) + "\n"


# plot name -> (title, y label, sample -> value)
PLOTS: dict[str, tuple[str, str, Any]] = {
    "rss": ("Resident memory", "MB", lambda s: s["rss"] / 1e6),
    "cpu": ("CPU", "% of one core", lambda s: s.get("cpu_pct")),
    "resyncs": ("Book resyncs (cumulative)", "resyncs", lambda s: s["counters"].get("resyncs")),
    "errors": ("Errors (cumulative)", "errors", lambda s: s["counters"].get("errors")),
    "recorder_rows": ("History rows written (cumulative)", "rows",
                      lambda s: s["counters"].get("history_rows")),
    "grid_cycles": ("Grid cycles (cumulative)", "cycles",
                    lambda s: s["counters"].get("grid_cycles")),
}


def plots(samples: list[dict[str, Any]], out: Path) -> list[Path]:
    """One PNG per figure, plus the latency percentiles per sampling interval."""
    import matplotlib  # only the report needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = samples[0]["t"]
    minutes = [(s["t"] - t0) / 60 for s in samples]
    written = []
    for name, (title, unit, value) in PLOTS.items():
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.plot(minutes, [value(s) for s in samples], linewidth=1.2)
        ax.set_title(title)
        ax.set_xlabel("minutes")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out / f"{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for name in ("decision_to_wire", "receive_to_book"):
        for q in (0.5, 0.99):
            values = [float("nan")] + [
                1000 * quantile_from_buckets(bucket_delta(b["histograms"].get(name, {}),
                                                          a["histograms"].get(name, {})), q)
                for a, b in zip(samples, samples[1:])]
            ax.plot(minutes, values, linewidth=1, label=f"{name} p{int(q * 100)}")
    ax.set_title("Latency percentiles per sampling interval")
    ax.set_xlabel("minutes")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = out / "latency.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)
    return written

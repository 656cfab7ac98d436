"""tools/soak.py: a real 3-minute soak of a --demo daemon (report, plots,
exit code), and the analysis on made-up samples where the answer is known."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import soak_report

from tests.support.demo import ROOT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def made_up(rss_mb_per_min: float, minutes: int = 60, dropped_at: int | None = None) -> list[dict]:
    samples = []
    for minute in range(minutes + 1):
        samples.append({
            "t": 1_000_000.0 + 60 * minute, "rss": (300 + rss_mb_per_min * minute + (2 if minute % 2 else -2)) * 1e6,
            "cpu_pct": 10.0, "threads": 40,
            "counters": {"recorder_dropped": 5.0 if dropped_at is not None and minute >= dropped_at
                         else 0.0, "errors": 0.0, "grid_cycles": float(minute)},
            "gauges": {"engine_recorder_queue_events": 10.0 + minute,
                       "engine_uptime_seconds": 60.0 * minute},
            "histograms": {"decision_to_wire": {0.001: 50.0 * minute, 0.01: 100.0 * minute,
                                                float("inf"): 100.0 * minute}}})
    return samples


def test_soak_analysis_slope_band_and_growth_bound():
    flat = soak_report.analyse(made_up(0.0), warmup_s=300, bounds=soak_report.Bounds())
    # flat memory with noise: the band holds zero
    assert flat.ok and flat.rss_slope_mb_h.low < 0.0 < flat.rss_slope_mb_h.high
    growing = soak_report.analyse(made_up(0.5), warmup_s=300, bounds=soak_report.Bounds(10.0))
    # 0.5 MB/min = 30 MB/h exactly; 55 min after warm-up on 302.5 MB = 9.1 %
    # +-2 MB of noise: the slope stays near 30 MB/h and the band is real but narrow
    fit = growing.rss_slope_mb_h
    assert fit.per_hour == pytest.approx(30.0, abs=0.5)
    assert fit.low < fit.per_hour < fit.high and fit.high - fit.low < 5.0
    assert growing.growth_pct == pytest.approx(100 * fit.per_hour * 55 / 60 / 304.5, rel=0.01)
    assert growing.ok
    too_much = soak_report.analyse(made_up(1.0), warmup_s=300, bounds=soak_report.Bounds(10.0))
    assert not too_much.ok and "memory grew" in too_much.broken[0]
    # a steadily growing queue is a leak suspect; uptime (by design) is not
    assert any(s.startswith("engine_recorder_queue_events") for s in growing.only_grew)
    assert not any("uptime" in s for s in growing.only_grew)


def test_soak_analysis_drops_and_death_break_bounds_and_latency_percentiles():
    a = soak_report.analyse(made_up(0.0, dropped_at=30), 300, soak_report.Bounds(), "exit code -9")
    assert not a.ok
    assert any("daemon died" in b for b in a.broken)
    assert any("recorder dropped 5" in b for b in a.broken)
    # half of the observations at or below 1 ms, all at or below 10 ms
    assert a.latency["decision_to_wire"]["p50_ms"] == pytest.approx(1.0)
    assert 1.0 < a.latency["decision_to_wire"]["p99_ms"] <= 10.0


def test_soak_refuses_bad_arguments_with_a_clear_message(tmp_path):
    done = subprocess.run([sys.executable, "tools/soak.py", "--duration", "forever"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "not a duration" in done.stderr
    done = subprocess.run([sys.executable, "tools/soak.py", "--config", str(tmp_path / "nope.yaml"),
                           "--duration", "1m"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2 and "no such file" in done.stderr


def test_soak_three_minutes_on_the_demo_writes_report_and_plots(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({
        "daemon": {"data_dir": str(tmp_path / "data"), "id": "soak-test"},
        "http": {"port": 0},
        "exchanges": {"binance": {}},
        "feed": {"subscriptions": [{"exchange": "binance", "pair": "BTC/USDT", "depth": 20}]},
        "trader": {"strategies": [{"id": "grid1", "strategy": "grid", "exchange": "binance",
                                   "pair": "BTC/USDT", "params": {
                                       "order_size": "0.01", "interval": "30", "window": 4,
                                       "max_inventory": "1", "rearm_s": 1.0}}]}}))
    out = tmp_path / "soak"
    done = subprocess.run(
        [sys.executable, "tools/soak.py", "--role", "both", "--demo", "--config", str(config),
         "--duration", "3m", "--interval", "5s", "--out", str(out),
         # a 3-minute run on a busy test machine: the memory bound is the 48 h
         # one scaled up generously; what is checked is that it is computed
         "--max-growth-pct", "50"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "%]" in done.stderr and "rss=" in done.stderr  # progress lines while it ran
    report = (out / "report.md").read_text()
    assert "verdict: **PASS**" in report
    assert "MB/h (95 % band" in report and "only grew (suspected leaks)" in report
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(rows) >= 20  # ~36 at 5 s; fewer only if a scrape failed
    assert rows[-1]["counters"]["history_rows"] > rows[0]["counters"]["history_rows"]
    assert rows[-1]["counters"]["feed_messages"] > 0
    for name in [*soak_report.PLOTS, "latency"]:
        png = (out / f"{name}.png").read_bytes()
        assert png.startswith(PNG_MAGIC) and len(png) > 5000, name

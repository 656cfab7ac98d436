"""Grafana dashboards for the engine daemon, generated from the panel lists
below so that every dashboard has the same variables, units and layout.

Run: python tools/observability/grafana/dashboards.py  (rewrites the JSON
files beside it; tests/observability/ fails when they differ from what this
produces, and evaluates every panel query against a live daemon's series).

Each panel is (title, unit, [PromQL, ...]); ``$venue`` and ``$pair`` are the
dashboard variables (regexes, "All" = ``.*``), ``$__rate_interval`` Grafana's
rate window. Book metrics carry ``book="venue:market:PAIR"``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
BOOK = 'book=~"$venue:.*:$pair"'
VP = 'venue=~"$venue", pair=~"$pair"'
V = 'venue=~"$venue"'

# A panel whose series exist only once something happened (a rejection, a
# fallback): the description says so, and the live-series test accepts it
# empty, as it does absent()-style alert expressions.
QUIET = "quiet"
QUIET_NOTE = "Empty while healthy: series appear once the event first happens."

Panel = tuple  # (title, unit, [expr, ...]) or (title, unit, [expr, ...], QUIET)

DASHBOARDS: dict[str, tuple[str, list[Panel]]] = {
    "bot_performance": ("Engine: bot performance", [
        ("Realized PnL", "currencyUSD", [f"sum by (venue, pair) (engine_trader_realized_pnl{{{VP}}})"]),
        ("Unrealized PnL", "currencyUSD",
         [f"sum by (venue, pair) (engine_trader_unrealized_pnl{{{VP}}})"]),
        ("Position size (base asset)", "short",
         [f"sum by (venue, pair) (engine_trader_position_quantity{{{VP}}})"]),
        ("Funding (perpetuals)", "currencyUSD",
         [f"sum by (venue, pair) (engine_trader_funding{{{VP}}})"]),
        ("Grid cycles per hour", "short",
         [f"sum by (strategy) (increase(engine_trader_grid_cycles_total{{{VP}}}[1h]))"]),
        ("Grid cycles completed", "short",
         [f"sum by (strategy) (engine_trader_grid_cycles_total{{{VP}}})"]),
        ("Slots by state", "short", [f"sum by (state) (engine_trader_slots{{{VP}}})"]),
        ("Traded value per hour (quote)", "currencyUSD",
         [f"sum by (venue) (increase(engine_trader_traded_quote_total{{{V}}}[1h]))"]),
    ]),
    "order_execution": ("Engine: order execution", [
        ("Order actions by outcome", "ops",
         [f"sum by (venue, outcome) (rate(engine_trader_orders_total{{{V}}}[$__rate_interval]))"]),
        ("Rejections by reason class", "ops",
         [f"sum by (venue, reason) (rate(engine_trader_orders_total{{{V}, outcome!=\"accepted\"}}"
          f"[$__rate_interval]))"], QUIET),
        ("Decision to wire p50 / p99", "s",
         [f"histogram_quantile(0.5, sum by (le, venue, path) (rate(engine_trader_decision_to_wire_seconds_bucket{{{V}}}[$__rate_interval])))",
          f"histogram_quantile(0.99, sum by (le, venue, path) (rate(engine_trader_decision_to_wire_seconds_bucket{{{V}}}[$__rate_interval])))"]),
        ("Fills per minute", "short",
         [f"sum by (venue, side, liquidity) (increase(engine_trader_fills_total{{{V}}}[1m]))"]),
        ("Fees paid per hour", "short",
         [f"sum by (venue, asset) (increase(engine_trader_fees_total{{{V}}}[1h]))"]),
        ("Executor queue depth", "short", ["engine_trader_executor_queue_depth"]),
        ("Rate-limit budget used", "percentunit",
         [f"engine_trader_rate_limit_used{{{V}}} / engine_trader_rate_limit_limit{{{V}}}"]),
        ("Live and unknown-outcome orders", "short",
         [f"sum by (venue) (engine_trader_live_orders{{{V}}})",
          f"sum by (venue) (engine_trader_unknown_orders{{{V}}})"]),
    ]),
    "risk": ("Engine: risk", [
        ("Circuit-breaker trips in force", "short", ["engine_trader_breaker_trips"]),
        ("Halted", "bool", ["engine_trader_halted"]),
        ("Reconciliation drift", "short", [f"engine_trader_reconcile_drift{{{V}}}"]),
        ("Private stream connected", "bool", [f"engine_trader_user_stream_connected{{{V}}}"]),
        ("Private stream silence", "s", [f"engine_trader_user_stream_lag_seconds{{{V}}}"]),
        ("Orders of unknown outcome", "short", [f"engine_trader_unknown_orders{{{V}}}"]),
        ("Unrealized PnL at risk", "currencyUSD",
         [f"sum by (venue, pair) (engine_trader_unrealized_pnl{{{VP}}})"]),
        ("Post-only fallbacks per hour", "short",
         [f"sum by (venue, fallback) (increase(engine_trader_post_only_fallbacks_total{{{V}}}[1h]))"],
         QUIET),
        ("Unhealthy components", "short", ["engine_component_healthy == 0"], QUIET),
        ("Liquidations (perpetuals)", "short",
         [f"sum by (venue, pair) (engine_trader_liquidations_total{{{VP}}})"]),
        ("Liquidation and entry price (perpetuals)", "short",
         [f"engine_trader_liquidation_price{{{VP}}}", f"engine_trader_entry_price{{{VP}}}"], QUIET),
    ]),
    "infrastructure": ("Engine: infrastructure and feed", [
        ("Daemon up", "bool", ['up{job="engine"}']),
        ("Resident memory", "bytes", ["process_resident_memory_bytes"]),
        ("CPU (cores)", "percentunit", ["rate(process_cpu_seconds_total[$__rate_interval])"]),
        ("Threads and open files", "short", ["engine_process_threads", "process_open_fds"]),
        ("Component health (1 = healthy)", "bool", ["engine_component_healthy"]),
        ("Feed frames per second", "ops",
         [f"sum by (connection) (rate(engine_feed_connection_messages_total{{{V}}}[$__rate_interval]))"]),
        ("Feed silence per connection", "s",
         [f"engine_feed_connection_last_message_age_seconds{{{V}}}"]),
        ("Books synced", "short", [f"sum(engine_feed_book_synced{{{BOOK}}})",
                                   f"count(engine_feed_book_synced{{{BOOK}}})"]),
        ("Book resyncs per hour", "short",
         [f"sum by (book) (increase(engine_feed_book_resyncs_total{{{BOOK}}}[1h]))"]),
        ("Receive to book p99", "s",
         [f"histogram_quantile(0.99, sum by (le, venue) (rate(engine_feed_receive_to_book_seconds_bucket{{{V}}}[$__rate_interval])))"]),
        ("REST weight used", "short", [f"engine_feed_rest_weight_used{{{V}}}"]),
        ("Recorder queue", "short", ["engine_recorder_queue_events",
                                     "engine_recorder_queue_capacity"]),
        ("History rows written per second", "rowsps",
         ["sum by (table) (rate(engine_history_rows_written_total[$__rate_interval]))"]),
        ("History spill", "bytes", ["engine_history_spill_bytes"]),
        ("History store up", "bool", ["engine_history_store_up"]),
    ]),
}


def _variable(name: str, query: str, regex: str = "") -> dict:
    return {"name": name, "type": "query", "datasource": DATASOURCE, "refresh": 2,
            "query": {"query": query, "refId": f"{name}-var"}, "regex": regex,
            "includeAll": True, "allValue": ".*", "multi": True,
            "current": {"text": "All", "value": "$__all"}}


def dashboard(uid: str, title: str, panels: list[Panel]) -> dict:
    out = []
    for index, (panel_title, unit, exprs, *flags) in enumerate(panels):
        out.append({
            "description": QUIET_NOTE if QUIET in flags else "",
            "id": index + 1, "type": "timeseries", "title": panel_title, "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [{"refId": chr(ord("A") + n), "expr": expr, "datasource": DATASOURCE}
                        for n, expr in enumerate(exprs)],
        })
    return {
        "uid": f"engine-{uid.replace('_', '-')}", "title": title, "tags": ["engine"],
        "schemaVersion": 39, "version": 1, "editable": True, "timezone": "utc",
        "time": {"from": "now-6h", "to": "now"}, "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus",
             "current": {"text": "Prometheus", "value": "Prometheus"}},
            _variable("venue", "label_values(engine_feed_connection_state, venue)"),
            _variable("pair", "label_values(engine_feed_book_synced, book)",
                      regex="/^[^:]+:[^:]+:(.+)$/"),
        ]},
        "panels": out,
    }


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard."""
    return {f"{uid}.json": json.dumps(dashboard(uid, title, panels), indent=2) + "\n"
            for uid, (title, panels) in DASHBOARDS.items()}


def main() -> int:
    for name, text in render().items():
        (HERE / name).write_text(text)
        print(f"wrote {HERE / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

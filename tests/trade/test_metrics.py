"""Trader metrics fed by the executor's listeners (engine/trade/metrics.py):
labels come from what the executor decided, rejections are classed into a
bounded set, and a broken update is counted, never raised into order flow.
The scrape-time gauges are covered end to end against a --demo daemon and a
real Prometheus in tests/observability/."""

from __future__ import annotations

from decimal import Decimal

import pytest
from prometheus_client import CollectorRegistry

from engine.model import Market, Side
from engine.model_trade import Fill
from engine.trade.actions import ActionResult, CancelOrder, Outcome, PlaceOrder
from engine.trade.metrics import REASON_CLASSES, TraderMetrics, reason_class


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def place(market: Market = Market.SPOT) -> PlaceOrder:
    return PlaceOrder("Eg1-1-1", "binance", market, "BTC/USDT", Side.BUY, Decimal("100"),
                      Decimal("0.01"))


def test_trader_metrics_count_outcomes_by_path_and_reason_class():
    registry = CollectorRegistry()
    metrics = TraderMetrics(registry)
    metrics.on_result(ActionResult(place(), Outcome.ACKNOWLEDGED, path="ws"))
    metrics.on_result(ActionResult(place(), Outcome.ACKNOWLEDGED, path="ws"))
    metrics.on_result(ActionResult(place(Market.FUTURES), Outcome.REJECTED, -2019,
                                   "-2019 Margin is insufficient.", path="rest"))
    metrics.on_result(ActionResult(place(), Outcome.REJECTED, reason="risk: max_open_orders"))
    metrics.on_result(ActionResult(CancelOrder("Eg1-1-1", "binance", Market.SPOT, "BTC/USDT"),
                                   Outcome.REJECTED, -2011, "-2011 Unknown order sent.",
                                   path="ws"))
    base = {"venue": "binance", "market": "spot"}
    assert sample(registry, "engine_trader_orders_total", **base, kind="place", path="ws",
                  outcome="accepted", reason="") == 2
    assert sample(registry, "engine_trader_orders_total", venue="binance", market="futures",
                  kind="place", path="rest", outcome="rejected", reason="balance") == 1
    assert sample(registry, "engine_trader_orders_total", **base, kind="place", path="none",
                  outcome="rejected", reason="risk") == 1
    assert sample(registry, "engine_trader_orders_total", **base, kind="cancel", path="ws",
                  outcome="rejected", reason="unknown_order") == 1


def test_trader_metrics_fills_fees_and_wire_latency():
    registry = CollectorRegistry()
    metrics = TraderMetrics(registry)
    fill = Fill("binance", Market.SPOT, "BTC/USDT", "Eg1-1-1", "9", "77", Side.SELL, "30000.5",
                "0.002", "0.06", "USDT", True)
    metrics.on_update(None, [fill, fill])
    assert sample(registry, "engine_trader_fills_total", venue="binance", market="spot",
                  side="sell", liquidity="maker") == 2
    assert sample(registry, "engine_trader_fees_total", venue="binance", market="spot",
                  asset="USDT") == pytest.approx(0.12)
    assert sample(registry, "engine_trader_traded_quote_total", venue="binance",
                  market="spot") == pytest.approx(120.002)
    metrics.on_wire("binance", "ws", 0.0004)
    metrics.on_wire("binance", "rest", 0.004)
    assert sample(registry, "engine_trader_decision_to_wire_seconds_bucket", venue="binance",
                  path="ws", le="0.0005") == 1
    assert sample(registry, "engine_trader_decision_to_wire_seconds_bucket", venue="binance",
                  path="rest", le="0.002") == 0


def test_trader_metrics_a_broken_update_is_counted_not_raised():
    registry = CollectorRegistry()
    metrics = TraderMetrics(registry)
    metrics.on_update(None, ["not a fill"])  # type: ignore[list-item]
    metrics.on_result("not a result")
    assert sample(registry, "engine_trader_metrics_errors_total", where="on_update") == 1
    assert sample(registry, "engine_trader_metrics_errors_total", where="on_result") == 1


def test_reason_class_is_bounded_and_names_common_venue_errors():
    cases = {
        (-2010, "Order would immediately match and take."): "post_only",
        (-5022, "Due to the order could not be executed as maker, the Post Only order will be "
                "rejected."): "post_only",
        (-2010, "Account has insufficient balance for requested action."): "balance",
        (-1013, "Filter failure: PRICE_FILTER"): "filter",
        (-1015, "Too many new orders; current limit is 50 orders per 10 SECOND."): "rate_limit",
        (-2015, "Invalid API-key, IP, or permissions for action."): "auth",
        (0, "risk: breaker book"): "risk",
        (-9999, "something new"): "venue",
    }
    for (code, text), expected in cases.items():
        assert reason_class(code, text) == expected, text
        assert reason_class(code, text) in REASON_CLASSES

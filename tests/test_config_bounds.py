"""Every numeric config key against negative, zero, infinite, NaN, wrong-type,
beyond-64-bit and above-maximum values: each is refused with the key path,
the value and the allowed range named, or accepted (zero where it means
something) with that meaning checked. run.py exits 2 with no traceback on
the values issue 12 found accepted."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine import config as cfg
from engine.config_checks import BOUNDS, number_text

ROOT = Path(__file__).resolve().parents[1]

# Where each section lives in the YAML, and what it needs around it to parse.
SECTIONS: dict[str, tuple[str, ...]] = {
    "DaemonConfig": ("daemon",), "HttpConfig": ("http",), "BooksConfig": ("books",),
    "ExchangeConfig": ("exchanges", "binance"), "FeedConfig": ("feed",),
    "SubscriptionConfig": ("feed", "subscriptions", 0), "TaskDbConfig": ("storage", "tasks"),
    "HistoryConfig": ("storage", "history"), "LocalVenueConfig": ("venue",),
    "SyntheticMarketConfig": ("venue", "synthetic"), "TraderConfig": ("trader",),
    "RiskConfig": ("trader", "risk"), "FuturesTradeConfig": ("trader", "futures"),
    "UsdmVenueConfig": ("venue", "usdm"), "OkxVenueConfig": ("venue", "okx"),
    "BybitVenueConfig": ("venue", "bybit"),
}
# Keys where 0 is allowed, and what it means (checked in test_config_zero_means_what_it_says
# or, for the store, in tests/store/).
ZERO_MEANS = {
    ("HttpConfig", "port"): "a free port", ("LocalVenueConfig", "port"): "a free port",
    ("UsdmVenueConfig", "port"): "a free port", ("OkxVenueConfig", "port"): "a free port",
    ("LocalVenueConfig", "http_port"): "a free port", ("BybitVenueConfig", "port"): "a free port",
    ("HttpConfig", "rate_limit_per_s"): "no rate limit", ("HttpConfig", "max_body_bytes"): "no body",
    ("FuturesTradeConfig", "leverage"): "leave the account's leverage",
    ("ExchangeConfig", "max_pairs_per_connection"): "the driver's documented limit",
    ("FeedConfig", "record_rotate_mb"): "no size rotation", ("FeedConfig", "record_rotate_s"): "no time rotation",
    ("TaskDbConfig", "capacity"): "books.capacity",
    ("HistoryConfig", "snapshot_interval_s"): "whole books only at resyncs",
    ("HistoryConfig", "journal_fsync_s"): "fsync at every journal write",
    ("SyntheticMarketConfig", "volatility_bps"): "a flat market", ("SyntheticMarketConfig", "seed"): "seed 0",
    ("TraderConfig", "reprice_max"): "no re-pricing", ("TraderConfig", "reconcile_tolerance"): "no tolerance",
    ("RiskConfig", "price_jump_pct"): "the price-jump breaker off",
}


def numeric_fields() -> list[tuple[str, str, type]]:
    out, seen = [], set()

    def walk(cls: Any) -> None:
        if cls in seen:
            return
        seen.add(cls)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if tp in (int, float):
                out.append((cls.__name__, f.name, tp))
            for inner in (tp, *typing.get_args(tp)):
                if dataclasses.is_dataclass(inner):
                    walk(inner)

    walk(cfg.Config)
    return out


FIELDS = numeric_fields()


def document(cls_name: str, name: str, value: Any) -> tuple[dict, str]:
    """A config with ``value`` at the key, and the key's path as errors name it."""
    data: dict[str, Any] = {"exchanges": {"binance": {}}}
    node: Any = data
    path: list[str] = []
    section = SECTIONS[cls_name]
    for part in section:
        if part == "subscriptions":
            node = node.setdefault("subscriptions", [{"exchange": "binance", "pair": "BTC/USDT"}])
            path.append("subscriptions")
            continue
        if isinstance(part, int):
            node = node[part]
            path[-1] += f"[{part}]"
            continue
        node = node.setdefault(part, {})
        path.append(part)
    node[name] = value
    return data, ".".join([*path, name])


def test_config_every_numeric_key_has_a_bound() -> None:
    missing = [f"{c}.{n}" for c, n, _ in FIELDS if (c, n) not in BOUNDS]
    assert not missing, f"numeric config keys without a bound in engine/config_checks.py: {missing}"
    assert all(c in SECTIONS for c, _, _ in FIELDS)


CASES = ["negative", "zero", "infinite", "nan", "wrong type", "beyond 64 bits", "above maximum"]


def bad_value(case: str, bound: Any, tp: type) -> Any:
    return {"negative": -1 if tp is int else -1.5, "zero": 0, "infinite": math.inf,
            "nan": math.nan, "wrong type": "ten", "beyond 64 bits": 1 << 70,
            "above maximum": (int(bound.high) + 1) if tp is int else bound.high * 2 + 1}[case]


@pytest.mark.parametrize("cls_name, name, tp", FIELDS, ids=[f"{c}.{n}" for c, n, _ in FIELDS])
@pytest.mark.parametrize("case", CASES)
def test_config_numeric_key_bad_value_is_refused_with_key_value_and_range(
        cls_name: str, name: str, tp: type, case: str) -> None:
    bound = BOUNDS[(cls_name, name)]
    value = bad_value(case, bound, tp)
    data, path = document(cls_name, name, value)
    allowed = case == "zero" and bound.ok(0)
    if allowed:
        assert (cls_name, name) in ZERO_MEANS, f"{path}: 0 is accepted: say what it means"
        built = cfg.parse(data)
        node: Any = built
        for part in path.split("."):
            attr, _, index = part.partition("[")
            node = getattr(node, attr) if not isinstance(node, dict) else node[attr]
            if index:
                node = node[int(index.rstrip("]"))]
        assert node == 0
        return
    with pytest.raises(cfg.ConfigError) as error:
        cfg.parse(data)
    message = str(error.value)
    assert message.startswith(f"{path}: "), message
    if case == "wrong type":
        assert "'ten' is not " + ("an integer" if tp is int else "a number") in message
    elif case in ("infinite", "nan") and tp is float:
        assert "is not a finite number" in message
    elif case in ("infinite", "nan"):
        assert "is not an integer" in message
    else:
        assert " is not " in message and (number_text(bound.high) in message or bound.what in message), message


def test_config_zero_means_what_it_says(tmp_path: Path) -> None:
    from engine.store.recorder import RecorderSettings
    from engine.store.tracker import BookTracker

    c = cfg.parse({"storage": {"history": {"snapshot_interval_s": 0, "journal_fsync_s": 0}},
                   "trader": {"risk": {"price_jump_pct": 0}}})
    settings = RecorderSettings.from_config(c)
    assert settings.journal_fsync_s == 0 and BookTracker(int(settings.snapshot_interval_s * 1e9)).interval_ns == 0
    from engine.store.journal import Journal

    journal = Journal(tmp_path, settings.journal_fsync_s)
    synced: list[int] = []
    import os

    real = os.fsync
    try:
        os.fsync = lambda fd: synced.append(fd) or real(fd)  # type: ignore[assignment, func-returns-value]
        journal.append([])
        journal.append([])
    finally:
        os.fsync = real
    assert len(synced) == 2, "journal_fsync_s 0: every write reaches the disk"


@pytest.mark.parametrize("data, message", [
    ({"trader": {"risk": {"max_open_orders": -1}}}, "trader.risk.max_open_orders: -1 is not an integer in 1..100000"),
    ({"feed": {"reconnect_min_s": -1}}, "feed.reconnect_min_s: -1.0 is not a number in [0.01, 3600]"),
    ({"feed": {"reconnect_min_s": 40}}, "feed.reconnect_min_s: 40.0 is more than feed.reconnect_max_s (30.0)"),
    ({"exchanges": {"binance": {"max_pairs_per_connection": -3}}},
     "exchanges.binance.max_pairs_per_connection: -3 is not an integer in 0..1024"),
    ({"daemon": {"shutdown_timeout_s": float("inf")}}, "daemon.shutdown_timeout_s: inf is not a finite number"),
    ({"trader": {"risk": {"error_burst": 0}}}, "trader.risk.error_burst: 0 is not an integer in 1..10000"),
    ({"trader": {"risk": {"price_jump_pct": -5}}}, "trader.risk.price_jump_pct: -5.0 is not a percentage"),
    ({"trader": {"retry_budget_s": -10}}, "trader.retry_budget_s: -10.0 is not a number in (0, 3600]"),
    ({"venue": {"weight_per_minute": -1}}, "venue.weight_per_minute: -1 is not an integer in 1..10000000"),
    ({"venue": {"synthetic": {"tick_ms": 0}}}, "venue.synthetic.tick_ms: 0 is not an integer in 1..60000"),
    ({"feed": {"record_rotate_s": -1}}, "feed.record_rotate_s: -1 is not an integer in 0..604800"),
    ({"exchanges": {"binance": {}}, "trader": {"venues": ["binance"], "orders_per_s": 25}},
     "trader.orders_per_s: 25.0 is above what binance (trader.venues[0]) allows: 100 orders per 10 s"),
    ({"storage": {"history": {"retry_min_s": 20, "retry_max_s": 10}}},
     "storage.history.retry_min_s: 20.0 is more than storage.history.retry_max_s"),
])
def test_config_issue_12_values_are_refused(data: dict, message: str) -> None:
    with pytest.raises(cfg.ConfigError) as error:
        cfg.parse(data)
    assert str(error.value).startswith(message), str(error.value)


def test_config_defaults_keep_within_binance_order_limit() -> None:
    c = cfg.parse({"exchanges": {"binance": {}}, "trader": {"venues": ["binance"]}})
    assert c.trader.orders_per_s * 10 <= 100


@pytest.mark.parametrize("text, message", [
    ("exchanges:\n  foo: {}\n", "exchanges.foo: 'foo' is not a venue we have a driver for"),
    ("exchanges:\n  okx:\n    max_pairs_per_connection: 500\n",
     "exchanges.okx.max_pairs_per_connection: 500 is more than okx allows per connection"),
    ("feed:\n  reconnect_min_s: -1\n", "feed.reconnect_min_s: -1.0 is not"),
    ("daemon:\n  shutdown_timeout_s: .inf\n", "daemon.shutdown_timeout_s: inf is not a finite number"),
    ("daemon:\n  shutdown_timeout_s: .nan\n", "daemon.shutdown_timeout_s: nan is not a finite number"),
    ("books:\n  capacity: 100000000000000000000000\n", "books.capacity: 100000000000000000000000 is not"),
    ("trader:\n  request_timeout_s: 1" + "0" * 400 + "\n", "trader.request_timeout_s: 1000"),
])
def test_run_exits_2_without_traceback_on_a_bad_value(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    yaml.safe_load(text)  # valid YAML: the value is what is wrong
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), "--role", "monitor", "--config", str(path)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert f"config error: {message}" in result.stderr, result.stderr

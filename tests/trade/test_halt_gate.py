"""While the trader is halted, the grid is told so and stops emitting: no
order intent reaches the executor, the refusal is counted once (not once per
attempt) and logged in one line; after resume the grid trades again. Run on
a real `--role both --demo` daemon (local venue, feed, worker processes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.api.demo import Demo, demo_daemon
from tests.support.eventually import eventually
from tests.support.status import find_with


@pytest.fixture
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_daemon(tmp_path_factory.mktemp("halt-gate")) as d:
        yield d


def snapshot(demo: Demo) -> tuple[dict, dict, int]:
    status = demo.json("/status")
    pool = find_with(status, "decisions_routed")
    executor = find_with(status, "post_only_fallbacks")
    decisions = sum(w["decisions"] for w in pool["workers"])
    return pool["gate"], executor["counts"], decisions


def placed(counts: dict) -> int:
    """Placements the executor took (any outcome)."""
    return sum(n for key, n in counts.items() if key.startswith("place"))


def post(demo: Demo, path: str) -> None:
    r = requests.post(demo.url + path, headers={"X-API-Key": demo.admin_key}, timeout=15)
    assert r.status_code == 200, r.text


def test_halted_strategy_is_told_stops_emitting_and_is_refused_once(demo: Demo) -> None:
    post(demo, "/trader/halt?reason=gate-test")
    eventually(lambda: not demo.json("/orders")["orders"], timeout=60,
               message="the halt cancels the grid's orders")
    # The grid's worker has been given state saying why: it decides on, emits nothing.
    eventually(lambda: (snapshot(demo)[0]["blocked"].get("grid1") or "").startswith("halted"),
               timeout=30, message="the strategy is told it is halted")
    gate, counts, decisions = snapshot(demo)
    eventually(lambda: snapshot(demo)[2] >= decisions + 30, timeout=90,
               message="the grid keeps deciding while halted")
    gate_after, counts_after, _ = snapshot(demo)
    assert placed(counts_after) == placed(counts), "no placement reached the executor while halted"
    assert gate_after["dropped_intents"] == gate["dropped_intents"], "told: it stopped emitting"
    assert gate_after["refused_episodes"] <= 1, gate_after
    lines = [line for line in demo.log.read_text().splitlines() if "strategy orders stopped" in line]
    assert len(lines) == gate_after["refused_episodes"], lines
    assert all("grid1" in line and "gate-test" in line for line in lines), lines

    post(demo, "/trader/resume")
    eventually(lambda: not snapshot(demo)[0]["blocked"], timeout=30, message="told of the resume")
    eventually(lambda: len(demo.json("/orders")["orders"]) >= 2, timeout=90,
               message="the grid trades again after resume")

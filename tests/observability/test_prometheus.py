"""The shipped observability files against a real Prometheus (Debian's
``prometheus`` package, started privately) scraping a real ``--demo`` daemon:
promtool checks and rule unit tests, every dashboard panel query and every
alert expression evaluated through Prometheus's HTTP API, and docs/metrics.md
naming every exported metric."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.demo import ROOT, DemoDaemon
from tests.support.eventually import eventually
from tests.support.fixtures import unavailable
from tests.support.process import ServerBinaryMissing
from tests.support.prometheus import promtool

OBS = ROOT / "tools" / "observability"
ALERTS = OBS / "prometheus" / "alerts.yml"
sys.path.insert(0, str(OBS / "grafana"))
import dashboards  # noqa: E402 - the generator beside the JSON it writes

# Series a healthy demo daemon shows once it has traded: the panels and
# alerts read them, so the test waits for them before asking Prometheus.
TRADED = ("engine_trader_fills_total", "engine_trader_fees_total",
          "engine_trader_decision_to_wire_seconds_bucket", "engine_trader_grid_cycles_total",
          "engine_history_rows_written_total")


def run_promtool(*args: str) -> str:
    try:
        done = promtool(*args)
    except ServerBinaryMissing as missing:
        unavailable(str(missing))
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def test_promtool_check_rules_and_config_pass():
    out = run_promtool("check", "rules", str(ALERTS))
    assert re.search(r"SUCCESS: (\d+) rules found", out), out
    run_promtool("check", "config", str(OBS / "prometheus" / "prometheus.yml"))


def test_promtool_rule_unit_tests_fire_each_alert_and_stay_silent_when_healthy():
    import yaml

    run_promtool("test", "rules", str(OBS / "prometheus" / "alerts_test.yml"))
    # Each alert has a firing case in the unit tests (the silent "good" series sit
    # beside the bad ones in every group, and exp_alerts lists only the bad).
    rules = [r["alert"] for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    tested = {t["alertname"] for case in yaml.safe_load(
        (OBS / "prometheus" / "alerts_test.yml").read_text())["tests"]
        for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert set(rules) == tested, f"alerts without a firing unit test: {set(rules) - tested}"


def test_every_alert_has_summary_and_runbook_section():
    import yaml

    operations = (ROOT / "docs" / "operations.md").read_text()
    for group in yaml.safe_load(ALERTS.read_text())["groups"]:
        for rule in group["rules"]:
            notes = rule["annotations"]
            assert notes.get("summary"), rule["alert"]
            anchor = notes["runbook"].split("#", 1)[1]
            assert anchor == rule["alert"].lower()
            assert f"### {rule['alert']}" in operations, f"{rule['alert']} has no runbook"


def test_dashboards_are_generated_have_units_and_venue_pair_variables():
    for name, text in dashboards.render().items():
        path = OBS / "grafana" / name
        assert path.read_text() == text, f"{path} differs from dashboards.py: regenerate it"
        board = __import__("json").loads(text)
        names = {v["name"] for v in board["templating"]["list"]}
        assert {"venue", "pair"} <= names, name
        for panel in board["panels"]:
            assert panel["fieldConfig"]["defaults"]["unit"], f"{name}: {panel['title']} no unit"
            assert panel["targets"] and all(t["expr"] for t in panel["targets"])
    assert len(dashboards.DASHBOARDS) >= 4


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDaemon]:
    demo = DemoDaemon(tmp_path_factory.mktemp("demo")).start()
    try:
        def traded() -> bool:
            text = demo.metrics()
            missing = [m for m in TRADED if f"\n{m}{{" not in text]
            assert not missing, f"not yet exported: {missing}"
            return True
        eventually(traded, timeout=300, interval=2.0, ignoring=(AssertionError, OSError))
        yield demo
    finally:
        code = demo.stop()
        assert code == 0, demo.log_tail()


def exported_names(text: str) -> set[str]:
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    return names


def test_metrics_doc_lists_every_exported_metric(daemon: DemoDaemon):
    text = daemon.metrics()
    documented = set(re.findall(r"^\| `([a-z_:]+)` \|", (ROOT / "docs" / "metrics.md").read_text(),
                                re.M))
    exported = exported_names(text)
    assert {"process_resident_memory_bytes", "process_cpu_seconds_total",
            "engine_trader_orders_total", "engine_component_healthy"} <= exported
    missing = sorted(exported - documented)
    assert not missing, f"exported but not in docs/metrics.md: {missing}"


def test_promtool_check_metrics_passes_on_the_daemons_exposition(daemon: DemoDaemon):
    exposition = daemon.metrics()
    try:
        done = promtool("check", "metrics", stdin=exposition)
    except ServerBinaryMissing as missing:
        unavailable(str(missing))
    assert done.returncode == 0, done.stdout + done.stderr


def panel_queries() -> list[tuple[str, str, str, bool]]:
    out = []
    for name, text in dashboards.render().items():
        for panel in __import__("json").loads(text)["panels"]:
            quiet = panel["description"] == dashboards.QUIET_NOTE
            out += [(name, panel["title"], t["expr"], quiet) for t in panel["targets"]]
    return out


def instant(expr: str) -> str:
    """A panel query as Prometheus sees it with "All" selected."""
    return (expr.replace("$venue", ".*").replace("$pair", ".*")
            .replace("$__rate_interval", "30s"))


def metric_names(expr: str) -> set[str]:
    found = set(re.findall(r"\b((?:engine|process|python)_[a-z0-9_]+|up)\b(?=\s*[{\[)\s]|$)",
                           expr))
    return found


def test_every_panel_query_and_alert_expression_returns_series(daemon, prometheus_factory,
                                                               tmp_path):
    import yaml

    server = prometheus_factory(targets=[f"127.0.0.1:{daemon.port}"], rule_files=[ALERTS],
                                scrape_interval_s=1.0)
    eventually(server.targets_up, timeout=60, interval=0.5, ignoring=(AssertionError, OSError))
    # rate() over 30 s needs a few scrapes; the histogram quantiles need traffic in them
    eventually(lambda: server.query('count_over_time(up{job="engine"}[30s]) >= 5'), timeout=90,
               interval=1.0, ignoring=(AssertionError, OSError))

    empty = []
    for board, title, expr, quiet in panel_queries():
        result = server.query(instant(expr))
        if not result and not quiet:
            empty.append(f"{board} / {title}: {instant(expr)}")
    assert not empty, "panel queries without series:\n" + "\n".join(empty)

    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    for rule in rules:
        server.query(rule["expr"])  # valid PromQL (raises with Prometheus's error)
        for name in metric_names(rule["expr"]):
            assert server.query(f'count({{__name__="{name}"}})'), \
                f"alert {rule['alert']} reads {name}, which the daemon does not export"
    # Prometheus itself loaded and evaluated every rule without error
    loaded = eventually(lambda: [r for r in server.rules() if r.get("lastEvaluation", "")
                                 [:4] not in ("", "0001")] and server.rules(), timeout=30,
                        interval=0.5)
    assert {r["name"] for r in loaded} == {r["alert"] for r in rules}
    assert all(r["health"] == "ok" for r in loaded), [(r["name"], r.get("lastError"))
                                                      for r in loaded if r["health"] != "ok"]
    # a healthy demo fires nothing but the slow-window ones that cannot have fired yet
    firing = [a for a in server.api("alerts")["alerts"] if a["state"] == "firing"]
    assert not firing, firing

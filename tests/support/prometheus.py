"""A private Prometheus server for the tests (Debian's ``prometheus``): its
config, rules and TSDB in ``base_dir``, its web port on a free 127.0.0.1 port,
scraping whatever targets the test names. Also runs ``promtool``.

  PrometheusServer(base_dir, targets=["127.0.0.1:PORT"], rule_files=[...])
    .start() ─► .query(expr) / .rules() / .wait_for_scrape()
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support.process import ServerProcess, find_binary, free_port

PACKAGE = "prometheus"


def promtool(*args: str, stdin: str | None = None,
             timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run promtool (from Debian's prometheus package); output in the result."""
    binary = find_binary("promtool", package=PACKAGE)
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=timeout_s,
                          input=stdin if stdin is not None else "")


class PrometheusServer(ServerProcess):
    """prometheus scraping ``targets`` every ``scrape_interval_s``; rules are
    evaluated at the same interval."""

    name = "prometheus"

    def __init__(self, base_dir: Path, *, targets: list[str], rule_files: list[Path] = (),
                 scrape_interval_s: float = 1.0, job: str = "engine", **timeouts: float) -> None:
        self.binary = find_binary("prometheus", package=PACKAGE)
        super().__init__(base_dir, **timeouts)
        self.targets = list(targets)
        self.rule_files = [Path(p).resolve() for p in rule_files]
        self.scrape_interval_s = scrape_interval_s
        self.job = job
        self.port = 0
        self.config_path = self.base_dir / "prometheus.yml"
        self.data_dir = self.base_dir / "tsdb"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _assign_ports(self) -> None:
        self.port = free_port()

    def _command(self) -> list[str]:
        interval = f"{int(self.scrape_interval_s * 1000)}ms"
        config = {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                  "rule_files": [str(p) for p in self.rule_files],
                  "scrape_configs": [{"job_name": self.job,
                                      "static_configs": [{"targets": self.targets}]}]}
        self.config_path.write_text(yaml.safe_dump(config))
        return [self.binary, f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.data_dir}",
                f"--web.listen-address={self.host}:{self.port}",
                "--web.enable-lifecycle", "--log.level=warn"]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>; returns ``data`` or raises naming Prometheus's error."""
        query = urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as error:
            body = json.loads(error.read() or b"{}")
        if body.get("status") != "success":
            raise AssertionError(f"prometheus {path} {params}: {body.get('errorType')}: "
                                 f"{body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (a scalar comes back as one sample)."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def targets_up(self) -> bool:
        active = self.api("targets")["activeTargets"]
        return bool(active) and all(t["health"] == "up" for t in active)

    def rules(self) -> list[dict[str, Any]]:
        """Every loaded rule with its health, across groups."""
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]

"""tools/tasks.py as a user runs it (a real process) against a real SQLite
file and a real MariaDB: add, list, enable, disable, set, delete, daemons,
and clear errors with non-zero exit codes for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from engine import config as config_mod
from engine.store import leases
from engine.store.migrations import available, migrate
from engine.store.taskdb import TaskDb
from tests.store.test_taskdb_fixtures import PASSWORD_ENV, scratch_database

ROOT = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, config_path: Path, env: dict[str, str]) -> None:
        self.config_path, self.env = config_path, env

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, str(ROOT / "tools" / "tasks.py"), "--config",
                                 str(self.config_path), *args], capture_output=True, text=True,
                                env=self.env, timeout=60)
        if ok:
            assert result.returncode == 0, result.stderr
        return result

    def rows(self, kind: str = "all") -> list[dict]:
        out = self("list", "--kind", kind, "--json").stdout
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture(params=["sqlite", "mysql"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cli]:
    tasks: dict = {"backend": "sqlite"}
    env = dict(os.environ)
    if request.param == "mysql":
        server = request.getfixturevalue("mariadb")
        tasks = {"backend": "mysql", "host": server.host, "port": server.port, "user": server.user,
                 "database": scratch_database(server, "cli"), "password_env": PASSWORD_ENV}
        env[PASSWORD_ENV] = server.password
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"daemon": {"data_dir": str(tmp_path / "data")},
                                    "storage": {"tasks": tasks}}))
    yield Cli(path, env)


def test_add_then_list_shows_the_task(cli: Cli) -> None:
    assert cli("add", "binance", "btc/usdt", "--depth", "50", "--priority", "3").stdout.strip() == \
        "added MONITORING task 1"
    cli("add", "okx", "ETH/USDT", "--market", "futures", "--disabled")
    rows = cli.rows("monitor")
    assert [(r["id"], r["exchange_id"], r["market_type"], r["trade_pair"], r["orderbook_depth"],
             r["daemon_priority"], r["enabled"]) for r in rows] == [
        (1, "binance", "spot", "BTC/USDT", 50, 3, True), (2, "okx", "futures", "ETH/USDT", 20, 0, False)]
    table = cli("list").stdout
    assert "MONITORING (2 rows)" in table and "BTC/USDT" in table and "TRADE (0 rows)" in table


def test_enable_disable_set_and_delete(cli: Cli) -> None:
    cli("add", "binance", "BTC/USDT")
    cli("add", "bybit", "SOL/USDT")
    assert cli("disable", "1", "2").stdout.strip() == "disabled MONITORING tasks 1, 2"
    assert [r["enabled"] for r in cli.rows("monitor")] == [False, False]
    cli("enable", "2")
    assert [r["enabled"] for r in cli.rows("monitor")] == [False, True]
    cli("set", "2", "--depth", "400", "--priority", "7")
    assert (cli.rows("monitor")[1]["orderbook_depth"], cli.rows("monitor")[1]["daemon_priority"]) == (400, 7)
    assert cli("delete", "1").stdout.strip() == "deleted 1 MONITORING tasks"
    assert [r["id"] for r in cli.rows("monitor")] == [2]


def test_add_trade_with_json_params(cli: Cli) -> None:
    assert "added TRADE task 1" in cli("add-trade", "okx", "ETH/USDT", "--strategy", "grid", "--params",
                                       '{"order_size": "0.01", "window": 12, "interval_pct": 0.25}').stdout
    (row,) = cli.rows("trade")
    assert row["strategy_id"] == "grid"
    assert json.loads(row["strategy_params"]) == {"order_size": "0.01", "window": 12, "interval_pct": 0.25}
    cli("disable", "1", "--kind", "trade")
    assert cli.rows("trade")[0]["enabled"] is False


@pytest.mark.parametrize(("args", "message"), [
    (("add", "nyse", "BTC/USDT"), "unknown exchange 'nyse'"),
    (("add", "binance", "BTCUSDT"), "malformed pair 'BTCUSDT'"),
    (("add", "binance", "BTC/USDT", "--depth", "0"), "depth 0"),
    (("add-trade", "okx", "ETH/USDT", "--strategy", "grid", "--params", "{oops"), "invalid JSON params"),
    (("add-trade", "okx", "ETH/USDT", "--strategy", "grid", "--params", "[1]"), "must be an object"),
    (("set", "1"), "give a depth or a priority"),
    (("add-trade", "okx", "ETH/USDT", "--strategy", "nosuch"), "unknown strategy 'nosuch' (known: grid)"),
    (("add-trade", "okx", "ETH/USDT", "--strategy", "grid", "--params", '{"levels": 12}'),
     "--params of grid.levels: unknown key"),
    (("add-trade", "okx", "ETH/USDT", "--strategy", "grid", "--params", '{"order_size": 0.1}'),
     "order_size"),
])
def test_bad_values_exit_2_with_the_reason_and_store_nothing(cli: Cli, args: tuple[str, ...],
                                                             message: str) -> None:
    result = cli(*args, ok=False)
    assert result.returncode == 2 and message in result.stderr
    assert cli.rows() == []


def test_unknown_id_exits_1(cli: Cli) -> None:
    cli("add", "binance", "BTC/USDT")
    result = cli("disable", "1", "42", ok=False)
    assert result.returncode == 1 and "no MONITORING task with id 42" in result.stderr
    assert cli.rows()[0]["enabled"] is False  # the known one was still disabled
    assert cli("set", "42", "--depth", "5", ok=False).returncode == 1


def open_db(cli: Cli) -> TaskDb:
    config = config_mod.load(cli.config_path)
    db = TaskDb(config.storage.tasks, config.daemon.data_dir, password=cli.env.get(PASSWORD_ENV, ""))
    migrate(db)
    return db


def test_list_flags_rows_the_daemon_will_skip(cli: Cli) -> None:
    cli("add", "binance", "BTC/USDT")
    db = open_db(cli)
    db.execute("INSERT INTO MONITORING (EXCHANGE_ID, TRADE_PAIR) VALUES ('nyse', 'BTC/USDT')")  # by hand
    db.close()
    problems = [row["problem"] for row in cli.rows("monitor")]
    assert problems[0] is None and "unknown exchange 'nyse'" in problems[1]
    assert "unknown exchange 'nyse'" in cli("list").stdout


def test_daemons_lists_who_holds_leases(cli: Cli) -> None:
    assert "no daemon has polled" in cli("daemons").stdout
    cli("add", "binance", "BTC/USDT")
    db = open_db(cli)
    with db.transaction():
        leases.heartbeat(db, "host-a", 10)
        leases.claim(db, leases.MONITORING, "host-a", [1], 1, 60_000)
    db.close()
    (daemon,) = [json.loads(line) for line in cli("daemons", "--json").stdout.splitlines()]
    assert daemon["daemon_id"] == "host-a" and daemon["live_leases"] == 1
    assert cli.rows()[0]["leased_by"] == "host-a" and cli.rows()[0]["lease_left_s"] > 50


def test_migrate_prints_the_schema_version(cli: Cli) -> None:
    newest = len(available("sqlite"))
    assert cli("migrate").stdout.strip().endswith(f"schema version {newest}")


def test_unreachable_database_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"storage": {"tasks": {"backend": "mysql", "port": 1}}}))
    result = Cli(path, dict(os.environ))("list", ok=False)
    assert result.returncode == 1 and "task database error" in result.stderr and "127.0.0.1:1" in result.stderr


def test_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("storage: {tasks: {backend: oracle}}\n")
    result = Cli(path, dict(os.environ))("list", ok=False)
    assert result.returncode == 2 and "storage.tasks.backend" in result.stderr


def test_adding_the_same_task_twice_keeps_one_row_and_names_it(cli: Cli) -> None:
    cli("add", "binance", "BTC/USDT")
    again = cli("add", "binance", "btc/usdt", "--depth", "50", ok=False)
    assert again.returncode == 1 and "MONITORING task 1 already has binance spot BTC/USDT" in again.stderr
    assert [r["orderbook_depth"] for r in cli.rows("monitor")] == [20]
    cli("add", "binance", "BTC/USDT", "--market", "futures")  # another book: fine
    params = '{"order_size": "0.01", "interval_pct": 0.5}'
    cli("add-trade", "okx", "ETH/USDT", "--strategy", "grid", "--params", params)
    twice = cli("add-trade", "okx", "ETH/USDT", "--strategy", "grid", "--params", params, ok=False)
    assert twice.returncode == 1 and "TRADE task 1 already has okx spot ETH/USDT strategy grid" in twice.stderr
    assert len(cli.rows("monitor")) == 2 and len(cli.rows("trade")) == 1


def test_daemons_marks_dead_ones_and_prune_forgets_only_those(cli: Cli) -> None:
    cli("add", "binance", "BTC/USDT")
    cli("add", "binance", "ETH/USDT")
    db = open_db(cli)
    with db.transaction():
        for daemon in ("gone-a", "gone-b", "alive"):
            leases.heartbeat(db, daemon, 10)
        leases.claim(db, leases.MONITORING, "alive", [1], 1, 60_000)
        leases.claim(db, leases.MONITORING, "gone-b", [2], 1, 60_000)
        # gone-a and gone-b last beat two hours ago; gone-b still holds a live lease
        db.execute("UPDATE DAEMONS SET HEARTBEAT_MS = {now_ms} - 7200000 WHERE DAEMON_ID <> 'alive'")
    db.close()
    shown = {d["daemon_id"]: d["state"] for d in map(json.loads, cli("daemons", "--json").stdout.splitlines())}
    assert shown == {"gone-a": "dead", "gone-b": "dead", "alive": "alive"}
    assert "dead" in cli("daemons").stdout
    assert cli("daemons", "--prune", "--older-than", "86400").stdout.strip() == "pruned 0 dead daemons"
    assert cli("daemons", "--prune").stdout.strip() == "pruned 1 dead daemons: gone-a"
    left = [json.loads(line)["daemon_id"] for line in cli("daemons", "--json").stdout.splitlines()]
    assert left == ["alive", "gone-b"]  # gone-b's lease is still live: not forgotten yet
    assert cli.rows()[0]["leased_by"] == "alive"

#!/usr/bin/env python3
"""Manage the task database without writing SQL: the books to monitor
(MONITORING) and the strategies to trade (TRADE).

  python tools/tasks.py [--config FILE] list [--kind monitor|trade] [--json]
  python tools/tasks.py add EXCHANGE PAIR [--market spot|futures] [--depth N] [--priority P] [--disabled]
  python tools/tasks.py add-trade EXCHANGE PAIR --strategy ID [--params JSON] [--market M] [--priority P]
  python tools/tasks.py enable|disable ID... [--kind monitor|trade]
  python tools/tasks.py set ID [--depth N] [--priority P]
  python tools/tasks.py delete ID... [--kind monitor|trade]
  python tools/tasks.py daemons [--json]          (daemons sharing the database, their leases)
  python tools/tasks.py migrate                   (create / upgrade the schema, print its version)

The database is the one ``storage.tasks`` names in the config (default
config.yaml); the schema is created on first use. Running daemons pick up a
change at their next poll (storage.tasks.poll_s). Exit status: 0; 1 for an
unknown id or a database error; 2 for a bad argument or value.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import config as config_mod  # noqa: E402
from engine.store import leases, taskrows, tasktables  # noqa: E402
from engine.store.migrations import current_version, migrate  # noqa: E402
from engine.store.taskdb import TaskDb, TaskDbError  # noqa: E402
from engine.store.taskrows import MARKETS, RowError  # noqa: E402

KINDS = {"monitor": "MONITORING", "trade": "TRADE"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="tasks.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="config.yaml", help="YAML config naming storage.tasks")
    sub = p.add_subparsers(dest="command", required=True)

    ls = sub.add_parser("list", help="list tasks with who runs them")
    ls.add_argument("--kind", choices=[*KINDS, "all"], default="all")
    ls.add_argument("--json", action="store_true", help="JSON lines instead of a table")

    add = sub.add_parser("add", help="add a book to monitor")
    add.add_argument("exchange")
    add.add_argument("pair", help="BASE/QUOTE, e.g. BTC/USDT")
    add.add_argument("--market", choices=MARKETS, default="spot")
    add.add_argument("--depth", type=int, default=20, help="order-book levels per side (1..5000)")
    add.add_argument("--priority", type=int, default=0, help="higher runs first when capacity is short")
    add.add_argument("--disabled", action="store_true", help="add it switched off")

    trade = sub.add_parser("add-trade", help="add a strategy to trade")
    trade.add_argument("exchange")
    trade.add_argument("pair")
    trade.add_argument("--strategy", required=True, help="strategy id, e.g. grid")
    trade.add_argument("--params", default="{}", help="JSON object of strategy parameters")
    trade.add_argument("--market", choices=MARKETS, default="spot")
    trade.add_argument("--priority", type=int, default=0)
    trade.add_argument("--disabled", action="store_true")

    for name in ("enable", "disable", "delete"):
        cmd = sub.add_parser(name, help=f"{name} tasks by id")
        cmd.add_argument("ids", type=int, nargs="+")
        cmd.add_argument("--kind", choices=list(KINDS), default="monitor")

    st = sub.add_parser("set", help="change a monitoring task's depth or priority")
    st.add_argument("id", type=int)
    st.add_argument("--depth", type=int)
    st.add_argument("--priority", type=int)

    dm = sub.add_parser("daemons", help="daemons sharing this database and their leases")
    dm.add_argument("--json", action="store_true")
    sub.add_parser("migrate", help="create or upgrade the schema")
    return p.parse_args(argv)


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def show(db: TaskDb, kind: str, as_json: bool) -> None:
    for key, name in KINDS.items():
        if kind not in (key, "all"):
            continue
        rows = tasktables.listing(db, name)
        runnable = taskrows.runnable_monitoring if name == "MONITORING" else taskrows.runnable_trade
        problems = {bad.id: bad.reason for bad in runnable(rows)[1]}
        for row in rows:
            row["PROBLEM"] = problems.get(row["ID"])  # what the daemon will skip it for
            left = row.pop("LEASE_LEFT_MS")
            row["LEASE_LEFT_S"] = None if left is None else round(int(left) / 1000, 1)
            row["ENABLED"] = bool(row["ENABLED"])
        if as_json:
            for row in rows:
                print(json.dumps({"table": name, **{k.lower(): v for k, v in row.items()}}, default=str))
            continue
        columns = ["ID", "EXCHANGE_ID", "MARKET_TYPE", "TRADE_PAIR"]
        columns += ["ORDERBOOK_DEPTH"] if name == "MONITORING" else ["STRATEGY_ID", "STRATEGY_PARAMS"]
        columns += ["DAEMON_PRIORITY", "ENABLED", "LEASED_BY", "LEASE_LEFT_S", "PROBLEM"]
        print(f"{name} ({len(rows)} rows)")
        print(table(rows, columns) if rows else "  (none)")


def run(args: argparse.Namespace, db: TaskDb) -> int:
    migrate(db)
    if args.command == "list":
        show(db, args.kind, args.json)
    elif args.command == "add":
        new_id = tasktables.add_monitoring(db, args.exchange, args.pair, market=args.market, depth=args.depth,
                                           priority=args.priority, enabled=not args.disabled)
        print(f"added MONITORING task {new_id}")
    elif args.command == "add-trade":
        new_id = tasktables.add_trade(db, args.exchange, args.pair, args.strategy, args.params,
                                      market=args.market, priority=args.priority, enabled=not args.disabled)
        print(f"added TRADE task {new_id}")
    elif args.command in ("enable", "disable"):
        name = KINDS[args.kind]
        missing = tasktables.set_enabled(db, name, args.ids, args.command == "enable")
        done = [i for i in sorted(set(args.ids)) if i not in missing]
        if done:
            print(f"{args.command}d {name} tasks {', '.join(map(str, done))}")
        if missing:
            print(f"no {name} task with id {', '.join(map(str, missing))}", file=sys.stderr)
            return 1
    elif args.command == "delete":
        name = KINDS[args.kind]
        gone = tasktables.delete(db, name, args.ids)
        print(f"deleted {gone} {name} tasks")
        if gone < len(set(args.ids)):
            return 1
    elif args.command == "set":
        if not tasktables.set_monitoring(db, args.id, depth=args.depth, priority=args.priority):
            print(f"no MONITORING task with id {args.id}", file=sys.stderr)
            return 1
        print(f"updated MONITORING task {args.id}")
    elif args.command == "daemons":
        rows = leases.daemons(db)
        if args.json:
            for row in rows:
                print(json.dumps(row))
        else:
            print(table(rows, ["daemon_id", "host", "pid", "capacity", "live_leases", "heartbeat_age_s"])
                  if rows else "no daemon has polled this database yet")
    elif args.command == "migrate":
        print(f"{db.where}: schema version {current_version(db)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = config_mod.load(args.config)
    except config_mod.ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    db = TaskDb.from_config(config)
    try:
        return run(args, db)
    except (RowError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TaskDbError as e:
        print(f"task database error: {e}", file=sys.stderr)
        return 1
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())

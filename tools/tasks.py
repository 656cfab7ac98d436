#!/usr/bin/env python3
"""Manage the task database without writing SQL: the books to monitor
(MONITORING) and the strategies to trade (TRADE).

  python tools/tasks.py [--config FILE] list [--kind monitor|trade] [--json]
  python tools/tasks.py add EXCHANGE PAIR [--market spot|futures] [--depth N] [--priority P] [--disabled]
  python tools/tasks.py add-trade EXCHANGE PAIR --strategy ID [--params JSON] [--market M] [--priority P]
  python tools/tasks.py enable|disable ID... [--kind monitor|trade]
  python tools/tasks.py set ID [--depth N] [--priority P]
  python tools/tasks.py delete ID... [--kind monitor|trade]
  python tools/tasks.py daemons [--json] [--prune [--older-than S]]
                                        (daemons sharing the database, their leases; --prune
                                         forgets daemons silent for S seconds, default 3600,
                                         that hold no live lease)
  python tools/tasks.py migrate                   (create / upgrade the schema, print its version)

The database is the one ``storage.tasks`` names in the config (default
config.yaml); the schema is created on first use. Running daemons pick up a
change at their next poll (storage.tasks.poll_s). ``add``/``add-trade`` refuse
a task that is already there (same exchange, market and pair; for TRADE also
the same strategy) and name its id; ``add-trade`` checks the strategy id and
its params as the daemon will (strategies registered by
``trader.strategy_modules`` included). ``daemons`` marks a daemon whose
heartbeat is older than ``--older-than`` as ``dead``.
Exit status: 0; 1 for an unknown id, a task that already exists or a database
error; 2 for a bad argument or value.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import config as config_mod
from engine.store import leases, taskrows, tasktables
from engine.store.migrations import current_version, migrate
from engine.store.taskdb import TaskDb, TaskDbError
from engine.store.taskrows import MARKETS, RowError

KINDS = {"monitor": "MONITORING", "trade": "TRADE"}
# A daemon heartbeats every poll (seconds); an hour of silence is not a pause.
DEAD_AFTER_S = 3600.0


class Duplicate(Exception):
    """The task is already in the table (its id in the message)."""


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
    dm.add_argument("--prune", action="store_true",
                    help="forget daemons silent for --older-than seconds that hold no live lease")
    dm.add_argument("--older-than", type=float, default=DEAD_AFTER_S, metavar="S",
                    help=f"seconds without a heartbeat before a daemon counts as dead "
                         f"(default {DEAD_AFTER_S:.0f})")
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


def refuse_duplicate(db: TaskDb, name: str, args: argparse.Namespace) -> None:
    """A task for the same book (MONITORING) or the same strategy on it (TRADE)
    is already there: adding it again would only make a row the daemon skips."""
    want = (taskrows.exchange_id(args.exchange), taskrows.market_type(args.market),
            taskrows.trade_pair(args.pair))
    for row in tasktables.read(db, name):
        have = (str(row["EXCHANGE_ID"]).strip().lower(), str(row["MARKET_TYPE"]).strip().lower(),
                str(row["TRADE_PAIR"]).strip().upper())
        if have != want or (name == "TRADE" and row["STRATEGY_ID"] != args.strategy):
            continue
        what = f"{want[0]} {want[1]} {want[2]}" + (f" strategy {args.strategy}" if name == "TRADE" else "")
        raise Duplicate(f"{name} task {row['ID']} already has {what} "
                        f"({'enabled' if row['ENABLED'] else 'disabled'}); change it with set/enable")


def check_strategy(args: argparse.Namespace) -> None:
    """The strategy id and params as the daemon will check them (ValueError)."""
    from engine.trade.strategy import STRATEGIES, load_modules, parse_params

    load_modules(tuple(getattr(args.trader, "strategy_modules", ()) or ()))
    cls = STRATEGIES.get(args.strategy)
    if cls is None:
        raise ValueError(f"unknown strategy {args.strategy!r} (known: {', '.join(sorted(STRATEGIES))})")
    raw = taskrows.strategy_params(args.params)
    parse_params(cls.Params, raw, f"--params of {args.strategy}")


def prune_daemons(db: TaskDb, older_than_s: float) -> list[str]:
    """Forget daemons whose last heartbeat is older than ``older_than_s`` and
    that hold no live lease (their lapsed leases go too); their ids."""
    cutoff_ms = int(older_than_s * 1000)
    with db.transaction():
        dead = [str(d) for (d,) in db.query(
            "SELECT DAEMON_ID FROM DAEMONS d WHERE HEARTBEAT_MS < {now_ms} - ? AND NOT EXISTS"
            " (SELECT 1 FROM TASK_LEASES l WHERE l.DAEMON_ID = d.DAEMON_ID"
            "  AND l.EXPIRES_MS > {now_ms}) ORDER BY DAEMON_ID", (cutoff_ms,))]
        for daemon_id in dead:
            leases.release_all(db, daemon_id)
            db.execute("DELETE FROM DAEMONS WHERE DAEMON_ID = ?", (daemon_id,))
    return dead


def run(args: argparse.Namespace, db: TaskDb) -> int:
    migrate(db)
    if args.command == "list":
        show(db, args.kind, args.json)
    elif args.command == "add":
        refuse_duplicate(db, "MONITORING", args)
        new_id = tasktables.add_monitoring(db, args.exchange, args.pair, market=args.market, depth=args.depth,
                                           priority=args.priority, enabled=not args.disabled)
        print(f"added MONITORING task {new_id}")
    elif args.command == "add-trade":
        check_strategy(args)
        refuse_duplicate(db, "TRADE", args)
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
        if args.older_than <= 0:
            raise ValueError(f"--older-than {args.older_than}: must be positive")
        if args.prune:
            gone = prune_daemons(db, args.older_than)
            print(f"pruned {len(gone)} dead daemons" + (f": {', '.join(gone)}" if gone else ""))
            return 0
        rows = leases.daemons(db)
        for row in rows:
            row["state"] = "dead" if row["heartbeat_age_s"] > args.older_than else "alive"
        if args.json:
            for row in rows:
                print(json.dumps(row))
        else:
            print(table(rows, ["daemon_id", "host", "pid", "capacity", "live_leases", "heartbeat_age_s",
                               "state"])
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
    args.trader = config.trader
    db = TaskDb.from_config(config)
    try:
        return run(args, db)
    except Duplicate as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
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

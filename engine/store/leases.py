"""Leases: which daemon runs which task. Heartbeats (DAEMONS), claims,
renewals and releases (TASK_LEASES), each a few statements the caller runs
in a transaction. Knows no task validation: callers pass the ids they may run.

Time rule: every lease time is the *database server's* clock in epoch ms,
read and compared inside the same SQL statement (``{now_ms}``). No daemon's
own clock enters a lease, so a host whose clock runs ahead cannot see another
daemon's lease as lapsed early. (SQLite has one host, so its clock is the rule.)

A claim is one conditional statement per task, and the row's primary key
makes it atomic: INSERT-if-absent for a task nobody ever held, UPDATE ..
WHERE EXPIRES_MS <= now for a lapsed one. Rowcount 1 means it is ours; two
daemons racing for a task block on the row lock and exactly one wins.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass

from engine.store.taskdb import TaskDb

MONITORING = "MONITORING"
TRADE = "TRADE"
# A lapsed lease whose holder never came back is deleted after this many lease
# lengths. Longer keeps the history of who ran what; shorter keeps the table small.
FORGET_AFTER_LEASES = 20


@dataclass(frozen=True)
class Lease:
    kind: str
    task_id: int
    daemon_id: str
    claimed_ms: int
    expires_ms: int


def heartbeat(db: TaskDb, daemon_id: str, capacity: int) -> None:
    """Record that ``daemon_id`` is alive (DAEMONS.HEARTBEAT_MS = server now)."""
    changed = db.execute("UPDATE DAEMONS SET HEARTBEAT_MS = {now_ms}, CAPACITY = ?, HOST = ?, PID = ?"
                         " WHERE DAEMON_ID = ?", (capacity, socket.gethostname(), os.getpid(), daemon_id))
    if not changed and not db.query("SELECT 1 FROM DAEMONS WHERE DAEMON_ID = ?", (daemon_id,)):
        db.execute("{insert_ignore} INTO DAEMONS (DAEMON_ID, HOST, PID, CAPACITY, STARTED_MS, HEARTBEAT_MS)"
                   " VALUES (?, ?, ?, ?, {now_ms}, {now_ms})",
                   (daemon_id, socket.gethostname(), os.getpid(), capacity))


def renew(db: TaskDb, kind: str, daemon_id: str, lease_ms: int) -> set[int]:
    """Extend every lease ``daemon_id`` still holds; the ids it holds.

    A lease that lapsed but was not taken over is still ours and is renewed:
    no one else ran the task meanwhile. One taken over is gone from the set."""
    db.execute("UPDATE TASK_LEASES SET EXPIRES_MS = {now_ms} + ? WHERE TASK_KIND = ? AND DAEMON_ID = ?",
               (lease_ms, kind, daemon_id))
    return held(db, kind, daemon_id)


def held(db: TaskDb, kind: str, daemon_id: str) -> set[int]:
    rows = db.query("SELECT TASK_ID FROM TASK_LEASES WHERE TASK_KIND = ? AND DAEMON_ID = ?", (kind, daemon_id))
    return {int(r[0]) for r in rows}


def release(db: TaskDb, kind: str, daemon_id: str, task_ids: Iterable[int]) -> None:
    """Give up leases (task disabled, deleted, invalid, over capacity, or stop)."""
    ids = sorted(set(task_ids))
    if ids:
        marks = ", ".join("?" for _ in ids)
        db.execute(f"DELETE FROM TASK_LEASES WHERE TASK_KIND = ? AND DAEMON_ID = ? AND TASK_ID IN ({marks})",
                   (kind, daemon_id, *ids))


def release_all(db: TaskDb, daemon_id: str, kind: str | None = None) -> int:
    """A clean stop: free every lease (of ``kind``, or all) at once so others
    need not wait for them to lapse; how many were freed."""
    if kind is None:
        return db.execute("DELETE FROM TASK_LEASES WHERE DAEMON_ID = ?", (daemon_id,))
    return db.execute("DELETE FROM TASK_LEASES WHERE DAEMON_ID = ? AND TASK_KIND = ?", (daemon_id, kind))


def forget_lapsed(db: TaskDb, kind: str, lease_ms: int) -> int:
    return db.execute("DELETE FROM TASK_LEASES WHERE TASK_KIND = ? AND EXPIRES_MS < {now_ms} - ?",
                      (kind, lease_ms * FORGET_AFTER_LEASES))


def claim(db: TaskDb, kind: str, daemon_id: str, candidates: Iterable[int], room: int,
          lease_ms: int) -> list[int]:
    """Claim up to ``room`` of ``candidates`` (in the caller's order: highest
    priority first) that nobody holds or whose lease lapsed; the ids won."""
    if room <= 0:
        return []
    rows = db.query("SELECT TASK_ID, EXPIRES_MS, {now_ms} FROM TASK_LEASES WHERE TASK_KIND = ?", (kind,))
    live = {int(task_id) for task_id, expires, now in rows if int(expires) > int(now)}
    lapsed = {int(task_id) for task_id, expires, now in rows if int(expires) <= int(now)}
    won: list[int] = []
    for task_id in candidates:
        if task_id in live:
            continue
        if task_id in lapsed:
            changed = db.execute(
                "UPDATE TASK_LEASES SET DAEMON_ID = ?, CLAIMED_MS = {now_ms}, EXPIRES_MS = {now_ms} + ?"
                " WHERE TASK_KIND = ? AND TASK_ID = ? AND EXPIRES_MS <= {now_ms}",
                (daemon_id, lease_ms, kind, task_id))
        else:
            changed = db.execute(
                "{insert_ignore} INTO TASK_LEASES (TASK_KIND, TASK_ID, DAEMON_ID, CLAIMED_MS, EXPIRES_MS)"
                " VALUES (?, ?, ?, {now_ms}, {now_ms} + ?)", (kind, task_id, daemon_id, lease_ms))
        if changed == 1:
            won.append(task_id)
            if len(won) >= room:
                break
    return won


def leases(db: TaskDb, kind: str | None = None) -> list[Lease]:
    sql = "SELECT TASK_KIND, TASK_ID, DAEMON_ID, CLAIMED_MS, EXPIRES_MS FROM TASK_LEASES"
    rows = db.query(sql + " WHERE TASK_KIND = ? ORDER BY TASK_ID", (kind,)) if kind else \
        db.query(sql + " ORDER BY TASK_KIND, TASK_ID")
    return [Lease(str(k), int(t), str(d), int(c), int(e)) for k, t, d, c, e in rows]


def daemons(db: TaskDb) -> list[dict]:
    """Every daemon that ever polled, with seconds since its last heartbeat."""
    rows = db.query("SELECT DAEMON_ID, HOST, PID, CAPACITY, STARTED_MS, {now_ms} - HEARTBEAT_MS,"
                    " (SELECT COUNT(*) FROM TASK_LEASES l WHERE l.DAEMON_ID = d.DAEMON_ID"
                    "  AND l.EXPIRES_MS > {now_ms}) FROM DAEMONS d ORDER BY DAEMON_ID")
    return [{"daemon_id": d, "host": h, "pid": p, "capacity": c, "started_ms": int(s),
             "heartbeat_age_s": round(int(age) / 1000, 1), "live_leases": int(n)}
            for d, h, p, c, s, age, n in rows]

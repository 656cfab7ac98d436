"""Versioned schema migrations for the task database: applies
``sql/taskdb/<dialect>/NNNN_<name>.sql`` in order at start, records each in
ENGINE_SCHEMA, and refuses a database newer than this code. Owns no other SQL.

  connect ─► exclusive lock ─► read ENGINE_SCHEMA.MAX(VERSION)
     ├─ newer than the newest file: SchemaTooNew (nothing touched)
     └─ else run each pending file's statements, INSERT its version ─► unlock
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from engine.store.taskdb import TaskDb, TaskDbError

# sql/ of the checkout, or the copy an installed wheel carries (setup.py)
SQL_ROOT = next(p for p in (Path(__file__).resolve().parents[1] / "_bundled" / "sql",
                            Path(__file__).resolve().parents[2] / "sql") if p.is_dir()) / "taskdb"
VERSION_TABLE = "ENGINE_SCHEMA"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class SchemaTooNew(TaskDbError):
    """The database was migrated by a newer engine; this one must not touch it."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    def statements(self) -> list[str]:
        return split_statements(self.path.read_text())


@dataclass(frozen=True)
class MigrationResult:
    before: int  # schema version found (0: empty database)
    after: int
    applied: tuple[int, ...]


def available(dialect: str, root: Path = SQL_ROOT) -> list[Migration]:
    """The migration files for ``dialect``, numbered 1..N without gaps."""
    found = []
    for path in sorted((root / dialect).glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path))
    numbers = [m.version for m in found]
    if numbers != list(range(1, len(found) + 1)):
        raise ValueError(f"{root / dialect}: migrations must be numbered 1..N, found {numbers}")
    return found


def split_statements(script: str) -> list[str]:
    """Statements of a SQL script; a trigger's BEGIN .. END body stays whole."""
    out: list[str] = []
    pending = ""
    for line in script.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("--")):
            continue
        pending += line + "\n"
        if sqlite3.complete_statement(pending):
            out.append(pending.strip().rstrip(";").strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"SQL script ends inside a statement: {pending.strip()[:80]!r}")
    return out


def current_version(db: TaskDb) -> int:
    if not db.table_exists(VERSION_TABLE):
        return 0
    rows = db.query(f"SELECT MAX(VERSION) FROM {VERSION_TABLE}")
    return int(rows[0][0] or 0)


def check_version(db: TaskDb, migrations: list[Migration]) -> int:
    """The database's version; SchemaTooNew if this code does not know it."""
    version = current_version(db)
    newest = migrations[-1].version if migrations else 0
    if version > newest:
        raise SchemaTooNew(
            f"task database {db.where} has schema version {version}, but this engine knows "
            f"versions up to {newest} only: it was upgraded by a newer engine. Run that newer "
            f"engine, or point storage.tasks at another database; refusing to use it.")
    return version


def migrate(db: TaskDb, root: Path = SQL_ROOT) -> MigrationResult:
    """Bring the schema up to date; safe to call from many daemons at once."""
    migrations = available(db.dialect.name, root)
    db.connect()
    if check_version(db, migrations) == len(migrations):
        return MigrationResult(len(migrations), len(migrations), ())  # the common case: no lock
    with db.exclusive("engine_taskdb_migrate"):
        before = check_version(db, migrations)  # another daemon may have migrated meanwhile
        applied = []
        for migration in migrations[before:]:
            for statement in migration.statements():
                db.execute(statement)
            db.execute(f"INSERT INTO {VERSION_TABLE} (VERSION, NAME) VALUES (?, ?)",
                       (migration.version, migration.name))
            applied.append(migration.version)
    return MigrationResult(before, before + len(applied), tuple(applied))

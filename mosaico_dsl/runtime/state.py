"""The state store: what was deployed where, in one SQLite file.

``deploy`` compares the build with this record (and with the live devices) to apply only
the difference, ``destroy`` removes what it lists even when the build directory is gone,
and ``plan`` reports drift between it and the devices. A deploy writes the store once, in
one SQLite transaction, after every target succeeded: a rolled-back deploy leaves it as it
was (plus a line in the deployment log). A lock file keeps two deploys from interleaving.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["StateStore", "UnitRecord", "UnitUpdate", "StateLocked", "default_state_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
  target TEXT NOT NULL,           -- p4runtime | openstack | local
  name TEXT NOT NULL,             -- switch, host, or "local"
  fingerprint TEXT NOT NULL,      -- pipeline cookie, template hash, plan hash
  data TEXT NOT NULL,             -- JSON: address, stack id, realised plan, ...
  deployment INTEGER NOT NULL,
  PRIMARY KEY (target, name)
);
CREATE TABLE IF NOT EXISTS entities (
  target TEXT NOT NULL,
  unit TEXT NOT NULL,
  key TEXT NOT NULL,              -- entities.identity(): what the device addresses
  value BLOB NOT NULL,            -- the canonical entity, serialised
  PRIMARY KEY (target, unit, key)
);
CREATE TABLE IF NOT EXISTS deployments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at REAL NOT NULL,
  command TEXT NOT NULL,          -- deploy | destroy
  build TEXT,
  outcome TEXT NOT NULL,          -- applied | unchanged | rolled back | failed
  summary TEXT NOT NULL
);
"""

SCHEMA_VERSION = "1"


def default_state_path() -> Path:
    """``$MOSAICO_STATE``, else ``.mosaico/state.db`` in the current directory."""
    return Path(os.environ.get("MOSAICO_STATE", ".mosaico/state.db"))


class StateLocked(Exception):
    pass


@dataclass(frozen=True, slots=True)
class UnitRecord:
    target: str
    name: str
    fingerprint: str
    data: Mapping[str, Any]
    deployment: int


@dataclass(frozen=True)
class UnitUpdate:
    """What a successful deploy learnt about one unit: its new record (``None``: the unit
    is gone) and, for switches, its complete entity set."""

    target: str
    name: str
    fingerprint: str | None
    data: Mapping[str, Any] = field(default_factory=dict)
    entities: Mapping[str, bytes] | None = None


class StateStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Targets read the store from worker threads (openstacksdk is synchronous).
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._mutex = threading.RLock()
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise ValueError(f"{self.path}: state schema {row[0]} is not {SCHEMA_VERSION}")
        self._lock_fd: int | None = None

    def close(self) -> None:
        self.unlock()
        self._db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ locking

    def lock(self) -> None:
        """Take the deploy lock (non-blocking): one deploy or destroy at a time."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StateLocked(f"another mosaico deploy or destroy holds {self.path}.lock") \
                from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    @contextmanager
    def locked(self):
        self.lock()
        try:
            yield self
        finally:
            self.unlock()

    # ------------------------------------------------------------------ reading

    def units(self, target: str | None = None) -> list[UnitRecord]:
        q = "SELECT target, name, fingerprint, data, deployment FROM units"
        with self._mutex:
            rows = self._db.execute(q + (" WHERE target=? ORDER BY name" if target else
                                         " ORDER BY target, name"),
                                    (target,) if target else ()).fetchall()
        return [UnitRecord(t, n, f, json.loads(d), dep) for t, n, f, d, dep in rows]

    def unit(self, target: str, name: str) -> UnitRecord | None:
        return next((u for u in self.units(target) if u.name == name), None)

    def entities(self, target: str, unit: str) -> dict[str, bytes]:
        with self._mutex:
            rows = self._db.execute("SELECT key, value FROM entities WHERE target=? AND "
                                    "unit=?", (target, unit)).fetchall()
        return dict(rows)

    def history(self, limit: int = 20) -> list[tuple]:
        with self._mutex:
            return self._db.execute("SELECT id, at, command, build, outcome, summary FROM "
                                    "deployments ORDER BY id DESC LIMIT ?",
                                    (limit,)).fetchall()

    # ------------------------------------------------------------------ writing

    def commit(self, command: str, build: str | None, outcome: str, summary: str,
               updates: Iterable[UnitUpdate] = ()) -> int:
        """Record a finished deploy/destroy and its unit updates in one transaction."""
        with self._mutex:
            return self._commit(command, build, outcome, summary, updates)

    def _same(self, u: UnitUpdate, data: str) -> bool:
        row = self._db.execute("SELECT fingerprint, data FROM units WHERE target=? AND "
                               "name=?", (u.target, u.name)).fetchone()
        if row != (u.fingerprint, data):
            return False
        return u.entities is None or self.entities(u.target, u.name) == dict(u.entities)

    def _commit(self, command, build, outcome, summary, updates) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            cur = db.execute("INSERT INTO deployments (at, command, build, outcome, summary) "
                             "VALUES (?, ?, ?, ?, ?)",
                             (time.time(), command, build, outcome, summary))
            dep = cur.lastrowid
            for u in updates:
                if u.fingerprint is None:
                    db.execute("DELETE FROM units WHERE target=? AND name=?",
                               (u.target, u.name))
                    db.execute("DELETE FROM entities WHERE target=? AND unit=?",
                               (u.target, u.name))
                    continue
                data = json.dumps(dict(u.data), sort_keys=True)
                if self._same(u, data):
                    continue  # unchanged: the unit keeps the deployment that last changed it
                db.execute("INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?, ?)",
                           (u.target, u.name, u.fingerprint, data, dep))
                if u.entities is not None:
                    db.execute("DELETE FROM entities WHERE target=? AND unit=?",
                               (u.target, u.name))
                    db.executemany("INSERT INTO entities VALUES (?, ?, ?, ?)",
                                   ((u.target, u.name, k, v)
                                    for k, v in sorted(u.entities.items())))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return dep

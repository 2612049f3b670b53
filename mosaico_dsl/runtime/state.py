"""The state store: what was deployed where, in one SQLite file, and what a run is doing.

``deploy`` compares the build with this record (and with the live devices) to apply only
the difference, ``destroy`` removes what it lists even when the build directory is gone,
and ``plan`` reports drift between it and the devices. A deploy writes the units once, in
one SQLite transaction, after every target succeeded: a rolled-back deploy leaves them as
they were (plus a line in the deployment log). A lock file keeps two deploys from
interleaving.

**The write-ahead record.** Before each step that changes a target (a namespace created,
a batch of P4Runtime updates, a stack created), the run writes an *intent* — what the step
is and how to undo it, as data — and SQLite makes it durable (``synchronous=FULL``) before
the step runs; the intent is marked completed after. The unit records' commit deletes the
run's intents in the same transaction, and so does a complete rollback. Intents left in
the store belong to a run that was killed (or could not undo everything): the next
``deploy`` or ``destroy`` undoes them, newest first, before anything else
(:func:`.deployment.recover`), so what the killed run created is removed even though no
unit record names it.

Everything read back is checked (a record that is not what this version writes is
``E1225``, naming the store and the record), and a store that cannot be written is found
out before any target is touched (``E1224``): a record that says deployed while the
targets were changed, or the reverse, is what the store exists to prevent.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from ..diagnostics import CompileError, Note, error

__all__ = ["StateStore", "UnitRecord", "UnitUpdate", "Intent", "WriteAhead", "StateError",
           "StateLocked", "default_state_path"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS units (
  target TEXT NOT NULL,           -- p4runtime | openstack | osm | local
  name TEXT NOT NULL,             -- switch, host, host/service, or "local"
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
  command TEXT NOT NULL,          -- deploy | destroy | recover
  build TEXT,
  outcome TEXT NOT NULL,          -- applied | unchanged | rolled back | failed | ...
  summary TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  run TEXT NOT NULL,              -- the run that wrote it (WriteAhead.run)
  pid INTEGER NOT NULL,
  command TEXT NOT NULL,          -- deploy | destroy
  target TEXT NOT NULL,
  unit TEXT NOT NULL,
  what TEXT NOT NULL,             -- the undo, readable: "remove namespace lab-s1 (switch s1)"
  spec TEXT NOT NULL,             -- JSON: how the target undoes the step, without the run
  done INTEGER NOT NULL,          -- 0: the step was about to run (or ran part-way)
  at REAL NOT NULL
);
"""

SCHEMA_VERSION = "2"  # 2: the write-ahead record (intents); 1 is upgraded in place


def default_state_path() -> Path:
    """``$MOSAICO_STATE``, else ``.mosaico/state.db`` in the current directory."""
    return Path(os.environ.get("MOSAICO_STATE", ".mosaico/state.db"))


class StateError(CompileError):
    """The store cannot serve the request: unreadable (E1214), not writable (E1224), or
    holding a record this version does not understand (E1225)."""

    def __init__(self, code: str, message: str, hint: str | None = None,
                 notes: Sequence[str] = ()) -> None:
        self.code = code
        super().__init__([error(code, message, hint=hint, notes=[Note(n) for n in notes])])


class StateLocked(StateError):
    def __init__(self, message: str) -> None:
        super().__init__("E1214", message, hint="wait for it to finish; remove the lock "
                                                "file only if no mosaico process is running")


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


@dataclass(frozen=True, slots=True)
class Intent:
    """One step of a run, written before the step: how to undo it without the run."""

    seq: int
    run: str
    pid: int
    command: str
    target: str
    unit: str
    what: str
    spec: Mapping[str, Any]
    done: bool
    at: float


_HINT_BROKEN = ("the store was edited or damaged: restore it from a backup, or give "
                "another --state")


def _why_unwritable(e: BaseException) -> str:
    """What a failed write means, in the user's terms."""
    name = getattr(e, "sqlite_errorname", "") or ""
    text = str(e)
    if name == "SQLITE_FULL" or "full" in text:
        return "its file system is full"
    if name.startswith("SQLITE_READONLY") or "readonly" in text or "read-only" in text:
        return "it is read-only"
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return "its directory cannot be written (read-only or immutable)"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror.lower()
    return text


class StateStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._mutex = threading.RLock()
        self._lock_fd: int | None = None
        self.writable = True  # False: opened read-only (plan and status still work)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Targets read the store from worker threads (openstacksdk is synchronous).
            self._db = sqlite3.connect(self.path, isolation_level=None,
                                       check_same_thread=False, timeout=10)
        except (OSError, sqlite3.Error) as e:
            raise StateError("E1214", f"cannot open the state store {self.path}: "
                                      f"{_why_unwritable(e)}",
                             hint="give a --state PATH in a directory you can write") from None
        try:
            self._db.execute("PRAGMA synchronous=FULL")  # an intent is on disk before its step
            version = self._version()
            if version is None or version != SCHEMA_VERSION:
                self._create(version)
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise StateError("E1214", f"{self.path} is not a mosaico state store "
                                      f"(SQLite: {e})", hint=_HINT_BROKEN) from None

    def _version(self) -> str | None:
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return None
            raise
        return row[0] if row else None

    def _create(self, version: str | None) -> None:
        if version not in (None, "1", SCHEMA_VERSION):
            self._db.close()
            raise StateError("E1214", f"{self.path}: state schema {version!r} is not "
                                      f"{SCHEMA_VERSION} (written by another mosaico version)",
                             hint="use the mosaico version that wrote it, or another --state")
        try:
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)",
                             (SCHEMA_VERSION,))
        except sqlite3.OperationalError:
            # A store that cannot be written can still be read (plan, status); a version 1
            # store then has no write-ahead record, and deploy/destroy refuse it (E1224).
            self.writable = False

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
        try:
            fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as e:
            raise StateError("E1224", f"cannot take the lock of the state store {self.path}: "
                                      f"{_why_unwritable(e)} ({self.path}.lock)",
                             hint="nothing was changed on any target; make the store "
                                  "writable, or give another --state") from None
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

    def busy(self) -> bool:
        """Does a deploy or destroy hold the lock now (another process, or this one)?"""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(f"{self.path}.lock", os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def check_writable(self) -> None:
        """Write the store once (a real commit): before a deploy or destroy touches any
        target, so a read-only or full store stops it while nothing has changed."""
        if not self.writable:
            raise self._unwritable("it was opened read-only", before=True)
        try:
            with self._mutex:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('checked', ?)",
                                 (repr(time.time()),))
        except sqlite3.Error as e:
            raise self._unwritable(_why_unwritable(e), before=True) from None

    def _unwritable(self, why: str, before: bool) -> StateError:
        return StateError(
            "E1224", f"the state store {self.path} cannot be written: {why}",
            hint=("nothing was changed on any target; " if before else "")
            + "make room or make it writable (or give another --state), then run it again")

    # ------------------------------------------------------------------ reading

    def malformed(self, target: str, name: str, why: str) -> StateError:
        """The error for a record of this store that is not what mosaico writes."""
        return StateError("E1225", f"the state store {self.path} holds a malformed record "
                                   f"for {target} unit {name!r}: {why}", hint=_HINT_BROKEN)

    def _read(self, query: str, args: tuple = ()) -> list[tuple]:
        try:
            with self._mutex:
                return self._db.execute(query, args).fetchall()
        except sqlite3.DatabaseError as e:
            raise StateError("E1214", f"cannot read the state store {self.path}: {e}",
                             hint=_HINT_BROKEN) from None

    def units(self, target: str | None = None, schema: Mapping | None = None, *,
              name: str | None = None) -> list[UnitRecord]:
        """The unit records (of one target; with ``name``, that unit's only), each checked:
        its data a JSON object (and, with ``schema``, valid against that JSON Schema)."""
        q = "SELECT target, name, fingerprint, data, deployment FROM units"
        if target and name is not None:
            rows = self._read(q + " WHERE target=? AND name=?", (target, name))
        else:
            rows = self._read(q + (" WHERE target=? ORDER BY name" if target else
                                   " ORDER BY target, name"), (target,) if target else ())
        out = []
        for t, n, f, d, dep in rows:
            if not isinstance(t, str) or not isinstance(n, str):
                raise self.malformed(str(t), str(n), "its target or name is not text")
            if not isinstance(f, str) or not isinstance(dep, int):
                raise self.malformed(t, n, "its fingerprint or deployment has the wrong type")
            try:
                data = json.loads(d) if isinstance(d, str | bytes) else None
            except ValueError as e:
                raise self.malformed(t, n, f"its data is not JSON ({e})") from None
            if not isinstance(data, dict):
                raise self.malformed(t, n, "its data is not a JSON object")
            rec = UnitRecord(t, n, f, data, dep)
            if schema is not None:
                self.validate(rec, schema)
            out.append(rec)
        return out

    def unit(self, target: str, name: str, schema: Mapping | None = None
             ) -> UnitRecord | None:
        # by name: a thousand switches each reading its own record is not a million
        return next(iter(self.units(target, schema, name=name)), None)

    def validate(self, rec: UnitRecord, schema: Mapping) -> None:
        """Check a record's data against its target's JSON Schema (E1225 with the path of
        the first bad field)."""
        problem = jsonschema.exceptions.best_match(
            jsonschema.Draft202012Validator(schema).iter_errors(dict(rec.data)))
        if problem is not None:
            where = "/".join(str(p) for p in problem.absolute_path) or "(top)"
            raise self.malformed(rec.target, rec.name, f"data at {where}: {problem.message}")

    def entities(self, target: str, unit: str) -> dict[str, bytes]:
        rows = self._read("SELECT key, value FROM entities WHERE target=? AND unit=?",
                          (target, unit))
        for k, v in rows:
            if not isinstance(k, str) or not isinstance(v, bytes):
                raise self.malformed(target, unit, f"entity {k!r} is not a serialised entity")
        return dict(rows)

    def history(self, limit: int = 20) -> list[tuple]:
        return self._read("SELECT id, at, command, build, outcome, summary FROM deployments "
                          "ORDER BY id DESC LIMIT ?", (limit,))

    def intents(self, targets: Iterable[str] | None = None) -> list[Intent]:
        """The write-ahead record: intents of runs that did not finish, oldest first."""
        try:
            with self._mutex:
                rows = self._db.execute("SELECT seq, run, pid, command, target, unit, what, "
                                        "spec, done, at FROM intents ORDER BY seq").fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return []  # a version 1 store opened read-only: it has none
            raise StateError("E1214", f"cannot read the state store {self.path}: {e}",
                             hint=_HINT_BROKEN) from None
        wanted = set(targets) if targets is not None else None
        out = []
        for seq, run, pid, command, target, unit, what, spec, done, at in rows:
            try:
                doc = json.loads(spec)
                if not isinstance(doc, dict) or not all(isinstance(x, str) for x in (
                        run, command, target, unit, what)):
                    raise ValueError("not an intent")
            except (TypeError, ValueError) as e:
                raise self.malformed(str(target), str(unit),
                                     f"write-ahead intent {seq}: {e}") from None
            if wanted is None or target in wanted:
                out.append(Intent(seq, run, int(pid), command, target, unit, what, doc,
                                  bool(done), float(at)))
        return out

    # ------------------------------------------------------------------ writing

    def _write(self, fn):
        try:
            with self._mutex:
                return fn(self._db)
        except sqlite3.Error as e:
            raise self._unwritable(_why_unwritable(e), before=False) from None

    def write_ahead(self, command: str) -> WriteAhead:
        """A new run's write-ahead record (see the module's docstring)."""
        return WriteAhead(self, command)

    def discard_intents(self, seqs: Iterable[int]) -> None:
        seqs = list(seqs)
        if seqs:
            self._write(lambda db: db.executemany("DELETE FROM intents WHERE seq=?",
                                                  ((s,) for s in seqs)))

    def log(self, command: str, build: str | None, outcome: str, summary: str) -> int:
        """A line in the deployment log, and nothing else."""
        return self.commit(command, build, outcome, summary)

    def commit(self, command: str, build: str | None, outcome: str, summary: str,
               updates: Iterable[UnitUpdate] = (), run: str | None = None) -> int:
        """Record a finished deploy/destroy and its unit updates in one transaction, with
        the write-ahead intents of ``run`` deleted in it."""
        return self._write(lambda db: self._commit(db, command, build, outcome, summary,
                                                   updates, run))

    def _same(self, u: UnitUpdate, data: str) -> bool:
        row = self._db.execute("SELECT fingerprint, data FROM units WHERE target=? AND "
                               "name=?", (u.target, u.name)).fetchone()
        if row != (u.fingerprint, data):
            return False
        return u.entities is None or self.entities(u.target, u.name) == dict(u.entities)

    def _commit(self, db, command, build, outcome, summary, updates, run) -> int:
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
            if run is not None:
                db.execute("DELETE FROM intents WHERE run=?", (run,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return dep


class WriteAhead:
    """One run's intents in the store: written (durably) before each step, completed
    after, deleted with the commit or a complete rollback."""

    def __init__(self, store: StateStore, command: str) -> None:
        self.store = store
        self.command = command
        self.run = uuid.uuid4().hex

    def write(self, target: str, unit: str, what: str, spec: Mapping[str, Any]) -> int:
        blob = json.dumps(dict(spec), sort_keys=True)
        return self.store._write(lambda db: db.execute(
            "INSERT INTO intents (run, pid, command, target, unit, what, spec, done, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (self.run, os.getpid(), self.command, target, unit, what, blob, time.time())
        ).lastrowid)

    def amend(self, seq: int, spec: Mapping[str, Any]) -> None:
        blob = json.dumps(dict(spec), sort_keys=True)
        self.store._write(lambda db: db.execute("UPDATE intents SET spec=? WHERE seq=?",
                                                (blob, seq)))

    def complete(self, seq: int) -> None:
        self.store._write(lambda db: db.execute("UPDATE intents SET done=1 WHERE seq=?",
                                                (seq,)))

    def discard(self, seqs: Iterable[int]) -> None:
        self.store.discard_intents(seqs)

"""Write an artifact directory all at once, or not at all — and never over someone else's.

Files go to a temporary sibling directory first (same filesystem), are flushed to disk,
and the directory is then renamed into place. An existing output directory is swapped out
and removed only after the new one is in place, so a crash leaves either the old or the
new tree — never a half-written one.

Replacing a directory deletes it, so it is replaced only when it is empty or is an output
mosaico wrote: its ``manifest.json`` (written with every output, see :func:`manifest`)
names every file in it with its SHA-256, and each file on disk must be listed and
unchanged — or be one of the manifest's ``derived`` files (what the output's own scripts
create, such as p4c's JSON next to ``run-bmv2.sh``). Anything else — a source file, a
hand-edited artifact, a user's notes — makes the write refuse (E1301) unless the caller
passes ``force=True`` (``--force``). A regular file, or the current directory, is never
replaced.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath

from ._version import __version__
from .diagnostics import CompileError, Note, error

__all__ = ["write_tree", "write_file", "check_target", "check_file", "manifest", "MANIFEST"]

MANIFEST = "manifest.json"
_SHOWN = 8  # problems listed in a refusal; the rest are counted


def _safe(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"artifact path {rel!r} escapes the output directory")
    return p


def manifest(kind: str, files: Mapping[str, bytes], derived: Iterable[str] = (),
             **extra: object) -> bytes:
    """The ``manifest.json`` of an output of ``kind`` ("build", "simulation", "experiment"):
    every file's SHA-256, and the ``derived`` files its scripts may add (replaceable with it)."""
    doc = {"mosaico": __version__, "kind": kind, **extra,
           "files": {p: hashlib.sha256(b).hexdigest() for p, b in sorted(files.items())}}
    if derived:
        doc["derived"] = sorted(set(derived))
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _refuse(target: Path, message: str, problems: list[str] = (), force_helps: bool = True
            ) -> CompileError:
    notes = [Note(p) for p in problems[:_SHOWN]]
    if len(problems) > _SHOWN:
        notes.append(Note(f"… and {len(problems) - _SHOWN} more"))
    hint = ("write to a new or empty directory, or pass --force (Python: force=True) to "
            "replace it and everything in it" if force_helps else
            "write to a new or empty directory")
    return CompileError([error("E1301", f"refusing to replace {target}: {message}",
                               hint=hint, notes=notes)])


def _read_manifest(path: Path) -> dict | None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(doc, dict) and isinstance(doc.get("mosaico"), str)
            and isinstance(doc.get("files"), dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in doc["files"].items())
            and isinstance(doc.get("derived", []), list)):
        return None
    return doc


def _walk(root: Path) -> Iterable[str]:
    """Every non-directory entry under ``root`` (symbolic links included, not followed)."""
    for here, dirs, names in os.walk(root):
        rel = Path(here).relative_to(root)
        for d in dirs:
            if (Path(here) / d).is_symlink():
                names.append(d)
        dirs[:] = [d for d in dirs if not (Path(here) / d).is_symlink()]
        for n in names:
            yield (rel / n).as_posix()


def _foreign(target: Path, kind: str) -> tuple[str, list[str]] | None:
    """Why replacing the directory ``target`` would delete what mosaico did not write
    (a summary and the files concerned), or None when it holds only a mosaico output of
    ``kind``."""
    doc = _read_manifest(target / MANIFEST)
    if doc is None:
        shown = []
        for rel in _walk(target):  # stops early: a large foreign tree is not walked whole
            shown.append(f"{rel} was not written by mosaico")
            if len(shown) > _SHOWN:
                break
        if not shown:
            return None  # empty (or only empty directories): nothing to lose
        what = ("its manifest.json is not a mosaico manifest" if (target / MANIFEST).exists()
                else "it is not a mosaico output (no manifest.json)")
        return what, shown
    old_kind = doc.get("kind", "build")  # manifests before `kind` came from `compile`
    if old_kind != kind:
        return f"it holds a mosaico {old_kind}, not a {kind}", []
    listed, derived = doc["files"], set(doc.get("derived", []))
    problems = []
    for rel in _walk(target):
        path = target / rel
        if rel == MANIFEST or (rel in derived and not path.is_symlink()):
            continue
        if rel not in listed or path.is_symlink():
            problems.append(f"{rel} was not written by mosaico")
            continue
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as e:
            problems.append(f"{rel} cannot be read ({e.strerror or e})")
            continue
        if digest != listed[rel]:
            problems.append(f"{rel} was changed after mosaico wrote it")
    if problems:
        return "it holds files mosaico did not write", problems
    return None


def check_target(target: Path | str, kind: str, force: bool = False) -> Path:
    """The directory to write (symbolic links resolved); raises E1301 when an output of
    ``kind`` may not replace it. Commands call it before long work, so a refusal comes
    first; :func:`write_tree` checks again when it writes."""
    target = Path(target).absolute()
    if target.is_symlink():
        if not target.exists():
            raise _refuse(target, "it is a dangling symbolic link", force_helps=False)
        target = target.resolve()
    if not target.exists():
        return target
    if not target.is_dir():
        raise _refuse(target, "it is a file, not a directory", force_helps=False)
    cwd = Path.cwd().resolve()
    real = target.resolve()
    if real == cwd or real in cwd.parents:
        raise _refuse(real, "it is the current directory" if real == cwd else
                      "it contains the current directory", force_helps=False)
    if not force:
        found = _foreign(target, kind)
        if found is not None:
            raise _refuse(target, *found)
    return target


def write_tree(target: Path, files: Mapping[str, bytes], modes: Mapping[str, int] | None = None,
               *, force: bool = False) -> None:
    """Replace directory ``target`` by exactly ``files`` (relative POSIX paths → bytes).

    ``files`` must hold the output's ``manifest.json`` (:func:`manifest`); an existing
    ``target`` is replaced only if it is empty or an unchanged mosaico output of the same
    kind, or if ``force``. Raises :class:`CompileError` (E1301 refused, E1302 the
    filesystem failed).
    """
    doc = json.loads(files[MANIFEST])  # KeyError: a caller forgot the manifest (a bug)
    target = check_target(target, doc["kind"], force)
    try:
        _swap(target, files, modes or {})
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise CompileError([error("E1302", f"cannot write {target}: "
                                  f"{e.strerror or e}{where}",
                                  hint="check that the directory is writable and the disk "
                                       "has space")]) from None


def _swap(target: Path, files: Mapping[str, bytes], modes: Mapping[str, int]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        for rel in sorted(files):
            path = tmp.joinpath(*_safe(rel).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as fh:
                fh.write(files[rel])
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(path, modes.get(rel, 0o644))
        os.chmod(tmp, 0o755)
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            try:
                os.rename(target, old / "tree")
                try:
                    os.rename(tmp, target)
                except OSError:
                    os.rename(old / "tree", target)  # put the previous tree back
                    raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_file(path: Path | str, ours: Callable[[bytes], bool], force: bool = False) -> None:
    """Raise E1301 unless :func:`write_file` may write ``path``."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise _refuse(path, "it is not a regular file", force_helps=False)
    if path.exists() and not force:
        try:
            old = path.read_bytes()
        except OSError as e:
            raise _refuse(path, f"it cannot be read ({e.strerror or e})") from None
        if not ours(old):
            raise CompileError([error(
                "E1301", f"refusing to overwrite {path}: mosaico did not write it",
                hint="choose another file name, or pass --force to overwrite it")])


def write_file(path: Path | str, data: bytes, *, ours: Callable[[bytes], bool],
               force: bool = False) -> None:
    """Replace the single file ``path`` atomically (a reader sees the old file or the new
    one). An existing file is replaced only if ``ours(its bytes)`` says mosaico wrote it,
    or if ``force``; raises :class:`CompileError` E1301/E1302 like :func:`write_tree`."""
    path = Path(path)
    check_file(path, ours, force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as e:
        raise CompileError([error("E1302", f"cannot write {path}: {e.strerror or e}",
                                  hint="check that the directory is writable and the disk "
                                       "has space")]) from None

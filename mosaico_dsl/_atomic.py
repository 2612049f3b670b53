"""Write an artifact directory all at once, or not at all.

Files go to a temporary sibling directory first (same filesystem), are flushed to disk,
and the directory is then renamed into place. An existing output directory is swapped out
and removed only after the new one is in place, so a crash leaves either the old or the
new tree — never a half-written one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

__all__ = ["write_tree"]


def _safe(rel: str) -> PurePosixPath:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or not p.parts:
        raise ValueError(f"artifact path {rel!r} escapes the output directory")
    return p


def write_tree(target: Path, files: Mapping[str, bytes], modes: Mapping[str, int] | None = None
               ) -> None:
    """Replace directory ``target`` by exactly ``files`` (relative POSIX paths → bytes)."""
    target = Path(target).absolute()
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
            os.chmod(path, (modes or {}).get(rel, 0o644))
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

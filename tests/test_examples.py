"""Every example compiles, deterministically; output directories are replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import mosaico_dsl as mo
from mosaico_dsl._atomic import MANIFEST, manifest, write_tree
from mosaico_dsl.diagnostics import CompileError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.mosaico"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_compiles_to_byte_identical_artifacts(path):
    first = mo.compile(path)
    second = mo.compile(path)
    assert first.artifacts == second.artifacts
    assert {"ir.json", "manifest.json", "placement.json"} <= set(first.artifacts)
    assert not any(d.is_error for d in first.diagnostics)


def _output(files: dict[str, bytes]) -> dict[str, bytes]:
    return {**files, MANIFEST: manifest("build", files)}


def test_write_replaces_the_previous_tree(tmp_path):
    out = tmp_path / "build"
    write_tree(out, _output({"a.txt": b"old", "sub/b.txt": b"old"}))
    write_tree(out, _output({"c.txt": b"new"}))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == ["c.txt", MANIFEST]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dirs


def test_a_failed_write_keeps_the_previous_tree(tmp_path, monkeypatch):
    out = tmp_path / "build"
    write_tree(out, _output({"a.txt": b"old"}))
    real_rename = os.rename
    failures = []

    def failing_rename(src, dst):  # the new tree cannot be moved into place, once
        if Path(dst) == out and not failures:
            failures.append(src)
            raise OSError("disk full")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(CompileError, match="E1302.*disk full"):
        write_tree(out, _output({"a.txt": b"new", "b.txt": b"new"}))
    monkeypatch.undo()
    assert (out / "a.txt").read_bytes() == b"old" and not (out / "b.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_artifact_paths_cannot_escape_the_output_directory(tmp_path):
    with pytest.raises(ValueError, match="escapes"):
        write_tree(tmp_path / "b", _output({"../evil": b"x"}))

"""Outputs never destroy what mosaico did not write (E1301), and write atomically (E1302).

An output directory is replaced only when it is empty or holds exactly a previous mosaico
output of the same kind (its manifest.json lists every file with its hash); a regular
file, the current directory, or a directory with anyone else's files is refused unless
the caller passes --force / force=True.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

import mosaico_dsl as mo
from mosaico_dsl._atomic import MANIFEST, manifest, write_tree
from mosaico_dsl.cli import cli
from mosaico_dsl.diagnostics import CompileError

ROOT = Path(__file__).resolve().parent.parent
FLAGSHIP = ROOT / "examples" / "secure_l4s.mosaico"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def files(kind: str, contents: dict[str, bytes]) -> dict[str, bytes]:
    return {**contents, MANIFEST: manifest(kind, contents)}


@pytest.fixture(scope="module")
def flagship():
    return mo.compile(FLAGSHIP)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A user's folder holding the source and a note, as the current directory."""
    shutil.copy(FLAGSHIP, tmp_path / "prog.mosaico")
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("command", [("compile",), ("sim", "--duration", "1s", "--no-plots")])
def test_output_to_the_folder_holding_the_source_deletes_nothing(project, command):
    before = tree(project)
    r = run(command[0], "prog.mosaico", *command[1:], "-o", ".")
    assert r.exit_code == 1, r.output
    assert "error[E1301]: refusing to replace" in r.stderr
    assert "it is the current directory" in r.stderr
    assert tree(project) == before
    # --force does not make the current directory replaceable either
    assert run(command[0], "prog.mosaico", *command[1:], "-o", ".", "--force").exit_code == 1
    assert tree(project) == before


@pytest.mark.parametrize("command", [("compile",), ("sim", "--duration", "1s", "--no-plots")])
def test_output_to_a_folder_of_the_users_is_refused_before_the_work(project, command):
    (project / "sub").mkdir()
    shutil.copy(project / "prog.mosaico", project / "sub" / "prog.mosaico")
    before = tree(project)
    r = run(command[0], "prog.mosaico", *command[1:], "-o", "sub")
    assert r.exit_code == 1
    assert "it is not a mosaico output (no manifest.json)" in r.stderr
    assert "prog.mosaico was not written by mosaico" in r.stderr
    assert "--force" in r.stderr
    assert tree(project) == before
    assert "wrote" not in r.stderr  # refused before compiling or simulating


def test_force_replaces_a_users_folder(project):
    (project / "sub").mkdir()
    (project / "sub" / "old.txt").write_text("x")
    r = run("compile", "prog.mosaico", "-o", "sub", "--force")
    assert r.exit_code == 0, r.output
    assert not (project / "sub" / "old.txt").exists()
    assert (project / "sub" / "manifest.json").exists()


def test_compile_result_write_never_replaces_a_regular_file(tmp_path, flagship):
    afile = tmp_path / "afile"
    afile.write_text("precious")
    for force in (False, True):
        with pytest.raises(CompileError) as e:
            flagship.write(afile, force=force)
        (d,) = e.value.diagnostics
        assert d.code == "E1301" and "it is a file, not a directory" in d.message
    assert afile.read_text() == "precious"


def test_a_previous_build_is_replaced_and_its_derived_files_with_it(tmp_path, flagship):
    out = tmp_path / "build"
    flagship.write(out)
    # run-bmv2.sh compiles s1.p4 next to itself: those files are the build's own
    (out / "s1" / "s1.json").write_text("{}")
    (out / "s1" / "p4info.p4c.txtpb").write_text("")
    assert set(json.loads((out / MANIFEST).read_text())["derived"]) == {
        "s1/s1.json", "s1/p4info.p4c.txtpb"}
    flagship.write(out)
    assert tree(out) == dict(flagship.artifacts)


def test_a_changed_or_added_file_makes_a_build_the_users(tmp_path, flagship):
    out = tmp_path / "build"
    flagship.write(out)
    (out / "s1" / "entries.txt").write_text("my edit")
    (out / "README").write_text("my notes")
    with pytest.raises(CompileError) as e:
        flagship.write(out)
    notes = [n.message for n in e.value.diagnostics[0].notes]
    assert "s1/entries.txt was changed after mosaico wrote it" in notes
    assert "README was not written by mosaico" in notes
    assert (out / "README").read_text() == "my notes"
    flagship.write(out, force=True)
    assert tree(out) == dict(flagship.artifacts)


def test_a_build_and_a_simulation_do_not_replace_each_other(tmp_path):
    out = tmp_path / "out"
    write_tree(out, files("simulation", {"metrics.json": b"{}"}))
    with pytest.raises(CompileError, match="it holds a mosaico simulation, not a build"):
        write_tree(out, files("build", {"ir.json": b"{}"}))
    write_tree(out, files("simulation", {"metrics.json": b"[]"}))
    assert (out / "metrics.json").read_bytes() == b"[]"


@pytest.mark.parametrize("bad", [b"{}", b"not json", b'{"mosaico": "0.1", "files": []}'])
def test_a_foreign_manifest_does_not_make_a_directory_mosaicos(tmp_path, bad):
    out = tmp_path / "out"
    out.mkdir()
    (out / MANIFEST).write_bytes(bad)
    (out / "data.csv").write_text("1,2")
    with pytest.raises(CompileError, match="its manifest.json is not a mosaico manifest"):
        write_tree(out, files("build", {"a": b"x"}))
    assert (out / "data.csv").exists()


def test_an_empty_directory_and_a_symlinked_build_are_replaced(tmp_path, flagship):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    flagship.write(empty)
    real = tmp_path / "real"
    flagship.write(real)
    link = tmp_path / "link"
    link.symlink_to(real)
    flagship.write(link)
    assert link.is_symlink() and tree(real) == dict(flagship.artifacts)


def test_place_never_overwrites_a_file_it_did_not_write(project):
    source = (project / "prog.mosaico").read_text()
    r = run("place", "prog.mosaico", "-q", "-o", "prog.mosaico")
    assert r.exit_code == 1 and "error[E1301]: refusing to overwrite prog.mosaico" in r.stderr
    assert (project / "prog.mosaico").read_text() == source
    assert run("place", "prog.mosaico", "-q", "-o", "p.json").exit_code == 0
    assert run("place", "prog.mosaico", "-q", "-o", "p.json").exit_code == 0  # its own
    assert run("place", "prog.mosaico", "-q", "-o", "notes.txt", "--force").exit_code == 0
    assert json.loads((project / "notes.txt").read_text())["assignments"]


def test_a_filesystem_failure_is_a_diagnostic(tmp_path, flagship):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CompileError) as e:
        flagship.write(blocker / "build")
    (d,) = e.value.diagnostics
    assert d.code == "E1302" and d.message.startswith(f"cannot write {blocker / 'build'}")
    r = run("compile", str(FLAGSHIP), "-o", str(blocker / "build"))
    assert r.exit_code == 1 and "error[E1302]" in r.stderr


def test_the_simulation_output_has_a_manifest_of_its_files(tmp_path):
    from mosaico_dsl.sim import simulate

    result = simulate(FLAGSHIP, duration="200ms", traffic="cubic:1")
    out = result.write(tmp_path / "sim", plots=False)
    doc = json.loads((out / MANIFEST).read_text())
    assert doc["kind"] == "simulation" and doc["mosaico"] == mo.__version__
    assert set(doc["files"]) == set(tree(out)) - {MANIFEST}
    result.write(out, plots=False)  # its own output: replaced
    assert os.listdir(tmp_path) == ["sim"]  # no temporary directories left

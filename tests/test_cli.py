"""The `mosaico` command line: exit codes 0/1/2/3, output, and no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mosaico_dsl.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FLAGSHIP = ROOT / "examples" / "secure_l4s.mosaico"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_version_and_help():
    from mosaico_dsl import __version__
    assert run("--version").output.strip() == f"mosaico, version {__version__}"
    out = run("--help").output
    for command in ("check", "fmt", "compile"):
        assert command in out


def test_check_ok_and_errors(tmp_path):
    r = run("check", str(FLAGSHIP))
    assert r.exit_code == 0 and f"{FLAGSHIP}: ok" in r.stderr
    bad = tmp_path / "bad.mosaico"
    bad.write_text("const A = 1ms * 2ms\nconst B = C\n")
    r = run("check", str(bad))
    assert r.exit_code == 1
    assert "error[E0305]: cannot multiply time by time" in r.stderr
    assert f"--> {bad}:1:11" in r.stderr and "error[E0203]" in r.stderr
    assert "2 errors" in r.stderr and "Traceback" not in r.stderr


def test_check_json_diagnostics(tmp_path):
    bad = tmp_path / "bad.mosaico"
    bad.write_text("const B = C\n")
    r = run("check", "--format", "json", str(bad))
    assert r.exit_code == 1
    (d,) = json.loads(r.stdout)  # data on stdout, nothing on stderr
    assert d["code"] == "E0203" and d["span"]["line"] == 1 and d["severity"] == "error"
    assert r.stderr == ""


def test_check_json_is_one_document_for_every_file(tmp_path):
    (tmp_path / "a.mosaico").write_text("const A = 1 2\n")
    (tmp_path / "b.mosaico").write_text("const B = $\n")
    r = run("check", "--format", "json", str(tmp_path / "a.mosaico"), str(FLAGSHIP),
            str(tmp_path / "b.mosaico"))
    assert r.exit_code == 1 and r.stderr == ""
    found = json.loads(r.stdout)  # one JSON value, not one array per file
    assert [(d["code"], Path(d["span"]["file"]).name) for d in found] == [
        ("E0101", "a.mosaico"), ("E0102", "b.mosaico")]
    r = run("check", "--format", "json", str(FLAGSHIP))
    assert r.exit_code == 0 and json.loads(r.stdout) == [] and r.stderr == ""


@pytest.mark.parametrize("command", ["plan", "status"])
def test_runtime_json_errors_are_one_document_on_stdout(tmp_path, command):
    r = run(command, "--format", "json", str(tmp_path / "missing"), "--state",
            str(tmp_path / "state.db"))
    assert r.exit_code == 1 and r.stderr == ""
    (d,) = json.loads(r.stdout)
    assert d["code"] == "E1201"


def test_usage_errors_exit_2(tmp_path):
    assert run("check", str(tmp_path / "missing.mosaico")).exit_code == 2
    assert run("frobnicate").exit_code == 2
    assert run("compile", str(FLAGSHIP)).exit_code == 2  # -o is required
    r = run("compile", str(FLAGSHIP), "-o", str(tmp_path / "b"), "--emit", "nope")
    assert r.exit_code == 2 and "choose from" in r.stderr


ALL_READERS = [("check",), ("fmt",), ("fmt", "--check"), ("compile", "-o", "out"),
               ("place",), ("sim", "--duration", "1s", "-o", "sim")]


@pytest.mark.parametrize("command", ALL_READERS)
def test_a_file_that_is_not_utf8_is_the_same_diagnostic_for_every_command(tmp_path, command):
    binary = tmp_path / "bin.mosaico"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    r = run(*command, str(binary))
    assert r.exit_code == 1, r.stderr
    assert f"error[E0101]: {binary} is not UTF-8 text (byte 0xff at offset 0)" in r.stderr
    assert "save it as UTF-8" in r.stderr


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("command", ALL_READERS)
def test_unreadable_files_are_the_users_error_not_internal_errors(tmp_path, command):
    # Reading /proc/self/mem at offset 0 fails with EIO, even as root (chmod 000 does not
    # stop root): any OSError while reading is the user's, not a bug in mosaico.
    unreadable = tmp_path / "io.mosaico"
    unreadable.symlink_to("/proc/self/mem")
    r = run(*command, str(unreadable))
    assert r.exit_code == 1, r.stderr
    assert f"error[E0101]: cannot read {unreadable}" in r.stderr
    assert "internal error" not in r.stderr


def test_check_reports_every_file_even_after_an_unreadable_one(tmp_path):
    binary = tmp_path / "bin.mosaico"
    binary.write_bytes(b"\xff")
    r = run("check", str(binary), str(FLAGSHIP))
    assert r.exit_code == 1 and "not UTF-8" in r.stderr and f"{FLAGSHIP}: ok" in r.stderr


def test_fmt_check_write_and_stdin(tmp_path):
    messy = tmp_path / "m.mosaico"
    messy.write_text("const   A=1;const B = [1,2]")
    assert run("fmt", "--check", str(messy)).exit_code == 1
    r = run("fmt", "--diff", str(messy))
    assert r.exit_code == 1 and "+const A = 1" in r.output
    assert run("fmt", str(messy)).exit_code == 0
    assert messy.read_text() == "const A = 1\nconst B = [1, 2]\n"
    assert run("fmt", "--check", str(messy)).exit_code == 0
    r = run("fmt", "-", input="const  X=2")
    assert r.exit_code == 0 and r.output == "const X = 2\n"
    r = run("fmt", "-", input="const X = ")
    assert r.exit_code == 1 and "E0103" in r.stderr


def test_compile_writes_ir_and_manifest(tmp_path):
    out = tmp_path / "build"
    r = run("compile", str(FLAGSHIP), "-o", str(out), "--emit", "ir")
    assert r.exit_code == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["ir.json", "manifest.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["services"] == ["web_ll"] and "ir.json" in manifest["files"]
    ir = json.loads((out / "ir.json").read_text())
    assert ir["mosaico_ir"] == 1 and ir["services"][0]["name"] == "web_ll"


def test_compile_errors_leave_no_output(tmp_path):
    bad = tmp_path / "bad.mosaico"
    bad.write_text(FLAGSHIP.read_text().replace("latency <= 20ms", "latency <= 2ms"))
    r = run("compile", str(bad), "-o", str(tmp_path / "build"))
    assert r.exit_code == 1 and "E0601" in r.stderr
    assert not (tmp_path / "build").exists()


def test_internal_errors_are_reported_without_traceback(monkeypatch):
    # A bug inside mosaico must not look like a user error, nor dump a traceback.
    import mosaico_dsl.compiler as compiler

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(compiler, "_check", broken)
    r = run("check", str(FLAGSHIP))
    assert r.exit_code == 3
    assert "internal error: RuntimeError: boom" in r.stderr and "Traceback" not in r.stderr


def test_console_script_runs_from_another_directory(tmp_path):
    r = subprocess.run([sys.executable, "-m", "mosaico_dsl", "check", str(FLAGSHIP)],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("garbage", ["}}}", "service", "\x00\x01", "topology t { link a -- }"])
def test_garbage_never_produces_a_traceback(tmp_path, garbage):
    f = tmp_path / "g.mosaico"
    f.write_text(garbage)
    r = run("check", str(f))
    assert r.exit_code == 1 and "Traceback" not in r.stderr and "error[E01" in r.stderr


@pytest.mark.parametrize("text, message", [
    ("", "nothing to compile: the program declares no topology"),
    ("const A = 1\n", "nothing to compile: the program declares no topology"),
    ("topology lab {\n}\n", "nothing to compile: topology `lab` has no nodes"),
])
def test_compile_of_a_program_without_nodes_is_nothing_to_compile(tmp_path, text, message):
    src = tmp_path / "p.mosaico"
    src.write_text(text)
    r = run("compile", str(src), "-o", str(tmp_path / "out"))
    assert r.exit_code == 1, r.output
    assert f"error[E0711]: {message}" in r.stderr and "internal error" not in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["new\nline.mosaico", "tab\tand #.mosaico", "back\\.mosaico"])
def test_any_file_name_compiles_and_stays_inside_comments(tmp_path, name):
    src = tmp_path / name
    src.write_text(FLAGSHIP.read_text())
    r = run("compile", str(src), "-o", str(tmp_path / "out"))
    assert r.exit_code == 0, r.output
    p4 = (tmp_path / "out" / "s1" / "s1.p4").read_text()
    first = p4.splitlines()[0]
    assert first.startswith("// s1.p4 — generated by mosaico") and first.endswith("do not edit.")
    assert p4.splitlines()[1].startswith("// Switch s1")
    from mosaico_dsl.backends.p4.syntax import check_file

    check_file(tmp_path / "out" / "s1" / "s1.p4")  # the comment did not break the program

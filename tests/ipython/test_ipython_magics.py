"""``%load_ext mosaico_dsl``: the cell and line magics and the diagnostics handler, driven
through a real in-process IPython shell exactly as a user's cells are."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import mosaico_dsl as mo
from mosaico_dsl.compiler import CompileResult
from mosaico_dsl.display import PlacementView
from mosaico_dsl.ipython import CheckReport, SourceProgram
from mosaico_dsl.place import place
from mosaico_dsl.sim import SimResult

ROOT = Path(__file__).resolve().parents[2]
FLAGSHIP = ROOT / "examples" / "secure_l4s.mosaico"
SOURCE = FLAGSHIP.read_text()


def texts(cap) -> list[str]:
    return [o.data.get("text/plain", "") for o in cap.outputs]


def htmls(cap) -> list[str]:
    return [o.data.get("text/html", "") for o in cap.outputs]


def test_importing_the_package_does_not_import_ipython():
    import subprocess

    code = "import sys, mosaico_dsl; print('IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    assert callable(mo.load_ipython_extension) and callable(mo.unload_ipython_extension)


def test_cell_magic_binds_a_checked_program(shell, run):
    result, cap = run("%%mosaico flagship\n" + SOURCE)
    assert result.success, result.error_in_exec
    program = shell.user_ns["flagship"]
    assert isinstance(program, SourceProgram) and isinstance(program, mo.Program)
    # The same IR as the file: the cell is just another way to write the program.
    assert mo.check(program) == mo.check(FLAGSHIP)
    assert program.to_source() == SOURCE
    # The cell's value is the program, drawn as its chains.
    html = program._repr_html_()
    assert "mosaico-chain" in html and "Blocklist" in html and "<svg" in html
    assert result.result is program


def test_cell_magic_quiet_and_usage(shell, run):
    result, _ = run("%%mosaico p --quiet\n" + SOURCE)
    assert result.success and result.result is None and "p" in shell.user_ns
    result, _ = run("%%mosaico\n" + SOURCE)
    assert not result.success and "usage: %%mosaico NAME" in str(result.error_in_exec)
    result, _ = run("%%mosaico not-a-name\n" + SOURCE)
    assert not result.success


def test_cell_diagnostics_show_the_cell_line_and_caret_not_a_traceback(shell, run):
    bad = SOURCE.replace("require latency <= 20ms", "require latency <= 12Mbps")
    result, cap = run("%%mosaico broken\n" + bad)
    assert isinstance(result.error_in_exec, mo.CompileError)
    assert "broken" not in shell.user_ns
    count = result.execution_count
    # Line numbers count the cell as shown: line 1 is the %%mosaico line.
    line = ("%%mosaico broken\n" + bad).splitlines().index("  require latency <= 12Mbps") + 1
    col = "  require latency <= 12Mbps".index("12Mbps") + 1
    (text,) = texts(cap)
    assert f"--> In[{count}]:{line}:{col}" in text
    assert f"{line} |   require latency <= 12Mbps" in text
    assert "^^^^^^" in text and "hint: write a time" in text and "1 error" in text
    assert "Traceback" not in text
    (html,) = htmls(cap)
    assert "error[E0302]" in html and "12Mbps" in html and "<pre" in html


def test_syntax_errors_point_into_the_cell(run):
    result, cap = run("%%mosaico broken\ntopology lab {\n  switch s1 bmv2 {}\n}")
    assert isinstance(result.error_in_exec, mo.CompileError)
    (text,) = texts(cap)
    assert ":3:" in text and "switch s1 bmv2" in text and "Traceback" not in text


def test_python_api_errors_map_to_the_cell(shell, run):
    code = ("import mosaico_dsl as mo\n"
            "lab = mo.Topology('lab')\n"
            "s1 = lab.switch('s1')\n"
            "lab.link(s1.port(1), 'nowhere', bandwidth='1Gbps', delay='1ms')\n"
            "mo.check(mo.Program(lab))\n")
    result, cap = run(code)
    assert isinstance(result.error_in_exec, mo.CompileError)
    count = result.execution_count
    (text,) = texts(cap)
    assert f"--> In[{count}]:4:1" in text
    assert "4 | lab.link(s1.port(1), 'nowhere'" in text
    assert "unknown node `nowhere`" in text and "Traceback" not in text


def test_other_exceptions_still_get_a_traceback(run):
    result, cap = run("1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert not any("error[" in t for t in texts(cap))


def test_a_previous_custom_handler_keeps_its_exceptions(_session_shell, run):
    from IPython.utils.capture import capture_output

    shell = _session_shell
    shell.run_line_magic("unload_ext", "mosaico_dsl")
    seen = []

    class Mine(Exception):
        pass

    shell.set_custom_exc((Mine,), lambda self, etype, value, tb, tb_offset=None:
                         seen.append(value) or [])
    try:
        shell.run_line_magic("load_ext", "mosaico_dsl")
        shell.user_ns["Mine"] = Mine
        with capture_output():
            shell.run_cell("raise Mine('x')")
        assert len(seen) == 1
        result, cap = run("%%mosaico b\ntopology t { switch s1 : bmv2 { ports: -1 } }")
        assert isinstance(result.error_in_exec, mo.CompileError) and "error[" in texts(cap)[0]
        shell.run_line_magic("unload_ext", "mosaico_dsl")
        assert shell.custom_exceptions == (Mine,)  # restored as it was
    finally:
        shell.set_custom_exc((), None)
        shell.run_line_magic("load_ext", "mosaico_dsl")


def test_check_magic(shell, run):
    run("%%mosaico flagship --quiet\n" + SOURCE)
    result, _ = run("%mosaico check flagship")
    report = result.result
    assert isinstance(report, CheckReport)
    assert report.program == mo.check(FLAGSHIP)
    assert "flagship: ok" in repr(report) and "1 service" in report._repr_html_()
    # A file path works too, and so does an API program.
    result, _ = run(f"%mosaico check {FLAGSHIP}")
    assert result.result.program == mo.check(FLAGSHIP)


def test_unknown_names_are_usage_errors(run):
    from IPython.core.error import UsageError

    result, _ = run("%mosaico check nothing_here")
    assert isinstance(result.error_in_exec, UsageError)
    assert "no variable `nothing_here`" in str(result.error_in_exec)
    result, _ = run("%mosaico frobnicate x")
    assert isinstance(result.error_in_exec, UsageError)
    result, _ = run("%mosaico sim")
    assert isinstance(result.error_in_exec, UsageError)


@pytest.mark.parametrize("line, message", [
    ("%mosaico check {tmp}", "is a directory, not a .mosaico file"),
    ("%mosaico sim {tmp}/notes.txt", "is not a .mosaico file"),
    ("%mosaico place {tmp}/missing.mosaico", "no variable `{tmp}/missing.mosaico`"),
    ("%mosaico check not_a_program", "`not_a_program` is of type int, not a program"),
    ("%mosaico sim '(1 +'", "cannot evaluate `(1 +` (SyntaxError"),
    ("%mosaico check mo.nope", "cannot evaluate `mo.nope` (AttributeError"),
])
def test_sources_that_are_not_programs_are_usage_errors(run, tmp_path, line, message):
    from IPython.core.error import UsageError

    (tmp_path / "notes.txt").write_text("not a program\n")
    run("import mosaico_dsl as mo\nnot_a_program = 5")
    result, cap = run(line.format(tmp=tmp_path))
    assert isinstance(result.error_in_exec, UsageError), result.error_in_exec
    assert message.format(tmp=tmp_path) in str(result.error_in_exec)
    assert "Traceback" not in cap.stdout + cap.stderr


def test_place_magic(shell, run):
    run("%%mosaico flagship --quiet\n" + SOURCE)
    result, _ = run("%mosaico place flagship --search-limit 30")
    view = result.result
    assert isinstance(view, PlacementView)
    assert view.placement == place(mo.check(FLAGSHIP))
    assert "placement" in view.text() and "web_ll/0" in view.text()
    # A bare Placement (no program to draw it on) displays as its tables.
    data = shell.display_formatter.format(view.placement)[0]
    assert "l4s_client → s1 → server" in data["text/plain"]
    assert "<td>web_ll/3</td>" in data["text/html"]


def test_placement_errors_are_diagnostics(run):
    # Two functions forced onto a VNF host with one vCPU: checks, but cannot be placed.
    src = (SOURCE.replace("vcpus: 16", "vcpus: 1")
           .replace("sec.Blocklist(prefixes: ATTACKERS)",
                    'sec.Blocklist(prefixes: ATTACKERS, place: "vnf")')
           .replace("sec.RateLimit(rate: 20kpps, burst: 200)",
                    'sec.RateLimit(rate: 20kpps, burst: 200, place: "vnf")'))
    result, _ = run("%%mosaico tight --quiet\n" + src)
    assert result.success, result.error_in_exec
    result, cap = run("%mosaico place tight")
    assert isinstance(result.error_in_exec, mo.CompileError)
    (text,) = texts(cap)
    assert "error[E0802]" in text and "nfvi1" in text and "Traceback" not in text
    # The placement pass's own exception, raised in a Python cell, is shown the same way.
    result, cap = run("import mosaico_dsl as mo\nfrom mosaico_dsl.place import place\n"
                      "place(mo.check(tight))")
    assert type(result.error_in_exec).__name__ == "PlacementError"
    assert "error[E0802]" in texts(cap)[0]


def test_placement_error_objects_are_shown_as_their_diagnostics(shell, run):
    from mosaico_dsl.diagnostics import Span, error
    from mosaico_dsl.place import PlacementError

    _, _ = run("%%mosaico flagship --quiet\n" + SOURCE)
    span = shell.user_ns["flagship"].ast.items[-1].span  # the service, in its cell
    shell.user_ns["failure"] = PlacementError([error(
        "E0802", "`nfvi1` offers 1 vCPUs but web_ll need at least 2 there", span,
        "add vCPUs")])
    result, cap = run("raise failure")
    assert isinstance(result.error_in_exec, PlacementError)
    (text,) = texts(cap)
    assert "error[E0802]" in text and f"--> {span.file}:{span.line}:" in text
    assert "service web_ll on lab {" in text and "Traceback" not in text
    assert isinstance(span, Span)


def test_compile_magic_writes_the_artifacts(shell, run, tmp_path):
    run("%%mosaico flagship --quiet\n" + SOURCE)
    out = tmp_path / "build"
    result, cap = run(f"%mosaico compile flagship -o {out}")
    compiled = result.result
    assert isinstance(compiled, CompileResult)
    assert {p for p in compiled.artifacts} == {
        str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert (out / "s1" / "s1.p4").read_bytes() == compiled.artifacts["s1/s1.p4"]
    # The generated P4 is the file's, whichever way the program was written.
    assert compiled.artifacts["s1/entries.json"] == \
        mo.compile(FLAGSHIP).artifacts["s1/entries.json"]
    assert any("wrote" in t for t in cap.stdout.splitlines())
    # The extension displays a compile result with its placement and highlighted P4.
    html = shell.display_formatter.format(compiled)[0]["text/html"]
    assert "mosaico-placement" in html and "mosaico-p4" in html


def test_compile_magic_keeps_the_users_files_unless_forced(run, tmp_path):
    run("%%mosaico flagship --quiet\n" + SOURCE)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result, cap = run(f"%mosaico compile flagship -o {out}")
    assert isinstance(result.error_in_exec, mo.CompileError)
    assert "error[E1301]" in texts(cap)[0] and "notes.txt was not written by mosaico" \
        in texts(cap)[0]
    assert (out / "notes.txt").read_text() == "mine"
    result, _ = run(f"%mosaico compile flagship -o {out} --force")
    assert result.success and not (out / "notes.txt").exists()


def test_compile_magic_rejects_unknown_emit(run):
    from IPython.core.error import UsageError

    run("%%mosaico flagship --quiet\n" + SOURCE)
    result, _ = run("%mosaico compile flagship --emit nonsense")
    assert isinstance(result.error_in_exec, UsageError)


@pytest.mark.slow
def test_sim_magic(shell, run, tmp_path):
    run("%%mosaico flagship --quiet\n" + SOURCE)
    result, _ = run(f"%mosaico sim flagship --duration 500ms --seed 3 -o {tmp_path / 'sim'}")
    sim = result.result
    assert isinstance(sim, SimResult)
    assert sim.program == "flagship" and sim.seed == 3 and sim.duration_s == 0.5
    assert (tmp_path / "sim" / "metrics.json").is_file()
    data = shell.display_formatter.format(sim)[0]
    assert data["text/html"].count("<img") == 2  # the CDF and the throughput plot
    assert "prague#1" in data["text/plain"]


def test_deploy_magic_against_a_real_p4runtime_server(shell, run, tmp_path):
    """Deploy the compiled flagship to a conforming P4Runtime server on loopback (the
    reference target: real gRPC, no data plane), then again: nothing left to do."""
    from mosaico_dsl.runtime.server import ReferenceTarget, start_server

    mo.compile(FLAGSHIP).write(tmp_path / "build")
    handle = start_server(ReferenceTarget(1), "127.0.0.1:0")
    try:
        line = (f"%mosaico deploy {tmp_path / 'build'} -t p4runtime "
                f"--address s1=127.0.0.1:{handle.port} --state {tmp_path / 'state.db'}")
        result, cap = run(line)
        assert result.success, result.error_in_exec
        assert result.result.changed and "p4runtime s1" in cap.stdout
        with handle.target.lock:
            assert handle.target.pipeline is not None
        result, cap = run(line)
        assert not result.result.changed and "Nothing to do" in cap.stdout
    finally:
        handle.stop(0)


def test_deploy_magic_reports_a_missing_build(run, tmp_path):
    result, cap = run(f"%mosaico deploy {tmp_path / 'none'} --state {tmp_path / 's.db'}")
    assert isinstance(result.error_in_exec, mo.CompileError)
    assert "does not exist" in texts(cap)[0]


def test_unload_removes_everything(_session_shell):
    shell = _session_shell
    shell.run_line_magic("load_ext", "mosaico_dsl")
    html = shell.display_formatter.formatters["text/html"]
    before = set(html.deferred_printers)
    shell.run_line_magic("unload_ext", "mosaico_dsl")
    assert "mosaico" not in shell.magics_manager.magics["line"]
    assert "mosaico" not in shell.magics_manager.magics["cell"]
    assert ("mosaico_dsl.compiler", "CompileResult") in before
    assert ("mosaico_dsl.compiler", "CompileResult") not in html.deferred_printers
    assert not any(t.__module__.startswith("mosaico_dsl") for t in html.type_printers)
    shell.run_line_magic("load_ext", "mosaico_dsl")  # loading twice is harmless
    shell.run_line_magic("load_ext", "mosaico_dsl")
    assert "mosaico" in shell.magics_manager.magics["cell"]
    shell.run_line_magic("unload_ext", "mosaico_dsl")


def test_help(run):
    result, cap = run("%mosaico --help")
    assert result.success and "place" in cap.stdout and "sim" in cap.stdout


def test_source_programs_from_python_keep_their_text_for_diagnostics():
    bad = SOURCE.replace("burst: 200", "burst: -5")
    program = SourceProgram(bad, file="<scratch>", name="scratch")
    assert program.ast.path == "<scratch>"
    with pytest.raises(mo.CompileError) as e:
        mo.compile(program)  # a later pass, given only the program object
    text = str(e.value)
    assert "<scratch>:" in text and "burst: -5" in text and "^" in text
    with pytest.raises(mo.CompileError) as e:
        SourceProgram("topology {", file="<broken>")
    assert "<broken>:1:" in str(e.value)


def test_warnings_are_shown_and_the_program_still_bound(shell, run):
    # A host linked to nothing: W0701, a warning only.
    src = SOURCE.replace("  endpoint server", "  host spare : linux { vcpus: 2 }\n"
                                              "  endpoint server")
    cell = "%%mosaico warned --quiet\n" + src
    line = cell.splitlines().index("  host spare : linux { vcpus: 2 }") + 1
    result, cap = run(cell)
    assert result.success and "warned" in shell.user_ns
    (text,) = texts(cap)
    assert "warning[W0701]" in text and f"In[{result.execution_count}]:{line}:3" in text
    assert "1 warning" in text
    result, _ = run("%mosaico check warned")
    assert len(result.result.warnings) == 1 and "1 warning" in repr(result.result)

"""``mosaico sim``, the ``simulate()`` API, determinism and the output directory."""

from __future__ import annotations

import itertools
import json

import pytest
from click.testing import CliRunner

import mosaico_dsl as mo
from mosaico_dsl.cli import cli
from mosaico_dsl.diagnostics import CompileError
from mosaico_dsl.sim import SimResult, simulate
from mosaico_dsl.std import fwd, l4s
from mosaico_dsl.units import Time

from .conftest import FLAGSHIP, line_program

SHORT = "3s"
TRAFFIC = "prague:1,cubic:1,syn[rate=1kpps]@1s-2s"


@pytest.fixture(scope="module")
def run_a():
    return simulate(FLAGSHIP, duration=SHORT, traffic=TRAFFIC, seed=7)


def test_same_seed_gives_identical_artifacts(run_a):
    again = simulate(FLAGSHIP, duration=SHORT, traffic=TRAFFIC, seed=7)
    a, b = run_a.artifacts(), again.artifacts()
    assert sorted(a) == sorted(b)
    for name in a:
        assert a[name] == b[name], name


def test_another_seed_gives_another_run(run_a):
    other = simulate(FLAGSHIP, duration=SHORT, traffic=TRAFFIC, seed=8)
    assert other.artifacts(plots=False)["metrics.json"] != \
        run_a.artifacts(plots=False)["metrics.json"]


def test_artifacts_hold_metrics_traces_and_plots(run_a):
    files = run_a.artifacts()
    assert {"metrics.json", "traces/queue_s1-server.csv", "traces/aqm_s1-server.csv",
            "traces/drops.csv", "traces/goodput.csv", "traces/cwnd.csv",
            "plots/qdelay_cdf.png", "plots/queue_occupancy.png", "plots/marks_drops.png",
            "plots/throughput.png"} <= set(files)
    for name, data in files.items():
        if name.endswith(".png"):
            assert data.startswith(b"\x89PNG") and len(data) > 10_000
    metrics = json.loads(files["metrics.json"])
    assert metrics["bottleneck"] == "s1->server"
    # an L packet waits at most for the Classic packet in transmission and the Classic turn
    # the WRR owes (1 ms each at 12 Mb/s), plus the L packet ahead of it
    assert metrics["ports"]["s1->server"]["classes"]["l4s"]["delay_ms"]["p99"] < 3
    assert metrics["flows"]["syn#3"]["drops"] == [
        {"where": "web_ll/0", "reason": "filter", "packets": metrics["flows"]["syn#3"]["sent"]}]
    queue = files["traces/queue_s1-server.csv"].decode().splitlines()
    assert queue[0] == ("t_enq_ns,t_deq_ns,flow,seq,queue,size_bytes,ecn_in,verdict,"
                        "occupancy_pkts,p_prime_u32")
    rows = [r.split(",") for r in queue[1:]]
    assert {r[2] for r in rows} == {"prague#1", "cubic#2"}
    assert all(r[4] == ("L" if r[2] == "prague#1" else "C") for r in rows)
    assert len(rows) == sum(c.arrived for c in run_a.bottleneck.classes)
    drops = files["traces/drops.csv"].decode().splitlines()
    assert sum(1 for r in drops[1:] if r.split(",")[1] == "syn#3") == \
        run_a.flow("syn#3").sent


def test_repr_is_one_line_with_the_headline_numbers(run_a):
    text = repr(run_a)
    assert "\n" not in text and len(text) < 400
    assert text.startswith("<SimResult secure_l4s.mosaico: 3 s, seed 7,")
    assert "bottleneck s1->server (dualq" in text
    assert f"l4s delay p50 {run_a.l4s.delay_ms.p50:.3g} ms" in text
    assert f"Classic/L4S goodput {run_a.classic_l4s_ratio:.2f}" in text


def test_cli_writes_the_directory_and_prints_the_summary(tmp_path):
    out = tmp_path / "sim"
    res = CliRunner().invoke(cli, ["sim", str(FLAGSHIP), "--duration", "2s", "--traffic",
                                   "prague:1,cubic:1", "--seed", "3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "s1->server — dualq" in res.stdout and "prague#1" in res.stdout
    assert "Classic/L4S" in res.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["seed"] == 3 and metrics["duration_s"] == 2.0
    assert (out / "plots" / "qdelay_cdf.png").stat().st_size > 10_000
    assert (out / "traces" / "queue_s1-server.csv").exists()


def test_cli_without_traces_and_plots(tmp_path):
    out = tmp_path / "sim"
    res = CliRunner().invoke(cli, ["sim", str(FLAGSHIP), "--duration", "1s", "--no-traces",
                                   "--no-plots", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]


@pytest.mark.parametrize("args, code, text", [
    (["--traffic", "pragu:1"], "E1102", "did you mean `prague`?"),
    (["--traffic", "cubic[from=nobody]"], "E1105", "no endpoint named 'nobody'"),
    (["--traffic", "cubic[svc=web]"], "E1105", "did you mean 'web_ll'?"),
    (["--duration", "10parsecs"], "E1106", "invalid duration"),
    (["--duration", "0s"], "E1106", "out of range"),
])
def test_cli_reports_user_errors_as_diagnostics_and_keeps_the_old_output(tmp_path, args, code,
                                                                         text):
    out = tmp_path / "sim"
    out.mkdir()
    (out / "keep.txt").write_text("previous run")
    res = CliRunner().invoke(cli, ["sim", str(FLAGSHIP), *args, "-o", str(out)])
    assert res.exit_code == 1, res.output
    assert f"error[{code}]" in res.stderr and text in res.stderr
    assert "Traceback" not in res.output
    assert (out / "keep.txt").read_text() == "previous run"


def test_cli_replaces_an_existing_output_directory(tmp_path):
    out = tmp_path / "sim"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    res = CliRunner().invoke(cli, ["sim", str(FLAGSHIP), "--duration", "1s", "--no-plots",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert not (out / "stale.txt").exists() and (out / "metrics.json").exists()


def test_cli_help_documents_the_traffic_language():
    res = CliRunner().invoke(cli, ["sim", "--help"])
    assert res.exit_code == 0
    text = " ".join(res.output.split())
    assert "kinds prague, reno, cubic, cbr, onoff, flood, syn" in text


def test_api_accepts_api_programs_ir_and_compile_results():
    lab = mo.Topology("lab")
    s1 = lab.switch("s1", ports=3, queue_rate="10Mbps")
    client = lab.endpoint("client", ip="10.0.1.1", trusted=True)
    server = lab.endpoint("server", ip="10.0.2.1")
    lab.link(client, s1.port(1), bandwidth="1Gbps", delay="2ms")
    lab.link(s1.port(0), server, bandwidth="10Mbps", delay="3ms")
    svc = mo.Service("web", on=lab, match=mo.f.ipv4.dst == server,
                     chain=l4s.DualQ() >> fwd.Forward(to=server))
    program = mo.Program(lab, svc)
    a = simulate(program, duration=2.0, traffic="prague:1")
    b = simulate(program.check(), duration=Time(2 * 10**9), traffic="prague:1")
    c = simulate(program.compile(emit=["ir"]), duration="2s", traffic="prague:1")
    assert isinstance(a, SimResult)
    assert a.to_json()["flows"] == b.to_json()["flows"] == c.to_json()["flows"]
    assert a.bottleneck.rate_bps == 10_000_000
    page = a._repr_html_()
    assert "<table>" in page and "prague#1" in page
    assert "data:image/png;base64," in page  # the queue-delay CDF


def test_api_errors_are_compile_errors():
    with pytest.raises(CompileError) as e:
        simulate(line_program(), duration="1s", traffic="reno[from=bad2]")
    assert e.value.diagnostics[0].code == "E1105"
    with pytest.raises(CompileError) as e:
        simulate(line_program(), duration="1s", traffic=())
    assert e.value.diagnostics[0].code == "E1107"
    # every flow group's mistake, once each, pointing into the specification
    with pytest.raises(CompileError) as e:
        simulate(line_program(), duration="1s", traffic="cubic:3[svc=nope],reno[from=nobody]")
    assert [(d.code, d.span.col) for d in e.value.diagnostics] == [("E1105", 1),
                                                                   ("E1105", 19)]


@pytest.mark.parametrize("duration", [float("nan"), float("inf"), -1.0, 0, 10**400, True,
                                      None])
def test_api_durations_that_are_not_times_are_diagnostics(duration):
    with pytest.raises(CompileError) as e:
        simulate(line_program(), duration=duration, traffic="reno")
    assert [d.code for d in e.value.diagnostics] == ["E1106"]


def test_progress_is_reported_to_the_end():
    seen = []
    simulate(line_program(), duration="1s", traffic="reno:1",
             progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (10**9, 10**9) and len(seen) > 10
    assert all(a[0] <= b[0] for a, b in itertools.pairwise(seen))


def test_cli_shows_a_progress_bar_on_a_terminal(tmp_path):
    # rich treats the output as a terminal when TTY_COMPATIBLE is set
    res = CliRunner().invoke(cli, ["sim", str(FLAGSHIP), "--duration", "1s", "--no-plots",
                                   "--no-traces", "-o", str(tmp_path / "sim")],
                             env={"TTY_COMPATIBLE": "1"})
    assert res.exit_code == 0, res.output
    assert "simulating" in res.stderr and "1.0 of 1 s simulated" in res.stderr


def test_mistakes_in_duration_traffic_and_program_are_reported_together():
    with pytest.raises(CompileError) as e:
        simulate("topology x {", duration="5parsecs", traffic="pragu")
    codes = [d.code for d in e.value.diagnostics]
    assert codes[:2] == ["E1106", "E1102"] and codes[2].startswith("E01")

"""Every resource a user controls is bounded with a diagnostic before the work starts:
the program's size (E0108), what placement would take (E0814), the packets a simulation
would send (E1108), and the local target's size (W1001: the other artifacts are made)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import mosaico_dsl as mo
from mosaico_dsl.cli import cli
from mosaico_dsl.limits import ENV, memory_limit
from mosaico_dsl.place import Options, PlacementError, place
from mosaico_dsl.sim import simulate

FLAGSHIP = Path(__file__).resolve().parent.parent / "examples" / "secure_l4s.mosaico"


def test_a_program_too_large_for_the_memory_limit_is_refused_before_it_is_read(
        monkeypatch):
    monkeypatch.setenv(ENV, "1MiB")
    with pytest.raises(mo.CompileError) as e:
        mo.check(FLAGSHIP)
    (d,) = e.value.diagnostics
    assert d.code == "E0108" and "1.0 MiB" in d.message and "--memory-limit" in d.hint
    monkeypatch.setenv(ENV, "off")
    assert mo.check(FLAGSHIP).services


def test_the_memory_limit_flag(monkeypatch):
    monkeypatch.setenv(ENV, "off")  # the flag sets it for the process: restored after
    r = CliRunner().invoke(cli, ["--memory-limit", "1MiB", "check", str(FLAGSHIP)])
    assert r.exit_code == 1 and "E0108" in r.output
    r = CliRunner().invoke(cli, ["--memory-limit", "lots", "check", str(FLAGSHIP)])
    assert r.exit_code == 2 and "give a size such as 8GiB" in r.output
    assert memory_limit("2GiB").bytes == 2 * 2**30 and memory_limit("off").bytes is None


def test_placement_estimates_its_memory_before_solving(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    program = mo.check(FLAGSHIP)
    with pytest.raises(PlacementError) as e:
        place(program, options=Options(memory_limit="100MiB"))
    (d,) = e.value.diagnostics
    assert d.code == "E0814" and d.message.startswith("placing 1 service on 2 nodes")
    assert place(program, options=Options(memory_limit="off")).assignments


def test_a_flood_beyond_the_packet_budget_is_refused_before_it_runs():
    with pytest.raises(mo.CompileError) as e:
        simulate(FLAGSHIP, traffic="cubic:1,flood[rate=1000000000000000pps]@1s-5s",
                 duration="10s")
    (d,) = e.value.diagnostics
    assert d.code == "E1108" and d.span.file == "--traffic"
    # The flood source paces at one packet per ns; cubic is held to the 12 Mb/s bottleneck.
    assert "about 4,000,010,000 packets" in d.message and "alone 4,000,000,000" in d.message
    r = CliRunner().invoke(cli, ["sim", str(FLAGSHIP), "-o", "unused", "--duration", "10s",
                                 "--traffic", "cbr[rate=10kpps]", "--max-packets", "50000"])
    assert r.exit_code == 1 and "E1108" in r.output and "100,000" in r.output


def test_the_local_target_of_a_topology_too_large_for_one_machine_is_left_out():
    unlinked = "\n".join(f"  host x{i} : linux {{ vcpus: 1 }}" for i in range(1100))
    text = FLAGSHIP.read_text().replace("topology lab {", "topology lab {\n" + unlinked)
    result = mo.compile(text, emit=["vnf"])
    (w,) = [d for d in result.warnings if d.code == "W1001"]
    # 1,100 hosts, the example's five nodes and the VNFs placed on its host.
    assert int(re.search(r"run (\d+) network namespaces", w.message)[1]) > 1105
    assert "local.json" not in result.artifacts

"""Infeasible programs, one per kind of constraint, and the explanation each must get.

Each program in ``programs/`` is minimal for its conflict; the test checks the code, that
the message names the right things with the right numbers, where the caret points, and
the hint.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import mosaico_dsl as mo
from mosaico_dsl.diagnostics import render_text
from mosaico_dsl.place import PlacementError, place

PROGRAMS = Path(__file__).parent / "programs"


def explain(name: str):
    program = mo.check(PROGRAMS / f"{name}.mosaico")
    with pytest.raises(PlacementError) as info:
        place(program)
    return info.value.diagnostics


def line_of(name: str, needle: str) -> int:
    lines = (PROGRAMS / f"{name}.mosaico").read_text().splitlines()
    return next(k for k, text in enumerate(lines, start=1) if needle in text)


def test_ram_is_shown_in_the_units_programs_write():
    """Two VNFs of 256 MiB each on a host declared with `ram: 300MiB` (not 314572800 bytes)."""
    (d,) = explain("ram")
    assert d.code == "E0802"
    assert d.message.startswith("`h1` offers 300MiB of RAM but `web` needs at least 512MiB "
                                "of RAM there")
    notes = [n.message for n in d.notes]
    assert "SynGuard of `web` takes 256MiB of RAM on `h1`" in notes
    assert not any(str(2**28) in n for n in [d.message, *notes])


def test_ram_amounts_that_are_no_whole_unit_are_rounded():
    from mosaico_dsl.place.resources import amount

    assert amount(300 * 2**20, "ram") == "300MiB of RAM"
    assert amount(3 * 2**29, "ram") == "1.5GiB of RAM"
    assert amount(314572801, "ram") == "about 300MiB of RAM"
    assert amount(100, "ram") == "100B of RAM"
    assert amount(1, "stages") == "1 stage" and amount(2, "vcpus") == "2 vCPUs"


def test_latency_with_the_hop_by_hop_breakdown_of_the_cheapest_placement():
    """s1 is untrusted, so both mitigations must detour to nfvi1 (2 ms away): 1 ms + 4 ms
    round trip + 5 ms + 1.2 ms queue target + processing = 11.258 ms > 8 ms."""
    (d,) = explain("latency")
    assert d.code == "E0801"
    assert d.message.startswith("`web_ll`: latency 11.258ms > 8ms budget even at its "
                                "cheapest, given `require secure` of `web_ll`")
    for hop in ("link client→s1.1 1ms", "detour s1→nfvi1→s1 4ms",
                "Blocklist on nfvi1 (linux) 25us", "RateLimit on nfvi1 (linux) 30us",
                "link s1.0→server 5ms", "DualQ queueing target 1.2ms"):
        assert hop in d.message
    assert d.span.line == line_of("latency", "service web_ll")
    assert any("requires `secure`" in n.message for n in d.notes)
    assert "raise the budget" in d.hint


def test_capacity_names_the_services_and_the_least_they_need():
    """Two services each need SynGuard (2 stages) + Forward (1) on the only switch: 6 > 5."""
    (d,) = explain("cap")
    assert d.code == "E0802"
    assert d.message == "`s1` offers 5 stages but `one` and `two` need at least 6 stages there"
    assert d.span.line == line_of("cap", "switch s1")
    notes = [n.message for n in d.notes]
    assert "SynGuard of `one` takes 2 stages on `s1`" in notes
    assert "Forward of `two` takes 1 stage on `s1`" in notes
    assert "raise `stages` on `s1`" in d.hint


def test_secure_without_a_trusted_node_reports_every_service_in_one_run():
    first, second = explain("secure")
    assert (first.code, second.code) == ("E0803", "E0803")
    assert first.message == ("`web` requires `secure`, but no trusted node can run "
                             "Blocklist for it")
    assert second.message == ("`api` requires `secure`, but no trusted node can run "
                              "RateLimit for it")
    assert first.span.line == line_of("secure", "service web")
    assert "trusted: true" in first.hint and "(trusted now: none)" in first.hint


def test_pins_against_the_chain_order():
    """Blocklist @ s2 then RateLimit @ s1, but traffic reaches s1 first."""
    (d,) = explain("pin")
    assert d.code == "E0804"
    assert d.message == ("Blocklist of `web` is pinned to `s2`, which conflicts with "
                         "RateLimit of `web` @ s1")
    assert d.span.line == line_of("pin", "@ s2")
    assert any("client → s1 → s2 → server" in n.message for n in d.notes)


def test_place_vnf_without_a_host():
    (d,) = explain("place")
    assert d.code == "E0805"
    assert d.message == "Blocklist of `web` has `place: vnf`, but no host can run it there"
    assert "remove `place: vnf`" in d.hint


def test_queue_needs_one_last_hop():
    """Sources reach the server through s1 and s2: no switch is the egress for both."""
    (d,) = explain("queue")
    assert d.code == "E0806"
    assert "DualQ of `web` shapes the egress queue towards `server`" in d.message
    assert "through `s1` and `s2`" in d.message


def test_priority_queues():
    (d,) = explain("pq")
    assert d.code == "E0807"
    assert d.message == "DualQ needs 2 priority queues but `s1` has 1, and can run nowhere else"
    assert d.hint.startswith("set `priority_queues: 2` on `s1`")
    assert d.span.line == line_of("pq", "switch s1")


def test_shared_egress_queue_against_place_options():
    (d,) = explain("egress")
    assert d.code == "E0808"
    assert d.message.startswith("`web` and `video` share the egress queue towards `server`")
    assert "`place: vnf` on DualQ of `video`" in d.message
    assert "`place: p4` on DualQ of `web`" in d.message


def test_bandwidth_of_a_detour():
    (d,) = explain("bw")
    assert d.code == "E0809"
    assert d.message == ("`web` requires 500Mbps, so no detour may cross a thinner link, "
                         "which conflicts with `place: vnf` on Blocklist of `web`")


def test_bandwidth_of_the_base_path():
    """The wide path exists (the checker is satisfied) but is not the lowest-delay one."""
    (d,) = explain("bwbase")
    assert d.code == "E0809"
    assert d.message == ("`web`: the lowest-delay route from `client` crosses link "
                         "s1.0--server with 100Mbps, below the 500Mbps required")
    assert any(n.span and n.span.line == line_of("bwbase", "link s1.0 -- server")
               for n in d.notes)


def test_no_node_can_run_the_function():
    (d,) = explain("nonode")
    assert d.code == "E0810"
    assert d.message == "`web`: no node of topology `lab` can run Dpi (it runs on linux)"
    assert d.hint == "add hosts to `lab`"


def test_no_route_through_switches():
    (d,) = explain("noroute")
    assert d.code == "E0811"
    assert d.message == "`web`: no route from `client` to `server` through switches"


def test_compile_refuses_and_the_cli_exits_1(tmp_path: Path):
    with pytest.raises(mo.CompileError) as info:
        mo.compile(PROGRAMS / "cap.mosaico")
    assert [d.code for d in info.value.diagnostics] == ["E0802"]
    text = render_text(info.value.diagnostics, info.value.sources)
    assert "switch s1 : bmv2 { ports: 8, stages: 5 }" in text  # the caret excerpt

    from click.testing import CliRunner

    from mosaico_dsl.cli import cli

    out = tmp_path / "build"
    result = CliRunner().invoke(cli, ["compile", str(PROGRAMS / "cap.mosaico"), "-o",
                                      str(out)])
    assert result.exit_code == 1
    assert "error[E0802]" in result.output
    assert not out.exists()


def test_explanations_are_deterministic():
    first = [d.to_dict() for d in explain("latency")]
    assert first == [d.to_dict() for d in explain("latency")]

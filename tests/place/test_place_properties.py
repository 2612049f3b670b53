"""Random small programs (≤ 6 functions, ≤ 4 placement nodes), written as `.mosaico` text
and checked by the real front end: the CP-SAT optimum equals an exhaustive search that
shares nothing with the encoding, every placement passes verification, and the greedy
baseline honours every hard rule and is never better than the optimum when it is valid."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from place_helpers import check, exhaustive

import mosaico_dsl as mo
from mosaico_dsl.place import Check, Options, PlacementError, evaluate, first_fit, place, verify

FILTERS = ("sec.Blocklist(prefixes: [203.0.113.0/24])", "sec.RateLimit(rate: 1kpps)",
           "sec.SynGuard()", "Mirror(to: server)")
DELAYS = ("50us", "100us", "300us", "1ms", "2ms")
BANDWIDTHS = ("10Mbps", "1Gbps", "10Gbps", "10Gbps")


def _bool(b: bool) -> str:
    return "true" if b else "false"


@st.composite
def programs(draw) -> str:
    n_sw = draw(st.integers(1, 3))
    n_host = draw(st.integers(0, 4 - n_sw))
    switches = [f"s{i}" for i in range(n_sw)]
    hosts = [f"h{i}" for i in range(n_host)]
    ports = {s: 0 for s in switches}

    def port(s: str) -> str:
        ports[s] += 1
        return f"{s}.{ports[s] - 1}"

    def link(a: str, b: str) -> str:
        return (f"  link {a} -- {b} {{ bandwidth: {draw(st.sampled_from(BANDWIDTHS))}, "
                f"delay: {draw(st.sampled_from(DELAYS))} }}")

    lines = ["topology t {"]
    for s in switches:
        lines.append(f"  switch {s} : bmv2 {{ ports: 16, stages: {draw(st.integers(2, 10))}, "
                     f"priority_queues: {draw(st.sampled_from([1, 2, 2]))}, "
                     f"trusted: {_bool(draw(st.booleans()))} }}")
    for h in hosts:
        lines.append(f"  host {h} : linux {{ vcpus: {draw(st.integers(1, 3))}, "
                     f"trusted: {_bool(draw(st.booleans()))} }}")
    clients = [f"c{i}" for i in range(draw(st.integers(1, 2)))]
    for i, e in enumerate(["server", *clients]):
        lines.append(f"  endpoint {e} {{ ip: 10.0.0.{i + 1}, "
                     f"trusted: {_bool(draw(st.booleans()))} }}")
    parent = {}
    for i, s in enumerate(switches[1:], start=1):
        parent[s] = switches[draw(st.integers(0, i - 1))]
        lines.append(link(port(s), port(parent[s])))
    if n_sw == 3 and parent["s2"] != "s0" and draw(st.booleans()):
        lines.append(link(port("s0"), port("s2")))  # a cycle: two ways between switches
    for h in hosts:
        lines.append(link(port(draw(st.sampled_from(switches))), h))
    for e in ["server", *clients]:
        lines.append(link(port(draw(st.sampled_from(switches))), e))
    lines.append("}")

    n_services = draw(st.integers(1, 2))
    longest = 4 if n_services == 1 else 3  # at most 6 functions in all
    queue = draw(st.sampled_from(["std.l4s.DualQ()", "std.l4s.Fifo()"]))
    for k in range(n_services):
        steps = draw(st.lists(st.sampled_from(FILTERS), min_size=1, max_size=longest - 1))
        if len(steps) < longest - 1 and draw(st.booleans()):
            steps.append(queue)
        steps.append("Forward(to: server)")
        chain = []
        for step in steps:
            extra = draw(st.sampled_from(["", "", "", "", "place: p4", "place: vnf",
                                          "prefer: vnf", "prefer: p4"]))
            if extra:
                step = step[:-1] + (", " if not step.endswith("()") else "") + extra + ")"
            pin = draw(st.sampled_from(["", "", "", "", "", *switches, *hosts]))
            if pin and not ("place: p4" in step and pin in hosts
                            or "place: vnf" in step and pin in switches):
                step += f" @ {pin}"
            chain.append(step)
        body = [f"service svc{k} on t {{"]
        if draw(st.booleans()) and len(clients) > 1:
            body.append(f"  from {draw(st.sampled_from(clients))}")
        latency = draw(st.sampled_from([None, None, "3ms", "5ms", "8ms", "20ms"]))
        if latency:
            body.append(f"  require latency <= {latency}")
        if any(s.startswith("sec.") for s in steps) and draw(st.booleans()):
            body.append("  require secure")
        if draw(st.integers(0, 5)) == 0:
            body.append("  require bandwidth >= 50Mbps")
        body.append("  chain { " + " -> ".join(chain) + " }")
        body.append("}")
        lines.extend(body)
    return "\n".join(lines) + "\n"


EXACT = Options(tie_break_gap=0.0)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs())
def test_optimum_equals_exhaustive_search_and_passes_verification(text: str):
    try:
        program = check(text)
    except mo.CompileError:
        assume(False)
    assert sum(len(s.chain) for s in program.services) <= 6
    best = exhaustive(program)
    try:
        placed = place(program, options=EXACT)
    except PlacementError as e:
        assert best is None, f"exhaustive search found {best[0]}:\n{text}"
        assert e.diagnostics and all(d.code.startswith("E08") and d.code != "E0812"
                                     for d in e.diagnostics), e.diagnostics
        return
    assert best is not None, "CP-SAT placed what the exhaustive search could not"
    assert verify(program, placed) == ()
    assert placed.search.optimal
    assert placed.objective == best[0], text


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs())
def test_first_fit_honours_every_hard_rule(text: str):
    try:
        program = check(text)
    except mo.CompileError:
        assume(False)
    try:
        greedy = first_fit(program)
    except PlacementError:
        return
    broken = {v.check for v in verify(program, greedy)}
    assert broken <= {Check.LATENCY}, (broken, text)
    if not broken:  # a valid placement: the optimum can only be as good or better
        assert evaluate(program, greedy) >= place(program, options=EXACT).objective

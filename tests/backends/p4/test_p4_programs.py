"""Property: every well-typed program built from the stdlib functions compiles to P4 that
passes the syntax checker, with unique P4Info ids that agree with the program text and
entries that agree with the P4Info."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from p4_checks import check_against_program, check_entries
from p4_support import switch_dirs

from mosaico_dsl import compiler
from mosaico_dsl.backends.p4 import check_source
from mosaico_dsl.diagnostics import CompileError

PREDICATES = [
    "ipv4.dst == {dst}",
    "ipv4.dst == {dst} and tcp.dport in {{80, 443}}",
    "ipv4.dst == {dst} and (udp.dport in 5000..5100 or tcp.dport == 22)",
    "ipv4.dst == {dst} and not ipv4.src in 10.9.0.0/16",
    "ipv4.dst == {dst} and ipv4.ecn != 0 and ipv4.ttl > 2",
    "ipv4.dst == {dst} and tcp.flags == 2 and ethernet.ether_type == 2048",
]
RULES = [
    "allow(tcp.dport == 22)", "deny(ipv4.src in 10.9.0.0/16)", "allow(udp.dport < 1024)",
    "deny(tcp.sport != 80 and ipv4.proto == 6)", "allow(ipv4.dscp in {10, 46})",
]


@st.composite
def _filter(draw, k: int, vnf: bool):
    kind = draw(st.sampled_from(["Blocklist", "Allowlist", "Acl", "RateLimit", "SynGuard",
                                 "Mirror"]))
    where = ', place: "vnf"' if vnf and kind != "Mirror" and draw(st.booleans()) else ""
    if kind in ("Blocklist", "Allowlist"):
        nets = draw(st.lists(st.sampled_from(["203.0.113.0/24", "10.9.0.0/16", "10.1.0.0/16",
                                              "198.51.100.7/32"]), min_size=1, max_size=3,
                             unique=True))
        return f"sec.{kind}(prefixes: [{', '.join(nets)}]{where})"
    if kind == "Acl":
        rules = draw(st.lists(st.sampled_from(RULES), min_size=1, max_size=3, unique=True))
        default = draw(st.sampled_from(["allow", "deny"]))
        return f'sec.Acl(rules: [{", ".join(rules)}], default: "{default}"{where})'
    if kind == "RateLimit":
        per = draw(st.sampled_from(["service", "source"]))
        return (f"sec.RateLimit(rate: {draw(st.integers(1, 50))}kpps, burst: "
                f"{draw(st.integers(1, 500))}, per: \"{per}\", buckets: "
                f"{draw(st.sampled_from([1, 16, 64]))}{where})")
    if kind == "SynGuard":
        return (f"sec.SynGuard(max_syns: {draw(st.integers(1, 1000))}, interval: "
                f"{draw(st.sampled_from(['10ms', '1s', '5s']))}, buckets: "
                f"{draw(st.sampled_from([8, 256]))}{where})")
    return f"Mirror(to: collector, session: {k + 1})"


@st.composite
def _queue(draw):
    kind = draw(st.sampled_from(["DualQ", "Fifo", None]))
    if kind == "Fifo":
        return f"std.l4s.Fifo(buffer: {draw(st.sampled_from(['5ms', '50ms', '250ms']))})"
    if kind == "DualQ":
        target = draw(st.sampled_from(["5ms", "10ms", "15ms", "20ms"]))
        k = draw(st.sampled_from(["1.5", "2", "3"]))
        mode = draw(st.sampled_from(["ramp", "step"]))
        return f'std.l4s.DualQ(classic_target: {target}, coupling: {k}, l4s_mode: "{mode}")'
    return None


@st.composite
def programs(draw) -> str:
    vnf = draw(st.booleans())
    n_services = draw(st.integers(1, 3))
    lines = ["import std.l4s", "import std.security as sec",
             "from std.fwd import Forward, Mirror", "", "topology t {",
             "  switch s1 : bmv2 { ports: 12, priority_queues: 2 }",
             "  endpoint c1 { ip: 10.0.1.1, trusted: true }",
             "  endpoint c2 { ip: 10.9.0.5 }",
             "  endpoint collector { ip: 10.0.9.9, mac: 02:00:00:00:09:09 }",
             "  link c1 -- s1.1 { bandwidth: 1Gbps, delay: 1ms }",
             "  link c2 -- s1.2 { bandwidth: 1Gbps, delay: 1ms }",
             "  link collector -- s1.3 { bandwidth: 1Gbps }"]
    if vnf:
        lines += ["  host h1 : linux { vcpus: 64, ram: 64GiB, trusted: true }",
                  "  link s1.4 -- h1 { bandwidth: 10Gbps, delay: 50us }"]
    for i in range(n_services):
        mac = f", mac: 02:00:00:00:02:0{i}" if draw(st.booleans()) else ""
        bandwidth = draw(st.sampled_from(["10Mbps", "1Gbps"]))
        lines += [f"  endpoint d{i} {{ ip: 10.0.2.{i + 1}{mac} }}",
                  f"  link s1.{5 + i} -- d{i} {{ bandwidth: {bandwidth}, delay: 2ms }}"]
    lines.append("}")
    mirrors = 0
    for i in range(n_services):
        steps = []
        for _ in range(draw(st.integers(0, 4))):
            step = draw(_filter(mirrors, vnf))
            mirrors += step.startswith("Mirror")
            steps.append(step)
        queue = draw(_queue())
        if queue:
            steps.insert(draw(st.integers(0, len(steps))), queue)
        steps.append(f"Forward(to: d{i})")
        lines.append(f"service s{i} on t {{")
        if draw(st.booleans()):
            lines.append("  match " + draw(st.sampled_from(PREDICATES)).format(dst=f"d{i}"))
        if draw(st.booleans()):
            lines.append("  from c1")
        if draw(st.integers(0, 3)) == 0:
            lines.append("  reply drop")
        lines.append("  chain {\n    " + "\n    -> ".join(steps) + "\n  }\n}")
    return "\n".join(lines) + "\n"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_every_program_generates_valid_p4(text):
    try:
        result = compiler.compile(text, emit=["p4"])
    except CompileError as e:
        # Placement may refuse a random program (E08: capacities, budgets); the P4 backend
        # (E09) must not refuse any placed program on this roomy switch.
        assume(not all(d.code.startswith("E08") for d in e.diagnostics))
        raise
    dirs = switch_dirs(result)
    assert dirs, "a program with a switch on every route generates P4"
    for switch, files in dirs.items():
        texts = {k: v.decode() for k, v in files.items() if k.endswith(".p4")}
        check_source(f"{switch}.p4", texts)
        check_against_program(switch, files)  # includes: P4Info ids are unique
        check_entries(files)
    # Deterministic: compiling again gives byte-identical artifacts.
    assert compiler.compile(text, emit=["p4"]).artifacts == result.artifacts

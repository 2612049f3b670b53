"""Every diagnostic of the front end, with the exact text a user sees.

Each case is a small program with one mistake; the test checks the code, the message, the
position and the hint, and that rendering shows the source line with a caret.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mosaico_dsl.check import check_module
from mosaico_dsl.diagnostics import Diagnostic, render_text
from mosaico_dsl.lang.parser import parse

HEAD = "import std.l4s\nimport std.security as sec\nfrom std.fwd import Forward\n\n"
TOPO = """topology lab {
  switch   s1     : bmv2      { ports: 4 }
  host     h1     : openstack { trusted: true }
  endpoint client             { ip: 10.0.1.1 }
  endpoint server             { ip: 10.0.2.1 }
  link client -- s1.1   { bandwidth: 1Gbps, delay: 1ms }
  link s1.2   -- server { bandwidth: 12Mbps, delay: 5ms }
  link s1.3   -- h1     { bandwidth: 10Gbps, delay: 50us }
}
"""
OK_CHAIN = "chain { sec.Blocklist(prefixes: [203.0.113.0/24]) -> Forward(to: server) }"


def service(body: str, extra: str = "") -> str:
    return HEAD + extra + TOPO + "\nservice web on lab {\n" + body + "\n}\n"


def diagnose(text: str, file: str = "case.mosaico") -> list[Diagnostic]:
    result = parse(text, file)
    if result.module is None:
        return list(result.diagnostics)
    return list(check_module(result.module, sources={file: text}).diagnostics)


@dataclass(frozen=True)
class Case:
    code: str
    source: str
    message: str
    hint: str | None = None  # a substring of the hint
    line: int | None = None  # where the caret points, if checked

    def __str__(self) -> str:
        return self.code


CASES = [
    Case("E0101", "const A = 1 2", "unexpected `2`", "expected", 1),
    Case("E0102", "const A = $", "unexpected character '$'", "expected an expression", 1),
    Case("E0102", 'const A = "abc\nconst B = 1', "unterminated string",
         'close it with `"` on the same line (strings cannot span lines)', 1),
    Case("E0103", "topology t {", "unexpected end of input", "`}`", 1),
    Case("E0104", "const A = 10.0.0.256", "10.0.0.256 is not an IPv4 address",
         "0 to 255", 1),
    Case("E0105", "const A = " + "[" * 300 + "]" * 300, "expressions are nested too deeply",
         "const"),
    Case("E0107", "const A = [10.0.0.1, 2001:db8::1]", "IPv6 is not supported yet: 2001:db8::1",
         "IPv4", 1),
    Case("E0201", "import std.l4z", "no module named `std.l4z`", "did you mean `l4s`?", 1),
    Case("E0202", "from std.security import Blocklst", "`std.security` has no `Blocklst`",
         "did you mean `Blocklist`?", 1),
    Case("E0203", "const A = B_VALUE", "unknown name `B_VALUE`", None, 1),
    Case("E0204", "const A = 1\nconst A = 2", "`A` is defined twice", "rename", 2),
    Case("E0205", service("chain { sec.Blocklst(prefixes: []) -> Forward(to: server) }"),
         "`sec` has no function `Blocklst`", "did you mean `Blocklist`?", 16),
    Case("E0206", service(OK_CHAIN).replace("on lab", "on labb"),
         "service `web` runs on unknown topology `labb`", "did you mean `lab`?", 15),
    Case("E0207", service("chain { sec.Blocklist(prefixes: []) @ s11 -> Forward(to: server) }"),
         "`@ s11`: no node `s11` in topology `lab`", "did you mean `s1`?", 16),
    Case("E0208", "import cyc_a", "import cycle: cyc_a → cyc_b → cyc_a", "shared"),
    Case("E0209", service("match ipv4.dts == 10.0.2.1\n" + OK_CHAIN),
         "header `ipv4` has no field `dts`", "did you mean `dst`?", 16),
    Case("E0210", service("match vlan.vid == 10\n" + OK_CHAIN,
                          "header vlan { vid: int in 0..4095 }\n"),
         "header `vlan` cannot be matched: the targets parse only std.net's headers "
         "(ethernet, ipv4, tcp, udp)", "not supported yet", 5),
    Case("E0301", service("chain { sec.Blocklist(prefixes: 5) -> Forward(to: server) }"),
         "expected list<prefix>, found int", "a list of a prefix", 16),
    Case("E0302", service("require latency <= 12Mbps\n" + OK_CHAIN),
         "expected time, found bandwidth (12Mbps)", "a time such as 20ms", 16),
    Case("E0303", "const A: lst<int> = []", "unknown type `lst`", "did you mean `list`?", 1),
    Case("E0304", service("chain { std.l4s.DualQ(classic_target: 2s) -> Forward(to: server) }"),
         "DualQ(): `classic_target` = 2s is outside 1ms..1s", "allowed: 1ms..1s", 16),
    Case("E0304", HEAD + TOPO.replace("delay: 5ms", "delay: -5ms"),
         "`delay` must be in 0ns..10s, not -5ms: a one-way delay is not negative, and above "
         "10 s it is no network link (a geostationary satellite hop takes about 0.25 s)",
         None, 11),
    Case("E0304", HEAD + TOPO.replace("bandwidth: 12Mbps", "bandwidth: 0Mbps"),
         "`bandwidth` must be in 1bps..100Tbps, not 0bps: a rate is positive, and 100 Tbps is "
         "far above any link (Ethernet's fastest is 1.6 Tb/s, IEEE 802.3dj)", None, 11),
    Case("E0304", service("require latency <= 100000000000000000000s\n" + OK_CHAIN),
         "`require latency` must be in 1ns..1000s, not 100000000000000000000s: a budget is "
         "positive, and one above 1000 s bounds nothing: leave `require latency` out",
         None, 16),
    Case("E0304", service("chain { sec.RateLimit(rate: -5kpps) -> Forward(to: server) }"),
         "RateLimit(): `rate` = -5kpps is outside 1pps..10000Mpps", "1pps..10000Mpps", 16),
    Case("E0304", service("chain { sec.RateLimit(rate: 1000000000000000000000000000000pps) -> "
                          "Forward(to: server) }"),
         "RateLimit(): `rate` = 1000000000000000000000000Mpps is outside 1pps..10000Mpps",
         "1pps..10000Mpps", 16),
    Case("E0305", "const A = 1ms * 2ms", "cannot multiply time by time", "divide", 1),
    Case("E0306", "const A = 1.5ns",
         "1.5ns is not a whole number of ns (the finest time resolution)", "finer unit", 1),
    Case("E0307", "const A = 10.0.0.1/8", "10.0.0.1/8 has host bits set",
         "did you mean 10.0.0.0/8?", 1),
    Case("E0401", service("chain { sec.RateLimit(rat: 1kpps) -> Forward(to: server) }"),
         "RateLimit() has no parameter `rat`", "did you mean `rate`?", 16),
    Case("E0402", service("chain { sec.RateLimit() -> Forward(to: server) }"),
         "RateLimit() needs `rate`", "a packet rate such as 20kpps", 16),
    Case("E0403", service("chain { sec.RateLimit(rate: 1kpps, rate: 2kpps) -> "
                          "Forward(to: server) }"),
         "argument `rate` is given twice", None, 16),
    Case("E0404", service("chain { std.l4s.DualQ(classic_target: 1ms) -> Forward(to: server) }"),
         "DualQ(): the L4S marking threshold (l4s_min_th + l4s_range) must be below the "
         "Classic target", "classic_target = 1ms", 16),
    Case("E0405", service("chain { Broken() -> Forward(to: server) }",
                          "function Broken(a: int = 1) {}\n"),
         "function `Broken` needs a kind", "e.g. `function Broken(...) : filter", 5),
    Case("E0406", service("chain { Loop() -> Forward(to: server) }",
                          "function Loop() { chain { Loop() } }\n"),
         "composite function calls itself: __main__.Loop → __main__.Loop",
         "finite", 5),
    Case("E0407", service("chain { sec.Blocklist(prefixes: [], place: fpga) -> "
                          "Forward(to: server) }"),
         "`place` takes `p4` or `vnf`", "e.g. `place: p4`", 16),
    Case("E0501", service("chain { sec.Blocklist(prefixes: []) }"),
         "the chain of `web` ends with Blocklist, not a forward", "Forward(to:", 16),
    Case("E0502", service("chain { Forward(to: server) -> sec.Blocklist(prefixes: []) -> "
                          "Forward(to: server) }"),
         "Forward forwards the packet before the end of the chain", "move it last", 16),
    Case("E0503", service("chain { std.l4s.DualQ() -> std.l4s.Fifo() -> Forward(to: server) }"),
         "`web` has a second queueing discipline (Fifo)", "keep one", 16),
    Case("E0504", service("chain { std.l4s.DualQ() -> Forward(to: server) }")
         + "service web2 on lab {\n  chain { std.l4s.DualQ(classic_target: 20ms) -> "
           "Forward(to: server) }\n}\n",
         "`web2` and `web` both deliver to `server` but configure its egress queue "
         "differently", "same queue and parameters", 19),
    Case("E0505", service("match ipv4.dst == server"), "service `web` has no chain",
         "add `chain", 15),
    Case("E0601", service("require latency <= 5ms\n" + OK_CHAIN),
         "`web`: latency from `client` is at least 6.002ms > 5ms budget",
         "raise the budget", 16),
    Case("E0602", service("require secure\nchain { Forward(to: server) }"),
         "`web` requires `secure` but its chain has no mitigation function",
         "Blocklist", 15),
    Case("E0603", service("require bandwidth >= 100Mbps\n" + OK_CHAIN),
         "`web`: no path from `client` carries 100Mbps; the widest has 12Mbps",
         "lower the requirement", 16),
    Case("E0604", service("require jitter <= 1ms\n" + OK_CHAIN), "unknown requirement `jitter`",
         "requirements: latency, bandwidth, secure", 16),
    Case("E0605", service("match ipv4.dst == server\nmatch tcp.dport == 80\n" + OK_CHAIN),
         "service `web` has two `match` statements", "combine them", 17),
    Case("E0606", service(OK_CHAIN).replace("  endpoint server",
                                            "  endpoint lonely { ip: 10.9.9.9 }\n"
                                            "  endpoint server"),
         "no path from `lonely` to `server` in topology `lab`", "from ...", 16),
    Case("E0606", service(OK_CHAIN).replace("  endpoint client             { ip: 10.0.1.1 }\n", "")
         .replace("  link client -- s1.1   { bandwidth: 1Gbps, delay: 1ms }\n", ""),
         "service `web` has no source: `server` is the only endpoint of topology `lab`",
         "add the endpoints", 13),
    Case("E0607", service("match 10.0.2.1 == ipv4.dst\n" + OK_CHAIN),
         "put the packet field on the left of the comparison", "ipv4.dst == 10.0.2.1", 16),
    Case("E0608", service("chain { Drop() }", "function Drop() : forward {\n"
                                             "  targets { linux {} }\n"
                                             "  latency { linux: 1us }\n}\n"),
         "cannot tell where service `web` delivers traffic", "Forward(to:", 19),
    Case("E0609", service("reply back\n" + OK_CHAIN), "unknown reply mode `back`",
         "`reply forward`", 16),
    Case("E0609", service("reply dorp\n" + OK_CHAIN), "unknown reply mode `dorp`",
         "did you mean `drop`?", 16),
    Case("E0605", service("reply drop\nreply forward\n" + OK_CHAIN),
         "service `web` has two `reply` statements", "combine them", 17),
    Case("E0701", HEAD + TOPO.replace("{ ports: 4 }", "{ prots: 4 }"),
         "switch `s1` has no attribute `prots`", "did you mean `ports`?", 6),
    Case("E0702", HEAD + TOPO.replace("{ ip: 10.0.1.1 }", "{ }"),
         "endpoint `client` needs `ip`", "an IPv4 address", 8),
    Case("E0703", HEAD + TOPO.replace("link client --", "link clinet --"),
         "link to unknown node `clinet`", "did you mean `client`?", 10),
    Case("E0704", HEAD + TOPO.replace("s1.3", "s1.9"), "`s1` has no port 9",
         "its ports are 0..3", 12),
    Case("E0705", HEAD + TOPO.replace(": bmv2     ", ": tofino   "),
         "switch `s1` needs a target: unknown target `tofino`", "supported: bmv2", 6),
    Case("E0706", HEAD + TOPO.replace("link s1.3   -- h1", "link h1     -- h1"),
         "link from `h1` to itself", None, 12),
    Case("E0707", HEAD + TOPO.replace("10.0.2.1", "127.0.0.1"),
         "endpoint `server`: 127.0.0.1 is a loopback address (127.0.0.0/8): it never leaves "
         "the host", "the address the host really has", 9),
    Case("E0707", HEAD + TOPO.replace("10.0.2.1", "0.0.0.0"),
         "endpoint `server`: 0.0.0.0 is \"this network\" (0.0.0.0/8), the address of no host",
         None, 9),
    Case("E0707", HEAD + TOPO.replace("10.0.2.1", "224.0.0.1"),
         "endpoint `server`: 224.0.0.1 is a multicast group (224.0.0.0/4), not a host", None, 9),
    Case("E0707", HEAD + TOPO.replace("10.0.2.1", "255.255.255.255"),
         "endpoint `server`: 255.255.255.255 is reserved (240.0.0.0/4) or the broadcast "
         "address", None, 9),
    Case("E0707", HEAD + TOPO.replace("{ ip: 10.0.2.1 }", "{ ip: 10.0.2.1, mac: "
                                      "ff:ff:ff:ff:ff:ff }"),
         "endpoint `server`: ff:ff:ff:ff:ff:ff is a broadcast MAC address (the first octet is "
         "odd), not a host's", None, 9),
    Case("E0708", HEAD + TOPO.replace("10.0.2.1", "10.0.1.1"),
         "endpoints `client` and `server` both have address 10.0.1.1",
         "its own address", 9),
    Case("E0709", HEAD + TOPO.replace("{ ports: 4 }", '{ ports: 4, p4runtime: "not an address" }'),
         "`p4runtime`: 'not an address' is not HOST:PORT", "HOST:PORT", 6),
    Case("E0709", HEAD + TOPO.replace("{ ports: 4 }",
                                      '{ ports: 4, p4runtime: "127.0.0.1:9559 $(touch pwned)" }'),
         "`p4runtime`: port '9559 $(touch pwned)' is not a number from 1 to 65535",
         "HOST:PORT", 6),
    Case("E0709", HEAD + TOPO.replace("{ ports: 4 }", '{ ports: 4, p4runtime: "a\\"b:1" }'),
         "`p4runtime`: 'a\"b' is neither an IPv4 address, a [IPv6] address nor a host name",
         "HOST:PORT", 6),
    Case("E0710", HEAD + TOPO.replace("{ trusted: true }", '{ trusted: true, cloud: "a\\nb" }'),
         "`cloud` 'a\\nb': it contains the control character '\\n'", "one line", 7),
    Case("W0601", service("match ipv4.dst == client\n" + OK_CHAIN),
         "the `match` of `web` never selects packets to `server` (10.0.2.1), where its chain "
         "forwards them", "ipv4.dst == server", 16),
    Case("W0701", HEAD + TOPO.replace("  endpoint server", "  endpoint spare { ip: 1.1.1.1 }\n"
                                                          "  endpoint server"),
         "endpoint `spare` is not linked to anything", "add a `link`", 9),
    Case("W0201", "import std.fwd", "`import std.fwd` is unused", "remove it", 1),
]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_diagnostic_text(case: Case, tmp_path):
    if case.code == "E0208":
        (tmp_path / "cyc_a.mosaico").write_text("import cyc_b\n")
        (tmp_path / "cyc_b.mosaico").write_text("import cyc_a\n")
    file = str(tmp_path / "case.mosaico")
    (tmp_path / "case.mosaico").write_text(case.source)
    found = [d for d in diagnose(case.source, file) if d.code == case.code]
    assert found, f"{case.code} not reported; got {diagnose(case.source, file)}"
    d = found[0]
    assert d.message == case.message
    if case.hint is not None:
        assert d.hint is not None and case.hint in d.hint, d.hint
    assert d.span is not None
    if case.line is not None:
        assert d.span.line == case.line, d.span
    text = render_text([d], {file: case.source} if d.span.file == file else None)
    assert f"[{case.code}]: {case.message}" in text
    assert f"--> {d.span.file}:{d.span.line}:{d.span.col}" in text
    assert "^" in text


def test_cases_cover_every_front_end_code():
    from mosaico_dsl._codes import CODES

    front_end = {c for c in CODES if c[1:3] in ("01", "02", "03", "04", "05", "06", "07")}
    # Not about a source text: E0106 (a name given to the Python API, tests/test_api.py),
    # E0108 (a program refused before it is read, with no place in it to point at:
    # tests/test_limits.py), E0711 (nothing to compile: `compile` of a program without
    # topology, tests/test_cli.py).
    elsewhere = {"E0106", "E0108", "E0711"}
    assert front_end - elsewhere <= {c.code for c in CASES}


def test_all_errors_are_reported_in_one_run():
    text = service("require latency <= 12Mbps\nrequire jitter <= 1ms\n"
                   "chain { sec.RateLimit(rat: 1kpps) -> sec.Blocklst() -> Forward(to: sevrer) }")
    codes = sorted(d.code for d in diagnose(text) if d.is_error)
    assert codes == ["E0203", "E0205", "E0302", "E0401", "E0402", "E0604"]


def test_a_correct_program_has_no_diagnostics():
    text = service(OK_CHAIN).replace("import std.l4s\n", "")
    assert diagnose(text) == []


def test_an_out_of_range_argument_is_reported_once_not_again_inside_the_stdlib():
    """DualQ's `tupdate` defaults to min(classic_target, ...): a bad `classic_target` must
    not make the default fail as well (once as E0304, once as an unknown name in l4s)."""
    (d,) = [d for d in diagnose(service(
        "chain { std.l4s.DualQ(classic_target: 10ns) -> Forward(to: server) }")) if d.is_error]
    assert d.code == "E0304" and d.span.file == "case.mosaico"


def test_a_composite_no_service_calls_is_still_checked():
    """Unknown names and recursion (here mutual: one error per cycle) in an unused
    composite are errors too."""
    text = service(OK_CHAIN, "function A() { chain { B() } }\n"
                             "function B() { chain { A() } }\n"
                             "function C() { chain { sec.Blocklst() } }\n")
    errors = [d for d in diagnose(text) if d.is_error]
    assert [(d.code, d.message) for d in errors] == [
        ("E0406", "composite function calls itself: __main__.A → __main__.B → __main__.A"),
        ("E0205", "`sec` has no function `Blocklst`"),
    ]


def test_a_recursive_composite_a_service_calls_is_reported_once():
    text = service("chain { Loop() -> Forward(to: server) }",
                   "function Loop() { chain { Loop() } }\n")
    assert [d.code for d in diagnose(text) if d.is_error] == ["E0406"]

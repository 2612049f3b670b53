"""The ``--traffic`` language: values, canonical text, and one diagnostic per mistake."""

from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mosaico_dsl.diagnostics import CompileError, render_text
from mosaico_dsl.sim.traffic import KINDS, format_traffic, parse_traffic
from mosaico_dsl.units import Bandwidth, Rate, Size, Time

from .conftest import FLAGSHIP


def _codes(text: str) -> list[str]:
    with pytest.raises(CompileError) as e:
        parse_traffic(text)
    return [d.code for d in e.value.diagnostics]


def _render(text: str) -> str:
    with pytest.raises(CompileError) as e:
        parse_traffic(text)
    return render_text(e.value.diagnostics, e.value.sources)


def test_reference_spec():
    flows = parse_traffic("prague:1,cubic:1")
    assert [(f.kind, f.count, f.start, f.stop) for f in flows] == \
        [("prague", 1, Time(0), None), ("cubic", 1, Time(0), None)]


def test_options_become_typed_values():
    (p, c, s, f) = parse_traffic(
        "prague:2[pacing=off,bytes=10MB]@5s-30s, cbr[rate=2Mbps,ecn=ect1,burst=4], "
        "syn[rate=20kpps,spoof=198.51.100.0/24]@10s-20s, flood[proto=udp,size=200B]")
    assert (p.count, p.pacing, p.transfer, p.start, p.stop) == \
        (2, False, Size(10_000_000), Time(5 * 10**9), Time(30 * 10**9))
    assert (c.count, c.rate_bps, c.ecn, c.burst) == (1, Bandwidth(2_000_000), 1, 4)
    assert (s.rate_pps, s.spoof) == (Rate(20_000), IPv4Network("198.51.100.0/24"))
    assert (f.proto, f.size) == ("udp", Size(200))


def test_ecn_on_for_classic_tcp_means_ect0():
    (r,) = parse_traffic("reno[ecn=on]")
    assert r.ecn == 2


_names = st.sampled_from(KINDS)
_window = st.one_of(st.just(""), st.builds(lambda a, b: f"@{a}s-{a + b}s",
                                           st.integers(0, 50), st.integers(1, 50)))


@st.composite
def _specs(draw):
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(_names)
        opts = []
        if kind in ("cbr", "onoff", "flood", "syn") and draw(st.booleans()):
            opts.append(f"rate={draw(st.integers(1, 900))}kpps")
        if kind in ("reno", "cubic") and draw(st.booleans()):
            opts.append(f"ecn={draw(st.sampled_from(['off', 'ect0']))}")
        if kind in ("prague", "reno", "cubic") and draw(st.booleans()):
            opts.append(f"pacing={draw(st.sampled_from(['on', 'off']))}")
        text = f"{kind}:{draw(st.integers(1, 9))}"
        if opts:
            text += f"[{','.join(opts)}]"
        parts.append(text + draw(_window))
    return ",".join(parts)


@given(_specs())
def test_canonical_text_parses_back_to_the_same_flows(text):
    flows = parse_traffic(text)
    again = parse_traffic(format_traffic(flows))
    assert [replace(f, span=None) for f in again] == [replace(f, span=None) for f in flows]


def test_unknown_kind_suggests_the_nearest():
    out = _render("pragu:1,cubic:1")
    assert "error[E1102]: unknown traffic kind `pragu`" in out
    assert "did you mean `prague`?" in out
    assert "1 | pragu:1,cubic:1" in out


def test_every_mistake_is_reported_in_one_run():
    text = "prague:1[foo=1,pacing=maybe],cubic:x,,reno@9s-3s"
    assert _codes(text) == ["E1103", "E1104", "E1101", "E1101", "E1106"]
    out = _render(text)
    assert "prague has no option `foo`" in out and "`pacing` takes on or off" in out
    assert "empty flow" in out and "stops (3s) before it starts (9s)" in out


@pytest.mark.parametrize("text, code, message", [
    ("cbr[rate=5]", "E1104", "invalid value '5' for option `rate` of cbr"),
    ("syn[spoof=300.1.1.1/8]", "E1104", "option `spoof`"),
    ("prague[ecn=ect0]", "E1103", "prague has no option `ecn`"),
    ("cubic:0", "E1104", "flow count 0 is out of range"),
    ("reno@10parsecs", "E1106", "'10parsecs' is not a time"),
    ("reno@", "E1101", "ends too early"),
    ("cbr[size=20B]", "E1104", "a 20 B packet cannot be sent by cbr"),
    ("cbr[size=9001B]", "E1104", "at most 9000B"),
    ("cbr[rate=0Mbps]", "E1104", "invalid value '0Mbps' for option `rate`"),
    ("cbr[rate=-2Mbps]", "E1104", "invalid value '-2Mbps' for option `rate`"),
    ("cbr[rate=1Mbps,rate=2Mbps]", "E1103", "given twice"),
    ("reno@5ms-5ms", "E1106", "before it starts"),
    ("  ", "E1107", "empty"),
])
def test_diagnostics(text, code, message):
    with pytest.raises(CompileError) as e:
        parse_traffic(text)
    assert e.value.diagnostics[0].code == code
    assert message in render_text(e.value.diagnostics, e.value.sources)


def test_span_points_at_the_offending_value():
    with pytest.raises(CompileError) as e:
        parse_traffic("prague:1, cbr[rate=fast]")
    span = e.value.diagnostics[0].span
    assert (span.file, span.line, span.col) == ("--traffic", 1, 20)


@pytest.mark.parametrize("text, least", [
    ("prague:1[size=40B]", 53),  # issue 13: a goodput of -1.54 Mb/s
    ("prague:1[size=52B]", 53),  # issue 13: 16 kpps sent, 0 delivered
    ("reno[size=52B]", 53), ("cubic[size=1B]", 53),
    ("cbr[size=28B]", 29), ("onoff[size=10B]", 29),
    ("flood[size=39B]", 40), ("flood[proto=udp,size=27B]", 28),
])
def test_packets_too_small_for_their_headers_are_refused(text, least):
    """A TCP segment needs IPv4 + TCP with timestamps (52 B) and a byte of data, a datagram
    IPv4 + UDP (28 B) and a byte, a flood packet its bare headers: anything smaller cannot
    be sent. The diagnostic points at the size, says why, and gives the least size."""
    with pytest.raises(CompileError) as e:
        parse_traffic(text)
    (d,) = e.value.diagnostics
    assert d.code == "E1104" and "cannot be sent" in d.message
    assert d.hint == f"give size={least}B or more (1500B fills an Ethernet MTU)"
    start = text.index("size=") + len("size=")
    assert (d.span.file, d.span.line, d.span.col) == ("--traffic", 1, start + 1)
    ok = text.replace(text[start:text.index("B", start) + 1], f"{least}B")
    assert parse_traffic(ok)[0].size.bytes == least  # the least size is accepted


def test_flow_values_built_in_python_are_checked_too():
    from mosaico_dsl.sim import simulate
    from mosaico_dsl.sim.traffic import FlowSpec

    with pytest.raises(CompileError) as e:
        simulate(FLAGSHIP, duration="1s", traffic=[FlowSpec("prague", size=Size(40))])
    assert [d.code for d in e.value.diagnostics] == ["E1104"]


def test_the_smallest_sendable_packets_deliver_what_they_carry():
    """At the least sizes the goodput is the payload (1 B per packet), never negative."""
    from mosaico_dsl.sim import simulate

    r = simulate(FLAGSHIP, duration="2s", traffic="prague:1[size=53B],flood[size=40B]", seed=1)
    prague = r.flow("prague#1")
    assert prague.received > 100
    assert prague.goodput_bps > 0
    assert all(f.goodput_bps >= 0 for f in r.flows)

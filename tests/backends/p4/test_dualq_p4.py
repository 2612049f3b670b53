"""The generated DualQ egress P4 computes exactly what ``aqm.dualq.dequeue`` computes.

The P4 text is parsed with mosaico's P4 grammar and run by a small interpreter of the
statement subset the templates emit (bit<N> arithmetic with P4's wrap-around, register
reads and writes, counters, ``random``, ``mark_to_drop``, nested control calls), so this
checks the program itself — widths, constants, branch structure — against the model.
"""

from __future__ import annotations

from dataclasses import fields, replace
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from p4_support import EXAMPLES
from p4model import STANDARD_METADATA, Interpreter, parse_files, types_of

from mosaico_dsl.aqm import dualq as D
from mosaico_dsl.backends.p4 import plan_switches
from mosaico_dsl.backends.p4.backend import switch_files
from mosaico_dsl.place import place

PROGRAM = """
import std.l4s
from std.fwd import Forward
topology t {{
  switch s1 : bmv2 {{ ports: 4, priority_queues: 2 }}
  endpoint a {{ ip: 10.0.0.1 }}
  endpoint b {{ ip: 10.0.0.2 }}
  link a -- s1.1 {{ bandwidth: 1Gbps }}
  link s1.2 -- b {{ bandwidth: 10Mbps, delay: 1ms }}
}}
service svc on t {{
  chain {{ std.l4s.DualQ({args}) -> Forward(to: b) }}
}}
"""

CONFIGS = {
    "flagship": None,
    "step-k3-thlen3": "coupling: 3, l4s_mode: \"step\", l4s_min_th: 1ms, th_len: 3",
    "target5-rtt30": "classic_target: 5ms, rtt_max: 30ms, l4s_range: 1ms",
    "k1.5-alpha-beta": "coupling: 1.5, alpha: 0.33, beta: 2.5, tupdate: 8ms",
}


@cache
def _setup(config: str):
    from mosaico_dsl import compiler

    if CONFIGS[config] is None:
        program = compiler.check(next(p for p in EXAMPLES if p.stem == "secure_l4s"))
    else:
        program = compiler.check(PROGRAM.format(args=CONFIGS[config]))
    plans, diags = plan_switches(program, place(program))
    assert not diags
    plan = next(p for p in plans if p.dualq_units)
    files = switch_files(plan, "test.mosaico")
    tree = parse_files(files, f"{plan.switch.name}.p4")
    return plan, tree


def _widths(tree) -> dict[str, int]:
    types = types_of(tree)
    widths = {f"standard_metadata.{k}": v for k, v in STANDARD_METADATA.items()}
    for path in ("mosaico.l4s", "mosaico.aqm"):
        widths[f"meta.{path}"] = types.path_bits("metadata_t", path.split("."))
    widths["hdr.ipv4.ecn"] = types.path_bits("headers_t", ["ipv4", "ecn"])
    return widths


def _run(config: str, state: D.DualQState, *, port: int, now: int, l4s: bool, qdelay: int,
         ecn: int, qlen: int, draws: list[int]):
    plan, tree = _setup(config)
    unit = plan.dualq_units[0]
    fields = {
        "standard_metadata.egress_port": port, "standard_metadata.egress_global_timestamp": now,
        "standard_metadata.deq_timedelta": qdelay, "standard_metadata.deq_qdepth": qlen,
        "meta.mosaico.l4s": int(l4s), "meta.mosaico.aqm": unit.unit, "hdr.ipv4.ecn": ecn,
    }
    regs = {unit.register(role).name: {port: getattr(state, field)}
            for role, field in zip(ROLES, FIELDS, strict=True)}
    vm = Interpreter(tree, fields, _widths(tree), regs, {}, list(draws))
    vm.run_control("MosaicoEgress")
    after = D.DualQState(*(vm.registers[unit.register(role).name][port] for role in ROLES))
    index = port * 2 + int(l4s)
    counted = {role: vm.counters.get(unit.counter(role).name, {}).get(index, 0)
               for role in ("packets", "marks", "drops")}
    return plan, unit, after, vm, counted


U32 = st.integers(0, D.MAX_PROB)
# the registers, in DualQState's field order
ROLES = ("p", "last_update", "qdelay_c", "qdelay_c_seen", "qdelay_c_prev", "qdelay_l", "c_left",
         "c_arrival")
FIELDS = tuple(f.name for f in fields(D.DualQState))


@settings(max_examples=100, deadline=None)
@given(config=st.sampled_from(sorted(CONFIGS)), p=U32, last=st.integers(0, 1 << 40),
       gap=st.one_of(st.integers(0, 200_000), st.integers(0, 10_000_000),
                     st.integers(0, 1 << 40)),
       seen_back=st.one_of(st.integers(0, 100_000), st.integers(0, 1 << 40)),
       qc=st.integers(0, 1 << 20), qprev=st.integers(0, 1 << 20), ql=st.integers(0, 1 << 20),
       l4s=st.booleans(), ecn_bit=st.booleans(), qdelay=st.integers(0, 1 << 21),
       qlen=st.integers(0, 40), c_left=st.one_of(st.just(0), st.integers(0, 40)),
       arrival_back=st.one_of(st.none(), st.integers(0, 2_000_000), st.integers(0, 1 << 40)),
       r1=U32, r2=U32, r3=U32)
def test_egress_p4_equals_the_model(config, p, last, gap, seen_back, qc, qprev, ql, l4s,
                                    ecn_bit, qdelay, qlen, c_left, arrival_back, r1, r2, r3):
    now = last + gap
    arrival = 0 if arrival_back is None else max(1, now - arrival_back)
    state = D.DualQState(p, last, qc, max(0, now - seen_back), qprev, ql, c_left, arrival)
    ecn = (3 if ecn_bit else 1) if l4s else (2 if ecn_bit else 0)
    plan, unit, after, vm, counted = _run(config, state, port=2, now=now, l4s=l4s,
                                          qdelay=qdelay, ecn=ecn, qlen=qlen,
                                          draws=[r1, r2, r3])
    expected, verdict = D.dequeue(unit.constants, state, now_us=now, l4s=l4s,
                                  qdelay_us=qdelay, ecn=ecn, qlen=qlen, r1=r1, r2=r2, r3=r3)
    assert after == expected
    assert vm.dropped == (verdict is D.Verdict.DROP)
    assert counted == {"packets": 1, "marks": int(verdict is D.Verdict.MARK),
                       "drops": int(verdict is D.Verdict.DROP)}
    if verdict is D.Verdict.MARK:
        assert vm.fields["hdr.ipv4.ecn"] == 3
    else:
        assert vm.fields["hdr.ipv4.ecn"] == ecn


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_a_long_trace_stays_identical(config):
    """Thousands of packets through the P4 and the model, state carried across packets."""
    import random

    rng = random.Random(config)
    plan, tree = _setup(config)
    unit = plan.dualq_units[0]
    state, now = D.DualQState(), 0
    for i in range(400):
        now += rng.choice([50, 400, 1200, 9000, 40_000])
        l4s = rng.random() < 0.5
        qdelay = int(abs(rng.gauss(20_000 if not l4s else 1000, 15_000)))
        ecn = rng.choice([1, 3]) if l4s else rng.choice([0, 2])
        qlen = rng.randrange(0, 30)
        draws = [rng.getrandbits(32) for _ in range(3)]
        if rng.random() < 0.3:  # a Classic arrival stamped by ingress since the last packet
            state = D.classic_arrival(state, now - rng.randrange(0, 40))
        _, _, after, vm, _ = _run(config, state, port=2, now=now, l4s=l4s, qdelay=qdelay,
                                  ecn=ecn, qlen=qlen, draws=draws)
        state, verdict = D.dequeue(unit.constants, state, now_us=now, l4s=l4s,
                                   qdelay_us=qdelay, ecn=ecn, qlen=qlen, r1=draws[0],
                                   r2=draws[1], r3=draws[2])
        assert after == state, f"packet {i}"
        assert vm.dropped == (verdict is D.Verdict.DROP), f"packet {i}"


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_idle_gaps_of_seconds_fold_exactly_as_the_model(config):
    """After idle gaps from one Tupdate to several seconds (and past the saturating 2^K
    intervals) the P4's binary fold leaves the same p' as the model, which is exact."""
    plan, _ = _setup(config)
    unit = plan.dualq_units[0]
    c = unit.constants
    assert unit.fold_saturate is not None and len(unit.folds) == c.fold_bits
    gaps = sorted({g * c.tupdate_us + phase for g in (*range(1, 40), 66, 100, 255, 256, 600,
                                                        1000, 4095, 4096)
                   for phase in (0, c.tupdate_us - 1)}
                  | {5_000_000, 9_999_999, unit.fold_saturate[0] + c.tupdate_us - 1,
                     unit.fold_saturate[0] + c.tupdate_us})
    last = 7_000_000
    for p in (D.MAX_PROB, D.MAX_PROB // 3, 1 << 20):
        for gap in gaps:
            state = D.DualQState(p, last, 0, 0, 0, 0, 0, 0)
            *_, after, _, _ = _run(config, state, port=2, now=last + gap, l4s=True, qdelay=0,
                                   ecn=1, qlen=0, draws=[D.MAX_PROB] * 3)
            expected, _ = D.dequeue(c, state, now_us=last + gap, l4s=True, qdelay_us=0, ecn=1,
                                    qlen=0, r1=D.MAX_PROB, r2=D.MAX_PROB, r3=D.MAX_PROB)
            assert after == expected, gap
            n = gap // c.tupdate_us - 1
            assert after.p == max(0, p - c.alpha(c.target_us) - n * c.idle_decay), gap


@pytest.mark.parametrize("before,after", [
    ("bit<48> elapsed = now - last_update;", "bit<48> elapsed = now - qdelay_c;"),
    ("if (q >= qdelay_c_prev) {", "if (q >= last_update) {"),
])
def test_an_operator_on_two_widths_is_rejected(before, after):
    """The interpreter applies p4c's rule that both operands have one width (no implicit
    cast), so the equality tests above would catch a template that mixed them."""
    from p4model import WidthError

    plan, _ = _setup("flagship")
    files = dict(switch_files(plan, "test.mosaico"))
    main = f"{plan.switch.name}.p4"
    assert before in files[main]
    files[main] = files[main].replace(before, after)
    tree = parse_files(files, main)
    unit = plan.dualq_units[0]
    fields = {"standard_metadata.egress_port": 0, "standard_metadata.egress_global_timestamp":
              100_000, "standard_metadata.deq_timedelta": 20_000,
              "standard_metadata.deq_qdepth": 5, "meta.mosaico.l4s": 0,
              "meta.mosaico.aqm": unit.unit, "hdr.ipv4.ecn": 0}
    vm = Interpreter(tree, fields, _widths(tree), {}, {}, [0, 0, 0])
    with pytest.raises(WidthError, match="p4c needs a cast"):
        vm.run_control("MosaicoEgress")


def test_ingress_stamps_classic_arrivals_as_the_model():
    """The end of the generated ingress is ``dualq.classic_arrival``: the first Classic packet
    for a port since the latest Classic departure stamps its arrival time (time 0 as 1 µs);
    later ones, L packets and packets dropped on the way leave the stamp alone."""
    from test_p4_ingress import Switch

    s1 = Switch("secure_l4s", "s1")
    name = "dualq1_c_arrival"
    model = D.DualQState()

    def classic(now: int, **kw):
        return s1.send(2, src="10.0.1.2", dst="10.0.2.1", ecn=kw.pop("ecn", 0), now=now, **kw)

    s1.send(1, src="10.0.1.1", dst="10.0.2.1", ecn=1, now=3_000)  # L: no stamp
    assert s1.registers.get(name, {}).get(0, 0) == 0
    s1.send(3, src="203.0.113.9", dst="10.0.2.1", now=4_000)  # blocklisted: dropped first
    assert s1.registers.get(name, {}).get(0, 0) == 0
    for now in (5_000, 7_000):  # ECT(0) is Classic too
        assert not classic(now, ecn=2 if now == 7_000 else 0).dropped
        model = D.classic_arrival(model, now)
        assert s1.registers[name][0] == model.c_arrival_us == 5_000
    s1.registers[name][0] = 0  # a Classic departure cleared it (egress)
    model = replace(model, c_arrival_us=0)
    classic(0)
    assert s1.registers[name][0] == D.classic_arrival(model, 0).c_arrival_us == 1

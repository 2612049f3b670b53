"""Changing a realised local plan: the steps of :func:`diff`, and rulesets reloaded in place.

* Without root: for every pair of plans (the examples and this folder's programs, under the
  same or another prefix, with namespaces deleted by hand, their switches on BMv2 — with
  the same or another program, stopped by hand — or the Linux stand-in), the steps account
  for every resource — each one removed, kept or added exactly once, from the value it
  has — and undoing them all, newest first, gives back the first realisation.
* As root: a switch stand-in's ruleset with a blocklist and a per-source rate limit is
  reloaded in place while traffic has filled its counters and buckets: what did not change
  keeps its state, what changed is recreated, what left is gone; and reloading any
  generated ruleset over another ends exactly as loading it fresh.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vnf_support import SOURCES, compiled, have, vnf_files

import mosaico_dsl as mo
from mosaico_dsl.backends.vnf import (
    LocalPlan,
    SwitchProgram,
    apply,
    destroy,
    diff,
    load_plan,
    plan_local,
)
from mosaico_dsl.backends.vnf.local import Drift, _view, namespace_names
from mosaico_dsl.backends.vnf.nftlive import differs, live_tables, reload_ruleset, ruleset_tables


@cache
def plans() -> tuple[LocalPlan, ...]:
    out = []
    for src in SOURCES:
        r = compiled(src)
        out.append(plan_local(r.program, r.placement))
    return tuple(out)


def _key(r) -> tuple:
    name = type(r).__name__
    if name == "_Netns":
        return (name, r.name)
    if name == "_Veth":
        return (name, r.key)
    if name == "_Addressing":
        return (name, r.namespace)
    if name == "_Ruleset":
        return (name, r.namespace, r.path)
    if name == "_Switch":
        return (name, r.namespace)
    return (name, r.namespace, r.device)


def _programs(plan: LocalPlan | None, version: int | None) -> dict[str, SwitchProgram]:
    """Each switch on BMv2 with program ``version`` (``None``: the Linux stand-in)."""
    if plan is None or version is None:
        return {}
    return {ns.node: SwitchProgram(ns.node, ((f"{ns.node}.p4", f"// v{version}"),),
                                   "table_add t a =>", 1, 9090, 2)
            for ns in plan.namespaces if ns.role == "switch"}


def _resources(plan: LocalPlan | None, prefix: str | None, drift: Drift | None = None,
               switches: dict | None = None) -> dict[tuple, object]:
    from mosaico_dsl.backends.vnf.local import _live

    if plan is None:
        return {}
    v = _view(plan, prefix, True, switches)
    if drift is not None:
        v = _live(v, drift)
    out = {}
    for group in (v.netns, v.veths, v.addressing, v.rulesets, v.qdiscs, v.switches):
        for r in group.values():
            out[_key(r)] = r
    return out


def _run_model(state: dict, steps, forward: bool) -> None:
    for s in (steps if forward else reversed(steps)):
        old, new = (s.old, s.new) if forward else (s.new, s.old)
        r = old if old is not None else new
        k = _key(r)
        assert state.get(k) == old, (s.what, state.get(k), old)
        if new is None:
            del state[k]
        else:
            state[k] = new


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_steps_account_for_every_resource(data):
    all_plans = (None, *plans())
    old = data.draw(st.sampled_from(all_plans), label="old")
    new = data.draw(st.sampled_from(all_plans), label="new")
    old_prefix = data.draw(st.sampled_from(["a-", "b-"]))
    new_prefix = data.draw(st.sampled_from(["a-", "b-"]))
    old_sw = _programs(old, data.draw(st.sampled_from([None, 1, 2]), label="old program"))
    new_sw = _programs(new, data.draw(st.sampled_from([None, 1, 2]), label="new program"))
    drift = None
    if old is not None:
        names = sorted(namespace_names(old, old_prefix).values())
        gone = data.draw(st.sets(st.sampled_from(names)), label="gone")
        switch_ns = sorted((n, ns.node) for ns in old.namespaces if ns.node in old_sw
                           if (n := namespace_names(old, old_prefix)[ns.name]) not in gone)
        stopped = data.draw(st.sets(st.sampled_from(switch_ns)) if switch_ns
                            else st.just(set()), label="stopped")
        drift = Drift(tuple(sorted(gone)), stopped_switches=tuple(sorted(stopped)))
    changes = diff(old, new, old_prefix=old_prefix, new_prefix=new_prefix, drift=drift,
                   old_switches=old_sw, new_switches=new_sw)
    start = _resources(old, old_prefix, drift, old_sw)
    state = dict(start)
    _run_model(state, changes.steps, forward=True)
    assert state == _resources(new, new_prefix, switches=new_sw)
    _run_model(state, changes.steps, forward=False)
    assert state == start
    if old is new and old_prefix == new_prefix and old_sw == new_sw and not (
            drift and not drift.empty):
        assert changes.empty and not changes.shown
    # Removals come before additions: a name freed is free when it is taken again.
    ops = [s.op for s in changes.steps]
    if "delete" in ops and "add" in ops:
        assert max(i for i, op in enumerate(ops) if op == "delete") < ops.index("add")
    assert not any(s.deferred and s.op != "delete" for s in changes.steps)


def test_unchanged_plans_need_no_steps():
    for plan in plans():
        assert diff(plan, plan).steps == ()
        assert diff(plan, plan, old_prefix="x-", new_prefix="x-").steps == ()
        created = diff(None, plan, new_prefix="x-").created
        assert sorted(created) == sorted(namespace_names(plan, "x-").values())


# --------------------------------------------------------------------------- real (root)

PROGRAM = """
import std.security as sec
from std.fwd import Forward

topology t {{
  switch   s1     : bmv2 {{ ports: 4 }}
  endpoint client        {{ ip: 10.0.1.1, trusted: true }}
  endpoint server        {{ ip: 10.0.2.1 }}
  link client -- s1.1 {{ bandwidth: 1Gbps, delay: 10us }}
  link s1.0 -- server {{ bandwidth: 1Gbps, delay: 10us }}
}}

service dns on t {{
  match ipv4.dst == server and udp.dport == 53
  chain {{
    {chain}
  }}
}}
"""
BLOCK = "sec.Blocklist(prefixes: [{prefixes}]) @ s1"
LIMIT = 'sec.RateLimit(rate: {rate}, burst: 100, per: "source", buckets: 64) @ s1'


def _stand_in(tmp_path: Path, name: str, *functions: str) -> tuple[Path, str]:
    """A build of PROGRAM with ``functions`` then Forward on s1, and s1's ruleset."""
    src = tmp_path / f"{name}.mosaico"
    src.write_text(PROGRAM.format(chain=" -> ".join([*functions, "Forward(to: server) @ s1"])))
    out = mo.compile(src, emit=["vnf"]).write(tmp_path / name)
    return out, (out / "local" / "s1.nft").read_text()


def _counters(ns: str) -> dict[str, int]:
    doc = json.loads(subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list",
                                     "counters"], capture_output=True, text=True,
                                    check=True).stdout)
    return {c["name"]: c["packets"] for item in doc["nftables"] if (c := item.get("counter"))}


def _elements(ns: str, table: str, set_name: str) -> list:
    doc = json.loads(subprocess.run(["ip", "netns", "exec", ns, "nft", "-j", "list", "set",
                                     "ip", table, set_name], capture_output=True, text=True,
                                    check=True).stdout)
    return [e["elem"]["val"] if isinstance(e, dict) and "elem" in e else e
            for e in doc["nftables"][1]["set"].get("elem", [])]


SEND = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(b"q", ("10.0.2.1", 53))
"""


def _send(prefix: str, count: int) -> None:
    subprocess.run(["ip", "netns", "exec", f"{prefix}client", sys.executable, "-c", SEND,
                    str(count)], check=True, timeout=30)
    subprocess.run(["sleep", "0.2"], check=True)


def _no_drift(ns: str, text: str, why: str = "") -> None:
    live = live_tables(ns)
    want = ruleset_tables(text)
    assert set(live) == set(want), why
    for table, objects in want.items():
        assert not differs(live[table], objects), (why, table)


@pytest.mark.root
@pytest.mark.skipif(not (have("ip") and have("nft") and have("unshare")),
                    reason="needs iproute2, nftables and unshare (util-linux)")
def test_reload_in_place_keeps_what_did_not_change(tmp_path):
    build, v1 = _stand_in(tmp_path, "v1", BLOCK.format(prefixes="203.0.113.0/24"),
                          LIMIT.format(rate="1000pps"))
    _, v2 = _stand_in(tmp_path, "v2", BLOCK.format(prefixes="198.51.100.0/24"),
                      LIMIT.format(rate="1000pps"))
    _, v3 = _stand_in(tmp_path, "v3", BLOCK.format(prefixes="198.51.100.0/24"),
                      LIMIT.format(rate="2000pps"))
    _, v4 = _stand_in(tmp_path, "v4", LIMIT.format(rate="2000pps"))
    plan = load_plan(build)
    prefix = f"vi{secrets.token_hex(3)}-"
    s1 = f"{prefix}s1"
    table = "mosaico_local_s1"
    try:
        apply(plan, prefix=prefix, shape=False)
        _send(prefix, 30)
        counted = _counters(s1)
        assert counted["dns_0_blocklist_passed"] == 30
        assert counted["dns_1_ratelimit_passed"] == 30
        assert _elements(s1, table, "dns_1_ratelimit_buckets") == ["10.0.1.1"]

        reload_ruleset(s1, v2)  # the blocklist's prefixes change, nothing else
        assert _counters(s1) == counted
        assert _elements(s1, table, "dns_1_ratelimit_buckets") == ["10.0.1.1"], \
            "the per-source buckets were lost"
        assert _elements(s1, table, "dns_0_blocklist_prefixes") == [
            {"prefix": {"addr": "198.51.100.0", "len": 24}}]
        _no_drift(s1, v2)
        _send(prefix, 5)
        assert _counters(s1)["dns_0_blocklist_passed"] == 35, "counters keep counting"

        reload_ruleset(s1, v3)  # the rate changes: the buckets' limits are recreated
        assert _elements(s1, table, "dns_1_ratelimit_buckets") == []
        assert _counters(s1)["dns_1_ratelimit_passed"] == 35
        _no_drift(s1, v3)

        reload_ruleset(s1, v4)  # the blocklist leaves: its chain, set, counters go
        names = {c for c in _counters(s1)}
        assert names == {"dns_0_ratelimit_passed", "dns_0_ratelimit_dropped",
                         "dns_1_forward_passed", "replies", "unclassified_packets"}
        _no_drift(s1, v4)
    finally:
        destroy(plan, prefix=prefix)
    assert prefix not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                        text=True).stdout


def _stand_ins() -> list[tuple[str, str]]:
    out = []
    for src in SOURCES:
        for rel, text in sorted(vnf_files(src).items()):
            if rel.startswith("local/") and rel.endswith(".nft"):
                out.append((f"{src.stem}:{rel}", text))
    return out


@pytest.mark.root
@pytest.mark.skipif(not (have("ip") and have("nft") and have("unshare")),
                    reason="needs iproute2, nftables and unshare (util-linux)")
def test_reloading_over_another_ruleset_ends_as_a_fresh_load():
    rulesets = _stand_ins()
    by_table: dict[tuple, list[tuple[str, str]]] = {}
    for name, text in rulesets:
        for table in ruleset_tables(text):
            by_table.setdefault(table, []).append((name, text))
    pairs = [(a, b) for group in by_table.values() for a in group for b in group if a != b]
    assert len(pairs) >= 2, "no two generated rulesets share a table"
    ns = f"vr{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for (a_name, a), (b_name, b) in pairs:
            subprocess.run(["ip", "netns", "exec", ns, "nft", "flush", "ruleset"], check=True)
            subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=a, text=True,
                           check=True)
            reload_ruleset(ns, b)
            _no_drift(ns, b, f"{a_name} reloaded as {b_name}")
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)

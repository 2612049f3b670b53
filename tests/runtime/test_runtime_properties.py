"""Invariants of the diff engine, checked with hypothesis against a real reference target."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from runtime_helpers import acl_entry, blocklist_entry, insert, make_build, route_entry

from mosaico_dsl.p4proto import p4r
from mosaico_dsl.runtime import deployment as rt
from mosaico_dsl.runtime.build import load_build
from mosaico_dsl.runtime.entities import canonical, canonical_bytes, identity, payload, to_int
from mosaico_dsl.runtime.p4runtime import Endpoint, connect
from mosaico_dsl.runtime.state import StateStore
from mosaico_dsl.runtime.switches import P4RuntimeTarget


@given(st.binary(min_size=1, max_size=8), st.integers(0, 4))
def test_canonical_bytes_keep_the_value_and_drop_only_leading_zeros(value, pad):
    c = canonical_bytes(b"\x00" * pad + value)
    assert to_int(c) == to_int(value)
    assert c == b"\x00" or c[0] != 0
    assert canonical_bytes(c) == c


@given(st.integers(0, 2**16 - 1), st.integers(0, 3))
def test_identity_ignores_padding_and_action(port, pad):
    a = route_entry(3, port=1)
    b = route_entry(3, port=port % 512)
    b.table_entry.match[0].lpm.value = b"\x00" * pad + b.table_entry.match[0].lpm.value
    assert identity(canonical(a)) == identity(canonical(b))
    assert (payload(canonical(a)) == payload(canonical(b))) == (port % 512 == 1)


UNIVERSE = ([("route", i, p) for i in range(6) for p in (1, 2)]
            + [("block", i, 0) for i in range(3)] + [("acl", i, 0) for i in range(3)])


def entity(kind: str, i: int, port: int) -> p4r.Entity:
    if kind == "route":
        return route_entry(i, port=port)
    if kind == "block":
        return blocklist_entry(f"203.0.{113 + i}.0/24")
    return acl_entry(0xC0A80000 + (i << 8), 0xFFFFFF00, 6, 80, 443, priority=10 + i)


def program(picks: frozenset) -> list[p4r.Update]:
    """At most one version (port) of each route; a set of entries of every kind."""
    chosen: dict[tuple, p4r.Entity] = {}
    for kind, i, port in sorted(picks):
        chosen[(kind, i)] = entity(kind, i, port)
    return [insert(e) for e in chosen.values()]


def table_state(address: str) -> dict[str, bytes]:
    async def go():
        async with await connect(Endpoint("x", address, 1), primary=False) as c:
            return await c.read([p4r.Entity(table_entry=p4r.TableEntry())])
    return {identity(canonical(e)): payload(canonical(e)) for e in asyncio.run(go())}


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.frozensets(st.sampled_from(UNIVERSE)), st.frozensets(st.sampled_from(UNIVERSE)))
def test_deploying_a_then_b_converges_with_the_fewest_writes(
        reference_switch, tmp_path_factory, a, b):
    sw = reference_switch(device_id=1)
    root = tmp_path_factory.mktemp("prop")
    ua, ub = program(a), program(b)
    builds = [make_build(root / n, {"s1": ups}) for n, ups in (("a", ua), ("b", ub))]
    want = {identity(canonical(u.entity)): payload(canonical(u.entity)) for u in ub}
    had = {identity(canonical(u.entity)): payload(canonical(u.entity)) for u in ua}
    minimal = len(set(want) ^ set(had)) + sum(had[k] != v for k, v in want.items() if k in had)
    with StateStore(root / "state.db") as store:
        for build in builds:
            before = sw.target.updates
            target = P4RuntimeTarget(load_build(build, {"s1": sw.address}))
            asyncio.run(rt.deploy([target], store))
        assert sw.target.updates - before == minimal
        assert table_state(sw.address) == want
        # And again: nothing to do.
        before = sw.target.writes
        asyncio.run(rt.deploy([P4RuntimeTarget(load_build(builds[1], {"s1": sw.address}))],
                              store))
        assert sw.target.writes == before

"""Large programs are placed in groups on narrowed models (``place/_decompose.py``). Forced
onto small programs — where the exact model is the reference — the groups must give
verified placements, bounds that never exceed the exact optimum, the exact optimum wherever
they claim optimality, and the same explanations when no placement exists."""

from __future__ import annotations

from hypothesis import HealthCheck, assume, given, settings
from place_helpers import check, where
from test_place_properties import programs

import mosaico_dsl as mo
from mosaico_dsl.place import Options, PlacementError, place, verify
from mosaico_dsl.place._cpsat import LEVELS

EXACT = Options(tie_break_gap=0.0)
# Every program is "large": each egress group its own group of services.
GROUPS = Options(exact_size=0, group_size=1, width=2)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(programs())
def test_groups_are_verified_and_their_bounds_hold(text: str):
    try:
        program = check(text)
    except mo.CompileError:
        assume(False)
    try:
        exact = place(program, options=EXACT)
    except PlacementError:
        exact = None
    try:
        grouped = place(program, options=GROUPS)
    except PlacementError as e:
        # A group that cannot be placed alone, with whole capacities, proves the program
        # cannot be either; what is reported is an explanation, never a verifier failure.
        assert exact is None, f"groups failed where the exact model placed:\n{text}"
        assert all(d.code.startswith("E08") and d.code != "E0812" for d in e.diagnostics)
        return
    assert exact is not None, f"groups placed what the exact model could not:\n{text}"
    assert verify(program, grouped) == ()
    levels = grouped.search.levels
    exact_values = [get(exact.objective) for _, get in LEVELS]
    for k, level in enumerate(levels):
        # A bound holds for the whole program: never above the exact optimum.
        assert level.bound <= exact_values[k], (level, exact_values, text)
        # Where the groups claim optimality (every level above too), they have it.
        if k < len(levels) - 1 and all(lv.optimal for lv in levels[:k + 1]):
            assert level.value == exact_values[k], (level, exact_values, text)


SHARED = """
topology t {
  switch s1 : bmv2 { ports: 8, stages: 2 }
  switch s2 : bmv2 { ports: 8, stages: 8 }
  endpoint a { ip: 10.0.0.1, trusted: true }
  endpoint b { ip: 10.0.0.2, trusted: true }
  endpoint x { ip: 10.0.1.1 }
  endpoint y { ip: 10.0.1.2 }
  link a -- s1.0 { bandwidth: 1Gbps, delay: 10us }
  link b -- s1.1 { bandwidth: 1Gbps, delay: 10us }
  link s1.2 -- x { bandwidth: 1Gbps, delay: 10us }
  link s1.3 -- y { bandwidth: 1Gbps, delay: 10us }
  link s1.4 -- s2.0 { bandwidth: 10Gbps, delay: 5us }
}
service first on t {
  from a
  chain { sec.SynGuard() -> Forward(to: x) }
}
service second on t {
  from b
  chain { sec.SynGuard() @ s1 -> Forward(to: y) }
}
"""


def test_groups_competing_for_a_node_are_solved_together():
    """`first` comes first and would take s1's two stages with its SynGuard (on its path);
    `second`'s is pinned there. The groups collide, and the whole program is placed as one:
    `first`'s SynGuard detours to s2."""
    program = check(SHARED)
    grouped = place(program, options=GROUPS)
    exact = place(program, options=EXACT)
    assert verify(program, grouped) == ()
    assert where(grouped)["second/0"][0] == "s1"
    assert where(grouped)["first/0"][0] == "s2"
    assert grouped.objective == exact.objective


def test_a_group_that_cannot_be_placed_is_explained_as_the_exact_model_does():
    text = SHARED.replace("stages: 8", "stages: 1").replace(
        "chain { sec.SynGuard() -> Forward(to: x) }",
        "chain { sec.SynGuard() @ s1 -> Forward(to: x) }")
    program = check(text)
    try:
        place(program, options=EXACT)
    except PlacementError as e:
        expected = [(d.code, d.message) for d in e.diagnostics]
    else:  # pragma: no cover - the program is infeasible by construction
        raise AssertionError("placed an infeasible program")
    grouped = Options(exact_size=0, group_size=10, width=2)
    try:
        place(program, options=grouped)
    except PlacementError as e:
        assert [(d.code, d.message) for d in e.diagnostics] == expected
        assert expected[0][0] == "E0802" and "`s1`" in expected[0][1]
    else:  # pragma: no cover
        raise AssertionError("placed an infeasible program in groups")


def test_groups_are_recorded_in_the_search():
    program = check(SHARED.replace("@ s1 ", ""))
    grouped = place(program, options=GROUPS)
    assert grouped.search.groups == 2
    assert grouped.to_json()["search"]["groups"] == 2
    exact = place(program)
    assert exact.search.groups == 1 and "groups" not in exact.to_json()["search"]

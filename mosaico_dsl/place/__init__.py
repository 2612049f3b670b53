"""Placement: which node runs each function instance, and the route traffic takes.

:func:`place` is the optimiser (OR-Tools CP-SAT, lexicographic objective); every placement
it returns has passed :func:`verify`. When no placement exists it raises
:class:`PlacementError` whose diagnostics name the conflicting constraints
(:mod:`.explain`). :func:`first_fit` is the greedy baseline it is measured against.
"""

from ..diagnostics import error
from ..ir import Program
from .baseline import first_fit
from .objective import evaluate
from .options import Options, _SearchLimit
from .placement import (
    Assignment,
    Level,
    Objective,
    Placement,
    PlacementError,
    Route,
    Search,
    Visit,
)
from .verify import Check, Violation, verify

__all__ = ["Assignment", "Placement", "PlacementError", "Route", "Visit", "Objective", "Level",
           "Search", "Options", "Check", "Violation", "first_fit", "place", "verify",
           "evaluate"]


def place(program: Program, *, options: Options | None = None) -> Placement:
    """Place every function of ``program`` optimally (raises :class:`PlacementError` if no
    placement exists, with diagnostics that say which constraints conflict)."""
    from ._cpsat import solve  # OR-Tools loads on first use
    from ._decompose import Stuck

    options = options or Options()
    too_large = _too_large(program, options)
    if too_large is not None:
        raise PlacementError([too_large])
    try:
        try:
            placement = solve(program, options)
        except Stuck as stuck:
            if stuck.collision:  # groups compete for capacity: only the whole model can tell
                placement = solve(program, options, exact=True)
            else:  # the group cannot be placed even alone: that is the conflict to explain
                from .explain import explain

                raise PlacementError(explain(stuck.program, options)) from None
    except _SearchLimit:
        raise PlacementError([error(
            "E0813", "the placement search ran out of its limit before finding any placement",
            program.span, "raise the limit (`mosaico place --search-limit`), or simplify: "
            "fewer services or nodes to choose from")]) from None
    if placement is None:
        from .explain import explain

        raise PlacementError(explain(program, options))
    violations = verify(program, placement)
    if violations:
        raise PlacementError([v.diagnostic() for v in violations])
    return placement


def _too_large(program: Program, options: Options):
    """E0814 when placing ``program`` would need more memory than it may use."""
    from ..limits import estimate_place, memory_limit, over_memory

    nodes = sum(len(t.switches) + len(t.hosts) for t in program.topologies)
    services = len(program.services)
    return over_memory("E0814", f"placing {services} service{'s' * (services != 1)} on "
                       f"{nodes} node{'s' * (nodes != 1)}", estimate_place(services, nodes),
                       memory_limit(options.memory_limit), None,
                       "place the services in several smaller programs")

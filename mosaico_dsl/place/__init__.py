"""Placement: which node runs each function instance, and the route traffic takes."""

from ..ir import Program
from .placement import Assignment, Placement, PlacementError, Route, Visit, first_fit

__all__ = ["Assignment", "Placement", "PlacementError", "Route", "Visit", "first_fit", "place"]


def place(program: Program) -> Placement:
    """Place every function of ``program`` (raises :class:`PlacementError` if impossible).

    Until the optimiser lands this is the first-fit baseline.
    """
    return first_fit(program)

"""``mosaico experiment``: the program on the local BMv2 testbed with real packets, measured,
and compared with the simulator's prediction of the same program and traffic.

The public entry point is :func:`experiment`; everything else is internal. The names load
on first use: the traffic agents (``python -m mosaico_dsl.experiment.agent``) import this
package too, and need none of the analysis.
"""

from typing import Any

__all__ = ["experiment", "ExperimentResult", "DEFAULT_DURATION", "DEFAULT_TRAFFIC"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The testbed for a run: the running local deployment of the build, or one made for it.

If the state store records a local deployment and deploying the build would change
nothing (the runtime's own plan is empty: same program, same prefix, no drift), the run
uses it and leaves it running. If the store records nothing, the build is deployed with
BMv2 switches for the run and destroyed after it. Anything else — the store records
another deployment, or this one drifted — stops the run before a packet is sent: the
experiment never replaces a deployment it did not make.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from ..diagnostics import CompileError, error
from ..ir import _ir as I
from ..runtime import Build, LocalTarget, StateStore
from ..runtime import deploy as runtime_deploy
from ..runtime import destroy as runtime_destroy
from ..runtime import plan as runtime_plan
from .testbed import Testbed, testbed_of

__all__ = ["Provisioned", "provision", "release"]

_UNIT = ("local", "local")


@dataclass(frozen=True)
class Provisioned:
    testbed: Testbed
    deployed_here: bool  # the run deployed it: the run destroys it
    prefix: str


def _unavailable(message: str, hint: str) -> CompileError:
    return CompileError([error("E1403", message, hint=hint)])


def provision(program: I.Program, build: Build, store: StateStore, *, prefix: str | None,
              progress: Callable[[str], None] = lambda _: None) -> Provisioned:
    target = LocalTarget(build, prefix=prefix, data_plane="bmv2")
    recorded = store.unit(*_UNIT)
    deployed_here = False
    if recorded is not None:
        the_plan = asyncio.run(runtime_plan([target], store))
        if not the_plan.empty:
            raise _unavailable(
                f"the state store {store.path} records a local deployment that is not this "
                f"build as it stands (prefix {recorded.data.get('prefix', '?')!r}): "
                f"{the_plan.units[0].summary() if the_plan.units else 'it differs'}",
                "run the experiment against its own store (--state FILE), or bring the "
                "deployment to this build first (`mosaico deploy BUILD --target local`)")
        progress("using the running local deployment")
    else:
        progress("deploying the build locally (BMv2)")
        asyncio.run(runtime_deploy([target], store, build=build, progress=progress))
        deployed_here = True
    record = store.unit(*_UNIT)
    assert record is not None
    testbed = testbed_of(program, record.data)
    missing = [sw.name for sw in build.switches if sw.name not in testbed.switches]
    if missing:
        if deployed_here:
            release(store, progress)
        raise _unavailable(
            f"switch {', '.join(missing)} does not run its P4 program on BMv2 in the local "
            "deployment (the Linux stand-in has no DualQ to measure)",
            "deploy with BMv2: `mosaico deploy BUILD --target local --data-plane bmv2`")
    return Provisioned(testbed, deployed_here, record.data["prefix"])


def release(store: StateStore, progress: Callable[[str], None] = lambda _: None) -> None:
    """Destroy the local deployment the run made."""
    progress("destroying the local deployment")
    asyncio.run(runtime_destroy([LocalTarget(None)], store, progress=progress))

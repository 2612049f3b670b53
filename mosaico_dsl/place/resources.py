"""What nodes offer and what functions take from them — one accounting for every pass.

The optimiser, the greedy baseline and the verifier all count resources through these
functions, so they cannot disagree about what "fits" means. Two rules beyond plain sums:

* Services that deliver to the same endpoint share its egress queue (the checker makes them
  configure it identically), so their queueing functions placed together on one node are
  one function and count once (:func:`shared_queue_key`).
* A queueing function on a switch needs that many priority queues (:func:`queues_needed`):
  the DualQ keeps its L and Classic queues apart with two.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import cache
from types import MappingProxyType

from ..ir import _ir as I
from ..units import Size

__all__ = ["P4_RESOURCES", "VNF_RESOURCES", "UNITS", "capacity", "demand", "queues_needed",
           "shared_queue_key", "usage", "over", "target_on", "amount"]

P4_RESOURCES = ("stages", "table_entries", "register_bits", "meters")
VNF_RESOURCES = ("vcpus", "ram")
#: How each resource is counted, for messages.
UNITS = {"stages": "stages", "table_entries": "table entries", "register_bits": "register bits",
         "meters": "meters", "vcpus": "vCPUs", "ram": "bytes of RAM"}

# Priority queues a queueing function needs on a switch; every other function needs none
# beyond the one every port has.
_PRIORITY_QUEUES = {"std.l4s.DualQ": 2}


def capacity(node: I.NodeIR) -> dict[str, int]:
    if isinstance(node, I.Switch):
        c = node.capacity
        return {"stages": c.stages, "table_entries": c.table_entries,
                "register_bits": c.register_bits, "meters": c.meters}
    if isinstance(node, I.Host):
        return {"vcpus": node.vcpus, "ram": node.ram.bytes}
    return {}


@cache
def demand(option: I.TargetOption) -> Mapping[str, int]:
    """What ``option`` takes from a node (read-only: shared by every caller)."""
    return MappingProxyType(_demand(option))


def _demand(option: I.TargetOption) -> dict[str, int]:
    c = option.cost
    if isinstance(c, I.P4Cost):
        return {"stages": c.stages, "table_entries": c.entries,
                "register_bits": c.register_bits, "meters": c.meters}
    return {"vcpus": c.vcpu, "ram": c.ram.bytes}


_SINGULAR = {"stages": "stage", "table_entries": "table entry", "register_bits": "register bit",
             "meters": "meter", "vcpus": "vCPU", "ram": "byte of RAM"}


def amount(n: int, res: str) -> str:
    """``1 stage``, ``4 stages``, ``512MiB of RAM``: RAM in the units programs write."""
    if res == "ram":
        return f"{_size(n)} of RAM"
    return f"{n} {_SINGULAR[res] if n == 1 else UNITS[res]}"


def _size(n: int) -> str:
    exact = str(Size(n))
    if n < 1024 or not exact.endswith("B") or exact[-2].isalpha():
        return exact  # 300MiB, 1.5GiB, 512B
    unit, factor = next((u, f) for u, f in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))
                        if n >= f)
    return f"about {n / factor:.4g}{unit}"


def queues_needed(fi: I.FunctionInstance) -> int:
    return _PRIORITY_QUEUES.get(fi.function, 1) if fi.kind == "queue" else 1


def target_on(fi: I.FunctionInstance, node: I.NodeIR) -> str | None:
    """The target ``fi`` would run as on ``node``, if it can run there at all."""
    if isinstance(node, I.Switch):
        return node.p4_target if fi.option(node.p4_target) is not None else None
    if isinstance(node, I.Host):
        return next((t.target for t in fi.targets if t.family == I.VNF_FAMILY), None)
    return None


def shared_queue_key(service: I.Service, fi: I.FunctionInstance) -> tuple[str, str] | None:
    """Queues of services with the same key share one egress queue (None: not a queue)."""
    if fi.kind != "queue":
        return None
    return (service.topology, service.destination)


def usage(program: I.Program, placed: Iterable[tuple[I.FunctionInstance, str, str]]
          ) -> dict[tuple[str, str], dict[str, int]]:
    """Summed demand per (topology, node) of ``(instance, node, target)`` triples."""
    services = {s.name: s for s in program.services}
    seen_queues: set[tuple] = set()
    out: dict[tuple[str, str], dict[str, int]] = {}
    for fi, node, target in placed:
        svc = services[fi.service]
        option = fi.option(target)
        if option is None:
            continue
        key = shared_queue_key(svc, fi)
        if key is not None:
            once = (key, node, target)
            if once in seen_queues:
                continue
            seen_queues.add(once)
        slot = out.setdefault((svc.topology, node), {})
        for res, amount in demand(option).items():
            slot[res] = slot.get(res, 0) + amount
    return out


def over(used: Mapping[str, int], offered: Mapping[str, int]) -> list[str]:
    """Resources of ``used`` beyond what is ``offered``."""
    return [r for r, v in used.items() if v > offered.get(r, 0)]

"""The ``vnf`` backend: every VNF artifact and the local target, as ``{path: bytes}``.

For every host the placement runs Linux functions on (``<host>/``): ``stack.yaml`` (Heat),
``vnfd-<vnf>.yaml`` / ``pnfd-<switch>.yaml`` / ``nsd-<service>.yaml`` (OSM SOL006) with
``cloud_init/<vnf>.cfg`` (each VNFD's cloud-init file),
``<vnf>.nft`` (one nftables ruleset per VNF) and ``tc.sh`` (queueing VNFs). At the top,
``local.json`` realises the whole topology on one Linux machine, with ``local/`` holding
the rulesets and scripts of the switches' software stand-ins (not for a topology too large
for one machine: W1001, :func:`.localplan.too_large`). Every YAML and JSON document
is checked against the project's schema before it is returned.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..._json import dumps
from ...diagnostics import CompileError, Diagnostic, Note, error, warning
from .. import Artifacts
from .heat import host_stack, render_stack
from .localplan import LocalPlanError, plan_local, too_large
from .model import VnfHost, vnf_hosts
from .nftables import Unsupported
from .osm import (
    cloud_init_path,
    nsd_path,
    pnfd_path,
    render_cloud_init,
    render_nsd,
    render_pnfd,
    render_vnfd,
    vnfd_path,
)
from .schema import load_yaml, validate
from .vnfconfig import VnfConfig, host_tc, nft_path, tc_path, vnf_config

if TYPE_CHECKING:
    from ...compiler import Compilation

__all__ = ["generate", "generate_texts"]


def generate(c: Compilation) -> Mapping[str, bytes]:
    """The backend entry point registered as ``vnf`` in ``compiler.BACKENDS``."""
    texts = generate_texts(c)
    return Artifacts({p: t.encode() for p, t in texts.items()}, texts.warnings)


def generate_texts(c: Compilation) -> Artifacts:
    program, placement = c.program, c.placement
    files: dict[str, str] = {}
    diagnostics: list[Diagnostic] = []
    for host in vnf_hosts(program, placement):
        diagnostics.extend(_host(host, c, files))
    # A topology too large for one machine, or routes the local target cannot steer
    # (E1001), get every artifact but local.json, with a warning (W1001): the other
    # targets realise them.
    skipped = too_large(program, placement)
    if skipped is None:
        try:
            plan = plan_local(program, placement)
        except LocalPlanError as e:
            steering = [d for d in e.diagnostics if d.code == "E1001"]
            diagnostics.extend(d for d in e.diagnostics if d.code != "E1001")
            if steering:
                skipped = _not_steerable(steering)
        else:
            doc = plan.to_json()
            validate("local-plan", doc)
            for path, text in plan.files.items():
                if files.setdefault(path, text) != text:  # pragma: no cover - one generator
                    raise RuntimeError(f"local plan and VNF backend disagree on {path}")
            files["local.json"] = dumps(doc, 2) + "\n"
    if diagnostics:
        raise CompileError(diagnostics)
    return Artifacts(dict(sorted(files.items())), () if skipped is None else (skipped,))


def _not_steerable(errors: list[Diagnostic]) -> Diagnostic:
    """W1001 for a local target whose routes cannot be realised: the E1001s as notes."""
    first = errors[0]
    return warning("W1001", f"the local target (local.json) is not generated: {len(errors)} "
                   f"route conflict{'s' * (len(errors) != 1)} it cannot realise (E1001)",
                   first.span, first.hint,
                   [Note(f"E1001: {d.message}", d.span) for d in errors[:10]])


def _host(host: VnfHost, c: Compilation, files: dict[str, str]) -> list[Diagnostic]:
    program = c.program
    configs: dict[str, VnfConfig] = {}
    problems: list[Diagnostic] = []
    for vnf in host.vnfs:
        try:
            configs[vnf.instance.id] = vnf_config(vnf, program)
        except Unsupported as e:
            problems.append(error(
                "E1002", f"{vnf.instance.function} is placed on host `{host.name}` but {e}",
                vnf.instance.span,
                "pin it to a P4 switch (`@ s1`) or `place: p4`, or give it a Linux "
                "implementation in the VNF backend"))
    if problems:
        return problems
    tc_script = host_tc(host, c.placement)
    stack = host_stack(host, program, configs, tc_script)
    out: dict[str, str] = {f"{host.name}/stack.yaml": render_stack(stack)}
    for vnf in host.vnfs:
        cfg = configs[vnf.instance.id]
        out[nft_path(vnf)] = cfg.nft
        if any(v.vnf == vnf for v in stack.vnfs):
            out[vnfd_path(host.name, vnf.name)] = render_vnfd(stack, cfg)
            out[cloud_init_path(host.name, vnf.name)] = render_cloud_init(stack, cfg,
                                                                          tc_script)
    if tc_script is not None:
        out[tc_path(host.name)] = tc_script
    topo = host.topology
    for t in stack.transits:
        out[pnfd_path(host.name, t.switch)] = render_pnfd(topo, topo.node(t.switch))
    for svc in host.services:
        out[nsd_path(host.name, svc.name)] = render_nsd(stack, svc)
    for path, text in out.items():
        if path.endswith(".yaml"):
            kind = path.rsplit("/", 1)[-1].split("-", 1)[0].removesuffix(".yaml")
            validate({"stack": "heat", "vnfd": "sol006-vnfd", "pnfd": "sol006-pnfd",
                      "nsd": "sol006-nsd"}[kind], load_yaml(text))
    files.update(out)
    return []

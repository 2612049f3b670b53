"""What a build directory holds, read back for deployment.

The runtime reads the artifacts ``mosaico compile`` wrote, never the source: the build is
what was reviewed, and deploying it must not depend on the compiler version installed on
the deploying machine. The topology (switch addresses and device ids, hosts and their
clouds) comes from ``ir.json``'s stable JSON form, services and where they run from
``placement.json``; every file listed in ``manifest.json`` is checked against its SHA-256
first, so a hand-edited or half-copied build is refused rather than deployed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..diagnostics import CompileError, Diagnostic, Note, error

__all__ = ["SwitchArtifacts", "HostArtifacts", "ServiceInfo", "Build", "load_build",
           "parse_addresses"]


@dataclass(frozen=True, slots=True)
class SwitchArtifacts:
    name: str
    address: str | None
    device_id: int
    directory: Path
    thrift_port: int = 9090  # BMv2's Thrift port (the local target's BMv2, in its namespace)
    priority_queues: int = 1

    @property
    def p4info(self) -> Path:
        return self.directory / "p4info.txtpb"

    @property
    def entries(self) -> Path:
        return self.directory / "entries.json"

    @property
    def metrics(self) -> Path | None:
        """The P4 backend's metrics map (``metrics.json``): where status finds each number."""
        p = self.directory / "metrics.json"
        return p if p.is_file() else None

    @property
    def device_config(self) -> Path | None:
        """p4c's BMv2 JSON (``<switch>.json``), present only when the user ran p4c."""
        for candidate in (self.directory / f"{self.name}.json",
                          self.directory / "bmv2.json"):
            if candidate.is_file():
                return candidate
        return None


@dataclass(frozen=True, slots=True)
class HostArtifacts:
    name: str
    platform: str  # openstack | linux
    cloud: str | None
    directory: Path

    @property
    def stack(self) -> Path | None:
        p = self.directory / "stack.yaml"
        return p if p.is_file() else None


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    name: str
    nodes: tuple[str, ...]  # nodes running at least one of its functions, in chain order
    instances: tuple[tuple[str, str], ...]  # (instance id, node)


@dataclass(frozen=True, slots=True)
class Build:
    root: Path
    program: str  # the source file's stem: names OpenStack stacks
    digest: str  # sha256 of manifest.json: identifies this build in the deployment log
    services: tuple[ServiceInfo, ...]
    switches: tuple[SwitchArtifacts, ...]  # those with P4 artifacts
    hosts: tuple[HostArtifacts, ...]  # those with VNF artifacts
    local_plan: Path | None

    def switch(self, name: str) -> SwitchArtifacts:
        return next(s for s in self.switches if s.name == name)


def _fail(code: str, message: str, hint: str | None = None,
          notes: tuple[str, ...] = ()) -> CompileError:
    return CompileError([error(code, message, hint=hint, notes=[Note(n) for n in notes])])


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _fail("E1201", f"{path.parent} is not a mosaico build directory: "
                             f"{path.name} is missing",
                    hint="run `mosaico compile PROGRAM -o DIR` and deploy DIR") from None
    except (OSError, ValueError) as e:
        raise _fail("E1201", f"cannot read {path}: {e}") from None


def _verify(root: Path, manifest: Mapping) -> list[str]:
    bad = []
    for rel, digest in sorted(manifest.get("files", {}).items()):
        p = root / rel
        try:
            actual = hashlib.sha256(p.read_bytes()).hexdigest()
        except OSError:
            bad.append(f"{rel} is missing")
            continue
        if actual != digest:
            bad.append(f"{rel} was modified after compilation")
    return bad


def load_build(path: Path | str, addresses: Mapping[str, str] | None = None) -> Build:
    """Read and verify a build directory; ``addresses`` override switches' P4Runtime
    addresses (``--address s1=HOST:PORT``)."""
    root = Path(path)
    if not root.is_dir():
        raise _fail("E1201", f"build directory {root} does not exist",
                    hint="run `mosaico compile PROGRAM -o DIR` first")
    manifest = _read_json(root / "manifest.json")
    bad = _verify(root, manifest)
    if bad:
        raise _fail("E1202", f"{root} does not match its manifest.json", notes=tuple(bad),
                    hint="recompile instead of editing generated files")
    ir = _read_json(root / "ir.json")
    placement = _read_json(root / "placement.json")
    addresses = dict(addresses or {})

    switches: list[SwitchArtifacts] = []
    hosts: list[HostArtifacts] = []
    known: list[str] = []  # every switch of the topology, with P4 artifacts or not
    for topo in ir.get("topologies", []):
        for sw in topo.get("switches", []):
            known.append(sw["name"])
            d = root / sw["name"]
            if (d / "p4info.txtpb").is_file():
                switches.append(SwitchArtifacts(sw["name"],
                                                addresses.get(sw["name"], sw.get("p4runtime")),
                                                int(sw.get("device_id", 1)), d,
                                                int(sw.get("thrift_port") or 9090),
                                                int(sw.get("priority_queues") or 1)))
        for h in topo.get("hosts", []):
            d = root / h["name"]
            if d.is_dir():
                hosts.append(HostArtifacts(h["name"], h.get("platform", "linux"),
                                           h.get("cloud"), d))
    unknown = sorted(set(addresses) - set(known))
    if unknown:
        diags: list[Diagnostic] = [error(
            "E1203", f"--address names {n!r}, which is not a switch of this build's topology",
            hint=f"switches here: {', '.join(known) or 'none'}") for n in unknown]
        raise CompileError(diags)

    services = []
    for name in manifest.get("services", []):
        inst = tuple((a["instance"], a["node"]) for a in placement.get("assignments", [])
                     if a["instance"].split("/")[0] == name)
        services.append(ServiceInfo(name, tuple(dict.fromkeys(n for _, n in inst)), inst))
    program = Path(manifest.get("source", {}).get("path") or root.name).stem
    local = root / "local.json"
    return Build(root=root, program=program,
                 digest=hashlib.sha256((root / "manifest.json").read_bytes()).hexdigest(),
                 services=tuple(services), switches=tuple(switches), hosts=tuple(hosts),
                 local_plan=local if local.is_file() else None)


def parse_addresses(values: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``("s1=127.0.0.1:9559", ...)`` → ``{"s1": "127.0.0.1:9559"}``; bad items → E1203."""
    out: dict[str, str] = {}
    diags = []
    for v in values:
        name, sep, addr = v.partition("=")
        host, colon, port = addr.rpartition(":")
        if not sep or not name or not colon or not host or not port.isdigit():
            diags.append(error("E1203", f"--address {v!r} is not SWITCH=HOST:PORT",
                               hint="for example --address s1=127.0.0.1:9559"))
            continue
        out[name] = addr
    if diags:
        raise CompileError(diags)
    return out

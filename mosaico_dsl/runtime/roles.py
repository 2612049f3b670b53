"""Controller roles, as the reference target's configuration defines them.

P4Runtime lets a server partition a device among roles, each with its own primary
controller (P4Runtime spec, "Role Config"): the default role ``""`` has full pipeline access, and
what any other role may do is agreed "out of band" between the server and its clients. Here
the agreement is the target's configuration — a JSON document naming each role, the P4
objects (tables, counters, meters, registers) it may write, whether it may write the
packet replication engine, and whether it may push a pipeline:

.. code-block:: json

    {"roles": {"stats": {"write": ["MyIngress.port_counters"],
                         "packet_replication": false, "pipeline": false}}}

A role the configuration does not name is refused at arbitration; a client that sends a
``role.config`` must send exactly the configured one (as a ``google.protobuf.Struct`` of its JSON),
else ``INVALID_ARGUMENT`` (spec, "Rules for Handling MasterArbitrationUpdate Messages"). Roles never
read less: any controller may read anything (spec, "Reference Architecture").
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import any_pb2, json_format, struct_pb2

__all__ = ["Role", "RoleConfig", "RoleConfigError", "FULL_ACCESS", "NO_ROLES"]


class RoleConfigError(ValueError):
    """A role configuration document that is not what this module describes."""


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    write: frozenset[str] = frozenset()  # P4 object names (full, or last dotted part)
    packet_replication: bool = False
    pipeline: bool = False
    full: bool = False  # the default role: everything

    def may_write(self, object_name: str) -> bool:
        return self.full or object_name in self.write or \
            object_name.rsplit(".", 1)[-1] in self.write

    def as_any(self) -> any_pb2.Any:
        """The ``role.config`` a client sends to claim exactly this role."""
        s = struct_pb2.Struct()
        s.update({"write": sorted(self.write), "packet_replication": self.packet_replication,
                  "pipeline": self.pipeline})
        out = any_pb2.Any()
        out.Pack(s)
        return out


FULL_ACCESS = Role("", full=True, packet_replication=True, pipeline=True)


@dataclass(frozen=True)
class RoleConfig:
    """The roles a target defines besides the default one."""

    roles: Mapping[str, Role]

    def get(self, name: str) -> Role | None:
        return FULL_ACCESS if name == "" else self.roles.get(name)

    def matches(self, role: Role, config: any_pb2.Any) -> bool:
        """Whether a client's ``role.config`` is the one agreed for ``role``."""
        if role.full:
            return False  # the default role has no configuration to send
        s = struct_pb2.Struct()
        if not config.Unpack(s):
            return False
        return json_format.MessageToDict(s) == json_format.MessageToDict(
            _unpacked(role.as_any()))

    @classmethod
    def from_json(cls, doc: object) -> RoleConfig:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("roles"), Mapping) or \
                set(doc) - {"roles"}:
            raise RoleConfigError('expected {"roles": {NAME: {"write": [...], '
                                  '"packet_replication": bool, "pipeline": bool}}}')
        roles = {}
        for name, spec in doc["roles"].items():
            if not isinstance(name, str) or not name:
                raise RoleConfigError("a role needs a non-empty name (\"\" is the default "
                                      "role, which always has full access)")
            if not isinstance(spec, Mapping) or set(spec) - {"write", "packet_replication",
                                                             "pipeline"}:
                raise RoleConfigError(f"role {name!r}: expected the keys write, "
                                      "packet_replication and pipeline")
            write = spec.get("write", [])
            flags = [spec.get(k, False) for k in ("packet_replication", "pipeline")]
            if not isinstance(write, list) or not all(isinstance(w, str) for w in write) or \
                    not all(isinstance(f, bool) for f in flags):
                raise RoleConfigError(f"role {name!r}: write is a list of P4 object names, "
                                      "packet_replication and pipeline are booleans")
            roles[name] = Role(name, frozenset(write), *flags)
        return cls(roles)

    @classmethod
    def load(cls, path: Path) -> RoleConfig:
        try:
            return cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as e:
            raise RoleConfigError(f"{path}: {e}") from None


def _unpacked(a: any_pb2.Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    a.Unpack(s)
    return s


NO_ROLES = RoleConfig({})

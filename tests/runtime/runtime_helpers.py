"""Helpers of the runtime tests: the fixture P4Info's ids, entries, build directories."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.p4proto import p4r

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]
# p4runtime-shell lives in its own venv (it pins protobuf < 3.21); .ci/run creates it.
P4RT_SHELL_PYTHON = Path(os.environ.get("MOSAICO_P4RT_SHELL_PYTHON",
                                        "/opt/p4rt-shell/bin/python"))


class Ids:
    """The fixture P4Info's ids, by name."""

    BLOCKLIST, ACL, FWD, RATE = 33554433, 33554434, 33554435, 33554436
    DROP, FORWARD, NOACTION, POLICE = 16777217, 16777218, 16777219, 16777220
    L4S_PACKETS, CE_MARKS, DROPS = 302011905, 302011906, 302011907
    BLOCKLIST_HITS = 318767105
    PORT_METER, SERVICE_METER = 335544321, 352321537
    QDELAY, P_PRIME = 369098753, 369098754


def b(value: int, width_bits: int) -> bytes:
    return value.to_bytes((width_bits + 7) // 8, "big")


def blocklist_entry(prefix: str) -> p4r.Entity:
    import ipaddress

    net = ipaddress.ip_network(prefix)
    e = p4r.Entity()
    te = e.table_entry
    te.table_id = Ids.BLOCKLIST
    m = te.match.add(field_id=1)
    m.lpm.value = net.network_address.packed
    m.lpm.prefix_len = net.prefixlen
    te.action.action.action_id = Ids.DROP
    return e


def route_entry(i: int, port: int = 1, prefix_len: int = 24) -> p4r.Entity:
    e = p4r.Entity()
    te = e.table_entry
    te.table_id = Ids.FWD
    m = te.match.add(field_id=1)
    m.lpm.value = b((0x0A000000 + (i << 8)) & 0xFFFFFFFF, 32)
    m.lpm.prefix_len = prefix_len
    te.action.action.action_id = Ids.FORWARD
    te.action.action.params.add(param_id=1, value=b(port, 9))
    te.action.action.params.add(param_id=2, value=b(0x020000000000 + i, 48))
    return e


def acl_entry(src: int, mask: int, proto: int, lo: int, hi: int, priority: int) -> p4r.Entity:
    e = p4r.Entity()
    te = e.table_entry
    te.table_id = Ids.ACL
    te.priority = priority
    m = te.match.add(field_id=1)
    m.ternary.value, m.ternary.mask = b(src, 32), b(mask, 32)
    te.match.add(field_id=2).exact.value = b(proto, 8)
    r = te.match.add(field_id=3)
    r.range.low, r.range.high = b(lo, 16), b(hi, 16)
    te.action.action.action_id = Ids.DROP
    return e


def update(kind: int, entity: p4r.Entity) -> p4r.Update:
    u = p4r.Update(type=kind)
    u.entity.CopyFrom(entity)
    return u


def insert(entity: p4r.Entity) -> p4r.Update:
    return update(p4r.Update.INSERT, entity)


def register_entity(reg: int, index: int, value: int, width: int = 32) -> p4r.Entity:
    e = p4r.Entity()
    e.register_entry.register_id = reg
    e.register_entry.index.index = index
    e.register_entry.data.bitstring = b(value, width)
    return e


def lab_entries(n_routes: int = 3) -> list[p4r.Update]:
    """A program's worth of entries for the fixture P4Info: every entity kind we manage."""
    from google.protobuf import json_format  # noqa: F401  (entries.json round-trips)

    ups = [insert(blocklist_entry("203.0.113.0/24")), insert(blocklist_entry("198.51.100.7/32"))]
    ups += [insert(route_entry(i, port=1 + i % 4)) for i in range(n_routes)]
    ups.append(insert(acl_entry(0xC0A80000, 0xFFFF0000, 6, 80, 443, priority=10)))
    default = p4r.Entity()
    default.table_entry.table_id = Ids.FWD
    default.table_entry.is_default_action = True
    default.table_entry.action.action.action_id = Ids.DROP
    ups.append(update(p4r.Update.MODIFY, default))
    ups.append(update(p4r.Update.MODIFY, register_entity(Ids.P_PRIME, 0, 7, 16)))
    meter = p4r.Entity()
    meter.meter_entry.meter_id = Ids.PORT_METER
    meter.meter_entry.index.index = 1
    meter.meter_entry.config.cir, meter.meter_entry.config.cburst = 20000, 200
    meter.meter_entry.config.pir, meter.meter_entry.config.pburst = 20000, 200
    ups.append(update(p4r.Update.MODIFY, meter))
    mc = p4r.Entity()
    g = mc.packet_replication_engine_entry.multicast_group_entry
    g.multicast_group_id = 1
    g.replicas.add(egress_port=1, instance=0)
    g.replicas.add(egress_port=2, instance=0)
    ups.append(insert(mc))
    return ups


def entries_json(updates: list[p4r.Update]) -> bytes:
    from google.protobuf import json_format

    return (json.dumps([json_format.MessageToDict(u) for u in updates], indent=2,
                       sort_keys=True) + "\n").encode()


TWO_SWITCHES = DATA / "two_switches.mosaico"


def make_build(out: Path, switches: dict[str, list[p4r.Update]], *,
               program: Path = TWO_SWITCHES, p4info: Path = DATA / "lab.p4info.txtpb",
               extra: dict[str, bytes] | None = None) -> Path:
    """A build directory like `mosaico compile` writes, with our P4 artifacts per switch.

    The IR and placement come from compiling ``program`` for real; the P4 artifacts are the
    hand-written fixture (until then independent of the P4 backend). The manifest lists
    every file with its hash, as the compiler's does.
    """
    from mosaico_dsl._atomic import write_tree

    result = compile_program(program, emit=["ir", "placement"])
    files = {k: v for k, v in result.artifacts.items() if k != "manifest.json"}
    for name, ups in switches.items():
        files[f"{name}/p4info.txtpb"] = p4info.read_bytes()
        files[f"{name}/entries.json"] = entries_json(ups)
    files.update(extra or {})
    manifest = json.loads(result.artifacts["manifest.json"])
    manifest["files"] = {p: hashlib.sha256(v).hexdigest() for p, v in sorted(files.items())}
    files["manifest.json"] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    write_tree(out, files)
    return out


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(address: str, timeout: float = 30.0) -> None:
    import socket
    import time

    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex((host, int(port))) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {address}")


@dataclass
class Bmv2:
    """A running ``simple_switch_grpc``: its P4Runtime and Thrift addresses (free ports)."""

    proc: subprocess.Popen
    address: str
    thrift: str
    device_id: int

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def flagship_build(out: Path) -> Path:
    """examples/secure_l4s.mosaico compiled with ``--p4c``: the BMv2 JSON is in the build
    and its manifest, as deploying to BMv2 needs."""
    return compile_program(ROOT / "examples" / "secure_l4s.mosaico",
                           options={"p4c": True}).write(out)


def start_bmv2(log_dir: Path, device_id: int = 1, *target_args: str,
               interfaces: tuple[str, ...] = (), ports: tuple[int, int] | None = None
               ) -> Bmv2:
    """``simple_switch_grpc`` without a program, on free loopback ports (other tests run
    BMv2 at the same time) or ``ports`` (gRPC, Thrift: a switch started again where it
    was), waiting until its P4Runtime server listens."""
    grpc_port, thrift_port = ports or (free_port(), free_port())
    cmd = [shutil.which("simple_switch_grpc"), "--no-p4", "--device-id", str(device_id),
           "--thrift-port", str(thrift_port), "--log-file", str(log_dir / "bmv2"),
           # the default IPC path is per device id, in /tmp: other switches may hold it
           "--notifications-addr", f"ipc://{log_dir / 'bmv2-notifications.ipc'}"]
    for i in interfaces:
        cmd += ["-i", i]
    proc = subprocess.Popen([*cmd, "--", "--grpc-server-addr", f"127.0.0.1:{grpc_port}",
                             *target_args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sw = Bmv2(proc, f"127.0.0.1:{grpc_port}", f"127.0.0.1:{thrift_port}", device_id)
    try:
        wait_listening(sw.address)
    except TimeoutError:
        sw.stop()
        raise
    return sw

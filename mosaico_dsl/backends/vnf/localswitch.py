"""BMv2 switches in the local target: the compiled P4 program instead of the Linux stand-in.

A switch runs as ``simple_switch`` inside its own network namespace, so its Thrift port is
that namespace's loopback (switches of several deployments never collide) and its ports
are the namespace's veths as ``local.json``'s ``bmv2_ports`` number them. Its program is
compiled with ``p4c-bm2-ss`` into the switch's *run directory* — mosaico's own
(``/run/mosaico/<namespace>``, or under ``$MOSAICO_RUN_DIR``), never the build directory —
which also holds the switch's log and notification socket and goes away when the switch
stops. The runtime state, ``entries.txt`` (table entries, meter rates, clone sessions, queue
rates and depths), is loaded with ``simple_switch_CLI`` run inside the namespace, and the
same CLI reads counters and registers back.

A switch that fails to start — p4c rejects the program, BMv2 exits or never answers, the
CLI refuses a command — is stopped again and its run directory removed before the error
is raised.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._shell import LocalTargetError, netns_exec, run

__all__ = ["SwitchProgram", "RunningSwitch", "Cell", "TOOLS", "missing_tools", "run_dir",
           "load_program", "start", "stop", "running", "running_program", "read_cells"]

TOOLS = ("simple_switch", "simple_switch_CLI", "p4c-bm2-ss", "ethtool")
RUN_DIR_ENV = "MOSAICO_RUN_DIR"
_DEFAULT_ROOT = Path("/run/mosaico")
_START_TIMEOUT = 60.0  # seconds for BMv2 to answer on its Thrift port (a loaded machine)
_STOP_TIMEOUT = 10.0
_DIGEST = "program.sha256"  # in the run directory: the program the switch was started with
_HANDLE = re.compile(r"Entry has been added with handle (\d+)")
_COUNTER = (re.compile(r"\((\d+) bytes, (\d+) packets\)"),  # this BMv2's CLI
            re.compile(r"packets=(\d+), bytes=(\d+)"))  # older CLIs: BmCounterValue(...)
_REGISTER = re.compile(r"\]=\s*(\d+)\s*$")
_FAILED = re.compile(r"error|invalid|exception|traceback|unknown|not found|cannot|failed",
                     re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SwitchProgram:
    """One switch's P4 program and runtime state, as the P4 backend wrote them."""

    switch: str
    sources: tuple[tuple[str, str], ...]  # (path in the switch directory, text): the .p4 files
    commands: str  # entries.txt
    device_id: int
    thrift_port: int
    priority_queues: int

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        for part in (self.switch, self.commands, str(self.device_id), str(self.thrift_port),
                     str(self.priority_queues), *(x for pair in self.sources for x in pair)):
            h.update(part.encode())
            h.update(b"\0")
        return h.hexdigest()

    @property
    def main(self) -> str:
        return f"{self.switch}.p4"

    def cli_commands(self) -> list[str]:
        """``entries.txt`` without comments and blank lines: one CLI command each."""
        return [ln.strip() for ln in self.commands.splitlines()
                if ln.strip() and not ln.lstrip().startswith("#")]

    def to_json(self) -> dict:
        return {"switch": self.switch, "sources": dict(self.sources), "commands": self.commands,
                "device_id": self.device_id, "thrift_port": self.thrift_port,
                "priority_queues": self.priority_queues}

    @classmethod
    def from_json(cls, doc: Mapping) -> SwitchProgram:
        return cls(doc["switch"], tuple(sorted(doc["sources"].items())), doc["commands"],
                   int(doc["device_id"]), int(doc["thrift_port"]), int(doc["priority_queues"]))


def load_program(switch_dir: Path, *, device_id: int, thrift_port: int,
                 priority_queues: int) -> SwitchProgram:
    """The program in a build's ``<switch>/`` directory: its ``.p4`` files and
    ``entries.txt``; the switch's device id, Thrift port and priority queues come from the
    topology (``ir.json``)."""
    name = switch_dir.name
    if not (switch_dir / f"{name}.p4").is_file() or not (switch_dir / "entries.txt").is_file():
        raise LocalTargetError(f"{switch_dir} has no {name}.p4 and entries.txt "
                               "(compile with the p4 backend)")
    sources = tuple(sorted((p.relative_to(switch_dir).as_posix(), p.read_text(encoding="utf-8"))
                           for p in switch_dir.rglob("*.p4")))
    return SwitchProgram(name, sources, (switch_dir / "entries.txt").read_text(encoding="utf-8"),
                         device_id, thrift_port, priority_queues)


@dataclass(frozen=True, slots=True)
class RunningSwitch:
    """A started switch: its process and the handle BMv2 gave each ``table_add``, in order
    (direct counters are read by entry handle)."""

    switch: str
    namespace: str
    pid: int
    handles: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Cell:
    """One value to read: a counter cell (by index, or a direct counter by entry handle)
    or a register cell."""

    kind: str  # counter | register
    name: str  # the P4 object's fully qualified name
    index: int


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _root() -> Path:
    return Path(os.environ.get(RUN_DIR_ENV) or _DEFAULT_ROOT)


def run_dir(namespace: str) -> Path:
    return _root() / namespace


# --------------------------------------------------------------------------- processes


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") \
            .split("\0")[:-1]
    except OSError:
        return []


def _ours(pid: int, namespace: str) -> bool:
    """Is ``pid`` a simple_switch started from ``namespace``'s run directory?"""
    argv = _cmdline(pid)
    config = str(run_dir(namespace))
    return bool(argv) and Path(argv[0]).name == "simple_switch" and \
        any(a.startswith(config + "/") for a in argv)


def _candidates(namespace: str) -> list[int]:
    """Every simple_switch started from ``namespace``'s run directory — also one whose
    namespace was deleted under it (the process keeps the namespace alive, unnamed)."""
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _ours(int(p), namespace)]


def _in(pid: int, namespace: str) -> bool:
    """Does ``pid`` run in the network namespace named ``namespace`` now?"""
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{namespace}").st_ino
    except OSError:
        return False


def running(namespace: str) -> int | None:
    """The pid of the switch mosaico started in ``namespace``, if it runs there."""
    return next((p for p in _candidates(namespace) if _alive(p) and _in(p, namespace)), None)


def running_program(namespace: str) -> str | None:
    """The digest of the program the switch in ``namespace`` runs, if one runs there (its
    run directory records the program it was started with)."""
    if running(namespace) is None:
        return None
    try:
        return (run_dir(namespace) / _DIGEST).read_text().strip() or None
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and _state(pid) != "Z"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return ""


def stop(namespace: str, pid: int | None = None) -> None:
    """Stop the switch mosaico started in ``namespace`` (``pid``, if still ours, and any
    other it finds there) and remove its run directory. Idempotent."""
    pids = set(_candidates(namespace))
    if pid is not None and _ours(pid, namespace):
        pids.add(pid)
    for sig, wait in ((signal.SIGTERM, _STOP_TIMEOUT), (signal.SIGKILL, _STOP_TIMEOUT)):
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        pids = {p for p in pids if _alive(p)}
        if not pids:
            break
    if pids:
        raise LocalTargetError(f"simple_switch in {namespace} (pid "
                               f"{', '.join(map(str, sorted(pids)))}) does not stop")
    shutil.rmtree(run_dir(namespace), ignore_errors=True)
    if RUN_DIR_ENV not in os.environ:
        try:
            _DEFAULT_ROOT.rmdir()  # only when empty: other switches may run
        except OSError:
            pass


def _listening(pid: int, port: int) -> bool:
    """Does the process's network namespace listen on TCP ``port`` (Thrift)?"""
    want = f":{port:04X}"
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


def _log_tail(d: Path, lines: int = 12) -> str:
    try:
        text = (d / "switch.log").read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


# --------------------------------------------------------------------------- start


def _compile(program: SwitchProgram, d: Path) -> Path:
    src = d / "src"
    for rel, text in program.sources:
        path = (src / rel).resolve()
        if not path.is_relative_to(src.resolve()):
            raise LocalTargetError(f"switch {program.switch}: source path {rel!r} leaves its "
                                   "directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    out = d / f"{program.switch}.json"
    try:
        proc = subprocess.run(["p4c-bm2-ss", "--arch", "v1model", "--std", "p4-16", "-o",
                               str(out), program.main], cwd=src, capture_output=True,
                              text=True, timeout=600, process_group=0)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LocalTargetError(f"p4c-bm2-ss could not compile {program.main}: {e}") from None
    if proc.returncode != 0:
        raise LocalTargetError(f"p4c-bm2-ss rejected {program.switch}'s program: "
                               f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return out


def _spawn(argv: Sequence[str], log: Path) -> int:
    """Start ``argv`` detached — its own session, reparented to init — so the switch
    outlives the deploy command; returns its pid (``setsid`` and ``ip netns exec`` exec in
    place)."""
    proc = run(["sh", "-c", 'setsid "$@" >"$0" 2>&1 </dev/null & echo $!', str(log), *argv])
    return int(proc.stdout.strip())


def cli(namespace: str, thrift_port: int, commands: Sequence[str]) -> list[str]:
    """Run ``commands`` through ``simple_switch_CLI`` inside ``namespace``; each one's
    output, in order."""
    if not commands:
        return []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # keep stdout and stderr in order
    try:
        proc = subprocess.run(netns_exec(namespace, "simple_switch_CLI", "--thrift-port",
                                         str(thrift_port)),
                              input="\n".join(commands) + "\n", stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=120, env=env,
                              process_group=0)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise LocalTargetError(f"simple_switch_CLI in {namespace}: {e}") from None
    chunks = proc.stdout.split("RuntimeCmd: ")
    if proc.returncode != 0 or len(chunks) < len(commands) + 1:
        raise LocalTargetError(f"simple_switch_CLI in {namespace} failed ({proc.returncode}): "
                               f"{proc.stdout.strip()[-1000:]}")
    return [c.strip() for c in chunks[1:len(commands) + 1]]


def _load(namespace: str, program: SwitchProgram) -> tuple[int, ...]:
    commands = program.cli_commands()
    handles: list[int] = []
    for cmd, out in zip(commands, cli(namespace, program.thrift_port, commands), strict=True):
        if cmd.startswith("table_add "):
            m = _HANDLE.search(out)
            if m is None:
                raise LocalTargetError(f"switch {program.switch} refused `{cmd}`: {out}")
            handles.append(int(m.group(1)))
        elif _FAILED.search(out):
            raise LocalTargetError(f"switch {program.switch} refused `{cmd}`: {out}")
    return tuple(handles)


def start(namespace: str, program: SwitchProgram, ports: Sequence[tuple[int, str]]
          ) -> RunningSwitch:
    """Compile ``program``, run it in ``namespace`` on ``ports`` ((port, interface)) and
    load its runtime state. On failure nothing is left running and no file remains."""
    stop(namespace)  # a leftover of a switch that died: its run directory, its process
    d = run_dir(namespace)
    d.mkdir(parents=True, mode=0o700)
    pid = None
    try:
        config = _compile(program, d)
        argv = ["ip", "netns", "exec", namespace, "simple_switch",
                "--device-id", str(program.device_id),
                "--thrift-port", str(program.thrift_port),
                "--notifications-addr", f"ipc://{d}/notifications.ipc"]
        for port, dev in ports:
            argv += ["-i", f"{port}@{dev}"]
        argv += [str(config), "--", "--priority-queues", str(program.priority_queues)]
        pid = _spawn(argv, d / "switch.log")
        deadline = time.monotonic() + _START_TIMEOUT
        while not _listening(pid, program.thrift_port):
            if not _alive(pid) or time.monotonic() > deadline:
                raise LocalTargetError(
                    f"simple_switch for {program.switch} in {namespace} "
                    + ("exited" if not _alive(pid) else "did not answer on its Thrift port "
                       f"{program.thrift_port} within {_START_TIMEOUT:.0f} s")
                    + f": {_log_tail(d) or 'no output'}")
            time.sleep(0.05)
        handles = _load(namespace, program)
        (d / _DIGEST).write_text(program.digest + "\n")
    except BaseException:
        stop(namespace, pid)
        raise
    return RunningSwitch(program.switch, namespace, pid, handles)


# --------------------------------------------------------------------------- reading


def read_cells(namespace: str, thrift_port: int, cells: Sequence[Cell]) -> list[int | None]:
    """Each cell's value (a counter's packets, a register's value); ``None`` where the
    switch gave no number."""
    commands = [f"{'counter_read' if c.kind == 'counter' else 'register_read'} "
                f"{c.name} {c.index}" for c in cells]
    out: list[int | None] = []
    for cell, text in zip(cells, cli(namespace, thrift_port, commands), strict=True):
        if cell.kind == "counter":
            a = _COUNTER[0].search(text)
            b = _COUNTER[1].search(text)
            out.append(int(a.group(2)) if a else int(b.group(1)) if b else None)
        else:
            m = _REGISTER.search(text)
            out.append(int(m.group(1)) if m else None)
    return out

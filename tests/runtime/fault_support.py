"""Helpers of the fault-injection suite: real ``mosaico`` processes stopped or signalled at
their N-th step (``MOSAICO_FAULT``), a state store on a disk of its own that a test fills or
makes read-only, and read-backs of what a target holds — to compare before and after.

Read-backs are the targets' own answers, not mosaico's: ``ip``, ``nft``, ``tc`` inside each
namespace; a P4Runtime ``Read`` of everything the pipeline has.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from local_support import namespaces, switches
from runtime_helpers import ROOT

from mosaico_dsl.runtime.faults import ENV
from mosaico_dsl.runtime.state import StateStore

SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM, "SIGHUP": signal.SIGHUP}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(*args: str, fault: str | None = None, at_stop: Callable[[int], None] | None = None,
        env: dict | None = None, timeout: float = 600) -> Ran:
    """``mosaico ARGS`` as a process of its own. With ``fault`` (``before:3:SIGKILL``…) it
    is signalled at that step; a ``stop`` fault stops it there, ``at_stop(pid)`` runs, and
    the process continues (SIGCONT)."""
    environ = {**os.environ, **(env or {})}
    environ.pop(ENV, None)
    if fault:
        environ[ENV] = fault
    proc = subprocess.Popen([sys.executable, "-m", "mosaico_dsl.cli", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, env=environ)
    if at_stop is not None:
        wait_stopped(proc)
        try:
            at_stop(proc.pid)
        finally:
            os.kill(proc.pid, signal.SIGCONT)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise
    return Ran(proc.returncode, out, err)


def wait_stopped(proc: subprocess.Popen, timeout: float = 300) -> None:
    """Until the process stopped itself (its state ``T``) at its fault point."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before its fault point: "
                                 f"{proc.stderr.read()}")
        try:
            state = Path(f"/proc/{proc.pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            state = ""
        if state == "T":
            return
        time.sleep(0.02)
    raise AssertionError("the process did not reach its fault point")


def intents(state: Path) -> list:
    with StateStore(state) as store:
        return store.intents()


def units(state: Path) -> list:
    with StateStore(state) as store:
        return store.units()


# --------------------------------------------------------------------------- the store's disk


class Disk:
    """A tmpfs of ``size`` mounted for the state store (root): ``fill`` it, ``free`` it;
    ``immutable`` makes its directory unwritable under a running process (``chattr +i``: a
    file system with open files cannot be remounted read-only), ``readonly`` remounts it
    read-only between runs."""

    def __init__(self, root: Path, size: str = "4m") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                        str(root)], check=True)
        self.filler = root / "filler"

    @property
    def state(self) -> Path:
        return self.root / "state.db"

    def fill(self) -> None:
        """Until the disk is full (tmpfs allocates whole pages: then nothing fits)."""
        with open(self.filler, "ab", buffering=0) as f:
            for size in (1 << 16, 4096, 512, 1):
                try:
                    while True:
                        f.write(b"\0" * size)
                except OSError:
                    continue

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def immutable(self, on: bool = True) -> None:
        subprocess.run(["chattr", "+i" if on else "-i", str(self.root)], check=True)

    def readonly(self, on: bool = True) -> None:
        subprocess.run(["mount", "-o", f"remount,{'ro' if on else 'rw'}", str(self.root)],
                       check=True)

    def close(self) -> None:
        subprocess.run(["chattr", "-i", str(self.root)], check=False)
        subprocess.run(["umount", "-l", str(self.root)], check=False)


@contextmanager
def disk(root: Path, size: str = "4m") -> Iterator[Disk]:
    d = Disk(root, size)
    try:
        yield d
    finally:
        d.close()


# --------------------------------------------------------------------------- read-backs


def _ip(ns: str, *args: str):
    out = subprocess.run(["ip", "-n", ns, "-j", *args], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out or "[]")


def _in(ns: str, *cmd: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, *cmd], capture_output=True, text=True,
                          check=True).stdout


_VOLATILE = re.compile(r"\b(handle|refcnt)\b")


def machine(prefix: str) -> dict:
    """What the machine holds under ``prefix``, as the tools list it: each namespace's
    devices (up or not), addresses, routes of every table, policy rules, permanent
    neighbours, forwarding, nftables ruleset (stateless: no counter values) and queueing
    disciplines; and the BMv2 switches running. Interface indexes and veth MAC addresses
    (new on every veth) are left out."""
    out: dict = {}
    for ns in sorted(namespaces(prefix)):
        links = sorted((link["ifname"], "UP" in link.get("flags", []))
                       for link in _ip(ns, "link", "show"))
        addrs = sorted((a["ifname"], i["local"], i["prefixlen"]) for a in _ip(ns, "addr")
                       for i in a.get("addr_info", []) if i.get("family") == "inet")
        routes = sorted(json.dumps({k: r[k] for k in ("dst", "gateway", "dev", "table",
                                                       "scope", "type") if k in r},
                                   sort_keys=True)
                        for r in _ip(ns, "route", "show", "table", "all")
                        if r.get("table") != "local")
        rules = sorted(json.dumps(r, sort_keys=True) for r in _ip(ns, "rule"))
        neigh = sorted(json.dumps({k: n.get(k) for k in ("dst", "dev", "lladdr")},
                                  sort_keys=True)
                       for n in _ip(ns, "neigh", "show", "nud", "permanent"))
        qdiscs = sorted(json.dumps({k: v for k, v in q.items() if not _VOLATILE.search(k)},
                                   sort_keys=True)
                        for q in json.loads(_in(ns, "tc", "-j", "qdisc", "show") or "[]"))
        out[ns] = {"links": links, "addresses": addrs, "routes": routes, "rules": rules,
                   "neighbours": neigh, "qdiscs": qdiscs,
                   "forwarding": _in(ns, "cat", "/proc/sys/net/ipv4/ip_forward").strip(),
                   "nftables": _in(ns, "nft", "-s", "list", "ruleset")}
    out["bmv2 processes"] = len(switches(prefix))
    return out


def diff(a: dict, b: dict) -> list[str]:
    """Where two read-backs differ, readably."""
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                out += [f"{key} {k}: {a[key].get(k)!r} != {b[key].get(k)!r}"
                        for k in sorted(set(a[key]) | set(b[key]))
                        if a[key].get(k) != b[key].get(k)]
            else:
                out.append(f"{key}: {a.get(key)!r} != {b.get(key)!r}")
    return out


def switch_state(address: str, device_id: int) -> tuple:
    """A P4Runtime switch's pipeline cookie and every entity its pipeline holds, read back
    (table entries, default actions, meters, counters, registers, multicast groups, clone
    sessions), as sorted canonical bytes."""
    from mosaico_dsl.runtime.p4runtime import Endpoint, connect
    from mosaico_dsl.runtime.schema import Schema
    from mosaico_dsl.runtime.snapshot import take

    async def read():
        async with await connect(Endpoint("probe", address, device_id), primary=False,
                                 timeout=10) as c:
            cookie, cfg = await c.get_pipeline(p4info=True)
            if not cfg.p4info.tables:
                return cookie, ()
            snap = await take(c, Schema(cfg.p4info))
            return cookie, tuple(sorted(e.SerializeToString(deterministic=True)
                                        for e in snap.entities))
    return asyncio.run(read())


# --------------------------------------------------------------------------- switches


class Served:
    """``mosaico target serve`` (the reference P4Runtime target) as a process on a fixed
    port, so that it can be killed and started again where the state store expects it."""

    def __init__(self, switch_dir: Path, port: int, *args: str) -> None:
        from runtime_helpers import wait_listening

        self.address = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "mosaico_dsl.cli", "target", "serve", str(switch_dir),
             "--listen", self.address, *args], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd=ROOT)
        try:
            wait_listening(self.address)
        except TimeoutError:
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


# --------------------------------------------------------------------------- HTTP fakes


_TRANSIENT = {"im", "persist", "kill_after"}


def after_request(fake) -> None:
    """Called by a fake (Heat, OSM's NBI) after each request it answered: in a forked
    client, save the fake's state (the cloud outlives the client) and, at request
    ``kill_after``, kill the client — after the request took effect, before the client
    learnt its answer."""
    path = getattr(fake, "persist", None)
    if path is not None:
        import pickle

        state = {k: v for k, v in vars(fake).items() if k not in _TRANSIENT}
        tmp = Path(f"{path}.tmp")
        tmp.write_bytes(pickle.dumps(state))
        tmp.replace(path)
    n, sig = getattr(fake, "kill_after", None) or (None, None)
    if n is not None and fake.count == n:
        os.kill(os.getpid(), sig)


def killed_client(fake, kill_after: int, work: Callable[[], object], scratch: Path,
                  sig: int = signal.SIGKILL) -> int:
    """Run ``work`` (a deploy through the fake) in a forked copy of this process, sent
    ``sig`` once the fake answered request ``kill_after``; then take the fake's state as
    the client left it. Returns the child's status as ``subprocess`` does (-9: killed; 0:
    the work finished; a ``SystemExit``'s code)."""
    import pickle

    path = scratch / f"fake-{kill_after}.pickle"
    path.unlink(missing_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the client
        code = 0
        try:
            fake.persist, fake.kill_after = path, (kill_after, sig)
            work()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    if path.exists():
        for k, v in pickle.loads(path.read_bytes()).items():
            setattr(fake, k, v)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

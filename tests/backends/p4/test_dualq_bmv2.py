"""The flagship's DualQ on the real BMv2: Classic is not starved by a saturating L load.

RFC 9332 §4.2.2 asks that the L queue cannot starve the Classic queue. On BMv2 the protection
comes from the target (``QueueingLogicPriRL`` paces each priority queue of a port on its
own, so a full L queue does not hold the Classic queue back) together with the program (the
controller reads the Classic queue's current delay, docs/l4s.md item 8). This runs
``simple_switch --priority-queues 2`` on the compiled ``s1`` in a network namespace of its
own (its Thrift port and notification socket are private), sends ECT(1) packets at twice the
port's rate and Not-ECT packets at a fifth of it through it, and checks at the server that the
L load did saturate the port while Classic packets kept leaving — no gap anywhere near 1 s.

It also reads what BMv2 reports with two priority queues, from the DualQ's own registers:
``deq_qdepth`` is the depth of the packet's *own* priority queue (the Classic packets left
behind stay a handful while the L queue holds hundreds of milliseconds), which is what the
``Th_len`` gate and ``c_left`` rely on.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from p4_support import ROOT, compiled, stop_group

pytestmark = [pytest.mark.bmv2, pytest.mark.p4c, pytest.mark.root]

# The port is paced at 50 pps rather than the flagship's 1000 pps (run-bmv2.sh): BMv2 then
# has the CPU to run its pipeline at the offered 110 pps even on a busy machine (its ingress
# is one FIFO thread: a backlog there would hold Classic and L alike), so what is measured
# is its queueing, not its software ceiling.
RATE_PPS = 50
DEPTH = 13  # 250 ms of buffer at 50 pps
CLASSIC_PPS = 10

_SEND = textwrap.dedent("""
    import json, socket, sys, time
    spec = json.loads(sys.argv[1])
    frame = bytes.fromhex(spec["frame"])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((spec["iface"], 0))
    time.sleep(spec["delay"])
    start, sent = time.monotonic(), 0
    while True:
        now = time.monotonic() - start
        if now >= spec["seconds"]:
            break
        due = int(now * spec["pps"]) + 1
        while sent < due:
            s.send(frame)
            sent += 1
        time.sleep(0.0005)
    print(json.dumps({"sent": sent}))
""")

# Everything the server's port sends, time-stamped, until it has been quiet for 2 s.
_SNIFF = textwrap.dedent("""
    import json, socket, sys, time
    spec = json.loads(sys.argv[1])
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((spec["iface"], 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.settimeout(0.2)
    end, got, last = time.monotonic() + spec["seconds"], [], None
    print("ready", flush=True)
    while time.monotonic() < end and (last is None or time.monotonic() - last < 2.0):
        try:
            data = s.recv(2048)
        except socket.timeout:
            continue
        if len(data) >= 34 and data[30:34] == bytes([10, 0, 2, 1]):
            last = time.monotonic()
            got.append((last, data[29], data[15] & 3))
    print(json.dumps(got))
""")


def _frame(port: int, src: str, ecn: int) -> str:
    from scapy.all import IP, TCP, Ether

    return bytes(Ether(src=f"02:00:00:00:00:0{port}", dst="02:00:00:00:00:fe") /
                 IP(src=src, dst="10.0.2.1", tos=ecn, ttl=64) /
                 TCP(sport=40000, dport=80, flags="A") / (b"x" * 1400)).hex()


def _sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=120)


@pytest.fixture
def switch(tmp_path):
    """``s1`` of the flagship on simple_switch, alone in a fresh network namespace."""
    for tool in ("simple_switch", "simple_switch_CLI", "p4c-bm2-ss"):
        if not shutil.which(tool):
            pytest.skip(f"needs {tool} on PATH")
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    compiled(ROOT / "examples" / "secure_l4s.mosaico").write(tmp_path / "build")
    d = tmp_path / "build" / "s1"
    r = subprocess.run(["p4c-bm2-ss", "s1.p4", "-o", "s1.json"], cwd=d, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    ns = f"modq{secrets.token_hex(4)}"
    ipc = f"ipc:///tmp/{ns}-notifications.ipc"
    proc = None
    _sh("ip", "netns", "add", ns)
    try:
        run = ("ip", "netns", "exec", ns)
        _sh(*run, "ip", "link", "set", "lo", "up")
        ifaces = []
        for port in range(5):
            _sh(*run, "ip", "link", "add", f"s{port}", "type", "veth", "peer", "name", f"h{port}")
            for end in (f"s{port}", f"h{port}"):
                _sh(*run, "ip", "link", "set", end, "up")
            ifaces += ["-i", f"{port}@s{port}"]
        proc = subprocess.Popen([*run, "simple_switch", "--device-id", "1",
                                 "--notifications-addr", ipc, *ifaces, "s1.json", "--",
                                 "--priority-queues", "2"],
                                cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                start_new_session=True)
        deadline = time.time() + 60
        while True:
            probe = subprocess.run([*run, "simple_switch_CLI"], input="\n", capture_output=True,
                                   text=True, timeout=60)
            if probe.returncode == 0 and "RuntimeCmd" in probe.stdout:
                break
            if time.time() > deadline or proc.poll() is not None:
                pytest.fail("simple_switch did not start: "
                            + (proc.stdout.read().decode() if proc.stdout else ""))
            time.sleep(0.5)
        setup = (d / "entries.txt").read_text() + "".join(
            f"set_queue_rate {RATE_PPS} {port}\n" for port in range(5)) + \
            f"set_queue_depth {DEPTH} 0\n"
        out = subprocess.run([*run, "simple_switch_CLI"], input=setup, capture_output=True,
                             text=True, timeout=120).stdout
        assert "Error" not in out, out
        yield ns
    finally:
        stop_group(proc)
        _sh("ip", "netns", "del", ns, check=False)
        Path(f"/tmp/{ns}-notifications.ipc").unlink(missing_ok=True)


def _py(ns: str, script: str, spec: dict) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", script,
                             json.dumps(spec)], stdout=subprocess.PIPE, text=True)


def _counter(ns: str, name: str, index: int) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "simple_switch_CLI"],
                         input=f"counter_read MosaicoEgress.{name} {index}\n",
                         capture_output=True, text=True, timeout=60).stdout
    m = re.search(r"packets=(\d+)", out) or re.search(r"(\d+) packets", out)
    assert m, f"cannot read counter {name}[{index}]: {out}"
    return int(m.group(1))


def _register(ns: str, name: str, index: int) -> int:
    out = subprocess.run(["ip", "netns", "exec", ns, "simple_switch_CLI"],
                         input=f"register_read {name} {index}\n", capture_output=True,
                         text=True, timeout=60).stdout
    m = re.search(r"\]=\s*(\d+)", out)
    assert m, f"cannot read register {name}[{index}]: {out}"
    return int(m.group(1))


def _state(ns: str) -> str:
    """The DualQ's counters and registers for port 0, for assertion messages."""
    cmds = [f"counter_read MosaicoEgress.dualq1_{c} {i}" for c in ("packets", "marks", "drops")
            for i in (0, 1)] + [f"register_read MosaicoEgress.dualq1_{r} 0"
                                for r in ("p", "qdelay_l", "qdelay_c", "c_left")]
    out = subprocess.run(["ip", "netns", "exec", ns, "simple_switch_CLI"],
                         input="\n".join(cmds) + "\n", capture_output=True, text=True,
                         timeout=60).stdout
    return "; ".join(line.split("RuntimeCmd: ")[-1] for line in out.splitlines()
                     if "]=" in line)


def test_classic_keeps_leaving_under_a_saturating_l_load(switch):
    seconds = 8.0
    sniff = _py(switch, _SNIFF, {"iface": "h0", "seconds": 120})
    assert sniff.stdout.readline().strip() == "ready"
    l4s = _py(switch, _SEND, {"iface": "h1", "frame": _frame(1, "10.0.1.1", 1),
                              "pps": 2 * RATE_PPS, "seconds": seconds, "delay": 0.0})
    classic = _py(switch, _SEND, {"iface": "h2", "frame": _frame(2, "10.0.1.2", 0),
                                  "pps": CLASSIC_PPS, "seconds": seconds - 1.5,
                                  "delay": 1.0})
    sent_l = json.loads(l4s.communicate(timeout=120)[0])["sent"]
    sent_c = json.loads(classic.communicate(timeout=120)[0])["sent"]
    got = json.loads(sniff.communicate(timeout=120)[0])
    l_times = [t for t, src, _ in got if src == 1]
    c_times = [t for t, src, _ in got if src == 2]

    # the L load was what was intended: twice the port's rate offered, and the L queue full to
    # its depth (250 ms) when the load ended. On a busy machine BMv2's egress thread may run
    # slower than the pacer; then L is always due first and strict priority alone would
    # starve Classic — the AQM (the controller sees the waiting Classic packets) still lets
    # Classic through, which is what is checked below.
    state = _state(switch)
    assert sent_l >= 1.6 * RATE_PPS * seconds, sent_l
    # ... and Classic packets kept leaving all along (egress counts AQM drops too: they left
    # the queue), none waiting anywhere near the L load's length. A starved Classic queue
    # would keep at most its depth (13) for after the load; on a saturated host BMv2's own
    # packet input may lose a few of any class, hence 70 %, not all
    assert _counter(switch, "dualq1_packets", 0) >= 0.7 * sent_c, (sent_c, state)
    assert c_times and l_times and c_times[0] < l_times[-1]  # during the L load
    gaps = [b - a for a, b in zip(c_times, c_times[1:], strict=False)]
    l_gaps = [b - a for a, b in zip(l_times, l_times[1:], strict=False)]
    # sent 100 ms apart; a starved queue would wait out the whole L load (6.5 s). The bound is
    # the issue's 1 s, or three times BMv2's own longest pause on a busy machine
    assert max(gaps) < max(1.0, 3 * max(l_gaps)), (max(gaps), max(l_gaps), state)

    # what BMv2 reports per priority: the L queue is deep (its own depth limit), while the
    # Classic packets left behind by a Classic departure stay few — deq_qdepth is per queue
    assert _register(switch, "MosaicoEgress.dualq1_qdelay_l", 0) > 150_000, state  # µs
    # a port total would count the full L queue too: DEPTH packets or more
    assert _register(switch, "MosaicoEgress.dualq1_c_left", 0) < DEPTH / 2, state

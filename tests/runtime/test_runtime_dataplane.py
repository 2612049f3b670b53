"""The flagship deployed through P4Runtime forwards real packets as the thrift-loaded switch.

One packet test, two ways to load the same build (``mosaico compile --p4c``) into BMv2:

* ``thrift``: the build's own ``run-bmv2.sh`` — ``simple_switch`` with the BMv2 JSON and
  ``simple_switch_CLI`` loading ``entries.txt``, as an operator without a controller would;
* ``p4runtime``: ``simple_switch_grpc --no-p4`` and ``mosaico deploy --target p4runtime``,
  which pushes the pipeline and ``entries.json`` over P4Runtime.

Each switch runs in a namespace of its own with the endpoints in theirs
(tests/flagship_lab.py, shared with the thrift-loaded tests of the P4 backend), so the
switch's ports 9090 and 9559 are its own and concurrent runs do not collide.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest
from flagship_lab import HOSTS, flagship_lab
from runtime_helpers import ROOT, flagship_build

pytestmark = [pytest.mark.bmv2, pytest.mark.p4c, pytest.mark.root]


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    pytest.fail(f"{what} within {timeout:g}s")


def _blocklist_entries(lab) -> int:
    m = re.search(r"(\d+)\s*$", lab.cli(
        "table_num_entries MosaicoIngress.web_ll_0_blocklist_prefixes").strip()
        .replace("RuntimeCmd:", ""))
    return int(m.group(1)) if m else -1


def _mosaico_in(lab, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(lab.in_switch(sys.executable, "-m", "mosaico_dsl.cli", *args),
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


@pytest.fixture(params=["thrift", "p4runtime"])
def flagship_switch(request, tmp_path):
    build = flagship_build(tmp_path / "build")
    with flagship_lab() as lab:
        if request.param == "thrift":
            env = {**os.environ, "BMV2": "simple_switch", "BMV2_ARGS": lab.notifications,
                   **{f"IFACE_{p}": i for p, i in lab.interfaces.items()}}
            lab.start(lab.in_switch("sh", str(build / "s1" / "run-bmv2.sh")), env=env,
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            _wait(lambda: _blocklist_entries(lab) == 2, "run-bmv2.sh did not load the entries")
        else:
            ifaces = [a for p, i in lab.interfaces.items() for a in ("-i", f"{p}@{i}")]
            lab.start(lab.in_switch("simple_switch_grpc", "--no-p4", "--device-id", "1",
                                    "--thrift-port", "9090", *lab.notifications.split(),
                                    "--log-file",
                                    str(tmp_path / "bmv2"), *ifaces, "--",
                                    "--grpc-server-addr", "127.0.0.1:9559",
                                    "--priority-queues", "2"),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            state = tmp_path / "state.db"
            deployed = []

            def deploy() -> bool:  # the topology's address, 127.0.0.1:9559, in the namespace
                r = _mosaico_in(lab, "deploy", str(build), "--target", "p4runtime",
                                "--state", str(state), "--timeout", "2")
                deployed.append(r)
                return r.returncode == 0 or "E1205" not in r.stderr
            _wait(deploy, "simple_switch_grpc did not answer")
            assert deployed[-1].returncode == 0, deployed[-1].stderr
            assert _blocklist_entries(lab) == 2
            lab.state = state
        lab.kind = request.param
        yield lab


def test_forwarding_and_blocklist(flagship_switch):
    lab = flagship_switch
    sniffer = lab.sniff_server(6)
    time.sleep(1)
    lab.send("classic", count=20, pps=50, payload=100)
    lab.send("attacker", count=20, pps=50, payload=100)
    got = lab.received(sniffer)
    from_classic = [p for p in got if p["src"] == HOSTS["classic"][1]]
    assert len(from_classic) == 20, "the classic client's 20 packets must all arrive"
    assert all(p["ttl"] == 63 and p["chksum_ok"] for p in from_classic)
    assert not [p for p in got if p["src"] == HOSTS["attacker"][1]]
    assert lab.counter("MosaicoIngress.web_ll_0_blocklist_dropped", 0) == 20
    if lab.kind == "p4runtime":
        # mosaico's own view of it: counters over P4Runtime, queue delay over Thrift.
        r = _mosaico_in(lab, "status", "--state", str(lab.state), "--format", "json")
        assert r.returncode == 0, r.stderr
        node = next(row for row in json.loads(r.stdout) if row["service"] == "*")
        assert node["state"] == "running" and node["drops"] >= 20
        assert node["sources"]["queue_delay"] == "thrift 127.0.0.1:9090"

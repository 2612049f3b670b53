"""run-bmv2.sh hands BMv2 its options the way BMv2 parses them.

BMv2 is not installable on this machine, so stand-in executables take the place of p4c,
the switch and its CLI: they record their arguments and input, and the script runs for
real under ``sh``. What they check is the command-line contract read from BMv2's source:
``--priority-queues`` is an option of the simple_switch *target* (targets/simple_switch/
main.cpp adds it to a TargetParserBasic), so it must follow ``--`` after the JSON;
simple_switch_grpc (targets/simple_switch_grpc/main.cpp) lacks it in older builds, which run
one queue per port and drop a packet with priority 1; the script asks the binary's
``-- --help`` and uses the option when the build has it.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

from p4_support import ROOT, compiled

FAKE_P4C = """#!/bin/sh
for a in "$@"; do case "$prev" in -o) : > "$a" ;; esac; prev=$a; done
"""
FAKE_SWITCH = """#!/bin/sh
if [ "$1 $2" = "-- --help" ]; then echo "$TARGET_HELP"; exit 0; fi
printf '%s\\n' "$@" > "$LOG_DIR/switch.argv"
sleep 0.5
"""
FAKE_CLI = """#!/bin/sh
cat >> "$LOG_DIR/cli.stdin"
"""


def _run(tmp_path: Path, example: str, switch: str, binary: str, target_help: str = ""):
    result = compiled(ROOT / "examples" / f"{example}.mosaico")
    result.write(tmp_path / "build")
    d = tmp_path / "build" / switch
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("p4c-bm2-ss", FAKE_P4C), (binary, FAKE_SWITCH),
                       ("simple_switch_CLI", FAKE_CLI)):
        (bin_dir / name).write_text(textwrap.dedent(text))
        (bin_dir / name).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LOG_DIR": str(tmp_path),
           "BMV2": binary, "TARGET_HELP": target_help}
    r = subprocess.run(["sh", str(d / "run-bmv2.sh")], cwd=d, env=env, capture_output=True,
                       text=True, timeout=60)
    argv_file = tmp_path / "switch.argv"
    argv = argv_file.read_text().splitlines() if argv_file.exists() else None
    cli_file = tmp_path / "cli.stdin"
    return r, argv, cli_file.read_text() if cli_file.exists() else ""


def test_priority_queues_are_a_target_option_after_the_json(tmp_path):
    r, argv, cli = _run(tmp_path, "secure_l4s", "s1", "simple_switch")
    assert r.returncode == 0, r.stderr
    json_at = argv.index("s1.json")
    assert argv[json_at + 1:] == ["--", "--priority-queues", "2"]
    assert "--priority-queues" not in argv[:json_at]  # not a generic BMv2 option
    assert argv[argv.index("--thrift-port") + 1] == "9090"
    assert [argv[i + 1] for i, a in enumerate(argv[:json_at]) if a == "-i"] == [
        f"{p}@s1-eth{p}" for p in range(5)]
    assert "set_queue_rate 1000 0" in cli and "set_queue_depth 250 0" in cli
    assert "table_add MosaicoIngress.web_ll_0_blocklist_prefixes" in cli


def test_simple_switch_grpc_without_priority_queues_is_refused_for_a_dualq(tmp_path):
    r, argv, _ = _run(tmp_path, "secure_l4s", "s1", "simple_switch_grpc")
    assert r.returncode == 1
    assert argv is None  # never started: it would drop every L4S packet
    assert "--priority-queues" in r.stderr and "simple_switch" in r.stderr


def test_simple_switch_grpc_without_a_dualq_gets_its_grpc_address(tmp_path):
    r, argv, cli = _run(tmp_path, "guarded_edge", "e1", "simple_switch_grpc")
    assert r.returncode == 0, r.stderr
    json_at = argv.index("e1.json")
    assert argv[json_at + 1:] == ["--", "--grpc-server-addr", "0.0.0.0:9559"]
    assert "mirroring_add 5 2" in cli


def test_simple_switch_grpc_with_priority_queues_runs_a_dualq(tmp_path):
    r, argv, _ = _run(tmp_path, "secure_l4s", "s1", "simple_switch_grpc",
                      target_help="--grpc-server-addr arg\n--priority-queues arg")
    assert r.returncode == 0, r.stderr
    json_at = argv.index("s1.json")
    # the address is the topology's `p4runtime:` attribute of s1
    assert argv[json_at + 1:] == ["--", "--grpc-server-addr", "127.0.0.1:9559",
                                  "--priority-queues", "2"]

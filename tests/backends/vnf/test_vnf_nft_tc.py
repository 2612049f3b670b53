"""The generated nftables rulesets pass ``nft -c`` and the tc scripts behave as documented."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from vnf_support import SOURCES, have, run, source_id, vnf_files

RULESETS = [(s, p) for s in SOURCES for p in vnf_files(s) if p.endswith(".nft")]
SCRIPTS = [(s, p) for s in SOURCES for p in vnf_files(s) if p.endswith(".sh")]


@pytest.mark.root
@pytest.mark.skipif(not have("nft"), reason="nft (nftables) is not installed")
@pytest.mark.parametrize(("source", "path"), RULESETS,
                         ids=[f"{source_id(s)}:{p}" for s, p in RULESETS])
def test_nft_check_accepts_every_ruleset(source: Path, path: str, tmp_path: Path) -> None:
    f = tmp_path / "ruleset.nft"
    f.write_text(vnf_files(source)[path])
    run("nft", "-c", "-f", str(f))


def test_there_are_rulesets_and_scripts_to_check() -> None:
    assert len(RULESETS) >= 10 and len(SCRIPTS) >= 2


@pytest.mark.parametrize(("source", "path"), SCRIPTS,
                         ids=[f"{source_id(s)}:{p}" for s, p in SCRIPTS])
def test_tc_scripts_are_valid_sh(source: Path, path: str, tmp_path: Path) -> None:
    f = tmp_path / "tc.sh"
    f.write_text(vnf_files(source)[path])
    run("sh", "-n", str(f))


def _fake_tc(tmp_path: Path, refuse: tuple[str, ...]) -> Path:
    """A `tc` that logs its arguments and fails for the qdisc kinds in ``refuse``."""
    log = tmp_path / "tc.log"
    fake = tmp_path / "tc"
    fake.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> {log}\n'
        f'for kind in {" ".join(refuse) or "none"}; do\n'
        '  case " $* " in *" $kind "*) echo "Unknown qdisc \\"$kind\\"" >&2; exit 1;; esac\n'
        "done\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


def _flagship_tc(tmp_path: Path) -> Path:
    src = next(s for s in SOURCES if s.stem == "secure_l4s")
    script = tmp_path / "s1.tc.sh"
    script.write_text(vnf_files(src)["local/s1.tc.sh"])
    return script


def _run_tc(script: Path, fake: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(script), *args], capture_output=True, text=True,
                          timeout=30, env={**os.environ, "TC": str(fake), **env})


def test_dualq_uses_dualpi2_with_the_program_parameters(tmp_path: Path) -> None:
    script = _flagship_tc(tmp_path)
    proc = _run_tc(script, _fake_tc(tmp_path, ()), "web_ll-2-dualq", "p0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "mosaico-tc: web_ll-2-dualq p0 dualpi2"
    log = (tmp_path / "tc.log").read_text().splitlines()
    # Shaped to the 12 Mb/s bottleneck towards the server, dualpi2 under the HTB class.
    assert "class replace dev p0 parent 1: classid 1:1 htb rate 12000000bit ceil 12000000bit" \
        in log
    dualpi2 = next(line for line in log if "dualpi2" in line)
    for part in ("parent 1:1", "target 15000us", "tupdate 15000us", "alpha 0.15", "beta 3",
                 "coupling_factor 2", "step_thresh 1000us", "min_qlen_step 1",
                 "limit 250"):
        assert part in dualpi2, part


def test_dualq_falls_back_and_says_so(tmp_path: Path) -> None:
    script = _flagship_tc(tmp_path)
    proc = _run_tc(script, _fake_tc(tmp_path, ("dualpi2",)), "web_ll-2-dualq", "p0")
    assert proc.returncode == 0
    assert proc.stdout.strip().endswith("fq_codel")
    assert "dualpi2 is not available" in proc.stderr
    assert "ce_threshold 1000us ce_threshold_selector 0x01/0x01" in (
        tmp_path / "tc.log").read_text()

    proc = _run_tc(script, _fake_tc(tmp_path, ("dualpi2", "fq_codel")), "web_ll-2-dualq", "p0")
    assert proc.returncode == 0 and proc.stdout.strip().endswith("pfifo")
    assert "NO active queue management" in proc.stderr


def test_dualq_can_refuse_to_fall_back(tmp_path: Path) -> None:
    script = _flagship_tc(tmp_path)
    proc = _run_tc(script, _fake_tc(tmp_path, ("dualpi2",)), "web_ll-2-dualq", "p0",
                   MOSAICO_TC_REQUIRE_DUALPI2="1")
    assert proc.returncode == 3
    assert "fq_codel" not in (tmp_path / "tc.log").read_text()


def test_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    script = _flagship_tc(tmp_path)
    proc = _run_tc(script, _fake_tc(tmp_path, ()), "nope", "p0")
    assert proc.returncode == 2 and "usage" in proc.stderr
    assert not (tmp_path / "tc.log").exists()


def test_fifo_is_a_pfifo_sized_from_the_buffer(tmp_path: Path) -> None:
    src = next(s for s in SOURCES if s.stem == "mixed")
    script = tmp_path / "tc.sh"
    script.write_text(vnf_files(src)["vnf_b/tc.sh"])
    proc = _run_tc(script, _fake_tc(tmp_path, ()), "api_tcp-4-fifo", "eth1")
    assert proc.returncode == 0, proc.stderr
    log = (tmp_path / "tc.log").read_text()
    # 50 ms at the 100 Mb/s bottleneck towards `api` in 1500-byte packets: 417 packets.
    assert "rate 100000000bit" in log and "pfifo limit 417" in log


def test_tc_echo_prints_every_command_the_script_would_run(tmp_path: Path) -> None:
    """The documented dry run: with TC=echo each tc command appears on stdout, the dualpi2
    one included (its output is captured to explain a fallback)."""
    script = _flagship_tc(tmp_path)
    proc = _run_tc(script, Path("echo"), "web_ll-2-dualq", "p0")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0] == "qdisc replace dev p0 root handle 1: htb default 1"
    assert any(line.startswith("qdisc replace dev p0 parent 1:1 handle 10: dualpi2 ")
               for line in lines), lines
    assert lines[-1] == "mosaico-tc: web_ll-2-dualq p0 dualpi2"

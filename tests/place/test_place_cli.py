"""`mosaico place`: the table, placement.json (the same bytes `mosaico compile` writes),
and exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

import mosaico_dsl as mo
from mosaico_dsl.cli import cli

PROGRAMS = Path(__file__).parent / "programs"


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_table_of_the_flagship(flagship_path: Path):
    result = run("place", str(flagship_path))
    assert result.exit_code == 0, result.output
    for header in ("service", "function", "node", "target", "latency share", "resources"):
        assert header in result.stdout
    assert "Blocklist" in result.stdout and "DualQ" in result.stdout
    assert "p4.v1model" in result.stdout and "4 stages" in result.stdout
    assert "attacker → s1 → server" in result.stdout
    assert "7.205ms (36%)" in result.stdout
    assert "cp-sat: optimal" in result.stdout


def test_output_is_the_placement_json_compile_writes(flagship_path: Path, tmp_path: Path):
    out = tmp_path / "sub" / "placement.json"
    result = run("place", str(flagship_path), "-o", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    compiled = mo.compile(flagship_path, emit=["placement"]).artifacts["placement.json"]
    assert out.read_bytes() == compiled
    build = tmp_path / "build"
    assert run("compile", str(flagship_path), "-o", str(build)).exit_code == 0
    assert (build / "placement.json").read_bytes() == compiled


def test_json_to_stdout(flagship_path: Path):
    result = run("place", str(flagship_path), "-o", "-")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["objective"]["worst_budget_usage_ppm"] == 360_250
    assert [v["node"] for v in doc["routes"][0]["visits"]] == ["l4s_client", "s1", "server"]


def test_infeasible_program_exits_1_with_the_explanation():
    result = run("place", str(PROGRAMS / "pq.mosaico"))
    assert result.exit_code == 1
    assert "error[E0807]: DualQ needs 2 priority queues but `s1` has 1" in result.output
    assert "set `priority_queues: 2` on `s1`" in result.output


def test_usage_errors_exit_2(tmp_path: Path, flagship_path: Path):
    assert run("place", str(tmp_path / "missing.mosaico")).exit_code == 2
    assert run("place", str(flagship_path), "--search-limit", "0").exit_code == 2
    assert run("place").exit_code == 2
    assert "place" in run("--help").output


def test_a_search_limit_gives_the_same_placement_on_a_small_program(flagship_path: Path):
    quick = run("place", str(flagship_path), "-o", "-", "-q", "--search-limit", "1")
    default = run("place", str(flagship_path), "-o", "-", "-q")
    assert quick.exit_code == default.exit_code == 0
    assert quick.stdout == default.stdout


def test_a_placement_not_proven_optimal_is_a_warning(flagship_path: Path, monkeypatch):
    """W0801: valid but not proven optimal (forced here: real runs prove these small
    programs optimal within any limit the CLI accepts)."""
    import mosaico_dsl.place as P
    from mosaico_dsl.place import Level, Placement, Search

    real = P.place

    def unproven(program, options=None):
        p = real(program, options=options)
        levels = tuple(Level(lv.name, lv.value, 0) for lv in p.search.levels)
        return Placement(p.assignments, p.routes, p.objective, Search("cp-sat", levels))

    monkeypatch.setattr(P, "place", unproven)
    result = run("place", str(flagship_path), "-q")
    assert result.exit_code == 0
    assert "warning[W0801]: the placement is valid but not proven optimal" in result.output

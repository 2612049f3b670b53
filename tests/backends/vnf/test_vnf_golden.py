"""Golden files of every VNF artifact for every example (and the programs of this folder).

``golden/<program>/FILES`` lists the artifact paths, so a file that appears or disappears
is a diff too; each artifact is compared byte for byte (``pytest --update-golden``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from vnf_support import EXAMPLES, GOLDEN, SOURCES, compiled, source_id, vnf_files

import mosaico_dsl as mo
from mosaico_dsl.backends.vnf.backend import generate_texts
from mosaico_dsl.compiler import Compilation


@pytest.mark.parametrize("source", SOURCES, ids=source_id)
def test_golden(source: Path, golden) -> None:
    files = vnf_files(source)
    root = GOLDEN / source.stem
    golden(root / "FILES", "".join(f"{p}\n" for p in files))
    for path, text in files.items():
        golden(root / path, text)


@pytest.mark.parametrize("source", SOURCES, ids=source_id)
def test_deterministic(source: Path) -> None:
    r = compiled(source)
    again = generate_texts(Compilation(r.program, r.placement, str(source), None))
    assert again == vnf_files(source)


def test_flagship_python_api_gives_the_same_artifacts() -> None:
    import runpy

    program = runpy.run_path(str(EXAMPLES / "secure_l4s.py"))["program"]
    r = mo.compile(program, emit=["vnf"])
    expected = vnf_files(EXAMPLES / "secure_l4s.mosaico")
    got = {p: b.decode() for p, b in r.artifacts.items() if p in expected}
    assert got == expected


def test_compile_registers_the_vnf_backend(tmp_path: Path) -> None:
    r = mo.compile(EXAMPLES / "secure_l4s.mosaico", emit=["vnf"])
    assert "local.json" in r.artifacts and "local/s1.nft" in r.artifacts
    out = r.write(tmp_path / "build")
    assert (out / "local" / "s1.tc.sh").stat().st_mode & 0o111, "tc scripts are executable"

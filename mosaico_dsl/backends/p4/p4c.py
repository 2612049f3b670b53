"""The real P4 compiler run over the generated programs: BMv2 JSON for the build.

``mosaico compile --p4c`` runs ``p4c-bm2-ss`` on each switch's program and puts its BMv2
JSON (``<switch>/<switch>.json``) among the build's artifacts, so the manifest vouches for
it like for every other file: the runtime pushes only a device config that came out of
this compilation.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from ...diagnostics import CompileError, error

__all__ = ["P4C", "bmv2_json"]

P4C = "p4c-bm2-ss"


def bmv2_json(artifacts: Mapping[str, bytes]) -> dict[str, bytes]:
    """``<switch>/<switch>.json`` for every ``<switch>/<switch>.p4`` among ``artifacts``."""
    switches = sorted({rel.split("/", 1)[0] for rel in artifacts
                       if rel.count("/") == 1 and rel.endswith(".p4")
                       and rel.split("/")[1] == rel.split("/")[0] + ".p4"})
    if not switches:
        return {}
    p4c = shutil.which(P4C)
    if p4c is None:
        raise CompileError([error("E0920", f"--p4c needs {P4C}, which is not on PATH",
                                  hint="install p4c (p4lang packages), or compile without "
                                       "--p4c and deploy the P4Info only")])
    out: dict[str, bytes] = {}
    diags = []
    with tempfile.TemporaryDirectory(prefix="mosaico-p4c-") as tmp:
        for name in switches:
            d = Path(tmp) / name
            for rel, data in artifacts.items():
                if rel.startswith(name + "/"):
                    dest = Path(tmp) / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data)
            r = subprocess.run([p4c, "--arch", "v1model", "-o", f"{name}.json", f"{name}.p4"],
                               cwd=d, capture_output=True, text=True, timeout=900)
            if r.returncode != 0:
                diags.append(error("E0920", f"{P4C} rejected the program of switch {name}: "
                                            + (r.stderr.strip().splitlines() or ["?"])[-1],
                                   hint="this is a mosaico bug: please report it with the "
                                        "build directory"))
                continue
            out[f"{name}/{name}.json"] = (d / f"{name}.json").read_bytes()
    if diags:
        raise CompileError(diags)
    return out

"""Golden files: every example's generated P4, P4Info, entries, launch script, resources,
metrics map.

``pytest --update-golden tests/backends/p4`` rewrites them; review the diff like code.
"""

from __future__ import annotations

from p4_support import HERE, compiled, switch_dirs

FILES = ("{switch}.p4", "p4info.txtpb", "entries.json", "entries.txt", "run-bmv2.sh",
         "resources.json", "metrics.json")


def test_golden(example, golden):
    dirs = switch_dirs(compiled(example))
    assert dirs, f"{example.name} generates no P4 program"
    for switch, files in sorted(dirs.items()):
        for pattern in FILES:
            name = pattern.format(switch=switch)
            golden(HERE / "golden" / example.stem / switch / name, files[name])

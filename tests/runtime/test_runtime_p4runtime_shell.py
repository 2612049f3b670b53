"""Interop: p4runtime-shell (its own venv) drives the reference target with our P4Info.

p4runtime-shell pins protobuf < 3.21, so it runs from a separate virtual environment
(/opt/p4rt-shell, made by .ci/run; override with MOSAICO_P4RT_SHELL_PYTHON). It loads the
flagship's generated ``p4info.txtpb``, pushes it, and inserts a blocklist entry with its own
syntax; our client and ``mosaico plan`` then see exactly that entry.
"""

from __future__ import annotations

import asyncio
import subprocess
import textwrap

import pytest
from click.testing import CliRunner
from runtime_helpers import P4RT_SHELL_PYTHON, ROOT

from mosaico_dsl.cli import cli
from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.p4proto import p4r
from mosaico_dsl.runtime.entities import describe
from mosaico_dsl.runtime.p4runtime import Endpoint, connect
from mosaico_dsl.runtime.schema import load_p4info

SHELL_SCRIPT = textwrap.dedent("""
    import sys
    import p4runtime_sh.shell as sh

    addr, p4info, device_config, table, field, action = sys.argv[1:7]
    sh.setup(device_id=1, grpc_addr=addr, election_id=(0, 1),
             config=sh.FwdPipeConfig(p4info, device_config), verbose=False)
    te = sh.TableEntry(table)(action=action)
    te.match[field] = "203.0.113.0/24"
    te.insert()
    print(len(list(sh.TableEntry(table).read())), flush=True)
    sh.teardown()
""")


@pytest.mark.p4runtime_shell
def test_p4runtime_shell_inserts_one_of_our_entries(reference_switch, tmp_path, state_path):
    build = compile_program(ROOT / "examples" / "secure_l4s.mosaico").write(tmp_path / "b")
    p4info_path = build / "s1" / "p4info.txtpb"
    schema = load_p4info(p4info_path)
    table = next(t for t in schema.tables.values() if t.name.endswith("blocklist_prefixes"))
    field = next(iter(table.match_fields.values())).name
    action = next(schema.actions[a].name for a in table.action_ids
                  if schema.actions[a].name.endswith("blocklist_listed"))
    (tmp_path / "empty.json").write_bytes(b"")
    sw = reference_switch(device_id=1)
    shell = subprocess.run(
        [str(P4RT_SHELL_PYTHON), "-c", SHELL_SCRIPT, sw.address, str(p4info_path),
         str(tmp_path / "empty.json"), table.name, field, action],
        capture_output=True, text=True, timeout=120)
    assert shell.returncode == 0, shell.stderr[-3000:]
    assert shell.stdout.strip().splitlines()[-1] == "1"

    async def read():
        async with await connect(Endpoint("s1", sw.address, 1), primary=False) as c:
            return await c.read([p4r.Entity(table_entry=p4r.TableEntry(table_id=table.id))])
    got = asyncio.run(read())
    assert [describe(e, schema) for e in got] == [
        f"{table.name} {field}=203.0.113.0/24 -> {action}()"]
    assert sw.target.pipeline.config.p4info == schema.p4info

    # mosaico sees the entry p4runtime-shell wrote as one it did not deploy.
    r = CliRunner().invoke(cli, ["plan", str(build), "--target", "p4runtime", "--address",
                                 f"s1={sw.address}", "--state", str(state_path)])
    assert r.exit_code == 0, r.output
    assert "! forwarding pipeline" in r.output  # pushed without mosaico's cookie
    assert "the switch runs a pipeline mosaico did not push" in r.output

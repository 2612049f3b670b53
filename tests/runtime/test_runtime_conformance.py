"""The same P4Runtime conformance checks against the reference target and against BMv2.

Both switches run the flagship's generated program (``examples/secure_l4s.mosaico``):
the reference target from its P4Info, BMv2 (``simple_switch_grpc``, marked ``bmv2``) from
the BMv2 JSON the real p4c makes of it. Every check asserts the status code a conforming
switch returns, so a difference between the two is a bug in the reference target.
"""

from __future__ import annotations

import asyncio
import ipaddress

import grpc
import pytest
from runtime_helpers import ROOT, insert, start_bmv2, update, wait_listening

from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.p4proto import p4r
from mosaico_dsl.runtime.p4runtime import Endpoint, P4RuntimeError, connect
from mosaico_dsl.runtime.schema import Schema, load_p4info

C = grpc.StatusCode


@pytest.fixture(scope="module")
def flagship(tmp_path_factory):
    return compile_program(ROOT / "examples" / "secure_l4s.mosaico").write(
        tmp_path_factory.mktemp("conformance") / "build")


@pytest.fixture(params=["reference", pytest.param(
    "bmv2", marks=[pytest.mark.bmv2("simple_switch_grpc"), pytest.mark.p4c])])
def switch(request, flagship, reference_switch, tmp_path):
    """(address, schema) of a switch running the flagship's pipeline, pushed by us."""
    schema = load_p4info(flagship / "s1" / "p4info.txtpb")
    device_config = b""
    proc = None
    if request.param == "reference":
        address = reference_switch(device_id=1).address
    else:
        proc, address = start_bmv2(flagship / "s1", tmp_path)
        wait_listening(address)
        device_config = (flagship / "s1" / "s1.json").read_bytes()

    async def push():
        async with await connect(Endpoint("s1", address, 1)) as c:
            await c.set_pipeline(schema.p4info, device_config, cookie=1)
    asyncio.run(push())
    yield address, schema
    if proc is not None:
        proc.terminate()
        proc.wait(10)


def blocklist(schema: Schema, prefix: str) -> p4r.Entity:
    t = next(t for t in schema.tables.values() if t.name.endswith("blocklist_prefixes"))
    f = next(iter(t.match_fields.values()))
    a = next(a for a in t.action_ids if schema.actions[a].name.endswith("blocklist_listed"))
    net = ipaddress.ip_network(prefix)
    e = p4r.Entity()
    e.table_entry.table_id = t.id
    m = e.table_entry.match.add(field_id=f.id)
    m.lpm.value, m.lpm.prefix_len = net.network_address.packed, net.prefixlen
    e.table_entry.action.action.action_id = a
    return e


def write(address: str, *updates: p4r.Update) -> P4RuntimeError | None:
    async def go():
        async with await connect(Endpoint("s1", address, 1)) as c:
            try:
                await c.write(list(updates))
            except P4RuntimeError as e:
                return e
            return None
    return asyncio.run(go())


def codes(err: P4RuntimeError | None) -> list[C]:
    assert err is not None, "the switch accepted it"
    return [x.code for x in err.errors]


def test_insert_then_duplicate_then_delete_twice(switch):
    address, schema = switch
    e = blocklist(schema, "203.0.113.0/24")
    assert write(address, insert(e)) is None
    assert codes(write(address, insert(e))) == [C.ALREADY_EXISTS]
    assert write(address, update(p4r.Update.DELETE, e)) is None
    assert codes(write(address, update(p4r.Update.DELETE, e))) == [C.NOT_FOUND]
    assert codes(write(address, update(p4r.Update.MODIFY, e))) == [C.NOT_FOUND]


def test_malformed_entries(switch):
    address, schema = switch
    too_wide = blocklist(schema, "203.0.113.0/24")
    too_wide.table_entry.match[0].lpm.value = b"\x01" + b"\xcb\x00\x71\x00"
    assert codes(write(address, insert(too_wide))) == [C.OUT_OF_RANGE]
    wrong_kind = blocklist(schema, "203.0.113.0/24")
    value = wrong_kind.table_entry.match[0].lpm.value
    wrong_kind.table_entry.match[0].exact.value = value
    assert codes(write(address, insert(wrong_kind))) == [C.INVALID_ARGUMENT]
    unknown_table = blocklist(schema, "203.0.113.0/24")
    unknown_table.table_entry.table_id = 0x02FFFFFF
    assert codes(write(address, insert(unknown_table))) == [C.INVALID_ARGUMENT]
    host_bits = blocklist(schema, "203.0.113.0/24")
    host_bits.table_entry.match[0].lpm.prefix_len = 16
    assert codes(write(address, insert(host_bits))) == [C.INVALID_ARGUMENT]


def test_batch_reports_each_update(switch):
    address, schema = switch
    a, b = blocklist(schema, "198.51.100.0/24"), blocklist(schema, "192.0.2.0/24")
    err = write(address, insert(a), insert(a), insert(b))
    assert err is not None and err.code == C.UNKNOWN
    assert [(x.index, x.code) for x in err.errors] == [(1, C.ALREADY_EXISTS)]

    async def read():
        async with await connect(Endpoint("s1", address, 1), primary=False) as c:
            return await c.read([p4r.Entity(table_entry=p4r.TableEntry(
                table_id=a.table_entry.table_id))])
    assert len(asyncio.run(read())) == 2

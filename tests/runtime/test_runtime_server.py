"""The reference P4Runtime target answers like a conforming switch.

Every test talks to a real gRPC server on loopback through the real client; the codes are
the P4Runtime specification's (and PI/BMv2's, the reference implementation).
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from runtime_helpers import (
    Ids,
    acl_entry,
    blocklist_entry,
    insert,
    register_entity,
    route_entry,
    update,
)

from mosaico_dsl.p4proto import p4r
from mosaico_dsl.runtime.entities import canonical, identity
from mosaico_dsl.runtime.p4runtime import Endpoint, NotPrimaryError, P4RuntimeError, connect

C = grpc.StatusCode


def run(coro):
    return asyncio.run(coro)


async def _session(sw, lab_schema, election_id: int = 1, push: bool = True):
    conn = await connect(Endpoint("s1", sw.address, 1, election_id))
    if push:
        await conn.set_pipeline(lab_schema.p4info, b"", cookie=7)
    return conn


def _write_error(sw, lab_schema, *updates: p4r.Update) -> P4RuntimeError:
    async def go():
        async with await _session(sw, lab_schema) as c:
            with pytest.raises(P4RuntimeError) as info:
                await c.write(list(updates))
            return info.value
    return run(go())


def _one(err: P4RuntimeError) -> tuple[C, str]:
    assert err.code == C.UNKNOWN, "a failed batch is UNKNOWN with per-update details"
    assert len(err.errors) == 1
    return err.errors[0].code, err.errors[0].message


def test_insert_read_modify_delete_roundtrip(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            e = route_entry(5)
            await c.write([insert(e)])
            got = await c.read([p4r.Entity(table_entry=p4r.TableEntry(table_id=Ids.FWD))])
            assert [identity(canonical(x)) for x in got] == [identity(canonical(e))]
            changed = route_entry(5, port=3)
            await c.write([update(p4r.Update.MODIFY, changed)])
            got = await c.read([p4r.Entity(table_entry=p4r.TableEntry(table_id=Ids.FWD))])
            assert got[0].table_entry.action.action.params[0].value == b"\x03"
            await c.write([update(p4r.Update.DELETE, e)])
            assert await c.read([p4r.Entity(table_entry=p4r.TableEntry())]) == []
    run(go())


def test_read_returns_canonical_bytestrings(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            e = route_entry(0, port=1)  # 10.0.0.0/24, port as 2 bytes b"\x00\x01"
            assert e.table_entry.action.action.params[0].value == b"\x00\x01"
            await c.write([insert(e)])
            got = (await c.read([p4r.Entity(table_entry=p4r.TableEntry())]))[0]
            assert got.table_entry.action.action.params[0].value == b"\x01"
            assert got.table_entry.match[0].lpm.value == b"\x0a\x00\x00\x00"
    run(go())


@pytest.mark.parametrize("mutate, code, text", [
    (lambda e: setattr(e.table_entry, "table_id", 0x02FFFFFF), C.INVALID_ARGUMENT, "no table"),
    (lambda e: setattr(e.table_entry.match[0], "field_id", 9), C.INVALID_ARGUMENT,
     "no match field id 9"),
    (lambda e: e.table_entry.match[0].exact.SetInParent(), C.INVALID_ARGUMENT,
     "is lpm, not exact"),
    (lambda e: setattr(e.table_entry.match[0].lpm, "value", b"\x01\x0a\x00\x00\x00"),
     C.OUT_OF_RANGE, "does not fit in 32 bits"),
    (lambda e: setattr(e.table_entry.match[0].lpm, "prefix_len", 33), C.INVALID_ARGUMENT,
     "prefix length 33"),
    (lambda e: setattr(e.table_entry.match[0].lpm, "prefix_len", 0), C.INVALID_ARGUMENT,
     "must be omitted"),
    (lambda e: setattr(e.table_entry.match[0].lpm, "prefix_len", 8), C.INVALID_ARGUMENT,
     "beyond the /8 prefix"),
    (lambda e: setattr(e.table_entry, "priority", 5), C.INVALID_ARGUMENT,
     "priority must be 0"),
    (lambda e: setattr(e.table_entry.action.action, "action_id", 0x01FFFFFF),
     C.INVALID_ARGUMENT, "no action"),
    (lambda e: setattr(e.table_entry.action.action, "action_id", Ids.POLICE),
     C.INVALID_ARGUMENT, "not an action of table"),
    (lambda e: e.table_entry.action.action.params.pop(), C.INVALID_ARGUMENT,
     "missing parameter(s) dstAddr"),
    (lambda e: setattr(e.table_entry.action.action.params[0], "value", b"\x02\x00"),
     C.OUT_OF_RANGE, "does not fit in 9 bits"),
    (lambda e: setattr(e.table_entry.action.action.params[0], "param_id", 7),
     C.INVALID_ARGUMENT, "no parameter id 7"),
    (lambda e: e.table_entry.action.action.params.add(param_id=1, value=b"\x01"),
     C.INVALID_ARGUMENT, "given twice"),
    # P4Runtime spec, "Bytestrings": "If the string's byte length is zero, the server always
    # rejects the string ... it returns an OUT_OF_RANGE error."
    (lambda e: setattr(e.table_entry.action.action.params[0], "value", b""),
     C.OUT_OF_RANGE, "empty byte string"),
])
def test_invalid_table_entries_are_rejected_with_the_spec_code(
        reference_switch, lab_schema, mutate, code, text):
    sw = reference_switch()
    e = route_entry(1)
    mutate(e)
    got, message = _one(_write_error(sw, lab_schema, insert(e)))
    assert got == code
    assert text in message
    assert sw.call(lambda: sw.target.state.entries.get(Ids.FWD, {})) == {}


def test_ternary_and_range_rules(reference_switch, lab_schema):
    sw = reference_switch()
    cases = [
        (acl_entry(0xC0A80001, 0xFFFF0000, 6, 1, 2, 10), "outside the mask"),
        (acl_entry(0xC0A80000, 0, 6, 1, 2, 10), "all-zero mask"),
        (acl_entry(0xC0A80000, 0xFFFF0000, 6, 9, 2, 10), "low > high"),
        (acl_entry(0xC0A80000, 0xFFFF0000, 6, 0, 0xFFFF, 10), "full range"),
        (acl_entry(0xC0A80000, 0xFFFF0000, 6, 1, 2, 0), "need a priority"),
    ]
    for entity, text in cases:
        code, message = _one(_write_error(sw, lab_schema, insert(entity)))
        assert code == C.INVALID_ARGUMENT and text in message, (text, message)
    missing_exact = acl_entry(0xC0A80000, 0xFFFF0000, 6, 1, 2, 10)
    del missing_exact.table_entry.match[1]
    code, message = _one(_write_error(sw, lab_schema, insert(missing_exact)))
    assert code == C.INVALID_ARGUMENT and "hdr.ipv4.protocol is missing" in message


def test_priority_distinguishes_ternary_entries(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            await c.write([insert(acl_entry(0xC0A80000, 0xFFFF0000, 6, 1, 2, 10)),
                           insert(acl_entry(0xC0A80000, 0xFFFF0000, 6, 1, 2, 20))])
            got = await c.read([p4r.Entity(table_entry=p4r.TableEntry(table_id=Ids.ACL))])
            assert sorted(x.table_entry.priority for x in got) == [10, 20]
    run(go())


def test_batch_reports_one_error_per_update_and_applies_the_rest(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            await c.write([insert(route_entry(1))])
            with pytest.raises(P4RuntimeError) as info:
                await c.write([insert(route_entry(2)), insert(route_entry(1)),
                               update(p4r.Update.DELETE, route_entry(3)),
                               update(p4r.Update.MODIFY, route_entry(4)),
                               insert(route_entry(5))])
            err = info.value
            assert err.code == C.UNKNOWN
            assert [(x.index, x.code) for x in err.errors] == [
                (1, C.ALREADY_EXISTS), (2, C.NOT_FOUND), (3, C.NOT_FOUND)]
            assert err.applied == 2  # CONTINUE_ON_ERROR: updates 0 and 4 went in
            got = await c.read([p4r.Entity(table_entry=p4r.TableEntry(table_id=Ids.FWD))])
            assert len(got) == 3
    run(go())


def test_rollback_on_error_atomicity_applies_nothing(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            await c.write([insert(route_entry(1))])
            with pytest.raises(P4RuntimeError) as info:
                await c.write([insert(route_entry(2)), insert(route_entry(1))],
                              atomicity=p4r.WriteRequest.ROLLBACK_ON_ERROR)
            assert [(x.index, x.code) for x in info.value.errors] == [
                (0, C.ABORTED), (1, C.ALREADY_EXISTS)]
            got = await c.read([p4r.Entity(table_entry=p4r.TableEntry(table_id=Ids.FWD))])
            assert len(got) == 1
    run(go())


def test_table_capacity_is_enforced(reference_switch, lab_schema):
    sw = reference_switch()
    ups = [insert(route_entry(i)) for i in range(4)]
    for u in ups:  # MyIngress.rate_limit has size 4
        u.entity.table_entry.table_id = Ids.RATE
        u.entity.table_entry.ClearField("match")
        u.entity.table_entry.match.add(field_id=1).exact.value = bytes([ups.index(u) + 1])
        u.entity.table_entry.action.action.Clear()
        u.entity.table_entry.action.action.action_id = Ids.POLICE
    fifth = p4r.Update()
    fifth.CopyFrom(ups[0])
    fifth.entity.table_entry.match[0].exact.value = b"\x09"
    err = _write_error(sw, lab_schema, *ups, fifth)
    assert [(x.index, x.code) for x in err.errors] == [(4, C.RESOURCE_EXHAUSTED)]
    assert "is full" in err.errors[0].message


def test_default_action_rules(reference_switch, lab_schema):
    sw = reference_switch()
    d = p4r.Entity()
    d.table_entry.table_id = Ids.BLOCKLIST
    d.table_entry.is_default_action = True
    d.table_entry.action.action.action_id = Ids.NOACTION
    code, message = _one(_write_error(sw, lab_schema, insert(d)))
    assert code == C.INVALID_ARGUMENT and "only be MODIFY" in message

    async def go():
        async with await _session(sw, lab_schema) as c:
            await c.write([update(p4r.Update.MODIFY, d)])  # @defaultonly: fine as default
            got = await c.read([d])
            assert got[0].table_entry.action.action.action_id == Ids.NOACTION
            entry = blocklist_entry("10.0.0.0/8")
            entry.table_entry.action.action.action_id = Ids.NOACTION
            with pytest.raises(P4RuntimeError) as info:
                await c.write([insert(entry)])
            assert info.value.errors[0].code == C.INVALID_ARGUMENT
            assert "@defaultonly" in info.value.errors[0].message
    run(go())


def test_registers_counters_meters(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            await c.write([update(p4r.Update.MODIFY, register_entity(Ids.QDELAY, 2, 1500))])
            got = await c.read([p4r.Entity(register_entry=p4r.RegisterEntry(
                register_id=Ids.QDELAY))])
            assert len(got) == 8
            assert int.from_bytes(got[2].register_entry.data.bitstring, "big") == 1500
            assert got[0].register_entry.data.bitstring == b"\x00"
            with pytest.raises(P4RuntimeError) as info:
                await c.write([update(p4r.Update.MODIFY,
                                      register_entity(Ids.P_PRIME, 0, 1 << 16, 24))])
            assert info.value.errors[0].code == C.OUT_OF_RANGE
            with pytest.raises(P4RuntimeError) as info:
                await c.write([update(p4r.Update.MODIFY, register_entity(Ids.QDELAY, 8, 1))])
            assert info.value.errors[0].code == C.OUT_OF_RANGE
            with pytest.raises(P4RuntimeError) as info:
                await c.write([insert(register_entity(Ids.QDELAY, 1, 1))])
            assert info.value.errors[0].code == C.INVALID_ARGUMENT
            # Counters: readable, and writable with MODIFY (a controller resets them so).
            ce = p4r.Entity()
            ce.counter_entry.counter_id = Ids.CE_MARKS
            ce.counter_entry.index.index = 3
            ce.counter_entry.data.packet_count = 42
            await c.write([update(p4r.Update.MODIFY, ce)])
            got = await c.read([p4r.Entity(counter_entry=p4r.CounterEntry(
                counter_id=Ids.CE_MARKS))])
            assert [x.counter_entry.data.packet_count for x in got] == [0, 0, 0, 42, 0, 0, 0, 0]
            # Meters: pir below cir is refused.
            m = p4r.Entity()
            m.meter_entry.meter_id = Ids.PORT_METER
            m.meter_entry.index.index = 0
            m.meter_entry.config.cir, m.meter_entry.config.pir = 100, 10
            with pytest.raises(P4RuntimeError) as info:
                await c.write([update(p4r.Update.MODIFY, m)])
            assert "below cir" in info.value.errors[0].message
    run(go())


def test_direct_counters_follow_their_entry(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            e = blocklist_entry("203.0.113.0/24")
            await c.write([insert(e)])
            dc = p4r.Entity()
            dc.direct_counter_entry.table_entry.CopyFrom(e.table_entry)
            dc.direct_counter_entry.table_entry.ClearField("action")
            dc.direct_counter_entry.data.packet_count = 9
            await c.write([update(p4r.Update.MODIFY, dc)])
            got = await c.read([p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
                table_entry=p4r.TableEntry(table_id=Ids.BLOCKLIST)))])
            assert got[0].direct_counter_entry.data.packet_count == 9
            missing = p4r.Entity()
            missing.CopyFrom(dc)
            missing.direct_counter_entry.table_entry.match[0].lpm.prefix_len = 16
            missing.direct_counter_entry.table_entry.match[0].lpm.value = b"\xcb\x00\x00\x00"
            with pytest.raises(P4RuntimeError) as info:
                await c.write([update(p4r.Update.MODIFY, missing)])
            assert info.value.errors[0].code == C.NOT_FOUND
    run(go())


def test_rolled_back_modify_leaves_no_direct_counter_behind(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            e = blocklist_entry("203.0.113.0/24")
            await c.write([insert(e)])
            counted = p4r.Entity()
            counted.CopyFrom(e)
            counted.table_entry.counter_data.packet_count = 5
            with pytest.raises(P4RuntimeError) as info:
                await c.write([update(p4r.Update.MODIFY, counted), insert(e)],
                              atomicity=p4r.WriteRequest.ROLLBACK_ON_ERROR)
            assert [(x.index, x.code) for x in info.value.errors] == [
                (0, C.ABORTED), (1, C.ALREADY_EXISTS)]
            got = await c.read([p4r.Entity(direct_counter_entry=p4r.DirectCounterEntry(
                table_entry=p4r.TableEntry(table_id=Ids.BLOCKLIST)))])
            assert got[0].direct_counter_entry.data.packet_count == 0
    run(go())


def test_multicast_groups(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            mc = p4r.Entity()
            g = mc.packet_replication_engine_entry.multicast_group_entry
            g.multicast_group_id = 5
            g.replicas.add(egress_port=1)
            await c.write([insert(mc)])
            with pytest.raises(P4RuntimeError) as info:
                await c.write([insert(mc)])
            assert info.value.errors[0].code == C.ALREADY_EXISTS
            await c.write([update(p4r.Update.DELETE, mc)])
            with pytest.raises(P4RuntimeError) as info:
                await c.write([update(p4r.Update.DELETE, mc)])
            assert info.value.errors[0].code == C.NOT_FOUND
    run(go())


def test_arbitration_primary_backup_and_failover(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        low = await connect(Endpoint("s1", sw.address, 1, election_id=5))
        assert low.is_primary
        high = await connect(Endpoint("s1", sw.address, 1, election_id=9))
        assert high.is_primary
        # The low-id controller is demoted: its writes are refused.
        await high.set_pipeline(lab_schema.p4info)
        with pytest.raises(P4RuntimeError) as info:
            await low.write([insert(route_entry(1))])
        assert info.value.code == C.PERMISSION_DENIED
        with pytest.raises(NotPrimaryError):
            await connect(Endpoint("s1", sw.address, 1, election_id=7))
        with pytest.raises(P4RuntimeError) as info:  # same id as the primary
            await connect(Endpoint("s1", sw.address, 1, election_id=9))
        assert info.value.code == C.INVALID_ARGUMENT
        await high.close()
        await asyncio.sleep(0.2)
        # The primary left: the remaining controller (id 5) is primary again.
        await low.write([insert(route_entry(1))])
        await low.close()
    run(go())


def test_whole_request_errors(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        with pytest.raises(P4RuntimeError) as info:
            await connect(Endpoint("s1", sw.address, device_id=99))
        assert info.value.code == C.NOT_FOUND
        async with await connect(Endpoint("s1", sw.address, 1)) as c:
            with pytest.raises(P4RuntimeError) as info:
                await c.write([insert(route_entry(1))])
            assert info.value.code == C.FAILED_PRECONDITION  # no pipeline yet
            assert await c.get_pipeline() == (None, p4r.ForwardingPipelineConfig())
            await c.set_pipeline(lab_schema.p4info, b"{}", cookie=11)
            cookie, cfg = await c.get_pipeline(full=True)
            assert cookie == 11 and cfg.p4_device_config == b"{}"
            assert cfg.p4info == lab_schema.p4info
            assert await c.capabilities() == "1.4.0"
        reader = await connect(Endpoint("s1", sw.address, 1), primary=False)
        with pytest.raises(P4RuntimeError) as info:  # no stream, so not primary
            await reader.write([insert(route_entry(1))])
        assert info.value.code == C.PERMISSION_DENIED
        assert await reader.read([p4r.Entity(table_entry=p4r.TableEntry())]) == []
        await reader.close()
    run(go())


def test_new_pipeline_clears_state(reference_switch, lab_schema):
    sw = reference_switch()

    async def go():
        async with await _session(sw, lab_schema) as c:
            await c.write([insert(route_entry(1))])
            await c.set_pipeline(lab_schema.p4info, b"", cookie=8)
            assert await c.read([p4r.Entity(table_entry=p4r.TableEntry())]) == []
            broken = p4r.Entity()
            broken.CopyFrom(route_entry(1))
            bad_info = type(lab_schema.p4info)()
            bad_info.CopyFrom(lab_schema.p4info)
            bad_info.tables[0].preamble.id = bad_info.tables[1].preamble.id
            with pytest.raises(P4RuntimeError) as info:
                await c.set_pipeline(bad_info)
            assert info.value.code == C.INVALID_ARGUMENT and "used by both" in info.value.message
    run(go())


def test_tls_with_client_certificates(reference_switch, lab_schema, tmp_path):
    import trustme

    from mosaico_dsl.runtime.p4runtime import TlsConfig
    from mosaico_dsl.runtime.server import TlsServerConfig

    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    client_cert = ca.issue_cert("mosaico-controller")
    paths = {}
    for name, blob in {"ca.pem": ca.cert_pem.bytes(),
                       "server.pem": server_cert.cert_chain_pems[0].bytes(),
                       "server.key": server_cert.private_key_pem.bytes(),
                       "client.pem": client_cert.cert_chain_pems[0].bytes(),
                       "client.key": client_cert.private_key_pem.bytes()}.items():
        (tmp_path / name).write_bytes(blob)
        paths[name] = tmp_path / name
    sw = reference_switch(tls=TlsServerConfig(paths["server.pem"], paths["server.key"],
                                              client_ca=paths["ca.pem"]))
    port = sw.address.rsplit(":", 1)[1]

    async def go():
        tls = TlsConfig(paths["ca.pem"], paths["client.pem"], paths["client.key"])
        async with await connect(Endpoint("s1", f"localhost:{port}", 1, tls=tls)) as c:
            await c.set_pipeline(lab_schema.p4info)
            await c.write([insert(route_entry(1))])
        no_client_cert = TlsConfig(paths["ca.pem"])
        with pytest.raises(P4RuntimeError):
            await connect(Endpoint("s1", f"localhost:{port}", 1, tls=no_client_cert),
                          timeout=2)
        with pytest.raises(P4RuntimeError):  # plaintext to a TLS server
            await connect(Endpoint("s1", f"localhost:{port}", 1), timeout=2)
    run(go())


"""`mosaico status` on P4 switches reads what the P4 backend's metrics map names.

examples/two_services.mosaico is compiled for real and deployed to the reference P4Runtime
target. The target forwards no packets, so the test plays the data plane: it sets
counters, direct counters and registers in the target's own state — every cell a real
switch could have counted, including ones that are *not* a service's metric (a detour's
return through the classifier, a Forward's route hits, DualQ cells of ports no DualQ
manages) — and checks that status adds up exactly the cells the map names.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner
from google.protobuf import json_format
from runtime_helpers import DATA, ROOT, make_build

from mosaico_dsl.cli import cli
from mosaico_dsl.compiler import compile as compile_program
from mosaico_dsl.p4proto import p4r
from mosaico_dsl.runtime.entities import load_updates
from mosaico_dsl.runtime.p4runtime import Endpoint, connect
from mosaico_dsl.runtime.schema import load_p4info


def mosaico(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    return compile_program(ROOT / "examples" / "two_services.mosaico").write(
        tmp_path_factory.mktemp("status") / "build")


@pytest.fixture
def deployed(build, reference_switch, state_path):
    s1 = reference_switch(device_id=1)
    args = ["--target", "p4runtime", "--address", f"s1={s1.address}",
            "--state", str(state_path)]
    mosaico("deploy", str(build), *args)
    return s1, args


class DataPlane:
    """Writes cells of the running program by P4Info name, as its data plane would."""

    def __init__(self, switch, build):
        self.target = switch.target
        self.schema = load_p4info(build / "s1" / "p4info.txtpb")
        self.ids = {**{c.name: c.id for c in self.schema.counters.values()},
                    **{r.name: r.id for r in self.schema.registers.values()},
                    **{t.name: t.id for t in self.schema.tables.values()},
                    **{a.name: a.id for a in self.schema.actions.values()}}

    def counter(self, name: str, index: int, packets: int) -> None:
        e = p4r.Entity()
        e.counter_entry.counter_id = self.ids[name]
        e.counter_entry.index.index = index
        e.counter_entry.data.packet_count = packets
        self.target.data_plane_write(e)

    def register(self, name: str, index: int, value: int) -> None:
        e = p4r.Entity()
        e.register_entry.register_id = self.ids[name]
        e.register_entry.index.index = index
        e.register_entry.data.bitstring = value.to_bytes(4, "big")
        self.target.data_plane_write(e)

    def hits(self, entry: p4r.TableEntry, packets: int) -> None:
        e = p4r.Entity()
        e.direct_counter_entry.table_entry.CopyFrom(entry)
        e.direct_counter_entry.table_entry.ClearField("action")
        e.direct_counter_entry.data.packet_count = packets
        self.target.data_plane_write(e)


def _classifier(build, plane: DataPlane) -> list[tuple[int | None, int, p4r.TableEntry]]:
    """(service id — None for a reply entry —, ingress port, entry) of every classifier
    entry the build installs."""
    out = []
    for u in load_updates(build / "s1" / "entries.json"):
        te = u.entity.table_entry
        if u.entity.HasField("table_entry") and \
                te.table_id == plane.ids["MosaicoIngress.classifier"]:
            classify = te.action.action.action_id == plane.ids["MosaicoIngress.classify"]
            service = int.from_bytes(te.action.action.params[0].value, "big") \
                if classify else None
            port = int.from_bytes(te.match[0].exact.value, "big")
            out.append((service, port, te))
    return out


def test_status_adds_up_exactly_what_the_map_names(build, deployed):
    s1, args = deployed
    plane = DataPlane(s1, build)
    ids = {s["service"]: s["id"] for s in
           json.loads((build / "s1" / "metrics.json").read_text())["services"]}
    expected = {"web_ll": 0, "gaming": 0, "replies": 0}
    for n, (service, port, entry) in enumerate(_classifier(build, plane), start=1):
        value = 1000 * n
        plane.hits(entry, value)
        name = "replies" if service is None else \
            next(k for k, v in ids.items() if v == service)
        if port != 5:  # port 5 is the return from nfvi1: the same packets again
            expected[name] += value
    assert expected["web_ll"] > 0 and expected["gaming"] > 0 and expected["replies"] > 0
    # Route hits of the Forwards: packets already counted at the classifier.
    for u in load_updates(build / "s1" / "entries.json"):
        te = u.entity.table_entry
        if u.entity.HasField("table_entry") and \
                plane.schema.tables[te.table_id].name.endswith("_forward_routes"):
            plane.hits(te, 777_777)
    plane.counter("MosaicoIngress.unclassified_packets", 0, 5)
    plane.counter("MosaicoIngress.web_ll_0_blocklist_dropped", 0, 40)
    plane.counter("MosaicoIngress.gaming_0_ratelimit_dropped", 0, 300)
    # The DualQ manages port 0 (towards web): index port*2 + class (1 = L4S).
    plane.counter("MosaicoEgress.dualq1_packets", 0, 900)
    plane.counter("MosaicoEgress.dualq1_packets", 1, 600)
    plane.counter("MosaicoEgress.dualq1_marks", 1, 17)
    plane.counter("MosaicoEgress.dualq1_marks", 0, 2)
    plane.counter("MosaicoEgress.dualq1_drops", 0, 3)
    plane.register("MosaicoEgress.dualq1_qdelay_c", 0, 1250)  # µs
    plane.register("MosaicoEgress.dualq1_qdelay_l", 0, 300)
    # Cells of ports the DualQ does not manage are not anyone's metric.
    plane.counter("MosaicoEgress.dualq1_marks", 7, 10_000)
    plane.counter("MosaicoEgress.dualq1_drops", 6, 10_000)
    plane.register("MosaicoEgress.dualq1_qdelay_c", 3, 99_999)

    rows = json.loads(mosaico("status", str(build), *args, "--format", "json").output)
    by = {r["service"]: r for r in rows if r["node"] == "s1"}
    assert set(by) == {"*", "web_ll", "gaming"}
    assert all(r["state"] == "running" and r["target"] == "p4runtime" for r in by.values())
    web, gaming, node = by["web_ll"], by["gaming"], by["*"]
    assert (web["packets"], web["drops"], web["ce_marks"], web["queue_delay_ns"]) == \
        (expected["web_ll"], 40 + 3, 17 + 2, 1_250_000)
    assert (gaming["packets"], gaming["drops"], gaming["ce_marks"],
            gaming["queue_delay_ns"]) == (expected["gaming"], 300, None, None)
    # The switch's packets: every service's, the replies it returned, the unclassified.
    assert (node["packets"], node["drops"], node["ce_marks"], node["queue_delay_ns"]) == \
        (sum(expected.values()) + 5, 5 + 40 + 300 + 3, 19, 1_250_000)

    # Without the build directory, the map recorded at deploy gives the same numbers.
    again = json.loads(mosaico("status", *args, "--format", "json").output)
    assert again == rows
    text = mosaico("status", *args).output
    assert "1.25ms" in text and str(expected["gaming"]) in text


def test_a_pipeline_that_lacks_the_mapped_objects_is_not_read(build, deployed, lab_schema):
    """Another program pushed out of band: its ids mean other things; nothing is guessed."""
    s1, args = deployed

    async def push():
        async with await connect(Endpoint("ops", s1.address, 1, election_id=50)) as c:
            await c.set_pipeline(lab_schema.p4info, b"", 12345)
    asyncio.run(push())
    rows = json.loads(mosaico("status", str(build), *args, "--format", "json").output)
    node = next(r for r in rows if r["service"] == "*")
    assert node["state"] == "pipeline differs"
    assert node["packets"] is None and node["drops"] is None
    assert "lacks what metrics.json names" in node["detail"]


def test_a_build_without_a_metrics_map_reads_no_counters(tmp_path, reference_switch,
                                                         state_path):
    """The hand-written fixture P4Info has counters named like drops and marks: without a
    map they are not read — names are not metrics."""
    from runtime_helpers import Ids, lab_entries

    s1 = reference_switch(device_id=1)
    s2 = reference_switch(device_id=2)
    b = make_build(tmp_path / "b", {"s1": lab_entries(1), "s2": lab_entries(1)},
                   p4info=DATA / "lab.p4info.txtpb")
    args = ["--target", "p4runtime", "--address", f"s1={s1.address}",
            "--address", f"s2={s2.address}", "--state", str(state_path)]
    mosaico("deploy", str(b), *args)
    e = p4r.Entity()
    e.counter_entry.counter_id, e.counter_entry.index.index = Ids.DROPS, 2
    e.counter_entry.data.packet_count = 3
    s1.target.data_plane_write(e)
    rows = json.loads(mosaico("status", str(b), *args, "--format", "json").output)
    row = next(r for r in rows if r["node"] == "s1")
    assert row["state"] == "running"
    assert (row["packets"], row["drops"], row["ce_marks"], row["queue_delay_ns"]) == \
        (None, None, None, None)
    assert "no metrics map" in row["detail"]
    assert [r["service"] for r in rows if r["node"] == "s1"] == ["*"]


def test_the_data_plane_writes_only_what_it_may(build, deployed):
    s1, _ = deployed
    e = p4r.Entity()
    e.counter_entry.counter_id, e.counter_entry.index.index = 0x12ffffff, 0
    with pytest.raises(ValueError, match="INVALID_ARGUMENT"):
        s1.target.data_plane_write(e)
    t = p4r.Entity()
    json_format.ParseDict({"tableId": 1}, t.table_entry)
    with pytest.raises(ValueError, match="counters and registers"):
        s1.target.data_plane_write(t)

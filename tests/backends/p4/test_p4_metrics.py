"""``metrics.json``: every source it names is an object the program declares and counts in.

The map is what ``mosaico status`` reads instead of guessing from names, so it must agree
with the P4Info (ids, names, sizes), with ``entries.json`` (the entries whose direct
counters it names) and with the program text (the objects the templates really count in).
"""

from __future__ import annotations

import json
import re

import pytest
from google.protobuf import json_format, text_format
from p4_support import EXAMPLES, compiled, switch_dirs

from mosaico_dsl.backends.p4.metrics import METRICS, SwitchMetrics
from mosaico_dsl.p4proto import p4i, p4r


def _switches():
    for example in EXAMPLES:
        for switch, files in sorted(switch_dirs(compiled(example)).items()):
            yield pytest.param(switch, files, id=f"{example.stem}-{switch}")


def _key(table_id: int, doc: dict) -> bytes:
    te = p4r.TableEntry()
    json_format.ParseDict({"tableId": table_id, **doc}, te)
    te.ClearField("action")
    return te.SerializeToString(deterministic=True)


def _entries(files) -> list[p4r.TableEntry]:
    out = []
    for item in json.loads(files["entries.json"]):
        u = json_format.ParseDict(item, p4r.Update())
        if u.entity.HasField("table_entry"):
            out.append(u.entity.table_entry)
    return out


def _metrics(files) -> SwitchMetrics:
    doc = json.loads(files["metrics.json"])
    m = SwitchMetrics.from_json(doc)
    assert m.to_json() == doc, "metrics.json does not round-trip"
    return m


@pytest.mark.parametrize("switch,files", list(_switches()))
def test_every_source_is_declared_and_counted(switch, files):
    m = _metrics(files)
    assert m.switch == switch
    info = text_format.Parse(files["p4info.txtpb"].decode(), p4i.P4Info())
    kinds = {"counter": {c.preamble.id: c for c in info.counters},
             "register": {r.preamble.id: r for r in info.registers},
             "direct_counter": {d.preamble.id: d for d in info.direct_counters}}
    entries = {}
    for te in _entries(files):
        key = p4r.TableEntry()
        key.CopyFrom(te)
        key.ClearField("action")
        entries[key.SerializeToString(deterministic=True)] = te
    program = files[f"{switch}.p4"].decode()
    sources = m.node.sources + tuple(x for s in m.services for x in s.scope.sources)
    sources += tuple(x for s in m.services for i in s.instances for x in i.scope.sources)
    assert sources
    for src in sources:
        obj = kinds[src.object].get(src.id)
        assert obj is not None and obj.preamble.name == src.name, src
        short = src.name.split(".", 1)[1]
        # The template printed this very object: same id, same name.
        assert f'@id(0x{src.id:08x}) @name("{short}")' in program, src
        if src.object == "direct_counter":
            assert obj.direct_table_id == src.table_id
            assert _key(src.table_id, json.loads(src.entry)) in entries, src
        else:
            assert 0 <= src.index < obj.size, src
            # ... and counts in (or reads) it somewhere.
            assert re.search(rf"\b{short}\.(count|read)\(", program), src
        if src.object == "register":
            assert src.unit == "us"


@pytest.mark.parametrize("switch,files", list(_switches()))
def test_scopes_add_up(switch, files):
    """A service's drops, marks and delays are its instances'; the switch's are every
    service's plus the unclassified packets (and for packets, the replies it returned);
    packets come from the classifier."""
    m = _metrics(files)
    for s in m.services:
        for metric in ("drops", "ce_marks", "queue_delay"):
            mine = {x for i in s.instances for x in getattr(i.scope, metric)}
            assert set(getattr(s.scope, metric)) == mine, (s.service, metric)
        assert s.scope.packets, f"{s.service} has no packet source"
        assert all(x.name.endswith(".classifier_hits") for x in s.scope.packets)
    for metric in METRICS:
        union = {x for s in m.services for x in getattr(s.scope, metric)}
        node = set(getattr(m.node, metric))
        assert union <= node, metric
        extra = node - union
        replies = {x for x in extra if x.name == "MosaicoIngress.classifier_hits"}
        assert {x.name for x in extra - replies} <= {"MosaicoIngress.unclassified_packets"}
        assert all(x.comment.startswith("reply of ") for x in replies), replies
        assert not replies or metric == "packets", (metric, replies)
    assert len(set(m.node.sources)) == len(m.node.sources)


def _files(stem: str):
    example = next(e for e in EXAMPLES if e.stem == stem)
    return switch_dirs(compiled(example))["s1"]


def _port_of(doc: dict) -> int:
    port = next(f for f in doc["match"] if f["fieldId"] == 1)  # ingress_port, exact
    return int.from_bytes(json_format.ParseDict(port, p4r.FieldMatch()).exact.value, "big")


def test_a_detour_is_counted_once():
    """two_services: `gaming` leaves s1 on port 5 for the SynGuard on nfvi1 and comes back
    by port 5; only its arrivals from alice (1) and bob (2) count its packets, while the
    classifier has entries for the return too."""
    files = _files("two_services")
    m = _metrics(files)
    gaming = m.service("gaming")
    assert sorted({_port_of(json.loads(x.entry)) for x in gaming.scope.packets}) == [1, 2]
    returns = [te for te in _entries(files) if te.match and te.match[0].field_id == 1
               and int.from_bytes(te.match[0].exact.value, "big") == 5]
    assert returns, "the classifier has entries for the return from nfvi1"
    web = m.service("web_ll")
    assert sorted({_port_of(json.loads(x.entry)) for x in web.scope.packets}) == [1, 2, 3]


def test_dualq_per_port_and_class():
    """The DualQ of web_ll manages port 0 (towards `web`): packets, marks and drops at
    index port*2 + class, delays at index port — and nothing of the other ports."""
    m = _metrics(_files("two_services"))
    (dualq,) = [i for i in m.service("web_ll").instances if i.function == "std.l4s.DualQ"]
    s = dualq.scope
    assert [(x.name, x.index, x.port, x.traffic_class) for x in s.ce_marks] == [
        ("MosaicoEgress.dualq1_marks", 0, 0, "classic"),
        ("MosaicoEgress.dualq1_marks", 1, 0, "l4s")]
    assert [(x.name, x.index) for x in s.packets] == [("MosaicoEgress.dualq1_packets", 0),
                                                      ("MosaicoEgress.dualq1_packets", 1)]
    assert [(x.name, x.index) for x in s.drops] == [("MosaicoEgress.dualq1_drops", 0),
                                                    ("MosaicoEgress.dualq1_drops", 1)]
    assert [(x.name, x.index, x.traffic_class) for x in s.queue_delay] == [
        ("MosaicoEgress.dualq1_qdelay_c", 0, "classic"),
        ("MosaicoEgress.dualq1_qdelay_l", 0, "l4s")]
    assert m.service("gaming").scope.ce_marks == ()

"""The agents' hand-over: task descriptions and record files survive the trip."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from mosaico_dsl.experiment.records import Table, read_records, write_records
from mosaico_dsl.experiment.tasks import SINK, AgentTask, FlowTask


@given(st.lists(st.tuples(st.integers(-2**63, 2**63 - 1), st.integers(0, 2**40)),
                max_size=200))
def test_tables_round_trip(tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("rec") / "agent.rec"
    a, b = Table("t_ns", "seq"), Table("x")
    for r in rows:
        a.add(*r)
    b.add(7)
    write_records(path, {"sent": a, "other": b}, {"sent": len(rows), "alpha": 0.5})
    meta, tables = read_records(path)
    assert meta == {"sent": len(rows), "alpha": 0.5}
    assert tables["sent"].dtype.names == ("t_ns", "seq")
    assert [tuple(map(int, r)) for r in tables["sent"]] == rows
    assert tables["other"]["x"].tolist() == [7]
    assert not list(path.parent.glob("*.tmp")), "written under a temporary name, renamed"


def test_an_empty_table_reads_as_an_empty_array(tmp_path):
    path = tmp_path / "a.rec"
    write_records(path, {"rx": Table("t_ns", "src")}, {})
    _, tables = read_records(path)
    assert len(tables["rx"]) == 0 and isinstance(tables["rx"], np.ndarray)


def test_task_round_trips_through_json():
    flow = FlowTask("prague#1", 0, "prague", "10.0.1.1", "10.0.2.1", 6, 10000, 80, 1, 1500,
                    0, 10**10, 20000, pacing=True, spoof=None)
    task = AgentTask(SINK, "ns-server", "10.0.2.1", "eth0", 11 * 10**9, (flow,), "/tmp/x.rec")
    assert AgentTask.from_json(task.to_json()) == task

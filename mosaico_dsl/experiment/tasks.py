"""What each agent is told to do: the flows it sends or receives, as plain values.

The experiment builds these from the traffic's bindings and the testbed; an agent reads
them back from JSON. Times are nanoseconds from the experiment's time zero (which the
agents learn only when every one of them is ready). Standard library only: the agents
import this module.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

__all__ = ["FlowTask", "AgentTask", "SINK", "SOURCE", "ROLES"]

SINK, SOURCE = "sink", "source"
ROLES = (SINK, SOURCE)


@dataclass(frozen=True, slots=True)
class FlowTask:
    """One flow, as its sender or its receiver needs it."""

    name: str
    index: int
    kind: str  # prague | reno | cubic | cbr | onoff | flood | syn
    src_ip: str
    dst_ip: str
    proto: int  # 6 or 17
    sport: int
    dport: int
    ecn: int
    size: int  # bytes on the wire (IPv4 header included)
    start_ns: int
    stop_ns: int
    max_packets: int  # the sender stops after this many, whatever the time
    pacing: bool = False
    interval_ns: int = 0  # open-loop kinds
    burst: int = 1
    on_ns: int = 0  # onoff: mean on period
    off_ns: int = 0
    spoof: str | None = None  # attacks: source prefix
    congestion: str = ""  # kernel TCP: the TCP_CONGESTION name
    seed: int = 1


@dataclass(frozen=True, slots=True)
class AgentTask:
    """Everything one agent process does, in one namespace."""

    role: str  # sink: receive, capture and answer; source: send
    namespace: str
    address: str  # the endpoint's own address
    interface: str  # where to capture (the endpoint's device towards the network)
    end_ns: int  # when to stop everything (after the last flow's stop, plus a linger)
    flows: tuple[FlowTask, ...] = field(default_factory=tuple)
    output: str = ""  # the records file to write

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AgentTask:
        doc = json.loads(text)
        names = {f.name for f in fields(FlowTask)}
        flows = tuple(FlowTask(**{k: v for k, v in f.items() if k in names})
                      for f in doc.pop("flows", ()))
        return cls(flows=flows, **doc)

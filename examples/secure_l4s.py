"""The flagship scenario built with the embedded Python API.

It is the same program as ``secure_l4s.mosaico`` (a test proves both give equal IR).
Run it to compile into ``build/``, or import ``program`` from it:

    python examples/secure_l4s.py build/
"""

import sys

import mosaico_dsl as mo
from mosaico_dsl.std import fwd, l4s
from mosaico_dsl.std import security as sec

ATTACKERS = mo.Const("ATTACKERS", ["203.0.113.0/24", "198.51.100.7/32"])

lab = mo.Topology("lab")
s1 = lab.switch("s1", target="bmv2", ports=5, priority_queues=2, queue_rate="12Mbps",
                p4runtime="127.0.0.1:9559", device_id=1)
nfvi1 = lab.host("nfvi1", platform="openstack", vcpus=16, ram="32GiB", trusted=True,
                 cloud="mosaico")
l4s_client = lab.endpoint("l4s_client", ip="10.0.1.1", trusted=True)
classic_client = lab.endpoint("classic_client", ip="10.0.1.2", trusted=True)
attacker = lab.endpoint("attacker", ip="203.0.113.9")
server = lab.endpoint("server", ip="10.0.2.1")
lab.link(l4s_client, s1.port(1), bandwidth="1Gbps", delay="1ms")
lab.link(classic_client, s1.port(2), bandwidth="1Gbps", delay="1ms")
lab.link(attacker, s1.port(3), bandwidth="1Gbps", delay="1ms")
lab.link(s1.port(4), nfvi1, bandwidth="10Gbps", delay="50us")
lab.link(s1.port(0), server, bandwidth="12Mbps", delay="5ms")

web_ll = mo.Service(
    "web_ll", on=lab,
    match=(mo.f.ipv4.dst == server) & mo.f.tcp.dport.isin({80, 443}),
    latency="20ms",
    secure=True,
    chain=sec.Blocklist(prefixes=ATTACKERS)
    >> sec.RateLimit(rate="20kpps", burst=200)
    >> l4s.DualQ(classic_target="15ms", coupling=2)
    >> fwd.Forward(to=server),
)

program = mo.Program(ATTACKERS, lab, web_ll)

if __name__ == "__main__":
    try:
        result = mo.compile(program)
    except mo.CompileError as e:
        sys.exit(str(e))
    out = result.write(sys.argv[1] if len(sys.argv) > 1 else "build")
    print(f"wrote {len(result.artifacts)} files to {out}/")

"""Front-end throughput: parse, and parse + check, of a generated 1,000-service program.

Prints lines/s for each and the check/parse time ratio measured in the same run. The aim
(issue 2) is the whole program parsed and checked in under 2 s on a 2-core machine.

    python benchmarks/bench_frontend.py [--services 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from mosaico_dsl.check import check_module
from mosaico_dsl.lang.parser import parse, parser_backend


def generate(services: int, switches: int = 20) -> str:
    """A topology of switches in a line, a client and a server per switch, and services."""
    lines = ["import std.l4s", "import std.security as sec", "from std.fwd import Forward", "",
             "const BAD = [203.0.113.0/24, 198.51.100.0/24]", "", "topology big {"]
    for s in range(switches):
        lines.append(f"  switch s{s} : bmv2 {{ ports: 8, queue_rate: 1Gbps }}")
        lines.append(f"  endpoint c{s} {{ ip: 10.{s}.1.1, trusted: true }}")
        lines.append(f"  endpoint v{s} {{ ip: 10.{s}.2.1 }}")
    for s in range(switches):
        lines.append(f"  link c{s} -- s{s}.1 {{ bandwidth: 1Gbps, delay: 100us }}")
        lines.append(f"  link s{s}.2 -- v{s} {{ bandwidth: 1Gbps, delay: 100us }}")
        if s + 1 < switches:
            lines.append(f"  link s{s}.3 -- s{s + 1}.4 {{ bandwidth: 10Gbps, delay: 50us }}")
    lines.append("}")
    for i in range(services):
        s = i % switches
        lines += [
            "",
            f"service svc{i} on big {{",
            f"  match ipv4.dst == v{s} and tcp.dport == {1024 + i}",
            f"  from c{s}",
            "  require latency <= 20ms",
            "  require secure",
            "  chain {",
            "    sec.Blocklist(prefixes: BAD)",
            f"    -> sec.RateLimit(rate: {10 + i % 50}kpps, burst: 100)",
            "    -> std.l4s.DualQ(classic_target: 15ms)",
            f"    -> Forward(to: v{s})",
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    text = generate(args.services)
    n_lines = text.count("\n")
    parse(text)  # warm up: builds the LALR tables once per process

    def parsed():
        r = parse(text, "bench.mosaico")
        assert r.ok, r.diagnostics[:3]
        return r.module

    module = parsed()

    def checked():
        r = check_module(module)
        assert r.ok, r.diagnostics[:3]

    t_parse = best_of(args.repeat, parsed)
    t_check = best_of(args.repeat, checked)
    total = t_parse + t_check
    print(f"program: {args.services} services, {n_lines} lines; parser: {parser_backend()}")
    print(f"parse          {t_parse * 1e3:8.1f} ms  {n_lines / t_parse:10.0f} lines/s")
    print(f"parse + check  {total * 1e3:8.1f} ms  {n_lines / total:10.0f} lines/s")
    print(f"ratio check/parse: {t_check / t_parse:.2f}")
    print(f"aim < 2 s for the whole program: {'met' if total < 2 else 'NOT met'} ({total:.2f} s)")


if __name__ == "__main__":
    main()

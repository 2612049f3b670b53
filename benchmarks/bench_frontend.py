"""Front-end throughput: parse, and parse + check, of generated programs.

Two programs: 1,000 services on a line of 20 switches (13,000 lines), and 50,000 lines
of constants (each using the one before it, so every scope lookup is exercised). For each
it prints lines/s of parsing and of parsing + checking, the check/parse ratio, and the
aims of issue 17 (under 0.5 s and under 3 s). For the constants it also prints the time
per line at 5,000 and at 50,000 lines: a linear front end keeps the two equal (a quadratic
one, as before issue 17, spent ten times longer per line on the larger program).

    python benchmarks/bench_frontend.py [--services 1000] [--constants 50000] [--repeat 3]
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


def constants(n: int) -> str:
    """``const C0 = 1`` then ``const Ck = Ck-1 + 1``: each constant names the previous one."""
    return "const C0 = 1\n" + "".join(f"const C{k} = C{k - 1} + 1\n" for k in range(1, n))


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(text: str, repeat: int) -> tuple[int, float, float]:
    """(lines, parse seconds, check seconds), best of ``repeat``."""
    def parsed():
        r = parse(text, "bench.mosaico")
        assert r.ok, r.diagnostics[:3]
        return r.module

    module = parsed()

    def checked():
        r = check_module(module)
        assert r.ok, r.diagnostics[:3]

    return text.count("\n"), best_of(repeat, parsed), best_of(repeat, checked)


def report(name: str, lines: int, t_parse: float, t_check: float, aim: float) -> None:
    total = t_parse + t_check
    print(f"{name}: {lines} lines")
    print(f"  parse          {t_parse * 1e3:8.1f} ms  {lines / t_parse:10.0f} lines/s")
    print(f"  parse + check  {total * 1e3:8.1f} ms  {lines / total:10.0f} lines/s")
    print(f"  ratio check/parse: {t_check / t_parse:.2f}")
    print(f"  aim < {aim:g} s: {'met' if total < aim else 'NOT met'} ({total:.2f} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--constants", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    parse(generate(10))  # warm up: loads the LALR tables once per process
    print(f"parser: {parser_backend()}")
    report(f"{args.services} services", *measure(generate(args.services), args.repeat), 0.5)
    small = measure(constants(args.constants // 10), args.repeat)
    large = measure(constants(args.constants), args.repeat)
    report("constants", *large, 3.0)
    per_line = [(p + c) / n * 1e6 for n, p, c in (small, large)]
    print(f"  µs per line at {small[0]} and {large[0]} lines: {per_line[0]:.1f} and "
          f"{per_line[1]:.1f} (ratio {per_line[1] / per_line[0]:.2f}: 1 is linear)")


if __name__ == "__main__":
    main()

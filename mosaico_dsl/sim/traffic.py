"""The ``--traffic`` specification: which flows the simulation runs, parsed into values.

A specification is a comma-separated list of flow groups (grammar in ``traffic.lark``)::

    prague:1,cubic:1
    prague:2[pacing=off]@5s-30s, cbr[rate=2Mbps,ecn=ect1], syn[rate=20kpps]@10s-20s

``kind[:count][[option=value,...]][@start[-stop]]`` — ``count`` identical flows of ``kind``,
configured by the options, active from ``start`` (default 0) to ``stop`` (default: the end).
Every mistake is a diagnostic pointing into the text; all of them are reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cache
from ipaddress import IPv4Network
from pathlib import Path

from lark import (
    Lark,
    Token,
    Tree,
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
)

from ..diagnostics import CompileError, Diagnostic, Span, error
from ..units import Bandwidth, Dim, Rate, Size, Time, parse_quantity
from .packet import IP_TCP_HEADER, IP_UDP_HEADER

__all__ = ["TCP_KINDS", "UDP_KINDS", "ATTACK_KINDS", "KINDS", "FlowSpec", "parse_traffic",
           "format_traffic", "check_flows", "TRAFFIC_FILE"]

TCP_KINDS = ("prague", "reno", "cubic")
UDP_KINDS = ("cbr", "onoff")
ATTACK_KINDS = ("flood", "syn")
KINDS = (*TCP_KINDS, *UDP_KINDS, *ATTACK_KINDS)
TRAFFIC_FILE = "--traffic"  # the pseudo file name diagnostics about the spec point into

MAX_PACKET = 9000  # bytes: a jumbo frame
IP_TCP_BARE = 40  # IPv4 + TCP without options: a flood's or a SYN's headers

_ECN = {"off": 0, "notect": 0, "not-ect": 0, "ect1": 1, "ect0": 2, "ce": 3, "0": 0, "1": 1,
        "2": 2, "3": 3}
_BOOL = {"on": True, "off": False, "true": True, "false": False, "1": True, "0": False,
         "yes": True, "no": False}

# Which options each kind takes (option name -> FlowSpec field it sets).
_COMMON = ("from", "svc", "dport")
_OPTIONS: dict[str, tuple[str, ...]] = {
    "prague": (*_COMMON, "pacing", "bytes", "size"),
    "reno": (*_COMMON, "pacing", "bytes", "size", "ecn"),
    "cubic": (*_COMMON, "pacing", "bytes", "size", "ecn"),
    "cbr": (*_COMMON, "rate", "size", "ecn", "burst"),
    "onoff": (*_COMMON, "rate", "size", "ecn", "on", "off"),
    "flood": (*_COMMON, "rate", "size", "spoof", "proto"),
    "syn": (*_COMMON, "rate", "spoof"),
}
_HELP = {
    "from": "an endpoint name", "svc": "a service name", "dport": "a port 0..65535",
    "pacing": "on or off", "bytes": "a size such as 10MB (the transfer length)",
    "size": "a packet size such as 1500B", "ecn": "off, ect0, ect1 or ce",
    "rate": "a bandwidth such as 2Mbps or a packet rate such as 10kpps",
    "burst": "a packet count such as 10", "on": "a time such as 500ms",
    "off": "a time such as 500ms", "spoof": "a prefix such as 203.0.113.0/24",
    "proto": "tcp or udp",
}


@dataclass(frozen=True, slots=True)
class FlowSpec:
    """One flow group of the specification; ``None`` means the kind's default."""

    kind: str
    count: int = 1
    start: Time = Time(0)
    stop: Time | None = None
    source: str | None = None  # from=
    service: str | None = None  # svc=
    dport: int | None = None
    pacing: bool | None = None
    transfer: Size | None = None  # bytes=: a finite transfer (TCP)
    size: Size | None = None  # packet size on the wire
    ecn: int | None = None  # codepoint 0..3
    rate_bps: Bandwidth | None = None
    rate_pps: Rate | None = None
    burst: int | None = None
    on: Time | None = None
    off: Time | None = None
    spoof: IPv4Network | None = None
    proto: str | None = None
    span: Span | None = None

    @property
    def is_tcp(self) -> bool:
        return self.kind in TCP_KINDS

    @property
    def is_attack(self) -> bool:
        return self.kind in ATTACK_KINDS

    def __str__(self) -> str:
        return format_traffic((self,))


@cache
def _parser() -> Lark:
    grammar = (Path(__file__).with_name("traffic.lark")).read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, start=["start", "flow"])


def _span(tok_or_meta, text: str) -> Span:
    line = getattr(tok_or_meta, "line", 1) or 1
    col = getattr(tok_or_meta, "column", 1) or 1
    end = getattr(tok_or_meta, "end_column", None)
    return Span(TRAFFIC_FILE, line, col, line, end)


_TOKEN_NAMES = {"COMMA": "`,`", "COLON": "`:`", "LSQB": "`[`", "RSQB": "`]`", "AT": "`@`",
                "EQUAL": "`=`", "MINUS": "`-`", "KIND": "a traffic kind", "NAME": "an option",
                "INT": "a count", "QUANTITY": "a time such as 10s", "VALUE": "a value",
                "$END": "the end"}


def _syntax_error(e: UnexpectedInput, text: str) -> Diagnostic:
    line, col = max(1, e.line or 1), max(1, e.column or 1)
    span = Span(TRAFFIC_FILE, line, col, line, col + 1)
    expected = sorted(getattr(e, "expected", None) or getattr(e, "allowed", None) or ())
    names = sorted({_TOKEN_NAMES.get(t, t) for t in expected})
    hint = f"expected {', '.join(names)}" if names else None
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        msg = "the traffic specification ends too early"
    elif isinstance(e, UnexpectedCharacters):
        msg = f"unexpected character {text.splitlines()[line - 1][col - 1]!r} in the traffic " \
              "specification"
    else:
        msg = f"unexpected `{e.token}` in the traffic specification"  # type: ignore[attr-defined]
    return error("E1101", msg, span, hint or "write flows as kind[:count][[opt=value]][@start-stop]"
                 ", e.g. prague:1,cubic:1")


def _quantity(text: str, dims: tuple[Dim, ...]):
    try:
        q = parse_quantity(text)
    except ValueError:
        return None
    return q if q.dim in dims else None


def _value(name: str, raw: str, kind: str, spec: dict, span: Span) -> Diagnostic | None:
    """Convert one option into its FlowSpec field; a diagnostic if the value is wrong."""
    low = raw.lower()

    def bad(what: str | None = None) -> Diagnostic:
        return error("E1104", f"invalid value {raw!r} for option `{name}` of {kind}", span,
                     f"`{name}` takes {what or _HELP[name]}")

    match name:
        case "from":
            spec["source"] = raw
        case "svc":
            spec["service"] = raw
        case "dport":
            if not raw.isdigit() or int(raw) > 65535:
                return bad()
            spec["dport"] = int(raw)
        case "pacing":
            if low not in _BOOL:
                return bad()
            spec["pacing"] = _BOOL[low]
        case "bytes" | "size":
            q = _quantity(raw, (Dim.SIZE,))
            if q is None or q.bytes <= 0:
                return bad()
            if name == "size" and not q.bytes <= MAX_PACKET:
                return bad(f"a packet size of at most {MAX_PACKET}B (a jumbo frame)")
            spec["transfer" if name == "bytes" else "size"] = q
        case "ecn":
            if low == "on" and kind in ("reno", "cubic"):
                spec["ecn"] = 2
            elif low in _ECN:
                spec["ecn"] = _ECN[low]
            else:
                return bad()
        case "rate":
            q = _quantity(raw, (Dim.BANDWIDTH, Dim.RATE))
            if q is None or q.base <= 0:
                return bad()
            spec["rate_bps" if q.dim is Dim.BANDWIDTH else "rate_pps"] = q
        case "burst":
            if not raw.isdigit() or not 1 <= int(raw) <= 100000:
                return bad("a packet count between 1 and 100000")
            spec["burst"] = int(raw)
        case "on" | "off":
            q = _quantity(raw, (Dim.TIME,))
            if q is None or q.ns <= 0:
                return bad()
            spec[name] = q
        case "spoof":
            try:
                spec["spoof"] = IPv4Network(raw, strict=False)
            except ValueError:
                return bad()
        case "proto":
            if low not in ("tcp", "udp"):
                return bad()
            spec["proto"] = low
    return None


def parse_traffic(text: str) -> tuple[FlowSpec, ...]:
    """Parse a specification; raises :class:`CompileError` carrying every mistake.

    Each comma-separated flow group is parsed on its own, so one malformed group does not
    hide the mistakes in the others.
    """
    sources = {TRAFFIC_FILE: text}
    if not text.strip():
        raise CompileError([error("E1107", "the traffic specification is empty", None,
                                  "give at least one flow, e.g. prague:1,cubic:1")], sources)
    diags: list[Diagnostic] = []
    flows: list[FlowSpec] = []
    for start, piece in _split(text):
        if not piece.strip():
            col = start + 1
            diags.append(error("E1101", "empty flow in the traffic specification",
                               Span(TRAFFIC_FILE, 1, col, 1, col + 1),
                               "remove the extra `,` or write a flow such as cubic:1"))
            continue
        try:
            tree = _parser().parse(" " * start + piece, start="flow")
        except UnexpectedInput as e:
            diags.append(_syntax_error(e, text))
            continue
        flow = _flow(tree, text, diags)
        if flow is not None:
            flows.append(flow)
    if diags:
        raise CompileError(diags, sources)
    return tuple(flows)


def _split(text: str) -> list[tuple[int, str]]:
    """Split at commas outside ``[...]``: (offset, piece) pairs."""
    out, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            out.append((start, text[start:i]))
            start = i + 1
    out.append((start, text[start:]))
    return out


def _flow(node: Tree, text: str, diags: list[Diagnostic]) -> FlowSpec | None:
    """One ``flow`` parse tree → a FlowSpec, or None (with diagnostics) if it is wrong."""
    kind_tok: Token = node.children[0]
    kind = str(kind_tok).lower()
    span = _span(node.meta, text)
    ok = True
    if kind not in KINDS:
        import difflib
        near = difflib.get_close_matches(kind, KINDS, 1)
        diags.append(error("E1102", f"unknown traffic kind `{kind_tok}`", _span(kind_tok, text),
                           f"did you mean `{near[0]}`?" if near else
                           f"kinds are {', '.join(KINDS)}"))
        return None
    spec: dict = {"kind": kind, "span": span}
    seen: set[str] = set()
    size_span: Span | None = None
    for part in node.children[1:]:
        if part is None:
            continue
        if part.data == "count":
            tok = part.children[0]
            if not 1 <= int(tok) <= 10000:
                diags.append(error("E1104", f"flow count {tok} is out of range",
                                   _span(tok, text), "give 1 to 10000 flows"))
                ok = False
            spec["count"] = int(tok)
        elif part.data == "options":
            for opt in part.children:
                if opt is None:
                    continue
                name_tok, value_tok = opt.children
                name = str(name_tok).lower()
                ospan = _span(opt.meta, text)
                if name not in _OPTIONS[kind]:
                    diags.append(error("E1103", f"{kind} has no option `{name_tok}`",
                                       _span(name_tok, text),
                                       f"{kind} takes {', '.join(_OPTIONS[kind])}"))
                    ok = False
                    continue
                if name in seen:
                    diags.append(error("E1103", f"option `{name}` given twice", ospan))
                    ok = False
                    continue
                seen.add(name)
                value_span = _span(value_tok, text)
                d = _value(name, str(value_tok), kind, spec, value_span)
                if d is not None:
                    diags.append(d)
                    ok = False
                elif name == "size":
                    size_span = value_span
        elif part.data == "window":
            times = []
            for tok in part.children:
                if tok is None:
                    continue
                q = _quantity(str(tok), (Dim.TIME,))
                if q is None:
                    diags.append(error("E1106", f"{str(tok)!r} is not a time",
                                       _span(tok, text), "write a time such as 10s or 500ms"))
                    ok = False
                times.append(q)
            if ok and times:
                spec["start"] = times[0]
                if len(times) > 1:
                    spec["stop"] = times[1]
                    if times[1] <= times[0]:
                        diags.append(error("E1106", f"flow stops ({times[1]}) before it starts "
                                           f"({times[0]})", _span(part.meta, text),
                                           "write @start-stop with start < stop"))
                        ok = False
    if ok and size_span is not None:
        d = _too_small(spec, size_span)
        if d is not None:
            diags.append(d)
            ok = False
    return FlowSpec(**spec) if ok else None


def check_flows(flows: tuple[FlowSpec, ...]) -> tuple[FlowSpec, ...]:
    """FlowSpec values built in Python get the checks the parser gives text: a packet too
    small for its headers is refused (raises :class:`CompileError`)."""
    diags = [d for f in flows if f.size is not None
             for d in [_too_small({"kind": f.kind, "size": f.size, "proto": f.proto}, f.span)]
             if d is not None]
    if diags:
        raise CompileError(diags)
    return tuple(flows)


def _too_small(spec: dict, span: Span | None) -> Diagnostic | None:
    """A packet must hold its headers, and a TCP or UDP data packet one byte of payload:
    anything smaller cannot be sent (and would deliver a negative goodput)."""
    kind, size = spec["kind"], spec["size"].bytes
    if kind in TCP_KINDS:
        least, what = IP_TCP_HEADER + 1, (f"IPv4 + TCP with timestamps take {IP_TCP_HEADER} B, "
                                          "and a segment carries at least 1 B of data")
    elif kind in UDP_KINDS:
        least, what = IP_UDP_HEADER + 1, (f"IPv4 + UDP take {IP_UDP_HEADER} B, and a datagram "
                                          "carries at least 1 B of data")
    elif spec.get("proto") == "udp":
        least, what = IP_UDP_HEADER, f"IPv4 + UDP take {IP_UDP_HEADER} B"
    else:
        least, what = IP_TCP_BARE, f"IPv4 + TCP take {IP_TCP_BARE} B"
    if size >= least:
        return None
    return error("E1104", f"a {size} B packet cannot be sent by {kind}: {what}", span,
                 f"give size={least}B or more (1500B fills an Ethernet MTU)")


def format_traffic(flows: tuple[FlowSpec, ...]) -> str:
    """The canonical text of a specification (``parse_traffic`` of it gives equal flows)."""
    out = []
    for f in flows:
        opts = []
        for fld in fields(FlowSpec):
            name = fld.name
            if name in ("kind", "count", "start", "stop", "span"):
                continue
            v = getattr(f, name)
            if v is None:
                continue
            key = {"source": "from", "service": "svc", "transfer": "bytes",
                   "rate_bps": "rate", "rate_pps": "rate"}.get(name, name)
            if name == "ecn":
                v = {0: "off", 1: "ect1", 2: "ect0", 3: "ce"}[v]
            elif name == "pacing":
                v = "on" if v else "off"
            opts.append(f"{key}={v}")
        text = f"{f.kind}:{f.count}"
        if opts:
            text += f"[{','.join(opts)}]"
        if f.start.ns or f.stop is not None:
            text += f"@{f.start}" + (f"-{f.stop}" if f.stop is not None else "")
        out.append(text)
    return ",".join(out)

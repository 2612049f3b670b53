"""The registry of diagnostic codes.

Codes are stable: once published, a code keeps its meaning. Ranges per pass:
E01 syntax, E02 names and imports, E03 types and units, E04 function signatures,
E05 chain rules, E06 service requirements, E07 topology, E08 placement, E09 P4 backend,
E10 VNF backends, E11 simulator, E12 runtime; W-codes are warnings.
``docs/language.md`` lists every code, and each has a test that shows its text.
"""

CODES: dict[str, str] = {
    # E01 — syntax
    "E0101": "unexpected token",
    "E0102": "unexpected character",
    "E0103": "unexpected end of input",
    "E0104": "malformed literal",
    # E02 — names and imports
    "E0201": "unknown module",
    "E0202": "name not found in module",
    "E0203": "unknown name",
    "E0204": "duplicate definition",
    "E0205": "unknown function",
    "E0206": "unknown topology",
    "E0207": "unknown node",
    "E0208": "import cycle",
    "E0209": "unknown packet field",
    # E03 — types and units
    "E0301": "type mismatch",
    "E0302": "wrong unit",
    "E0303": "unknown type",
    "E0304": "value out of range",
    "E0305": "invalid operation",
    "E0306": "quantity below resolution",
    "E0307": "prefix has host bits set",
    # E04 — function signatures
    "E0401": "unknown argument",
    "E0402": "missing argument",
    "E0403": "duplicate argument",
    "E0404": "function constraint violated",
    "E0405": "invalid function declaration",
    "E0406": "recursive composite function",
    "E0407": "invalid placement option",
    # E05 — chain rules
    "E0501": "chain does not end with a forward",
    "E0502": "forward before the end of the chain",
    "E0503": "more than one queueing discipline in a chain",
    "E0504": "conflicting queueing disciplines on one egress",
    "E0505": "missing chain",
    # E06 — services and requirements
    "E0601": "latency budget cannot be met",
    "E0602": "secure service without mitigation",
    "E0603": "bandwidth requirement exceeds path capacity",
    "E0604": "unknown requirement",
    "E0605": "duplicate service statement",
    "E0606": "no path from source to destination",
    "E0607": "invalid match predicate",
    "E0608": "service destination unknown",
    # E07 — topology
    "E0701": "unknown attribute",
    "E0702": "missing attribute",
    "E0703": "link to unknown node",
    "E0704": "invalid port",
    "E0705": "unknown node target",
    "E0706": "invalid link",
    # Warnings
    "W0701": "node not connected",
    "W0201": "unused import",
}

"""The language's rule for names, for front ends that do not go through the grammar.

The grammar's ``NAME`` terminal admits only ``[A-Za-z_][A-Za-z0-9_]*``, and every backend
relies on it: names become P4 identifiers, nftables chain and counter names, ``tc.sh``
``case`` labels, Heat resource names and file names. The Python API builds the AST
directly, so it applies the same rule (and refuses the literals ``true``/``false`` and
``not``, which would read back as something else) before a name reaches any of them.
"""

from __future__ import annotations

import re

__all__ = ["NAME_RE", "RESERVED", "name_problem"]

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Words that cannot stand for a name where an expression is read.
RESERVED = frozenset({"true", "false", "not"})


def name_problem(name: object) -> str | None:
    """Why ``name`` is not a mosaico name, or None if it is one."""
    if not isinstance(name, str):
        return f"a name is a string, not a {type(name).__name__}"
    if not NAME_RE.fullmatch(name):
        return (f"{name!r} is not a mosaico name: names are letters, digits and `_`, "
                "not starting with a digit")
    if name in RESERVED:
        return f"`{name}` is a literal of the language, not a name"
    return None

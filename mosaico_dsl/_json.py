"""Indented JSON as ``json.dumps(obj, indent=n, sort_keys=True)`` writes it, faster.

The standard library encodes indented JSON in pure Python, one generator step per token;
a build directory of a thousand switches spends seconds there. This writer produces the
same text — byte for byte, which the tests check against ``json.dumps`` — with one call per
container and the C escaper for strings.
"""

from __future__ import annotations

from json.encoder import encode_basestring_ascii as _string
from typing import Any

__all__ = ["dumps"]


def _float(f: float) -> str:
    if f != f:
        return "NaN"
    if f == float("inf"):
        return "Infinity"
    if f == float("-inf"):
        return "-Infinity"
    return float.__repr__(f)


def _key(k: Any) -> str:
    if isinstance(k, str):
        return k
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, int):
        return int.__repr__(k)
    if isinstance(k, float):
        return _float(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")


def dumps(obj: Any, indent: int) -> str:
    """``json.dumps(obj, indent=indent, sort_keys=True)``."""
    out: list[str] = []
    step = " " * indent
    write = out.append

    def value(o: Any, level: int) -> None:
        if isinstance(o, str):
            write(_string(o))
        elif o is None:
            write("null")
        elif o is True:
            write("true")
        elif o is False:
            write("false")
        elif isinstance(o, int):
            write(int.__repr__(o))
        elif isinstance(o, float):
            write(_float(o))
        elif isinstance(o, dict):
            if not o:
                write("{}")
                return
            inner = "\n" + step * (level + 1)
            write("{")
            first = True
            for k, v in sorted(o.items()):
                write(inner if first else "," + inner)
                first = False
                write(_string(_key(k)))
                write(": ")
                value(v, level + 1)
            write("\n" + step * level + "}")
        elif isinstance(o, (list, tuple)):
            if not o:
                write("[]")
                return
            inner = "\n" + step * (level + 1)
            write("[")
            first = True
            for v in o:
                write(inner if first else "," + inner)
                first = False
                value(v, level + 1)
            write("\n" + step * level + "]")
        else:
            raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    value(obj, 0)
    return "".join(out)

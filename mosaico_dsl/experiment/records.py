"""What an agent hands back: named tables of 64-bit integers, and a little metadata.

The agents run inside the endpoints' namespaces and import nothing beyond the standard
library (they start fast and stay small); the experiment reads their files with numpy.
A file is one JSON line — the metadata and each table's columns and row count — then each
table's rows as little-endian int64, in the order the line lists them. Written to a
temporary name and renamed, so a reader never sees half a file.
"""

from __future__ import annotations

import json
import os
import sys
from array import array
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["Table", "write_records", "read_records"]


class Table:
    """Rows appended one at a time (the agents' hot loops call :meth:`add`)."""

    def __init__(self, *columns: str) -> None:
        self.columns = columns
        self.data = array("q")

    def add(self, *row: int) -> None:
        self.data.extend(row)

    def __len__(self) -> int:
        return len(self.data) // len(self.columns)


def write_records(path: Path, tables: Mapping[str, Table], meta: Mapping[str, Any]) -> None:
    head = {"meta": dict(meta),
            "tables": [{"name": n, "columns": list(t.columns), "rows": len(t)}
                       for n, t in tables.items()]}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(json.dumps(head, sort_keys=True).encode() + b"\n")
        for t in tables.values():
            data = t.data
            if sys.byteorder != "little":
                data = array("q", data)
                data.byteswap()
            f.write(data.tobytes())
    os.replace(tmp, path)


def read_records(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(meta, {table: structured numpy array})``; each array has one field per column."""
    import numpy as np

    raw = Path(path).read_bytes()
    line, _, body = raw.partition(b"\n")
    head = json.loads(line)
    out: dict[str, Any] = {}
    offset = 0
    for t in head["tables"]:
        cols, rows = t["columns"], t["rows"]
        n = rows * len(cols) * 8
        flat = np.frombuffer(body, dtype="<i8", count=rows * len(cols), offset=offset)
        offset += n
        out[t["name"]] = flat.reshape(rows, len(cols)).view(
            np.dtype([(c, "<i8") for c in cols])).reshape(rows)
        out[t["name"]] = np.array(out[t["name"]])  # own the memory, native byte order
    return head["meta"], out

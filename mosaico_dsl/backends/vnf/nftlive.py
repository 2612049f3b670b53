"""The local target's nftables rulesets on a live machine: read, compare, reload in place.

A ruleset file is read *by nft itself*: :func:`ruleset_tables` loads it into a throwaway
network namespace (``unshare --net``) and lists it as JSON there, so Python never parses
nft syntax. What defines a table — chains, rules, sets, counters, limits, minus their state
(counter values, the elements of sets the packet path fills) — is then compared with what a
namespace holds (:func:`differs`), and :func:`reload_ruleset` replaces a table *in place*:
one transaction (``codegen/vnf/nftables/reload.nft.j2``) flushes its rules, deletes the
objects that changed or left, and adds the definition again, so the objects defined
identically keep their state. nftables allows no more: an object whose definition changes
is recreated, and loses its state.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from typing import Any

from ._shell import LocalTargetError, netns_exec, run
from ._templates import render

__all__ = ["Table", "ruleset_tables", "live_tables", "differs", "reload_ruleset",
           "delete_tables"]

Table = tuple[str, str]  # (family, name)
# Object fields that are state, not definition: they differ between a loaded ruleset and
# its file without anyone having changed it.
_STATE_KEYS = frozenset({"handle", "expires"})
_COUNTER_STATE = frozenset({"packets", "bytes", "used", "used_unit"})
_DYNAMIC = frozenset({"dynamic", "timeout"})  # set flags of sets the packet path fills


def _group(doc: Mapping) -> dict[Table, list[dict]]:
    """``nft -j list ruleset`` → the objects of each table, in listing order."""
    out: dict[Table, list[dict]] = {}
    for item in doc.get("nftables", []):
        ((kind, body),) = item.items()
        if kind == "metainfo":
            continue
        if kind == "table":
            out.setdefault((body["family"], body["name"]), [])
            continue
        out.setdefault((body["family"], body["table"]), []).append({kind: body})
    return out


def ruleset_tables(text: str) -> dict[Table, list[dict]]:
    """The tables a ruleset file defines, as nft itself reads them: the file is loaded into
    a throwaway network namespace (``unshare --net``) and listed as JSON there."""
    if shutil.which("unshare") is None:
        raise LocalTargetError("`unshare` (util-linux) is needed to read rulesets")
    proc = run(["unshare", "--net", "--", "sh", "-c", "nft -f - && nft -j list ruleset"],
               stdin=text)
    return _group(json.loads(proc.stdout))


def live_tables(namespace: str) -> dict[Table, list[dict]]:
    """The tables ``namespace`` holds now, as nft lists them."""
    return _group(json.loads(run(netns_exec(namespace, "nft", "-j", "list",
                                            "ruleset")).stdout or "{}"))


def _strip(value: Any, kind: str | None = None) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v, k) for k, v in value.items()
                if k not in _STATE_KEYS and not (kind in ("counter", "quota")
                                                 and k in _COUNTER_STATE)}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _definition(objects: Iterable[dict]) -> dict[tuple[str, str], Any]:
    """(kind, name) → what defines an object; ("rule", chain) → the chain's rules. Counter
    values and the elements of sets the packet path fills (``dynamic``/``timeout``) are
    state and left out."""
    out: dict[tuple[str, str], Any] = {}
    for item in objects:
        ((kind, body),) = item.items()
        body = _strip(body, kind)
        if kind == "rule":
            out.setdefault(("rule", body["chain"]), []).append(body)
            continue
        if kind in ("set", "map") and _DYNAMIC & set(body.get("flags", ())):
            body.pop("elem", None)
        out[(kind, body["name"])] = body
    return out


def _users(definition: Mapping[tuple[str, str], Any], key: tuple[str, str]) -> list | None:
    """The rules that fill a dynamic set (``update @set { ... limit ... }``): its elements
    carry their statements' state, so the set is kept only if those rules are unchanged.
    ``None`` for every other object."""
    kind, name = key
    body = definition.get(key)
    if kind not in ("set", "map") or body is None or not _DYNAMIC & set(body.get("flags", ())):
        return None
    ref = json.dumps(f"@{name}")
    return [r for (k, _), rules in sorted(definition.items()) if k == "rule"
            for r in rules if ref in json.dumps(r)]


# Deleted in this order once the rules are gone: maps and sets may refer to chains.
_DELETE_ORDER = ("map", "set", "chain", "counter", "limit", "quota")


def reload_ruleset(namespace: str, text: str) -> None:
    """Load ``text`` (one of the backend's ruleset files) into ``namespace`` in place.

    One nft transaction flushes the table's rules, deletes the chains, sets, counters and
    limits whose definition changed or that the new ruleset no longer has, and adds the
    definition; objects defined identically are kept with their state — counter values,
    token buckets, the elements of dynamic sets. A table that does not exist yet is simply
    loaded."""
    want = ruleset_tables(text)
    have = live_tables(namespace)
    if any(t not in have for t in want):
        run(netns_exec(namespace, "nft", "-f", "-"), stdin=text)
        return
    tables = []
    for (family, name), objects in want.items():
        new_def, old_def = _definition(objects), _definition(have[(family, name)])
        stale = [k for k, v in old_def.items() if k[0] != "rule" and
                 (new_def.get(k) != v or _users(old_def, k) != _users(new_def, k))]
        stale.sort(key=lambda k: (_DELETE_ORDER.index(k[0]) if k[0] in _DELETE_ORDER
                                  else len(_DELETE_ORDER), k[1]))
        tables.append({"family": family, "name": name, "deletes": stale})
    script = render("nftables/reload.nft.j2", tables=tables,
                    definition=_without_replace(text, want))
    run(netns_exec(namespace, "nft", "-f", "-"), stdin=script)


def _without_replace(text: str, tables: Iterable[Table]) -> str:
    """The ruleset file without its *replace* preamble — the ``table F T`` / ``delete
    table F T`` pair the ruleset template writes before each definition."""
    preamble = {f"{verb}table {f} {t}" for f, t in tables for verb in ("", "delete ")}
    return "".join(line for line in text.splitlines(keepends=True)
                   if line.strip() not in preamble)


def differs(live: Iterable[dict], defined: Iterable[dict]) -> bool:
    """Whether a live table's rules or objects differ from a ruleset's definition of it
    (counter values and dynamic set elements are state, not differences)."""
    return _definition(live) != _definition(defined)


def delete_tables(namespace: str, text: str) -> None:
    """Remove the tables a ruleset file defines from ``namespace`` (if there)."""
    for family, table in ruleset_tables(text):
        run(netns_exec(namespace, "nft", "delete", "table", family, table), check=False)

"""JSON Schemas of the documents the VNF backends emit, shipped in ``schemas/``.

``heat`` covers the HOT subset ``stack.yaml`` uses (networks, ports, servers, flavours and
the networking-sfc resources, with the property names Heat's resource plugins define);
``sol006-vnfd`` / ``sol006-pnfd`` / ``sol006-nsd`` the SOL006 subset of the OSM
descriptors (the version is cited in each file); ``local-plan`` is the reference of
``local.json``.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml

__all__ = ["SCHEMAS", "schema", "validate", "errors", "load_yaml"]


class _Loader(yaml.SafeLoader):
    """YAML as Heat and OSM read it: dates stay strings (``2018-08-31`` is a version)."""


_Loader.yaml_implicit_resolvers = {
    k: [r for r in v if r[0] != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)

SCHEMAS = ("heat", "sol006-vnfd", "sol006-pnfd", "sol006-nsd", "local-plan")


@cache
def schema(name: str) -> dict[str, Any]:
    if name not in SCHEMAS:
        raise KeyError(f"no schema {name!r}; choose from {', '.join(SCHEMAS)}")
    text = resources.files(__package__).joinpath("schemas", f"{name}.schema.json").read_text(
        encoding="utf-8")
    doc = json.loads(text)
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


def errors(name: str, document: Any) -> list[str]:
    """Every violation of schema ``name`` in ``document`` (empty when valid)."""
    v = jsonschema.Draft202012Validator(schema(name))
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
            for e in sorted(v.iter_errors(document), key=lambda e: list(map(str, e.path)))]


def validate(name: str, document: Any) -> None:
    """Raise :class:`ValueError` listing every violation (a generator bug, not user error)."""
    found = errors(name, document)
    if found:
        raise ValueError(f"generated document violates the {name} schema:\n  "
                         + "\n  ".join(found[:20]))

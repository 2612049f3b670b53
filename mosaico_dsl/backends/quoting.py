"""Quoting for each target language, as Jinja2 filters: the only way values enter text.

Templates hold the syntax of sh, nft, YAML and P4; every value they print that is not a
number or a keyword of the template's own making passes through the filter of the
language it lands in (``{{ name | sh }}``, ``{{ text | p4_comment }}``). The front end
already refuses names that are not identifiers and addresses that are not addresses;
these filters are the second wall, so a value that got past it still cannot become code.

Filters that quote (``sh``, ``yaml``) accept any text. Filters for places with no quoting
at all — an nft name in double quotes, a P4 ``@name`` string — refuse what they cannot
represent (a generator bug: the checker lets no such name through). Comment filters keep
the text on one line and escape what would end the comment.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

__all__ = ["FILTERS", "sh", "yaml_scalar", "comment", "p4_comment", "p4_string", "nft_id",
           "nft_string", "nft_comment"]

# Everything that ends a line for some reader: C0 and C1 controls, DEL, U+2028/U+2029
# (line and paragraph separators: YAML 1.1 and some editors break lines at them).
_LINE_BREAKERS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _one_line(value: Any) -> str:
    return _LINE_BREAKERS.sub(lambda m: _ESCAPES.get(m.group(), f"\\x{ord(m.group()):02x}")
                              if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
                              str(value))


def sh(value: Any) -> str:
    """One POSIX shell word, whatever the value holds."""
    return shlex.quote(str(value))


def yaml_scalar(value: Any) -> str:
    """A YAML double-quoted scalar (ASCII, escapes for the rest): reads back as ``value``."""
    return yaml.dump(str(value), Dumper=yaml.SafeDumper, default_style='"', width=1 << 30,
                     allow_unicode=False).rstrip("\n").removesuffix("\n...")


def comment(value: Any) -> str:
    """Text for a ``#`` comment (sh, nft, YAML, simple_switch_CLI): one line."""
    return _one_line(value)


def p4_comment(value: Any) -> str:
    """Text for a P4 ``//`` or ``/* */`` comment: one line, no ``*/`` or ``/*``, and no
    trailing backslash (the C preprocessor p4c runs would splice the next line in)."""
    text = _one_line(value).replace("*/", "*\\/").replace("/*", "/\\*")
    return text + "." if text.endswith("\\") else text  # cpp splices even after a space


_P4_STRING = re.compile(r"[A-Za-z0-9_.:/@$ <>\[\]-]*")


def p4_string(value: Any) -> str:
    """A P4 string literal (``@name("...")``) for names, which need no escapes."""
    text = str(value)
    if not _P4_STRING.fullmatch(text):
        raise ValueError(f"{text!r} cannot be a P4 string literal here")
    return f'"{text}"'


_NFT_NAME = re.compile(r"[A-Za-z0-9_./:-]+")
_NFT_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def nft_id(value: Any) -> str:
    """An unquoted nft identifier (table, chain, set, counter): nft's own name syntax."""
    text = str(value)
    if not _NFT_ID.fullmatch(text):
        raise ValueError(f"{text!r} cannot be an nft identifier")
    return text



def nft_string(value: Any) -> str:
    """An nft quoted string for a name (interface, counter): nft has no escape for ``"``,
    so only names that need none are accepted."""
    text = str(value)
    if not _NFT_NAME.fullmatch(text):
        raise ValueError(f"{text!r} cannot be an nft name")
    return f'"{text}"'


def nft_comment(value: Any) -> str:
    """An nft ``comment "..."`` argument: one line, ``"`` replaced (nft cannot escape it),
    at most 128 bytes (nft's limit)."""
    text = _one_line(value).replace('"', "'")
    while len(text.encode()) > 128:
        text = text[:-1]
    return f'"{text}"'


FILTERS = {"sh": sh, "yaml": yaml_scalar, "q": yaml_scalar, "comment": comment,
           "p4_comment": p4_comment, "p4_string": p4_string, "nft_id": nft_id,
           "nft_string": nft_string, "nft_comment": nft_comment}

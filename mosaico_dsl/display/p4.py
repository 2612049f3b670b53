"""Generated P4 shown syntax-highlighted: a Pygments lexer for P4_16 and a source view.

Pygments ships no P4 lexer, so :class:`P4Lexer` extends its C lexer — P4_16's expression
and comment syntax are C's — with P4's keywords (P4_16 spec, v1.2.4, §6.4 and Appendix B),
the ``core.p4`` and ``v1model.p4`` names a program uses, annotations (``@name("x")``) and
width-prefixed literals (``32w0``, ``16w0x0800``), which the C lexer would flag as errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from html import escape

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import inherit
from pygments.lexers.c_cpp import CLexer
from pygments.token import Keyword, Name, Number

__all__ = ["P4Lexer", "P4Source", "p4_sources"]

# P4_16 reserved words (spec Appendix B) and table properties.
_KEYWORDS = frozenset("""
    abstract action actions apply const control default default_action else entries enum
    error exit extern false for header header_union if in inout key list match_kind out
    package parser priority return select size state struct switch table then this
    transition true tuple type typedef value_set verify void
""".split())
_TYPES = frozenset("bit bool int string varbit".split())
# Names core.p4 and v1model.p4 declare that generated programs use.
_BUILTINS = frozenset("""
    packet_in packet_out extract emit lookahead advance length isValid setValid setInvalid
    hit miss action_run NoAction accept reject exact ternary lpm range optional selector
    standard_metadata_t V1Switch counter direct_counter meter direct_meter register
    action_profile action_selector hash random digest mark_to_drop clone clone_preserving_field_list
    resubmit_preserving_field_list recirculate_preserving_field_list truncate assert assume
    verify_checksum update_checksum verify_checksum_with_payload update_checksum_with_payload
    log_msg CounterType MeterType HashAlgorithm CloneType count execute_meter read write
    MeterColor_t
""".split())


class P4Lexer(CLexer):
    """P4_16 (as generated for BMv2 v1model): C syntax plus P4's words and literals."""

    name = "P4"
    aliases = ["p4", "p4_16"]
    filenames = ["*.p4"]
    mimetypes = ["text/x-p4"]

    tokens = {
        "statements": [
            (r"@[A-Za-z_]\w*", Name.Decorator),
            (r"\d+[ws]0[xX][0-9a-fA-F_]+", Number.Hex),
            (r"\d+[ws]0[bB][01_]+", Number.Bin),
            (r"\d+[ws]\d[\d_]*", Number.Integer),
            inherit,
        ],
    }

    def get_tokens_unprocessed(self, text, stack=("root",)):
        for index, token, value in super().get_tokens_unprocessed(text, stack):
            if token in Name and token is not Name.Decorator:
                if value in _KEYWORDS:
                    token = Keyword
                elif value in _TYPES:
                    token = Keyword.Type
                elif value in _BUILTINS:
                    token = Name.Builtin
            yield index, token, value


_STYLE = "default"
_MAX_HEIGHT = "28em"


class P4Source:
    """One generated P4 file: shown highlighted in notebooks, as text elsewhere.

    ``str(source)`` is the program text; :meth:`html` the highlighted markup (inline styles,
    so it survives HTML export); ``rich.print(source)`` highlights it in a terminal.
    """

    def __init__(self, path: str, text: str) -> None:
        self.path, self.text = path, text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"<P4Source {self.path}: {self.text.count(chr(10))} lines>"

    def _repr_pretty_(self, p, cycle: bool) -> None:
        p.text(f"// {self.path}\n{self.text}")

    def html(self, *, open: bool = True) -> str:
        body = highlight(self.text, P4Lexer(), HtmlFormatter(noclasses=True, style=_STYLE,
                                                             linenos="inline"))
        lines = self.text.count("\n")
        return (f'<details class="mosaico-p4" {"open" if open else ""}><summary><code>'
                f"{escape(self.path)}</code> — P4_16, {lines} lines</summary>"
                f'<div style="max-height: {_MAX_HEIGHT}; overflow: auto">{body}</div>'
                "</details>")

    def _repr_html_(self) -> str:
        return self.html()

    def __rich__(self):
        from rich.syntax import Syntax

        return Syntax(self.text, P4Lexer(), line_numbers=True, word_wrap=False)


_PROGRAM = re.compile(r"(?P<switch>[^/]+)/(?P=switch)\.p4")


def p4_sources(artifacts: Mapping[str, bytes]) -> dict[str, P4Source]:
    """The generated program of each switch (``<switch>/<switch>.p4``), by switch name."""
    out = {}
    for path, data in sorted(artifacts.items()):
        m = _PROGRAM.fullmatch(path)
        if m:
            out[m["switch"]] = P4Source(path, data.decode("utf-8"))
    return out

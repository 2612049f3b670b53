"""Tab completion of stdlib functions and their parameters, through IPython's completer."""

from __future__ import annotations

import pytest


@pytest.fixture
def complete(shell):
    from IPython.core.completer import provisionalcompleter

    shell.run_cell("import mosaico_dsl as mo\n"
                   "from mosaico_dsl.std import l4s, security as sec, fwd")

    def go(text: str) -> set[str]:
        with provisionalcompleter():
            return {c.text for c in shell.Completer.completions(text, len(text))}

    return go


def test_function_names_complete(complete):
    assert {"Blocklist", "Allowlist", "RateLimit", "SynGuard", "Acl"} <= complete("sec.")
    assert complete("sec.Rat") == {"RateLimit"}
    assert "DualQ" in complete("l4s.Du")


def test_parameters_complete_from_the_stdlib_signature(complete):
    from mosaico_dsl.std import l4s

    params = set(l4s.DualQ.__signature__.parameters)
    got = {c.rstrip("=") for c in complete("l4s.DualQ(") if c.endswith("=")}
    assert params <= got
    assert complete("l4s.DualQ(classic") == {"classic_target="}
    assert {"burst=", "buckets="} <= complete("sec.RateLimit(rate='20kpps', bu")


def test_modules_and_header_fields_complete(complete):
    assert {"l4s", "security", "fwd", "net"} <= complete("from mosaico_dsl.std import ")
    assert {"dst", "dscp"} <= complete("mo.f.ipv4.d")
    assert "dport" in complete("mo.f.tcp.dp")

"""The quoting filters, judged by the real readers of each language: /bin/sh, PyYAML,
nft (when root) and the P4 front end's own preprocessor-aware parser."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from mosaico_dsl.backends import quoting as Q

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)


@settings(max_examples=60, deadline=None)
@given(TEXT.filter(lambda t: "\x00" not in t))  # no argv holds a NUL
def test_sh_quotes_any_text_as_one_word(value):
    script = f"printf '%s' {Q.sh(value)}"
    out = subprocess.run(["/bin/sh", "-c", script], capture_output=True, check=True)
    assert out.stdout == value.encode()


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_yaml_scalars_read_back_exactly(value):
    assert yaml.safe_load(f"key: {Q.yaml_scalar(value)}\nnext: 1\n") == {"key": value,
                                                                        "next": 1}
    assert Q.yaml_scalar(value).isascii()


@settings(max_examples=200, deadline=None)
@given(TEXT)
def test_comments_stay_on_one_line(value):
    for text in (Q.comment(value), Q.p4_comment(value)):
        assert text.splitlines() == [text] or text == ""
        assert "\x85" not in text and "\u2028" not in text and "\u2029" not in text
    p4 = Q.p4_comment(value)
    assert "*/" not in p4 and "/*" not in p4 and not p4.endswith("\\")
    nft = Q.nft_comment(value)
    assert nft.startswith('"') and nft.endswith('"') and '"' not in nft[1:-1]
    assert len(nft.encode()) <= 130 and "\n" not in nft


@pytest.mark.parametrize("bad", ["a b", 'a"b', "a;b", "x\ny", "$x", ""])
def test_names_that_nft_cannot_quote_are_refused(bad):
    with pytest.raises(ValueError):
        Q.nft_string(bad)
    with pytest.raises(ValueError):
        Q.nft_id(bad)
    with pytest.raises(ValueError):
        Q.p4_string(bad + '"') if bad else Q.p4_string('"')


def test_a_p4_comment_cannot_end_the_line_or_the_comment():
    from mosaico_dsl.backends.p4.syntax import check_source

    for value in ("*/ bogus; /*", "a\nbogus;", "ends with \\", "x\r\nbogus;"):
        program = f"// {Q.p4_comment(value)}\n/* {Q.p4_comment(value)} */\nconst bit<8> X = 1;\n"
        check_source("p.p4", {"p.p4": program})


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft"), reason="needs root and nft")
def test_nft_accepts_the_comments():
    names = ["we\"ird\ncomment; flush ruleset", "x" * 300, "#hash", "é" * 100]
    rules = "\n".join(f"counter c{i} {{ comment {Q.nft_comment(n)} }}"
                      for i, n in enumerate(names))
    ruleset = f"table ip mosaico_quoting_test {{\n{rules}\n}}\n"
    r = subprocess.run(["nft", "-c", "-f", "-"], input=ruleset, text=True,
                       capture_output=True)
    assert r.returncode == 0, r.stderr

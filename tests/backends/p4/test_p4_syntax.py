"""The P4_16 syntax checker: it accepts every program and library file mosaico emits, and
rejects broken programs with the original file and line."""

from __future__ import annotations

import pytest
from p4_support import ROOT, compiled, switch_dirs

from mosaico_dsl.backends.p4 import P4SyntaxError, check_file, check_source
from mosaico_dsl.backends.p4.syntax import preprocess

LIBRARY = sorted((ROOT / "p4").rglob("*.p4"))


def _texts(files: dict[str, bytes]) -> dict[str, str]:
    return {k: v.decode() for k, v in files.items() if k.endswith(".p4")}


def test_every_example_program_passes(example):
    for switch, files in switch_dirs(compiled(example)).items():
        pre = check_source(f"{switch}.p4", _texts(files))
        assert pre.system_includes == ("core.p4", "v1model.p4")
        # Self-contained: every quoted include was found inside the switch directory.
        assert set(pre.files) <= set(_texts(files))


def test_built_directory_checks_from_disk(tmp_path):
    result = compiled(ROOT / "examples" / "secure_l4s.mosaico")
    result.write(tmp_path / "build")
    check_file(tmp_path / "build" / "s1" / "s1.p4")


@pytest.mark.parametrize("path", LIBRARY, ids=lambda p: str(p.relative_to(ROOT / "p4")))
def test_library_files_parse_after_the_headers(path):
    """Each library file parses in the context it is included in (after the headers)."""
    rel = str(path.relative_to(ROOT / "p4"))
    files = {str(p.relative_to(ROOT / "p4")): p.read_text() for p in LIBRARY}
    files["main.p4"] = '#include "mosaico/headers.p4"\n#include "' + rel + '"\n'
    check_source("main.p4", files)


def _flagship_files() -> dict[str, str]:
    return _texts(switch_dirs(compiled(ROOT / "examples" / "secure_l4s.mosaico"))["s1"])


def test_broken_program_fails_with_its_line():
    files = _flagship_files()
    lines = files["s1.p4"].splitlines()
    n = next(i for i, line in enumerate(lines) if "classifier.apply();" in line)
    lines[n] = lines[n].replace("classifier.apply();", "classifier.apply()")  # no ';'
    files["s1.p4"] = "\n".join(lines) + "\n"
    with pytest.raises(P4SyntaxError) as e:
        check_source("s1.p4", files)
    assert e.value.file == "s1.p4"
    assert e.value.line in (n + 1, n + 2)  # the missing ';' shows at the next token
    assert f"s1.p4:{e.value.line}:" in str(e.value)


def test_method_call_without_parentheses_fails_with_its_line():
    """`t.apply;` parses as a path but is no P4 statement (p4c rejects it)."""
    files = _flagship_files()
    lines = files["s1.p4"].splitlines()
    n = next(i for i, line in enumerate(lines) if "classifier.apply();" in line)
    lines[n] = lines[n].replace("classifier.apply();", "classifier.apply;")
    files["s1.p4"] = "\n".join(lines) + "\n"
    with pytest.raises(P4SyntaxError, match="method call") as e:
        check_source("s1.p4", files)
    assert (e.value.file, e.value.line) == ("s1.p4", n + 1)


def test_error_in_an_included_file_points_into_that_file():
    files = _flagship_files()
    lib = files["std/l4s/dualq.p4"].splitlines()
    n = next(i for i, line in enumerate(lib) if "m.aqm = unit;" in line)
    lib[n] = "        m.aqm = = unit;"
    files["std/l4s/dualq.p4"] = "\n".join(lib) + "\n"
    with pytest.raises(P4SyntaxError) as e:
        check_source("s1.p4", files)
    assert (e.value.file, e.value.line) == ("std/l4s/dualq.p4", n + 1)


@pytest.mark.parametrize("text,needle", [
    ("control C() { apply { x = 1 } }\n", "unexpected"),
    ("header h_t { bit<8> a }\n", "unexpected"),
    ("control C() { apply { if (a) { } else } }\n", "unexpected"),
    ("table t { }\n", "unexpected"),
    # p4c accepts only assignments and calls as statements, and no declaration as a branch
    ("control C() { apply { t.apply; } }\n", "assignment or a method call"),
    ("control C(inout bit<8> x) { apply { x; } }\n", "assignment or a method call"),
    ("control C(inout bool x) { apply { if (x) bool y = true; } }\n", "unexpected"),
    ('#include "missing.p4"\n', "cannot find include file"),
    ("#ifndef X\nconst bit<8> A = 1;\n", "unterminated"),
    ("#define F(x) x\n", "object-like"),
    ("#pragma once\n", "unsupported preprocessor directive"),
])
def test_malformed_inputs_are_rejected(text, needle):
    with pytest.raises(P4SyntaxError, match=needle):
        check_source("main.p4", {"main.p4": text})


def test_include_guards_and_object_macros():
    files = {
        "main.p4": '#include "a.p4"\n#include "a.p4"\n#define WIDTH 8\n'
                   "const bit<WIDTH> A = 8w1;\n",
        "a.p4": "#ifndef A_P4\n#define A_P4\nconst bit<4> B = 4w2;\n#endif\n",
    }
    pre = preprocess("main.p4", files)
    assert pre.text.count("const bit<4> B") == 1  # the guard skipped the second copy
    assert "const bit<8> A" in pre.text
    check_source("main.p4", files)


def test_include_cycle_is_an_error():
    files = {"a.p4": '#include "b.p4"\n', "b.p4": '#include "a.p4"\n'}
    with pytest.raises(P4SyntaxError, match="cycle"):
        check_source("a.p4", files)


def test_constructs_beyond_what_the_templates_use_today():
    """Other valid P4 the grammar covers: ternaries, slices, concatenation, exit, enums."""
    text = """
enum bit<8> Colour { RED = 8w0, GREEN = 8w1 }
typedef bit<16> word_t;
bit<8> pick(in bit<8> a, in bit<8> b) { return a > b ? a : b; }
control C(inout bit<16> x)(bit<8> k) {
    bit<8> local = 8w3;
    apply {
        bit<32> wide = x ++ x;
        x = wide[15:0] |-| 16w1;
        if (!(x == 16w0) && ~x != 16w0 || -x == 16w5) { exit; }
        return;
    }
}
"""
    check_source("main.p4", {"main.p4": text})

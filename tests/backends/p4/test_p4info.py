"""P4Info agrees with the program text: ids unique, every object annotated with the same id
and name, every match field and parameter with the width the P4 declares; entries.json
agrees with P4Info."""

from __future__ import annotations

from p4_checks import check_against_program, check_entries, p4info_of
from p4_support import compiled, switch_dirs


def test_p4info_matches_the_program(example):
    for switch, files in switch_dirs(compiled(example)).items():
        check_against_program(switch, files)


def test_entries_match_the_p4info(example):
    for _, files in switch_dirs(compiled(example)).items():
        updates = check_entries(files)
        lines = [x for x in files["entries.txt"].decode().splitlines()
                 if x and not x.startswith("#")]
        tables = sum(1 for u in updates if u.entity.WhichOneof("entity") == "table_entry")
        assert sum(1 for x in lines if x.startswith("table_add ")) == tables


def test_direct_counters_belong_to_their_tables(example):
    for _, files in switch_dirs(compiled(example)).items():
        info = p4info_of(files)
        tables = {t.preamble.id: t for t in info.tables}
        for d in info.direct_counters:
            assert d.preamble.id in tables[d.direct_table_id].direct_resource_ids


def test_ids_are_deterministic(example):
    from mosaico_dsl import compiler

    again = compiler.compile(example, emit=["p4"])
    assert again.artifacts == compiled(example).artifacts

from mosaico_dsl.lang.parser import parse
from mosaico_dsl.lang.printer import format_module


def test_flagship_round_trips(flagship_path):
    text = flagship_path.read_text()
    result = parse(text, str(flagship_path))
    assert result.ok, result.diagnostics
    assert format_module(result.module) == text

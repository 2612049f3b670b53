"""Code generators: each backend turns a :class:`~mosaico_dsl.compiler.Compilation` into files."""

from collections.abc import Iterable, Mapping

from ..diagnostics import Diagnostic

__all__ = ["Artifacts"]


class Artifacts(dict):
    """What a backend produced — path → bytes (or text) — and warnings about what it left
    out, which the compiler reports with the program's own."""

    def __init__(self, files: Mapping = (), warnings: Iterable[Diagnostic] = ()) -> None:
        super().__init__(files)
        self.warnings = tuple(warnings)

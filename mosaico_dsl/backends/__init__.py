"""Code generators: each backend turns a :class:`~mosaico_dsl.compiler.Compilation` into files."""

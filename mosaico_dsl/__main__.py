"""``python -m mosaico_dsl`` is the ``mosaico`` command."""

from .cli import main

main()

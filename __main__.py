"""``python -m sbts`` is the ``sbts`` command."""

from sbts.cli.main import main

main()

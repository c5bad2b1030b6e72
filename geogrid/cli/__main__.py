"""``python -m geogrid.cli``: the same as the ``geogrid`` command."""

from geogrid.cli import main

main()

"""Workflows: validate with :mod:`geogrid.core`, read and write with :mod:`geogrid.store`,
in one transaction where the workflow needs one. The API and the CLI call these."""

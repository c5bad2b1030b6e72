"""Benchmarks for geogrid (run as ``python -m bench.<name>``); not part of the library."""

"""The pure core: functions and classes over arrays, frames and geometries.

Nothing here talks to a database, reads the environment or imports a web framework; it
imports only :mod:`geogrid.errors` and :mod:`geogrid.settings` (for types) besides itself.
"""

"""Request budgets for the API: the statement timeout of a request class.

The API layer never reaches the store; this is its handle on
:func:`geogrid.store.limits.statement_timeout` (see there).
"""

from __future__ import annotations

from geogrid.store.limits import current_statement_timeout, statement_timeout

__all__ = ["current_statement_timeout", "statement_timeout"]

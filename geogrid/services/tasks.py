"""My tasks (我的任务): the open incidents an account answers for — assigned to them, to
one of their units (a worker's grids, an admin's community/street/district) or to a grid
of one of their teams (:mod:`geogrid.services.teams`) — overdue first, then by due time.

Each task carries what the terminal needs to act offline: due time and overdue flag,
status and the statuses it may move to (:func:`geogrid.core.lifecycle.allowed_transitions`),
and ``updated_at``, which the terminal sends back as ``expected_updated_at`` so a change
made meanwhile by someone else is reported as a conflict, never overwritten.

Personal fields (the description's contact details) are clear on the tasks inside the
account's units and its teams' grids (and on those assigned to the account), masked
otherwise; clear reads are audited.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from geogrid.core.accounts import UNIT_ROLES, Account
from geogrid.core.lifecycle import allowed_transitions, is_overdue
from geogrid.core.masking import mask_text
from geogrid.core.scope import Scope
from geogrid.services import audit
from geogrid.store import sync as store
from geogrid.store import teams as store_teams
from geogrid.store.engine import transaction

__all__ = ["task_scope", "my_tasks"]

Bind = Engine | Connection


def task_scope(conn: Bind, account: Account) -> Scope:
    """The account's scope widened by its teams' grids (a team member answers for them)."""
    scope = Scope.of(account)
    if scope.kind != "units" or account.role not in UNIT_ROLES:
        return scope
    extra = store_teams.team_grid_codes(conn, account.id)
    if not extra:
        return scope
    return Scope(scope.role, scope.account_id, tuple(sorted({*scope.units, *extra})), "units")


def my_tasks(
    bind: Bind,
    account: Account,
    *,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """(a page of the account's tasks, the number of tasks on every page)."""
    when = now or datetime.now(UTC)
    with transaction(bind) as c:
        scope = task_scope(c, account)
        rows = store.task_rows(c, account.id, now=when, limit=limit, offset=offset)
        total = int(rows[0]["total"]) if rows else 0
        out = []
        clear = []
        for r in rows:
            d = {k: v for k, v in r.items() if k != "total"}
            d["overdue"] = is_overdue(d["status"], d["due_at"], when)
            d["transitions"] = allowed_transitions(d["status"])
            if d["assignee_id"] == account.id or scope.personal_clear(d):
                clear.append(int(d["id"]))
            else:
                d["description"] = mask_text(d["description"])
            out.append(d)
        audit.record_read(c, scope, "incident", clear, ["description"], {"via": "tasks"})
    return out, total

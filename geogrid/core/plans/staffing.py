"""Who works which grid after a plan: the default successors, the planner's decisions,
and what is still undecided.

A publish may not leave a grid with no worker, or a worker with no grid, unless a planner
decided so explicitly. The *default* staffing after a plan: a worker keeps a grid whose
code stays; a worker of a grid that is gone follows the plan grid overlapping it most
(:func:`~geogrid.core.plans.impact.worker_successors`). The planner's decisions then apply
in order:

* ``assign`` (``grid``, ``account_id``): the worker also works ``grid``;
* ``move`` (``account_id``, ``grid``): the worker works ``grid`` only (of the plan's grids);
* ``vacancy`` (``grid``): the grid is vacant on purpose (its reports go to the community's
  admin);
* ``release`` (``account_id``): the worker is left with no grid on purpose.

Pure: the service reads the rows, calls :func:`staffing_after`, and writes the result.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from geogrid.errors import InvalidInput

__all__ = ["ACTIONS", "check_decisions", "staffing_after"]

#: the kinds of staffing decision
ACTIONS = ("assign", "move", "vacancy", "release")
#: the fields each decision kind needs
_NEEDS = {
    "assign": ("grid", "account_id"),
    "move": ("grid", "account_id"),
    "vacancy": ("grid",),
    "release": ("account_id",),
}


def check_decisions(
    decisions: Iterable[Mapping[str, Any]], plan_grids: Collection[str], workers: Collection[int]
) -> list[dict[str, Any]]:
    """The decisions as plain dicts (``action``, ``grid``, ``account_id``), checked.

    ``plan_grids``: the plan's grid codes; ``workers``: ids of the worker accounts that may
    be named.

    >>> check_decisions([{"action": "vacancy", "grid": "g1"}], ["g1"], [])
    [{'action': 'vacancy', 'grid': 'g1', 'account_id': None}]
    >>> check_decisions([{"action": "vacancy", "grid": "g9"}], ["g1"], [])
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: decisions[0].grid='g9' is not valid: expected a grid of the plan: g1
    """
    grids, ids = set(plan_grids), {int(a) for a in workers}
    out = []
    for i, d in enumerate(decisions):
        action = d.get("action")
        if action not in ACTIONS:
            raise InvalidInput(f"decisions[{i}].action", action, "one of " + ", ".join(ACTIONS))
        grid = d.get("grid")
        aid = d.get("account_id")
        for name in _NEEDS[str(action)]:
            if d.get(name) is None:
                raise InvalidInput(f"decisions[{i}].{name}", None, f"a value for {action!r}")
        if "grid" in _NEEDS[str(action)] and grid not in grids:
            allowed = "a grid of the plan: " + ", ".join(sorted(grids))
            raise InvalidInput(f"decisions[{i}].grid", grid, allowed)
        if "account_id" in _NEEDS[str(action)] and int(aid or 0) not in ids:
            raise InvalidInput(f"decisions[{i}].account_id", aid, "an active worker account id")
        out.append(
            {
                "action": str(action),
                "grid": grid if "grid" in _NEEDS[str(action)] else None,
                "account_id": int(aid or 0) if "account_id" in _NEEDS[str(action)] else None,
            }
        )
    return out


def staffing_after(
    plan_grids: Sequence[str],
    successors: Iterable[Mapping[str, Any]],
    decisions: Iterable[Mapping[str, Any]] = (),
    vacant_before: Collection[str] = (),
) -> dict[str, Any]:
    """Every plan grid's workers after the plan, and what still needs a decision.

    Parameters
    ----------
    plan_grids : the plan's grid codes
    successors : one row per (worker, old grid): ``account_id``, ``from``, ``to`` (the
        successor grid or None), as :func:`~geogrid.core.plans.impact.worker_successors`
    decisions : checked decisions (:func:`check_decisions`), applied in order
    vacant_before : grids that had no worker before the plan: still vacant, not the
        plan's doing, they need no decision

    Returns
    -------
    dict  ``grids``: code → sorted worker ids; ``workers``: account id → sorted grid codes
    (of the plan); ``vacant``: grids vacant on purpose; ``released``: workers left with no
    grid on purpose; ``issues``: one dict per undecided grid with no worker (``kind``
    ``grid_without_worker``, ``grid``) or worker with no grid (``worker_without_grid``,
    ``account_id``, ``from``); ``ready``: no issue left.

    >>> s = staffing_after(["a", "b"], [{"account_id": 1, "from": "a", "to": "a"}])
    >>> s["grids"], s["ready"]
    ({'a': [1], 'b': []}, False)
    >>> staffing_after(["a", "b"], [{"account_id": 1, "from": "a", "to": "a"}],
    ...                [{"action": "vacancy", "grid": "b"}])["ready"]
    True
    """
    codes = list(plan_grids)
    kept = set(codes)
    after: dict[int, set[str]] = {}
    old: dict[int, list[str]] = {}
    for s in successors:
        aid = int(s["account_id"])
        old.setdefault(aid, []).append(str(s["from"]))
        mine = after.setdefault(aid, set())
        if s["from"] in kept:
            mine.add(str(s["from"]))
        elif s.get("to") is not None and s["to"] in kept:
            mine.add(str(s["to"]))
    vacant: set[str] = set(vacant_before)
    released: set[int] = set()
    for d in decisions:
        action, grid, who = d["action"], str(d.get("grid")), int(d.get("account_id") or 0)
        if action == "assign":
            after.setdefault(who, set()).add(grid)
            released.discard(who)
        elif action == "move":
            after[who] = {grid}
            released.discard(who)
        elif action == "vacancy":
            vacant.add(grid)
        elif action == "release":
            after[who] = set()
            released.add(who)
    grids: dict[str, list[int]] = {c: [] for c in codes}
    for aid, mine in after.items():
        for c in mine:
            grids.setdefault(c, []).append(aid)
    grids = {c: sorted(ws) for c, ws in grids.items()}
    issues: list[dict[str, Any]] = [
        {
            "kind": "grid_without_worker",
            "grid": c,
            "account_id": None,
            "from": [],
            "message": f"grid {c} has no worker: assign one or mark it vacant",
        }
        for c in codes
        if not grids[c] and c not in vacant
    ]
    issues += [
        {
            "kind": "worker_without_grid",
            "grid": None,
            "account_id": aid,
            "from": sorted(old.get(aid, [])),
            "message": f"worker {aid} (was {', '.join(sorted(old.get(aid, [])))}) has no grid: "
            "move them to a grid or release them",
        }
        for aid, mine in sorted(after.items())
        if not mine and aid not in released
    ]
    return {
        "grids": grids,
        "workers": {aid: sorted(mine) for aid, mine in sorted(after.items())},
        "vacant": sorted(vacant & kept),
        "released": sorted(released),
        "issues": issues,
        "ready": not issues,
    }

"""The planner's in-memory state of one running service: :class:`PlanSessions`.

It lives on the :class:`~geogrid.services.context.AppContext` (``ctx.plans``), so it
belongs to one database and goes away with the context; nothing here is keyed by a
database URL.
"""

from __future__ import annotations

import threading

from geogrid.core.plans.edits import Coverage
from geogrid.core.plans.impact import ImpactSession

__all__ = ["PlanSessions"]


class PlanSessions:
    """Replayed coverages and impact sessions of the plans of one database.

    * the *base* coverage of a plan (its communities and their grids in the base version)
      is read once;
    * the *current* coverage is kept with the ids of the active edits it was replayed
      from, so an interactive session replays nothing and a new edit continues from it;
    * an :class:`~geogrid.core.plans.impact.ImpactSession` per plan and incident window is
      kept and brought up to date incrementally after each edit, undo and redo.

    Thread-safe: every read and write holds :attr:`lock` (re-entrant); a workflow holds it
    too while it updates a session.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._base: dict[int, Coverage] = {}
        self._current: dict[int, tuple[tuple[int, ...], Coverage]] = {}
        self._impact: dict[tuple[int, str], ImpactSession] = {}

    # ---- coverages
    def base(self, plan_id: int) -> Coverage | None:
        """The cached base coverage of a plan, or None."""
        with self.lock:
            return self._base.get(int(plan_id))

    def keep_base(self, plan_id: int, coverage: Coverage) -> None:
        """Remember the base coverage of a plan."""
        with self.lock:
            self._base[int(plan_id)] = coverage

    def current(self, plan_id: int) -> tuple[tuple[int, ...], Coverage] | None:
        """(ids of the active edits, coverage) last replayed for a plan, or None."""
        with self.lock:
            return self._current.get(int(plan_id))

    def keep_current(self, plan_id: int, edit_ids: tuple[int, ...], coverage: Coverage) -> None:
        """Remember the coverage of a plan after the active edits ``edit_ids``."""
        with self.lock:
            self._current[int(plan_id)] = (tuple(int(i) for i in edit_ids), coverage)

    # ---- impact sessions
    def impact(self, plan_id: int, window: str) -> ImpactSession | None:
        """The impact session of a plan for ``window`` (``"YYYY-MM-DD/YYYY-MM-DD"``), or None."""
        with self.lock:
            return self._impact.get((int(plan_id), window))

    def keep_impact(self, plan_id: int, window: str, session: ImpactSession) -> None:
        """Remember the impact session of a plan for ``window``."""
        with self.lock:
            self._impact[(int(plan_id), window)] = session

    def impact_sessions(self, plan_id: int) -> list[ImpactSession]:
        """Every impact session of a plan (one per window asked for)."""
        with self.lock:
            return [s for (p, _), s in self._impact.items() if p == int(plan_id)]

    # ---- forgetting
    def forget(self, plan_id: int) -> None:
        """Drop everything kept for one plan (the next read replays it from the database)."""
        pid = int(plan_id)
        with self.lock:
            self._base.pop(pid, None)
            self._current.pop(pid, None)
            for key in [k for k in self._impact if k[0] == pid]:
                del self._impact[key]

    def clear(self) -> None:
        """Drop everything kept for every plan."""
        with self.lock:
            self._base.clear()
            self._current.clear()
            self._impact.clear()

"""Live incident events: what the database's change notifications say, and what each
subscriber of the live map may receive.

The migration ``0014_live`` makes PostgreSQL send one notification per statement that
inserts incidents or changes their status (channel :data:`CHANNEL`), a JSON payload with
the statement's ``count``, its ``bbox`` and up to 16 ``events``. :func:`parse_batch`
reads it; :func:`visible` decides per subscriber (a :class:`~geogrid.core.scope.Scope`):

* ``city`` scopes (admin, planners, leaders, analysts) receive every event;
* ``units`` scopes (workers, community/street/district admins) only the events of their
  units (:meth:`Scope.covers`) — a worker never hears of another grid's incident;
* ``public`` (anonymous) receives every event, public fields only
  (:data:`PUBLIC_FIELDS`: what the OGC incidents collection publishes anyway).

Nothing personal is ever in a payload (the trigger selects the fields); :func:`visible`
keeps only :data:`EVENT_FIELDS` anyway, so a new column in the trigger cannot leak.

>>> b = parse_batch('{"v": 1, "kind": "new", "count": 1, "bbox": [110, 22, 110, 22], '
...                 '"events": [{"id": 7, "kind": "new", "status": "reported", '
...                 '"category": "noise", "grid_code": "450902001001001", "lon": 110, '
...                 '"lat": 22, "description": "call 138…"}]}')
>>> b.kind, b.count, b.events[0]["id"], "description" in b.events[0]
('new', 1, 7, False)
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from geogrid.core.scope import Scope

__all__ = [
    "CHANNEL",
    "EVENT_FIELDS",
    "EVENT_KINDS",
    "PUBLIC_FIELDS",
    "Batch",
    "parse_batch",
    "new_incident_payload",
    "visible",
]

#: the NOTIFY channel of incident changes (migration 0014_live)
CHANNEL: Final[str] = "geogrid_changes"
#: event kinds: a new incident, a status change; ``bulk`` stands for a statement too large
#: to list (its count and extent only)
EVENT_KINDS: Final[tuple[str, ...]] = ("new", "status", "bulk")
#: the fields an event may carry (the payload of the trigger)
EVENT_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "kind",
    "status",
    "category",
    "grid_code",
    "community_code",
    "street_code",
    "district_code",
    "lon",
    "lat",
    "reported_at",
)
#: the fields an anonymous subscriber receives
PUBLIC_FIELDS: Final[tuple[str, ...]] = EVENT_FIELDS


@dataclass(frozen=True)
class Batch:
    """One notification: ``kind`` (new/status), ``count`` of rows of the statement,
    ``bbox`` (west, south, east, north; None when unknown), the listed ``events`` and
    whether the list is ``truncated``."""

    kind: str
    count: int
    bbox: tuple[float, float, float, float] | None
    events: tuple[dict[str, Any], ...]
    truncated: bool


def parse_batch(payload: str) -> Batch | None:
    """A notification's payload → :class:`Batch`, or None when it is not one of ours
    (a malformed payload is ignored rather than breaking the listener)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1 or doc.get("kind") not in EVENT_KINDS:
        return None
    events = []
    for e in doc.get("events") or ():
        if isinstance(e, dict) and isinstance(e.get("id"), int):
            events.append({k: e.get(k) for k in EVENT_FIELDS})
    bbox = doc.get("bbox")
    box = None
    if isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox):
        box = (float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3]))
    count = doc.get("count")
    return Batch(
        str(doc["kind"]),
        int(count) if isinstance(count, int) else len(events),
        box,
        tuple(events),
        bool(doc.get("truncated")),
    )


def new_incident_payload(incident: Mapping[str, Any]) -> str:
    """The notification of one new incident, as migration 0014's insert trigger writes it
    (for a writer that notifies after its commit). ``incident`` has :data:`EVENT_FIELDS`
    but ``kind``; ``lon``/``lat`` are WGS84 degrees.

    >>> b = parse_batch(new_incident_payload({"id": 3, "status": "reported",
    ...     "category": "noise", "grid_code": "450902001001001", "lon": 110.12345678,
    ...     "lat": 22.5, "reported_at": "2026-05-01T08:00:00+00:00"}))
    >>> b.count, b.bbox, b.events[0]["lon"], b.events[0]["kind"]
    (1, (110.12345678, 22.5, 110.12345678, 22.5), 110.1234568, 'new')
    """
    lon, lat = float(incident["lon"]), float(incident["lat"])
    event: dict[str, Any] = {k: incident.get(k) for k in EVENT_FIELDS}
    event.update(kind="new", lon=round(lon, 7), lat=round(lat, 7))
    at = event.get("reported_at")
    if at is not None and not isinstance(at, str):
        event["reported_at"] = at.isoformat()
    doc = {
        "v": 1,
        "kind": "new",
        "count": 1,
        "truncated": False,
        "bbox": [lon, lat, lon, lat],
        "events": [event],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def visible(scope: Scope, event: Mapping[str, Any]) -> dict[str, Any] | None:
    """What a subscriber of ``scope`` receives of ``event`` (None: nothing).

    >>> from geogrid.core.accounts import Account
    >>> e = {"id": 1, "kind": "new", "grid_code": "450902001001001",
    ...      "community_code": "450902001001", "street_code": "450902001",
    ...      "district_code": "450902"}
    >>> w = Scope.of(Account(7, "李梅", "worker", ("450902001001002",)))
    >>> visible(w, e) is None
    True
    >>> visible(Scope.public(), e)["id"]
    1
    """
    if not scope.covers(event):
        return None
    fields = PUBLIC_FIELDS if scope.is_public else EVENT_FIELDS
    return {k: event.get(k) for k in fields}

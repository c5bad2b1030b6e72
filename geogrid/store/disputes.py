"""The SQL of disputes (矛盾纠纷) and their mediation sessions (revision 0012).

Every read takes the caller's scope (:func:`geogrid.store.scope.scope_condition` with
``personal=True``: the parties are personal, so anonymous callers read none).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS
from geogrid.core.scope import Scope
from geogrid.store.engine import connection
from geogrid.store.scope import scope_condition
from geogrid.store.tables import metadata

__all__ = [
    "dispute",
    "dispute_session",
    "units_at",
    "incident_place",
    "insert_dispute",
    "lock_dispute",
    "update_dispute",
    "insert_session",
    "dispute_rows",
    "session_rows",
]

dispute = Table(
    "dispute",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("incident_id", BigInteger, ForeignKey("incident.id", ondelete="SET NULL")),
    Column("cause", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="open"),
    Column("parties", JSONB, nullable=False),
    Column("geom", Geometry("POINT", srid=4326, spatial_index=False)),
    *[Column(c, Text) for c in ATTRIBUTION_COLUMNS],
    Column("created_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("closed_at", DateTime(timezone=True)),
    Column("outcome", Text),
    Column("outcome_note", Text),
    CheckConstraint(
        "status IN ('open', 'mediating', 'resolved', 'referred', 'agreement')",
        name="dispute_status",
    ),
    CheckConstraint(
        "outcome IS NULL OR outcome IN ('resolved', 'referred', 'agreement')",
        name="dispute_outcome",
    ),
)
Index("dispute_grid", dispute.c.grid_code, dispute.c.created_at)
Index("dispute_community", dispute.c.community_code, dispute.c.created_at)
Index("dispute_incident", dispute.c.incident_id)
dispute_session = Table(
    "dispute_session",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dispute_id", BigInteger, ForeignKey("dispute.id", ondelete="CASCADE"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("mediator_id", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("note", Text),
    Column("outcome", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
Index("dispute_session_dispute", dispute_session.c.dispute_id, dispute_session.c.at)

Bind = Engine | Connection
_UNITS = ", ".join(f"d.{c}" for c in ATTRIBUTION_COLUMNS)


def units_at(bind: Bind, lon: float, lat: float) -> dict[str, str]:
    """level → code of the published units covering a WGS84 point."""
    with connection(bind) as c:
        rows = c.execute(
            text(
                "SELECT u.level, u.code FROM unit u JOIN boundary_version v ON v.id = "
                "u.version_id AND v.status = 'published' WHERE ST_Intersects(u.geom, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) ORDER BY u.code"
            ),
            {"lon": float(lon), "lat": float(lat)},
        ).all()
    out: dict[str, str] = {}
    for level, code in rows:
        out.setdefault(str(level), str(code))
    return out


def incident_place(bind: Bind, incident_id: int) -> dict[str, Any] | None:
    """The unit codes and WGS84 lon/lat of an incident (no scope: the service checks the
    actor may act on it), or None."""
    with connection(bind) as c:
        row = (
            c.execute(
                text(
                    "SELECT i.id, "
                    + ", ".join(f"i.{col}" for col in ATTRIBUTION_COLUMNS)
                    + ", ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat FROM incident i "
                    "WHERE i.id = :id"
                ),
                {"id": int(incident_id)},
            )
            .mappings()
            .first()
        )
    return None if row is None else dict(row)


def insert_dispute(
    conn: Connection, values: Mapping[str, Any], lon: float | None, lat: float | None
) -> int:
    """A new dispute (``parties`` a list, written as JSONB); its id."""
    cols = [
        "incident_id",
        "cause",
        "category",
        "status",
        *ATTRIBUTION_COLUMNS,
        "created_by",
        "created_at",
        "updated_at",
    ]
    params = {c: values.get(c) for c in cols}
    params["parties"] = json.dumps(values["parties"], ensure_ascii=False)
    params["lon"], params["lat"] = lon, lat
    geom = (
        "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
        if lon is not None and lat is not None
        else "NULL"
    )
    v = conn.execute(
        text(
            f"INSERT INTO dispute ({', '.join(cols)}, parties, geom) VALUES "
            f"({', '.join(':' + c for c in cols)}, CAST(:parties AS jsonb), {geom}) RETURNING id"
        ),
        params,
    ).scalar_one()
    return int(v)


_SELECT = (
    "SELECT d.id, d.incident_id, d.cause, d.category, d.status, d.parties, "
    f"{_UNITS}, ST_X(d.geom) AS lon, ST_Y(d.geom) AS lat, d.created_by, d.created_at, d.updated_at, d.closed_at, d.outcome, "
    "d.outcome_note, (SELECT count(*) FROM dispute_session s WHERE s.dispute_id = d.id) "
    "AS session_count FROM dispute d "
)


def lock_dispute(conn: Connection, dispute_id: int) -> dict[str, Any] | None:
    """A dispute's status and unit codes, locked FOR UPDATE (no scope: the service
    checks), or None."""
    row = (
        conn.execute(
            text(f"SELECT d.id, d.status, {_UNITS} FROM dispute d WHERE d.id = :id FOR UPDATE"),
            {"id": int(dispute_id)},
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


def update_dispute(conn: Connection, dispute_id: int, values: Mapping[str, Any]) -> None:
    """Set ``status``, ``updated_at`` and optionally ``closed_at``, ``outcome``,
    ``outcome_note``."""
    allowed = ("status", "updated_at", "closed_at", "outcome", "outcome_note")
    sets = {k: v for k, v in values.items() if k in allowed}
    if not sets:
        return
    conn.execute(
        text("UPDATE dispute SET " + ", ".join(f"{k} = :{k}" for k in sets) + " WHERE id = :_id"),
        {**sets, "_id": int(dispute_id)},
    )


def insert_session(
    conn: Connection,
    dispute_id: int,
    *,
    at: datetime,
    mediator_id: int | None,
    note: str | None,
    outcome: str | None,
) -> int:
    """A mediation session of a dispute; its id."""
    v = conn.execute(
        text(
            "INSERT INTO dispute_session (dispute_id, at, mediator_id, note, outcome) "
            "VALUES (:d, :at, :m, :note, :outcome) RETURNING id"
        ),
        {"d": int(dispute_id), "at": at, "m": mediator_id, "note": note, "outcome": outcome},
    ).scalar_one()
    return int(v)


def dispute_rows(
    bind: Bind,
    *,
    scope: Scope,
    ids: Sequence[int] | None = None,
    statuses: Sequence[str] | None = None,
    unit_column: str | None = None,
    unit_code: str | None = None,
    incident_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Disputes inside ``scope`` matching every filter, newest first."""
    cond_sql, params = scope_condition(scope, "d", personal=True)
    cond = [cond_sql]
    if ids is not None:
        cond.append("d.id = ANY(:ids)")
        params["ids"] = [int(i) for i in ids]
    if statuses is not None:
        cond.append("d.status = ANY(:statuses)")
        params["statuses"] = list(statuses)
    if unit_column is not None and unit_code is not None:
        if unit_column not in ATTRIBUTION_COLUMNS:
            raise ValueError(f"not an attribution column: {unit_column!r}")
        cond.append(f"d.{unit_column} = :unit")
        params["unit"] = unit_code
    if incident_id is not None:
        cond.append("d.incident_id = :incident")
        params["incident"] = int(incident_id)
    params.update(limit=int(limit), offset=int(offset))
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    _SELECT + "WHERE " + " AND ".join(cond) + " ORDER BY d.created_at DESC, "
                    "d.id DESC LIMIT :limit OFFSET :offset"
                ),
                params,
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]


def session_rows(bind: Bind, dispute_ids: Sequence[int]) -> list[dict[str, Any]]:
    """Sessions of the disputes, oldest first (the mediator by account id: staff names
    are not part of a dispute's record)."""
    if not dispute_ids:
        return []
    with connection(bind) as c:
        rows = (
            c.execute(
                text(
                    "SELECT s.id, s.dispute_id, s.at, s.mediator_id, "
                    "s.note, s.outcome, s.created_at FROM dispute_session s "
                    "WHERE s.dispute_id = ANY(:ids) ORDER BY "
                    "s.dispute_id, s.at, s.id"
                ),
                {"ids": [int(i) for i in dispute_ids]},
            )
            .mappings()
            .all()
        )
    return [dict(r) for r in rows]

"""Media in the database: rows of ``media``, ``media_uploader`` and ``media_link``
(revision 0010) in and out, and the one query deciding who may read a file.

SQL only; the files themselves are kept by :mod:`geogrid.services.media` (a
``MediaStore``), the rules (types, roles, owner kinds) are in :mod:`geogrid.core.media`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from geogrid.core.scope import CLEAR_CITY_ROLES, Scope
from geogrid.store.engine import connection
from geogrid.store.scope import scope_condition
from geogrid.store.tables import metadata

__all__ = [
    "media",
    "media_uploader",
    "media_link",
    "MEDIA_COLUMNS",
    "insert_media",
    "add_uploader",
    "media_row",
    "media_rows",
    "may_read",
    "insert_links",
    "links_of",
    "OPTIONAL_OWNERS",
]

media = Table(
    "media",
    metadata,
    Column("sha256", Text, primary_key=True),
    Column("mime", Text, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("width", Integer),
    Column("height", Integer),
    Column("duration_s", Float),
    Column("exif_lon", Float),
    Column("exif_lat", Float),
    Column("exif_taken_at", DateTime(timezone=True)),
    Column("uploaded_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("thumb", Boolean, nullable=False, server_default=text("false")),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="media_sha256"),
)
Index("media_uploaded_by", media.c.uploaded_by)

# everyone who uploaded the same bytes (proved by sending them whole): they may read and
# attach the file as its uploader
media_uploader = Table(
    "media_uploader",
    metadata,
    Column("sha256", Text, ForeignKey("media.sha256", ondelete="CASCADE"), nullable=False),
    Column("account_id", Integer, ForeignKey("account.id", ondelete="CASCADE"), nullable=False),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("sha256", "account_id", name="media_uploader_pkey"),
)

media_link = Table(
    "media_link",
    metadata,
    Column("sha256", Text, ForeignKey("media.sha256", ondelete="CASCADE"), nullable=False),
    Column("owner_kind", Text, nullable=False),
    Column("owner_id", BigInteger, nullable=False),
    Column("role", Text, nullable=False, server_default="attachment"),
    Column("added_by", Integer, ForeignKey("account.id", ondelete="SET NULL")),
    Column("added_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("sha256", "owner_kind", "owner_id", name="media_link_pkey"),
    CheckConstraint(
        "owner_kind IN ('incident', 'service_entry', 'dispute', 'patrol')",
        name="media_link_owner_kind",
    ),
)
Index("media_link_owner", media_link.c.owner_kind, media_link.c.owner_id)

#: columns of the rows :func:`media_row` returns
MEDIA_COLUMNS = tuple(c.name for c in media.columns)

#: owners other than incidents whose tables carry the four unit codes (created by other
#: revisions; a kind whose table does not exist is skipped)
OPTIONAL_OWNERS = {"service_entry": "service_entry", "dispute": "dispute"}


def insert_media(conn: Connection, values: dict[str, Any], uploader: int | None) -> bool:
    """Store a file's row (kept when the same bytes are stored already) and its uploader;
    True when the row is new."""
    new = conn.execute(
        pg_insert(media)
        .values(**values, uploaded_by=uploader)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(media.c.sha256)
    ).first()
    if uploader is not None:
        add_uploader(conn, values["sha256"], uploader)
    return new is not None


def add_uploader(conn: Connection, sha256: str, account_id: int) -> None:
    """Record that an account sent a file's bytes (it may read and attach it)."""
    conn.execute(
        pg_insert(media_uploader)
        .values(sha256=sha256, account_id=int(account_id))
        .on_conflict_do_nothing()
    )


def media_row(bind: Engine | Connection, sha256: str) -> dict[str, Any] | None:
    """One file's row (None if none)."""
    with connection(bind) as c:
        row = c.execute(select(media).where(media.c.sha256 == sha256)).mappings().first()
    return None if row is None else dict(row)


def media_rows(conn: Connection, sha256s: Sequence[str]) -> dict[str, dict[str, Any]]:
    """sha256 → row of the files that exist among ``sha256s``."""
    rows = conn.execute(select(media).where(media.c.sha256.in_(list(sha256s)))).mappings()
    return {r["sha256"]: dict(r) for r in rows}


def _tables(conn: Connection, names: Iterable[str]) -> set[str]:
    rows = conn.execute(
        text("SELECT t FROM unnest(CAST(:names AS text[])) AS t WHERE to_regclass(t) IS NOT NULL"),
        {"names": list(names)},
    )
    return {str(r) for r in rows.scalars()}


def may_read(conn: Connection, sha256: str, scope: Scope) -> bool:
    """May ``scope`` read a file? Its uploaders may; so may callers whose scope shows the
    personal fields of an owner it is attached to (an incident, service entry or dispute
    in their units; everything for admin and system); a patrol's own worker."""
    if scope.kind == "public":
        return False
    if scope.kind == "city" and scope.role in CLEAR_CITY_ROLES:
        return media_row(conn, sha256) is not None
    if scope.kind == "city":  # planners, leaders, analysts read masked: no photos
        owners = ["FALSE"]
        params: dict[str, Any] = {}
    else:
        cond, params = scope_condition(scope, "o", personal=True)
        owners = [
            "EXISTS (SELECT 1 FROM media_link l JOIN incident o ON o.id = l.owner_id "
            f"WHERE l.sha256 = :s AND l.owner_kind = 'incident' AND {cond})"
        ]
        for kind in sorted(_tables(conn, OPTIONAL_OWNERS.values())):
            owners.append(
                f"EXISTS (SELECT 1 FROM media_link l JOIN {kind} o ON o.id = l.owner_id "
                f"WHERE l.sha256 = :s AND l.owner_kind = '{kind}' AND {cond})"
            )
        if _tables(conn, ["patrol"]):
            owners.append(
                "EXISTS (SELECT 1 FROM media_link l JOIN patrol o ON o.id = l.owner_id "
                "WHERE l.sha256 = :s AND l.owner_kind = 'patrol' AND o.account_id = :a)"
            )
    sql = (
        "SELECT EXISTS (SELECT 1 FROM media_uploader u WHERE u.sha256 = :s AND "
        "u.account_id = :a) OR " + " OR ".join(owners)
    )
    return bool(
        conn.execute(text(sql), {"s": sha256, "a": scope.account_id or 0, **params}).scalar()
    )


def insert_links(
    conn: Connection,
    sha256s: Sequence[str],
    *,
    owner_kind: str,
    owner_id: int,
    role: str,
    added_by: int | None,
) -> int:
    """Attach files to an owner (a file attached already keeps its first role); returns
    how many links are new."""
    if not sha256s:
        return 0
    result = conn.execute(
        pg_insert(media_link)
        .values(
            [
                {
                    "sha256": s,
                    "owner_kind": owner_kind,
                    "owner_id": int(owner_id),
                    "role": role,
                    "added_by": added_by,
                }
                for s in sha256s
            ]
        )
        .on_conflict_do_nothing()
    )
    return int(result.rowcount)


def links_of(
    bind: Engine | Connection, owner_kind: str, owner_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """owner id → its files (sha256, role, mime, width, height, thumb, added_at, added_by),
    in the order they were attached."""
    if not owner_ids:
        return {}
    q = (
        select(
            media_link.c.owner_id,
            media_link.c.sha256,
            media_link.c.role,
            media_link.c.added_at,
            media_link.c.added_by,
            media.c.mime,
            media.c.width,
            media.c.height,
            media.c.thumb,
        )
        .join(media, media.c.sha256 == media_link.c.sha256)
        .where(
            media_link.c.owner_kind == owner_kind,
            media_link.c.owner_id.in_([int(i) for i in owner_ids]),
        )
        .order_by(media_link.c.owner_id, media_link.c.added_at, media_link.c.sha256)
    )
    out: dict[int, list[dict[str, Any]]] = {}
    with connection(bind) as c:
        for r in c.execute(q).mappings():
            d = dict(r)
            out.setdefault(int(d.pop("owner_id")), []).append(d)
    return out

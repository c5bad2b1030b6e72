"""Import of the base-information registry (issue 15): buildings, households, people,
organisations and care groups from the spreadsheets communities keep.

Per file: read (``.xlsx``, CSV in UTF-8/UTF-8-BOM/GB18030, GeoParquet) → map the headers to
fields (:mod:`geogrid.core.registry.columns`, a mapping file may add headers) → check every
row (ID checksum, birth date and sex against the ID number, social credit code checksum,
phone format, duplicates in the file) → seal ID numbers and phones (AES-GCM), blind-index
and mask them, make the search grams → in ONE transaction: binary ``COPY`` into a staging
table, check against the stored registry (a person already in another household, an
unknown building), upsert on the natural key, set the units' population/households from
the registry, write an audit row. All or nothing: with a bad row and without ``skip_bad``
nothing is written; with ``skip_bad`` the bad rows go to a rejects CSV (file, row, field,
masked value, message) and the others are loaded. Re-importing a file changes nothing.

Nothing personal is logged or stored in clear: messages and rejects carry masked values,
the audit row carries counts and the file's name.
"""

from __future__ import annotations

import csv
import mmap
import multiprocessing
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pgpq import ArrowToPostgresBinaryEncoder
from sqlalchemy import Connection, Engine, text

from geogrid.core.accounts import Account
from geogrid.core.attribution import Attributor
from geogrid.core.hierarchy import ATTRIBUTION_COLUMNS
from geogrid.core.masking import mask_name
from geogrid.core.registry.care import CARE_GROUPS
from geogrid.core.registry.columns import (
    EXPORT_ROLES,
    FIELDS,
    HEADERS,
    KINDS,
    CheckedRows,
    check_rows,
    guess_kind,
    load_mapping,
    mask_value,
    resolve_columns,
)
from geogrid.core.registry.crypto import Vault
from geogrid.core.registry.files import read_table
from geogrid.core.registry.grams import grams_arrow, grams_lists
from geogrid.core.registry.ids import (
    arrow_strings,
    id_numbers_ok,
    mask_ids,
    mask_phones,
    normalise_phones,
    uscc_problems,
)
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, FileInputError, Forbidden, InvalidInput, NotFound, RowError
from geogrid.services import audit
from geogrid.services.attribution import attributor_for_version
from geogrid.services.registry_keys import vault as make_vault
from geogrid.settings import Settings, get_settings
from geogrid.store import registry as store
from geogrid.store.units import published_version_id

__all__ = [
    "RegistryImport",
    "import_registry",
    "export_registry",
    "load_checked",
    "prepare_stage",
    "refresh_unit_counts",
    "reattribute_registry",
    "load_registry",
]

_STAGE = "reg_stage"
_CARE_STAGE = "reg_stage_care"
_HH_STAGE = "reg_stage_hh"
_REJECT_COLUMNS = ["file", "row", "field", "value", "message"]


@dataclass
class RegistryImport:
    """What an import did (no personal value)."""

    file: str
    kind: str
    rows: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    households_created: int = 0
    care: int = 0
    units_updated: int = 0
    rejects_path: str | None = None
    seconds: float = 0.0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------- prepare
def _codes(att: Attributor | None, lon: pd.Series, lat: pd.Series) -> pd.DataFrame:
    """Unit codes (and the version) of the rows with a position; None elsewhere."""
    n = len(lon)
    cols = {c: np.full(n, None, dtype=object) for c in ATTRIBUTION_COLUMNS}
    vid = np.zeros(n, dtype=np.int64)
    has = lon.notna().to_numpy() & lat.notna().to_numpy()
    if att is not None and has.any():
        codes = att.attribute(lon.to_numpy()[has], lat.to_numpy()[has])
        for c in ATTRIBUTION_COLUMNS:
            cols[c][has] = codes[c].to_numpy(dtype=object)
        vid[has] = att.version_id or 0
    out = pd.DataFrame(cols)
    out["version_id"] = pd.array(np.where(vid > 0, vid, 0), dtype="Int64")
    out.loc[(vid == 0) | out["grid_code"].isna().to_numpy(), "version_id"] = pd.NA
    return out


def _str(values: Any) -> pa.Array:
    return pa.array(
        [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values],
        pa.string(),
    )


def _joined(a: pd.Series, b: pd.Series) -> list[str | None]:
    return [
        " ".join(x for x in (u, v) if isinstance(x, str) and x) or None
        for u, v in zip(a, b, strict=True)
    ]


def _seal_chunk(args: tuple[Vault, list[str], list[str | None]]) -> tuple[list[Any], ...]:
    vault, ids, phones = args
    return (
        vault.seal_many(ids),
        vault.blind_many("id", ids),
        vault.seal_many(phones),
        vault.blind_many("phone", phones),
    )


def _seal(
    vault: Vault, ids: list[str], phones: list[str | None], workers: int
) -> tuple[list[Any], ...]:
    """Seal and blind ID numbers and phones (in ``workers`` processes for big inputs)."""
    n = len(ids)
    if workers <= 1 or n < 200_000:
        return _seal_chunk((vault, ids, phones))
    step = -(-n // (workers * 4))
    chunks = [(vault, ids[i : i + step], phones[i : i + step]) for i in range(0, n, step)]
    out: tuple[list[Any], ...] = ([], [], [], [])
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for part in pool.map(_seal_chunk, chunks):
            for acc, got in zip(out, part, strict=True):
                acc.extend(got)
    return out


def prepare_stage(
    kind: str,
    rows: pd.DataFrame,
    vault: Vault,
    att: Attributor | None,
    *,
    workers: int = 1,
) -> tuple[pa.Table, pa.Table | None]:
    """The staging rows of checked rows (and the care rows of a people file): values
    sealed, blinded and masked, search grams made, rows with a position attributed."""
    n = len(rows)
    row = pa.array(rows["row"].to_numpy(dtype=np.int64))
    cols: dict[str, Any] = {"row": row}
    lon = pd.to_numeric(rows.get("lon", pd.Series([None] * n)), errors="coerce")
    lat = pd.to_numeric(rows.get("lat", pd.Series([None] * n)), errors="coerce")
    lon.index = lat.index = rows.index
    care: pa.Table | None = None
    if kind in ("people", "care"):
        ids = rows["id_number"].astype(str).tolist()
    if kind == "buildings":
        cols.update(
            ref=_str(rows["building_ref"]),
            name=_str(rows["name"]),
            address=_str(rows["address"]),
            floors=pa.array(rows["floors"].astype("Int64"), pa.int64()),
            use=_str(rows["use"]),
            addr_grams=pa.array(grams_lists(_joined(rows["name"], rows["address"])),
                                pa.list_(pa.string())),
        )  # fmt: skip
    elif kind == "households":
        cols.update(
            household_ref=_str(rows["household_ref"]),
            address=_str(rows["address"]),
            building_ref=_str(rows["building_ref"]),
            room=_str(rows["room"]),
            addr_grams=pa.array(grams_lists(rows["address"]), pa.list_(pa.string())),
        )
    elif kind == "orgs":
        cols.update(
            uscc=_str(rows["uscc"]),
            name=_str(rows["name"]),
            kind=_str(rows["kind"]),
            address=_str(rows["address"]),
            building_ref=_str(rows["building_ref"]),
            addr_grams=pa.array(grams_lists(_joined(rows["name"], rows["address"])),
                                pa.list_(pa.string())),
        )  # fmt: skip
    elif kind == "people":
        phones = [p if isinstance(p, str) and p else None for p in rows["phone"]]
        id_enc, id_blind, phone_enc, phone_blind = _seal(vault, ids, phones, workers)
        cols.update(
            household_ref=_str(rows["household_ref"]),
            building_ref=_str(rows["building_ref"]),
            room=_str(rows["room"]),
            name=_str(rows["name"]),
            sex=_str(rows["sex"]),
            birth_date=pa.array(rows["birth_date"], pa.date32()),
            id_enc=pa.array(id_enc, pa.binary()),
            id_blind=pa.array(id_blind, pa.binary()),
            id_mask=pa.array(mask_ids(ids), pa.string()),
            phone_enc=pa.array(phone_enc, pa.binary()),
            phone_blind=pa.array(phone_blind, pa.binary()),
            phone_mask=pa.array(mask_phones(np.array(phones, dtype=object)), pa.string()),
            relation=_str(rows["relation"]),
            residence=_str(rows["residence"]),
            address=_str(rows["address"]),
            name_grams=pa.array(grams_lists(rows["name"]), pa.list_(pa.string())),
            addr_grams=pa.array(grams_lists(rows["address"]), pa.list_(pa.string())),
        )
        care = _care_table(rows["row"], id_blind, rows["care"], None, None, None)
    elif kind == "care":
        blinds = vault.blind_many("id", ids)
        care = _care_table(
            rows["row"], blinds, rows["care"], rows["visit_every_days"], rows["since"],
            rows["note"],
        )  # fmt: skip
        cols.update(id_blind=pa.array(blinds, pa.binary()))
        return pa.table(cols), care
    if kind in ("buildings", "households", "people", "orgs"):
        codes = _codes(att, lon, lat)
        cols.update(
            lon=pa.array(lon.to_numpy(dtype=float), pa.float64(), mask=lon.isna().to_numpy()),
            lat=pa.array(lat.to_numpy(dtype=float), pa.float64(), mask=lat.isna().to_numpy()),
        )
        for c in ATTRIBUTION_COLUMNS:
            cols[c] = _str(codes[c])
        cols["version_id"] = pa.array(codes["version_id"], pa.int64())
    return pa.table(cols), care


def _care_table(
    rownums: pd.Series,
    blinds: Sequence[bytes | None],
    groups: pd.Series,
    every: pd.Series | None,
    since: pd.Series | None,
    note: pd.Series | None,
) -> pa.Table:
    out: dict[str, list[Any]] = {k: [] for k in
                                 ("row", "id_blind", "group_code", "visit_every_days", "since",
                                  "note")}  # fmt: skip
    for i, codes in enumerate(groups):
        for code in codes or []:
            out["row"].append(int(rownums.iloc[i]))
            out["id_blind"].append(blinds[i])
            out["group_code"].append(code)
            days = None if every is None else every.iloc[i]
            out["visit_every_days"].append(
                int(days) if days is not None and not pd.isna(days)
                else CARE_GROUPS[code].visit_every_days
            )  # fmt: skip
            out["since"].append(None if since is None else since.iloc[i])
            out["note"].append(None if note is None else note.iloc[i])
    return pa.table(
        {
            "row": pa.array(out["row"], pa.int64()),
            "id_blind": pa.array(out["id_blind"], pa.binary()),
            "group_code": pa.array(out["group_code"], pa.string()),
            "visit_every_days": pa.array(out["visit_every_days"], pa.int64()),
            "since": pa.array(out["since"], pa.date32()),
            "note": _str(out["note"]),
        }
    )


# ----------------------------------------------------------------------------- load
def refresh_unit_counts(conn: Connection, *, complete: bool = False) -> int:
    """Set the published version's units' population, households and floating count
    from the registry (units holding registry records; all units with ``complete``:
    the registry covers the city); returns the units updated."""
    vid = published_version_id(conn)
    if vid is None:
        return 0
    return store.update_unit_counts(conn, vid, complete=complete)


def reattribute_registry(
    conn: Connection, version_id: int, grid_codes: Sequence[str] | None = None
) -> dict[str, int]:
    """Re-attribute the registry to the grids of ``version_id`` inside the caller's
    transaction (a publish: only the grids in ``grid_codes``, those the plan changed), then
    refresh the units' counts from the registry. Returns the records moved per table."""
    moved = store.reattribute(conn, version_id, grid_codes)
    if any(moved.values()):
        store.update_unit_counts(conn, version_id)
    return moved


def load_checked(
    conn: Connection,
    kind: str,
    checked: CheckedRows,
    vault: Vault,
    att: Attributor | None,
    *,
    file: str,
    skip_bad: bool,
    workers: int = 1,
) -> tuple[RegistryImport, list[RowError]]:
    """Stage, check against the stored registry and upsert checked rows of one kind in
    the caller's transaction. Raises FileInputError (nothing of the file is kept: the
    caller's transaction rolls back) when a row is bad and not ``skip_bad``; returns the
    summary and the rejected rows' problems otherwise."""
    report = RegistryImport(file=file, kind=kind, rows=len(checked.rows))
    problems = [
        RowError(file, int(row), str(fld), str(msg), value)
        for row, fld, value, msg in checked.errors[["row", "field", "value", "message"]].itertuples(
            index=False
        )
    ]
    good = checked.rows[~checked.rows["row"].isin(checked.bad_rows)].reset_index(drop=True)
    stage, care = prepare_stage(kind, good, vault, att, workers=workers)
    store.copy_stage(conn, _STAGE, stage)
    conflicts = store.stage_conflicts(conn, _STAGE, kind)
    if len(conflicts):
        by_row = checked.rows.set_index("row")
        for row, fld, msg in conflicts[["row", "field", "message"]].itertuples(index=False):
            value = by_row.at[int(row), fld] if fld in by_row else None
            problems.append(RowError(file, int(row), str(fld), str(msg), mask_value(fld, value)))
    problems.sort(key=lambda e: (e.row or 0, e.field or ""))
    if problems and not skip_bad:
        raise FileInputError(file, problems)
    bad = sorted({int(r) for r in conflicts["row"]}) if len(conflicts) else []
    store.delete_stage_rows(conn, _STAGE, bad)
    staged = store.stage_rows(conn, _STAGE)
    if kind == "buildings":
        counts = store.upsert_buildings(conn, _STAGE)
    elif kind == "households":
        counts = store.upsert_households(conn, _STAGE)
    elif kind == "orgs":
        counts = store.upsert_orgs(conn, _STAGE)
    elif kind == "people":
        report.households_created = store.upsert_households(conn, _STAGE, only_new=True)["inserted"]
        counts = store.upsert_people(conn, _STAGE)
    else:
        counts = {"inserted": 0, "updated": 0}
    if care is not None and care.num_rows:
        store.copy_stage(conn, _CARE_STAGE, care)
        store.delete_stage_rows(conn, _CARE_STAGE, bad)
        c = store.upsert_care(conn, _CARE_STAGE)
        report.care = c["inserted"] + c["updated"]
        if kind == "care":
            counts = c
    report.inserted = counts["inserted"]
    report.updated = counts["updated"]
    report.unchanged = staged - counts["inserted"] - counts["updated"] if kind != "care" else 0
    report.rejected = len({e.row for e in problems})
    return report, problems


def _attributor(engine: Engine) -> Attributor | None:
    try:
        return attributor_for_version(engine)
    except NotFound:
        return None


def import_registry(
    engine: Engine,
    path: str | Path,
    *,
    kind: str | None = None,
    mapping: str | Path | None = None,
    skip_bad: bool = False,
    rejects_path: str | Path | None = None,
    actor: Account | None = None,
    settings: Settings | None = None,
    workers: int = 1,
    on_progress: Callable[[str], None] | None = None,
) -> RegistryImport:
    """Import one registry file (see the module doc) in one transaction.

    Parameters
    ----------
    kind : ``people``, ``households``, ``buildings``, ``orgs`` or ``care``; default:
        guessed from the columns (a social credit code → orgs, an ID number and a name →
        people, an ID number alone → care, a household number → households, else buildings)
    mapping : a TOML/JSON file of ``header = field`` lines for headers not known already
    skip_bad : load the good rows, write the bad ones to ``rejects_path`` (default
        ``<file>.rejects.csv``)

    Raises
    ------
    FileInputError  the file cannot be read, lacks a required column, or (without
        ``skip_bad``) has bad rows — each named with file, row and field; nothing written
    InvalidInput  an unknown kind or a bad mapping file
    """
    t0 = time.perf_counter()
    path = Path(path)
    say = on_progress or (lambda _m: None)
    settings = settings or get_settings()
    if kind is not None and kind not in KINDS:
        raise InvalidInput("kind", kind, ", ".join(KINDS))
    try:
        extra = load_mapping(Path(mapping)) if mapping is not None else None
    except (OSError, ValueError) as exc:
        raise InvalidInput("mapping", str(mapping), "a TOML/JSON file of header = field",
                           str(exc)) from None  # fmt: skip
    try:
        raw, numbers = read_table(path)
    except (OSError, ValueError) as exc:
        raise FileInputError(str(path), f"cannot read the file: {exc}") from None
    headers = [str(h) for h in raw.columns]
    if kind is None:
        table = resolve_columns_any(headers, extra)
        kind = guess_kind(table.values())
    try:
        cols = resolve_columns(headers, kind, extra)
    except ValueError as exc:
        raise FileInputError(str(path), str(exc)) from None
    frame = raw[list(cols)].rename(columns=cols)
    say(f"{path.name}: {len(frame)} {kind} rows read")
    checked = check_rows(frame, kind, row_numbers=numbers)
    vault = make_vault(settings)
    att = _attributor(engine) if kind != "care" else None
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('geogrid registry import'))"))
        report, problems = load_checked(
            conn, kind, checked, vault, att, file=str(path), skip_bad=skip_bad, workers=workers
        )
        report.units_updated = refresh_unit_counts(conn)
        audit.record(
            conn,
            actor=actor,
            action="registry.import",
            resource="registry",
            ids=[],
            detail={
                "file": path.name,
                "kind": kind,
                "rows": report.rows,
                "inserted": report.inserted,
                "updated": report.updated,
                "rejected": report.rejected,
            },
        )
    if problems:
        rp = Path(rejects_path) if rejects_path else path.with_suffix(".rejects.csv")
        write_rejects(rp, problems)
        report.rejects_path = str(rp)
        report.problems = [e.to_dict() for e in problems]
    report.seconds = round(time.perf_counter() - t0, 2)
    return report


def resolve_columns_any(headers: Sequence[str], extra: dict[str, str] | None) -> dict[str, str]:
    """Headers → fields of any kind (to guess a file's kind)."""
    known = {f for fs in FIELDS.values() for f in fs}
    table = {**HEADERS, **{f: f for f in known}, **(extra or {})}
    return {h: table[h.strip()] for h in headers if h.strip() in table}


def write_rejects(path: Path, problems: Sequence[RowError]) -> None:
    """The rejects CSV (UTF-8 with BOM, for Excel): file, row, field, masked value,
    message."""
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(_REJECT_COLUMNS)
        for e in problems:
            w.writerow([e.file, e.row, e.field, "" if e.value is None else e.value, e.message])


def export_registry(
    engine: Engine,
    scope: Scope,
    kind: str,
    out: str | Path,
    *,
    reason: str,
    clear: bool = False,
    unit: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Write the registry records of ``kind`` within the caller's ``scope`` to a CSV
    (UTF-8 with BOM), with an audit row naming the reason.

    People are exported only by :data:`~geogrid.core.registry.columns.EXPORT_ROLES`;
    their names, ID numbers and phones are masked unless ``clear`` (then opened, and the
    clear read is recorded with :func:`geogrid.services.audit.record_read`).

    Raises
    ------
    InvalidInput  an unknown kind, or an empty reason
    Forbidden  personal data asked by a role not allowed to export it
    """
    if kind not in ("people", "households", "buildings", "orgs"):
        raise InvalidInput("kind", kind, "people, households, buildings, orgs")
    if not reason or not reason.strip():
        raise InvalidInput("reason", reason, "a non-empty reason (it is audited)")
    if scope.is_public:
        raise Forbidden("the registry is exported by signed-in staff only")
    if kind == "people" and (scope.role or "") not in EXPORT_ROLES:
        raise Forbidden(
            f"role {scope.role} may not export personal data: "
            f"one of {', '.join(sorted(EXPORT_ROLES))}"
        )
    with engine.begin() as conn:
        frame = store.export_rows(conn, kind, scope, unit)
        if kind == "people":
            v = make_vault(settings or get_settings()) if clear and len(frame) else None
            if v is not None:
                frame["id_number"] = [v.open(b) for b in frame["id_enc"]]
                frame["phone"] = [None if b is None else v.open(b) for b in frame["phone_enc"]]
            else:
                frame["id_number"] = frame["id_mask"]
                frame["phone"] = frame["phone_mask"]
                frame["name"] = [mask_name(n) for n in frame["name"]]
            frame = frame.drop(columns=["id_enc", "phone_enc", "id_mask", "phone_mask"])
            front = ["id", "name", "sex", "birth_date", "id_number", "phone"]
            frame = frame[front + [c for c in frame.columns if c not in front]]
            if clear:
                audit.record_read(
                    conn, scope, "reg_person", frame["id"].tolist(),
                    ["name", "id_number", "phone"], {"reason": reason.strip(), "export": True},
                )  # fmt: skip
        audit.record(
            conn,
            actor=scope,
            action="registry.export",
            resource=f"reg_{kind}",
            ids=[],
            detail={
                "kind": kind,
                "rows": len(frame),
                "reason": reason.strip(),
                "clear": bool(clear and kind == "people"),
                "unit": unit,
                "file": Path(out).name,
            },
        )
    frame.to_csv(out, index=False, encoding="utf-8-sig")
    return {"kind": kind, "rows": len(frame), "file": str(out), "clear": bool(clear)}


# ----------------------------------------------------------------------------- bulk load
_CODE_FIELDS = [(c, pa.string()) for c in ATTRIBUTION_COLUMNS] + [("version_id", pa.int32())]

#: the binary-COPY layout of each registry table in the bulk load
_SCHEMAS: dict[str, pa.Schema] = {
    "reg_building": pa.schema(
        [("id", pa.int64()), ("ref", pa.string()), ("name", pa.string()),
         ("address", pa.string()), ("floors", pa.int32()), ("use", pa.string()),
         ("geom", pa.binary()), *_CODE_FIELDS, ("addr_grams", pa.list_(pa.string()))]
    ),
    "reg_dwelling": pa.schema(
        [("id", pa.int64()), ("building_id", pa.int64()), ("room", pa.string())]
    ),
    "reg_household": pa.schema(
        [("id", pa.int64()), ("ref", pa.string()), ("building_id", pa.int64()),
         ("dwelling_id", pa.int64()), ("address", pa.string()), *_CODE_FIELDS,
         ("addr_grams", pa.list_(pa.string()))]
    ),
    "reg_person": pa.schema(
        [("id", pa.int64()), ("household_id", pa.int64()), ("building_id", pa.int64()),
         ("name", pa.string()), ("sex", pa.string()), ("birth_date", pa.date32()),
         ("id_enc", pa.binary()), ("id_blind", pa.binary()), ("id_mask", pa.string()),
         ("phone_enc", pa.binary()), ("phone_blind", pa.binary()), ("phone_mask", pa.string()),
         ("relation", pa.string()), ("residence", pa.string()), *_CODE_FIELDS,
         ("name_grams", pa.list_(pa.string()))]
    ),
    "reg_org": pa.schema(
        [("id", pa.int64()), ("uscc", pa.string()), ("name", pa.string()), ("kind", pa.string()),
         ("address", pa.string()), ("building_id", pa.int64()), ("geom", pa.binary()),
         *_CODE_FIELDS, ("addr_grams", pa.list_(pa.string()))]
    ),
    "reg_care": pa.schema(
        [("person_id", pa.int64()), ("group_code", pa.string()),
         ("visit_every_days", pa.int32()), ("since", pa.date32())]
    ),
}  # fmt: skip
_PERSON_SCHEMA = _SCHEMAS["reg_person"]

#: the registry being bulk-loaded, shared with the forked worker processes (set by
#: :func:`load_registry` before it starts them, so a task is passed as a few numbers)
_BULK: dict[str, Any] = {}

#: (table, rows, binary COPY body without header and trailer) made by one task
_Body = tuple[str, int, Any]


def _encode(table: pa.Table) -> bytes:
    """A table's rows as a binary COPY body without the header and the trailer (the
    loader writes one header per COPY; bodies of several tasks follow it)."""
    enc = ArrowToPostgresBinaryEncoder(table.schema)
    enc.write_header()  # the encoder wants it first; the loader writes its own
    parts = [enc.write_batch(b) for b in table.to_batches(max_chunksize=50_000)]
    tail = enc.finish()  # pgpq buffers rows until finish(), which also writes the trailer
    if tail[-2:] != b"\xff\xff":  # pragma: no cover - the binary COPY trailer (int16 -1)
        raise RuntimeError("unexpected end of a binary COPY body")
    return b"".join(parts) + tail[:-2]


def _ewkb(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """EWKB points as an Arrow binary array, laid out with NumPy (25 bytes a point; no
    per-point Python: a binary COPY hands them to PostGIS's receive function as is)."""
    n = len(lon)
    rec = np.empty(n, dtype=[("bo", "u1"), ("type", "<u4"), ("srid", "<u4"), ("x", "<f8"),
                             ("y", "<f8")])  # fmt: skip
    rec["bo"], rec["type"], rec["srid"] = 1, 0x20000001, 4326  # Point with the SRID flag
    rec["x"], rec["y"] = lon, lat
    offsets = (np.arange(n + 1, dtype=np.int32) * 25).tobytes()
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                        pa.py_buffer(rec.tobytes())])  # fmt: skip


def _codes_arrays(frame: pd.DataFrame, vid: int | None) -> dict[str, pa.Array]:
    n = len(frame)
    return {
        **{c: arrow_strings(frame[c]).cast(pa.string()) for c in ATTRIBUTION_COLUMNS},
        "version_id": pa.array(
            np.full(n, vid or 0, dtype=np.int32), pa.int32(), mask=np.full(n, vid is None)
        ),
    }


def _seal_people(vault: Vault, ids: pa.Array, phones: pa.Array) -> dict[str, Any]:
    """Sealed, blinded and masked ID numbers and phones (Arrow strings in their normal
    form) of a chunk of people, with the seconds spent on each (the bench's breakdown)."""
    t0 = time.process_time()
    id_bytes = ids.cast(pa.large_binary()).to_pylist()
    phone_bytes = phones.cast(pa.large_binary()).to_pylist()
    id_enc, phone_enc = vault.seal_bytes(id_bytes), vault.seal_bytes(phone_bytes)
    t1 = time.process_time()
    id_blind = vault.blind_bytes("id", id_bytes)
    phone_blind = vault.blind_bytes("phone", phone_bytes)
    t2 = time.process_time()
    return {
        "id_enc": pa.array(id_enc, pa.binary()),
        "id_blind": pa.array(id_blind, pa.binary()),
        "id_mask": _masked(ids, 4, 14, "**********"),
        "phone_enc": pa.array(phone_enc, pa.binary()),
        "phone_blind": pa.array(phone_blind, pa.binary()),
        "phone_mask": _masked(phones, 3, -4, "****"),
        "_seconds": {"seal": t1 - t0, "blind": t2 - t1},
    }


def _masked(values: pa.Array, start: int, stop: int, stars: str) -> pa.Array:
    """Masks of checked ID numbers (18 characters) or phones (11 or more): characters
    ``start:stop`` replaced by ``stars`` with Arrow's kernel — the same strings as
    :func:`~geogrid.core.registry.ids.mask_ids` and ``mask_phones`` give for such values."""
    return pc.utf8_replace_slice(values, start=start, stop=stop, replacement=stars).cast(
        pa.string()
    )


def _people_body(start: int, stop: int, times: dict[str, float]) -> list[_Body]:
    p, vault, vid = _BULK["reg"].people.iloc[start:stop], _BULK["vault"], _BULK["version_id"]
    sealed = _seal_people(vault, arrow_strings(p["id_number"]), arrow_strings(p["phone"]))
    for k, s in sealed.pop("_seconds").items():
        times[k] = times.get(k, 0.0) + s
    t = time.process_time()
    grams = grams_arrow(p["name"], normalised=True)
    times["grams"] = times.get("grams", 0.0) + time.process_time() - t
    t = time.process_time()
    table = pa.table(
        {
            "id": pa.array(p["id"], pa.int64()),
            "household_id": pa.array(p["household_id"], pa.int64()),
            "building_id": pa.array(p["building_id"], pa.int64()),
            "name": pa.array(p["name"], pa.string()),
            "sex": pa.array(p["sex"], pa.string()),
            "birth_date": pa.array(p["birth_date"].to_numpy().astype("datetime64[D]"),
                                   pa.date32()),
            **sealed,
            "relation": pa.array(p["relation"], pa.string()),
            "residence": pa.array(p["residence"], pa.string()),
            **_codes_arrays(p, vid),
            "name_grams": grams,
        },
        schema=_PERSON_SCHEMA,
    )  # fmt: skip
    body = _encode(table)
    times["arrow_encode"] = times.get("arrow_encode", 0.0) + time.process_time() - t
    return [("reg_person", stop - start, body)]


def _places_body(times: dict[str, float]) -> list[_Body]:
    """Buildings, dwellings and households."""
    reg, vid = _BULK["reg"], _BULK["version_id"]
    t = time.process_time()
    b = reg.buildings
    b_grams = grams_arrow(b["address"], normalised=True)
    h = reg.households
    h_grams = grams_arrow(h["address"], normalised=True)
    times["grams"] = times.get("grams", 0.0) + time.process_time() - t
    t = time.process_time()
    bt = pa.table(
        {
            "id": pa.array(b["id"], pa.int64()),
            "ref": pa.array(b["ref"], pa.string()),
            "name": pa.array(b["name"], pa.string()),
            "address": pa.array(b["address"], pa.string()),
            "floors": pa.array(b["floors"].astype(np.int32), pa.int32()),
            "use": pa.array(b["use"], pa.string()),
            "geom": _ewkb(b["lon"].to_numpy(), b["lat"].to_numpy()),
            **_codes_arrays(b, vid),
            "addr_grams": b_grams,
        },
        schema=_SCHEMAS["reg_building"],
    )
    # dwellings: the distinct (building, room) in order of first appearance, numbered from 1
    dw_of = h.groupby(["building_id", "room"], sort=False).ngroup().to_numpy()
    _, first = np.unique(dw_of, return_index=True)
    dt_ = pa.table(
        {
            "id": pa.array(np.arange(1, len(first) + 1, dtype=np.int64), pa.int64()),
            "building_id": pa.array(h["building_id"].to_numpy()[first], pa.int64()),
            "room": pa.array(h["room"].to_numpy(dtype=object)[first], pa.string()),
        },
        schema=_SCHEMAS["reg_dwelling"],
    )
    ht = pa.table(
        {
            "id": pa.array(h["id"], pa.int64()),
            "ref": pa.array(h["ref"], pa.string()),
            "building_id": pa.array(h["building_id"], pa.int64()),
            "dwelling_id": pa.array(dw_of.astype(np.int64) + 1, pa.int64()),
            "address": pa.array(h["address"], pa.string()),
            **_codes_arrays(h, vid),
            "addr_grams": h_grams,
        },
        schema=_SCHEMAS["reg_household"],
    )
    out = [(name, t.num_rows, _encode(t)) for name, t in
           (("reg_building", bt), ("reg_dwelling", dt_), ("reg_household", ht))]  # fmt: skip
    times["arrow_encode"] = times.get("arrow_encode", 0.0) + time.process_time() - t
    return out


def _orgs_care_body(times: dict[str, float]) -> list[_Body]:
    reg, vid = _BULK["reg"], _BULK["version_id"]
    t = time.process_time()
    o = reg.orgs
    o_grams = grams_arrow(o["name"] + o["address"], normalised=True)
    times["grams"] = times.get("grams", 0.0) + time.process_time() - t
    t = time.process_time()
    ot = pa.table(
        {
            "id": pa.array(o["id"], pa.int64()),
            "uscc": pa.array(o["uscc"], pa.string()),
            "name": pa.array(o["name"], pa.string()),
            "kind": pa.array(o["kind"], pa.string()),
            "address": pa.array(o["address"], pa.string()),
            "building_id": pa.array(o["building_id"], pa.int64()),
            "geom": _ewkb(o["lon"].to_numpy(), o["lat"].to_numpy()),
            **_codes_arrays(o, vid),
            "addr_grams": o_grams,
        },
        schema=_SCHEMAS["reg_org"],
    )
    c = reg.care
    ct = pa.table(
        {
            "person_id": pa.array(c["person_id"], pa.int64()),
            "group_code": pa.array(c["group_code"], pa.string()),
            "visit_every_days": pa.array(c["visit_every_days"].astype(np.int32), pa.int32()),
            "since": pa.array(np.asarray(c["since"]).astype("datetime64[D]"), pa.date32()),
        },
        schema=_SCHEMAS["reg_care"],
    )
    out = [("reg_org", ot.num_rows, _encode(ot)), ("reg_care", ct.num_rows, _encode(ct))]
    times["arrow_encode"] = times.get("arrow_encode", 0.0) + time.process_time() - t
    return out


def _task(task: tuple[str, int, int]) -> tuple[list[_Body], list[str], dict[str, float]]:
    """One task of the bulk load on :data:`_BULK` (runs in a forked worker): ``check``,
    ``places``, ``orgs_care`` or ``people`` rows ``start:stop``. Returns the COPY bodies,
    the problems found (``check``) and the seconds per step. With a spool directory
    (``_BULK["spool"]``: forked workers) each body is written to a file there and its
    path returned instead of the bytes: the loader maps the file and hands it to the COPY,
    so a body is not pickled through the pool's pipe and unpickled again (≈ 1.9 GB of
    people's bodies at 6.62 M records)."""
    kind, start, stop = task
    times: dict[str, float] = {}
    if kind == "check":
        t = time.process_time()
        problems = _bulk_problems(_BULK["reg"])
        times["check"] = time.process_time() - t
        return [], problems, times
    if kind == "places":
        bodies = _places_body(times)
    elif kind == "orgs_care":
        bodies = _orgs_care_body(times)
    else:
        bodies = _people_body(start, stop, times)
    spool = _BULK.get("spool")
    if spool is None:
        return bodies, [], times
    out: list[_Body] = []
    for i, (table, rows, body) in enumerate(bodies):
        path = Path(spool) / f"{kind}-{start}-{i}.copy"
        path.write_bytes(body)
        out.append((table, rows, str(path)))
    return out, [], times


@contextmanager
def _body_of(body: bytes | str) -> Iterator[bytes | mmap.mmap]:
    """A body made by :func:`_task`: the bytes, or the spooled file mapped (and removed
    after use)."""
    if isinstance(body, bytes):
        yield body
        return
    path = Path(body)
    try:
        with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
            yield m
    finally:
        path.unlink(missing_ok=True)


def _phones_ok(values: np.ndarray) -> bool:
    """Every phone is a phone number: the generator's normal mobile form checked with
    NumPy (11 digits, ``1[3-9]…``), the other values by :func:`normalise_phones`."""
    n = len(values)
    if not n:
        return True
    lens = np.fromiter((len(v) for v in values), np.int64, n)
    u = values.astype("U11").view(np.uint32).reshape(n, 11).astype(np.int64) - ord("0")
    fast = (lens == 11) & ((u >= 0) & (u <= 9)).all(axis=1) & (u[:, 0] == 1) & (u[:, 1] >= 3)
    rest = values[~fast]
    return not len(rest) or not any(v is None for v in normalise_phones(rest))


def _bulk_problems(reg: Any) -> list[str]:
    """Vectorised checks of generated or converted records: what fails (nothing: [])."""
    problems = []
    bad = np.flatnonzero(~id_numbers_ok(reg.people["id_number"]))
    if len(bad):
        problems.append(f"{len(bad)} invalid ID number(s), first at person {bad[0] + 1}")
    if not reg.people["id_number"].is_unique:
        problems.append("duplicate ID numbers")
    if not _phones_ok(reg.people["phone"].dropna().to_numpy(dtype=object)):
        problems.append("invalid phone number(s)")
    bad = np.flatnonzero(uscc_problems(reg.orgs["uscc"].to_numpy(dtype=object)) != None)  # noqa: E711
    if len(bad):
        problems.append(f"{len(bad)} invalid social credit code(s)")
    return problems


def _check_bulk(reg: Any) -> None:
    """Refuse generated or converted records that fail a vectorised check."""
    problems = _bulk_problems(reg)
    if problems:
        raise InvalidInput("registry", "(generated records)", "valid records", "; ".join(problems))


#: the secondary indexes and ANALYZEs of a bulk load in two groups of about the same cost
#: (the people's GIN index is the largest build), built on two connections at once
_INDEX_GROUPS: tuple[tuple[list[str], list[str]], ...] = (
    (["reg_person_search", "reg_org_search", "reg_org_geom", "reg_care_group"],
     ["reg_person", "reg_org", "reg_care"]),
    (["reg_household_search", "reg_building_search", "reg_building_geom",
      "reg_household_building", "reg_person_household", "reg_person_building",
      "reg_person_phone_blind"],
     ["reg_household", "reg_building", "reg_dwelling"]),
)  # fmt: skip


def _index_group(engine: Engine, indexes: list[str], tables: list[str], parallel: int) -> None:
    with engine.begin() as conn:
        store.create_secondary_indexes(conn, indexes, parallel_workers=parallel)
    with engine.begin() as conn:
        store.analyze_registry(conn, tables)


def _index_and_analyze(engine: Engine, workers: int) -> None:
    """Build the search indexes and ANALYZE after the load's commit, the groups of
    :data:`_INDEX_GROUPS` on two connections at once (a GIN build is one process in
    PostgreSQL 15, so one transaction would build them one after the other on one core).
    The data, keys, constraints and the unique blind index are committed by then; these
    are access paths only (``IF NOT EXISTS``: building them again is harmless)."""
    if workers <= 1:
        for indexes, tables in _INDEX_GROUPS:
            _index_group(engine, indexes, tables, 2)
        return
    # the two groups keep two cores busy: no parallel sort workers on top (they would
    # only add their merge and start-up to the CPU spent)
    with ThreadPoolExecutor(max_workers=len(_INDEX_GROUPS)) as pool:
        for f in [pool.submit(_index_group, engine, i, t, 0) for i, t in _INDEX_GROUPS]:
            f.result()


class _Steps:
    """Wall, own-CPU and server-CPU seconds per step of the bulk load (each step ends at
    its :meth:`mark`)."""

    def __init__(self, server_cpu: Callable[[], float] | None) -> None:
        self._server = server_cpu or (lambda: 0.0)
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self.server: dict[str, float] = {}
        self._at = (time.perf_counter(), time.process_time(), self._server())

    def mark(self, name: str, **extra: float) -> None:
        now = (time.perf_counter(), time.process_time(), self._server())
        for acc, a, b in zip((self.wall, self.cpu, self.server), self._at, now, strict=True):
            acc[name] = b - a
        self.wall.update(extra)
        self._at = now

    @staticmethod
    def rounded(d: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 2) for k, v in d.items()}


def load_registry(
    engine: Engine,
    reg: Any,
    *,
    vault: Vault,
    workers: int = 2,
    chunk: int = 200_000,
    replace: bool = False,
    on_progress: Callable[[str], None] | None = None,
    server_cpu: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Bulk-load a whole registry (``reg``: frames ``buildings``, ``households``,
    ``people``, ``orgs``, ``care`` as made by :func:`geogrid.demo.registry.build_registry`,
    ids given, unit codes set) into an EMPTY registry, in one transaction.

    How: the tables lose their secondary indexes and their keys and constraints (primary,
    unique, foreign), so the ``COPY`` writes bare heaps — a foreign key checks each row
    with a query, a unique index inserts each key; building both once afterwards costs a
    fraction. ``workers`` forked processes make the ``COPY`` bodies (checks; people
    sealed, blinded, masked; grams; Arrow; pgpq's binary encoding) while this process
    streams the bodies already made into the database. Then the keys and constraints are
    added back (validated), the unique ID blind index built, the unit counts refreshed,
    and the transaction commits; the search indexes are built and the tables analysed
    after it, on two connections at once (:func:`_index_and_analyze`), before this
    returns. ``replace`` empties the registry first.

    Returns counts and seconds per step (``steps``: wall seconds; ``loader_cpu``: CPU
    seconds of this process; ``server_cpu``: the database server's CPU seconds as told by
    ``server_cpu`` — a clock of the server's processes, e.g. the bench's, when given;
    ``worker_cpu``: CPU seconds spent in the workers per kind of work).

    Raises
    ------
    Conflict  the registry is not empty (and not ``replace``)
    InvalidInput  a generated record fails a check
    """
    say = on_progress or (lambda _m: None)
    t0 = time.perf_counter()
    steps = _Steps(server_cpu)
    cpu: dict[str, float] = {}
    n_people = len(reg.people)
    tasks: list[tuple[str, int, int]] = [("places", 0, 0), ("orgs_care", 0, 0), ("check", 0, 0)]
    tasks += [("people", i, min(i + chunk, n_people)) for i in range(0, n_people, chunk)]
    copied: dict[str, int] = {}
    pool: ProcessPoolExecutor | None = None
    with engine.begin() as conn:
        vid = published_version_id(conn)
        _BULK.update(reg=reg, vault=vault, version_id=vid)
        try:
            if workers > 1:
                # forked workers read the registry from _BULK: nothing is pickled but the
                # task's numbers; they start now and run ahead of the COPY, spooling their
                # bodies to files (in memory when /dev/shm is there)
                shm = Path("/dev/shm")
                _BULK["spool"] = tempfile.mkdtemp(
                    prefix="geogrid-registry-", dir=shm if shm.is_dir() else None
                )
                pool = ProcessPoolExecutor(
                    max_workers=workers, mp_context=multiprocessing.get_context("fork")
                )
                results: Any = pool.map(_task, tasks)
            else:
                results = map(_task, tasks)
            if not replace and not store.is_empty(conn):
                raise Conflict("the registry is not empty: the bulk load fills an empty registry")
            # truncated in this transaction (even when empty): COPY … FREEZE may then write
            # the rows frozen (see store.copy_into)
            store.truncate_registry(conn)
            store.drop_secondary_indexes(conn)
            saved = store.drop_constraints(conn)
            steps.mark("prepare")
            t_wait = 0.0
            t = time.perf_counter()
            for bodies, problems, part in results:
                t_wait += time.perf_counter() - t
                if problems:
                    raise InvalidInput(
                        "registry", "(generated records)", "valid records", "; ".join(problems)
                    )
                for k, s in part.items():
                    cpu[k] = cpu.get(k, 0.0) + s
                for table, rows, body in bodies:
                    with _body_of(body) as data:
                        store.copy_into(conn, table, _SCHEMAS[table], [data], freeze=True)
                    copied[table] = copied.get(table, 0) + rows
                t = time.perf_counter()
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            if _BULK.get("spool"):
                shutil.rmtree(_BULK["spool"], ignore_errors=True)
            _BULK.clear()
        steps.mark("copy", wait_for_workers=t_wait)
        say(f"registry: {copied} copied in {time.perf_counter() - t0:.1f} s")
        if copied.get("reg_person", 0) != n_people:  # pragma: no cover - a loader bug
            raise RuntimeError(f"{copied.get('reg_person', 0)} of {n_people} people copied")
        store.add_constraints(conn, saved)
        store.create_unique_blind_index(conn)
        store.reset_identities(conn)
        steps.mark("keys_constraints")
        units = refresh_unit_counts(conn, complete=True)
        b, h, o = len(reg.buildings), len(reg.households), len(reg.orgs)
        audit.record(
            conn,
            actor=None,
            action="registry.bulk_load",
            resource="registry",
            ids=[],
            detail={"records": int(b + h + n_people + o), "care": int(len(reg.care))},
        )
        steps.mark("unit_counts")
    steps.mark("commit")
    _index_and_analyze(engine, workers)
    steps.mark("indexes_analyze")
    say(
        "registry: search indexes built and tables analysed in "
        f"{steps.wall['indexes_analyze']:.1f} s"
    )
    records = int(b + h + n_people + o)
    seconds = round(time.perf_counter() - t0, 2)
    return {
        "records": records,
        "buildings": int(b),
        "households": int(h),
        "people": int(n_people),
        "orgs": int(o),
        "care": int(len(reg.care)),
        "units_updated": units,
        "seconds": seconds,
        "rows_per_s": round(records / seconds) if seconds else None,
        "steps": steps.rounded(steps.wall),
        "loader_cpu": steps.rounded(steps.cpu),
        "server_cpu": steps.rounded(steps.server),
        "worker_cpu": {k: round(v, 2) for k, v in cpu.items()},
    }

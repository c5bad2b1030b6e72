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
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from sqlalchemy import Connection, Engine, text

from geogrid.core.accounts import Account
from geogrid.core.attribution import Attributor
from geogrid.core.geometry import points_ewkb_hex
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
_PERSON_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("household_id", pa.int64()),
        ("building_id", pa.int64()),
        ("name", pa.string()),
        ("sex", pa.string()),
        ("birth_date", pa.date32()),
        ("id_enc", pa.binary()),
        ("id_blind", pa.binary()),
        ("id_mask", pa.string()),
        ("phone_enc", pa.binary()),
        ("phone_blind", pa.binary()),
        ("phone_mask", pa.string()),
        ("relation", pa.string()),
        ("residence", pa.string()),
        *[(c, pa.string()) for c in ATTRIBUTION_COLUMNS],
        ("version_id", pa.int32()),
        ("name_grams", pa.list_(pa.string())),
    ]
)


#: the people being bulk-loaded, shared with the forked worker processes (set by
#: :func:`load_registry` before it starts them, so a chunk is passed as two numbers)
_BULK: dict[str, Any] = {}


def _person_slice(bounds: tuple[int, int]) -> bytes:
    """:func:`_person_body` of people ``start:stop`` of :data:`_BULK`."""
    start, stop = bounds
    c = {k: v[start:stop] for k, v in _BULK["columns"].items()}
    return _person_body((_BULK["vault"], c, _BULK["version_id"]))


def _person_body(args: tuple[Vault, dict[str, Any], int | None]) -> bytes:
    """One chunk of people sealed, blinded, masked, with name grams, encoded for a binary
    COPY of :data:`_PERSON_SCHEMA` (runs in worker processes)."""
    vault, c, vid = args
    ids = list(c["id_number"])
    phones = [p if isinstance(p, str) else None for p in c["phone"]]
    id_enc, id_blind, phone_enc, phone_blind = _seal_chunk((vault, ids, phones))
    n = len(ids)
    table = pa.table(
        {
            "id": pa.array(c["id"], pa.int64()),
            "household_id": pa.array(c["household_id"], pa.int64()),
            "building_id": pa.array(c["building_id"], pa.int64()),
            "name": pa.array(c["name"], pa.string()),
            "sex": pa.array(c["sex"], pa.string()),
            "birth_date": pa.array(np.asarray(c["birth_date"]).astype("datetime64[D]"), pa.date32()),
            "id_enc": pa.array(id_enc, pa.binary()),
            "id_blind": pa.array(id_blind, pa.binary()),
            "id_mask": pa.array(mask_ids(np.asarray(ids, dtype=object)), pa.string()),
            "phone_enc": pa.array(phone_enc, pa.binary()),
            "phone_blind": pa.array(phone_blind, pa.binary()),
            "phone_mask": pa.array(mask_phones(np.asarray(phones, dtype=object)), pa.string()),
            "relation": pa.array(c["relation"], pa.string()),
            "residence": pa.array(c["residence"], pa.string()),
            **{col: pa.array(c[col], pa.string()) for col in ATTRIBUTION_COLUMNS},
            "version_id": pa.array(np.full(n, vid or 0, dtype=np.int32), pa.int32(),
                                   mask=np.full(n, vid is None)),
            "name_grams": grams_arrow(c["name"], normalised=True),
        },
        schema=_PERSON_SCHEMA,
    )  # fmt: skip
    enc = ArrowToPostgresBinaryEncoder(_PERSON_SCHEMA)
    enc.write_header()  # the encoder wants it first; the loader writes its own
    parts = [enc.write_batch(b) for b in table.to_batches(max_chunksize=50_000)]
    tail = enc.finish()  # pgpq buffers rows until finish(), which also writes the trailer
    if tail[-2:] != b"\xff\xff":  # pragma: no cover - the binary COPY trailer (int16 -1)
        raise RuntimeError("unexpected end of a binary COPY body")
    return b"".join(parts) + tail[:-2]


def _ewkb(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    hexes = points_ewkb_hex(lon, lat)
    return pa.array([bytes.fromhex(h) for h in hexes], pa.binary())


def _codes_arrays(frame: pd.DataFrame, vid: int | None) -> dict[str, pa.Array]:
    n = len(frame)
    return {
        **{c: pa.array(frame[c].to_numpy(dtype=object), pa.string()) for c in ATTRIBUTION_COLUMNS},
        "version_id": pa.array(
            np.full(n, vid or 0, dtype=np.int32), pa.int32(), mask=np.full(n, vid is None)
        ),
    }


def _check_bulk(reg: Any) -> None:
    """Vectorised checks of generated or converted records (refused when one fails)."""
    problems = []
    ids = reg.people["id_number"].to_numpy(dtype=object)
    bad = np.flatnonzero(~id_numbers_ok(ids))
    if len(bad):
        problems.append(f"{len(bad)} invalid ID number(s), first at person {bad[0] + 1}")
    if not reg.people["id_number"].is_unique:
        problems.append("duplicate ID numbers")
    phones = reg.people["phone"].dropna().to_numpy(dtype=object)
    if len(phones) and any(v is None for v in normalise_phones(phones)):
        problems.append("invalid phone number(s)")
    bad = np.flatnonzero(uscc_problems(reg.orgs["uscc"].to_numpy(dtype=object)) != None)  # noqa: E711
    if len(bad):
        problems.append(f"{len(bad)} invalid social credit code(s)")
    if problems:
        raise InvalidInput("registry", "(generated records)", "valid records", "; ".join(problems))


def load_registry(
    engine: Engine,
    reg: Any,
    *,
    vault: Vault,
    workers: int = 2,
    chunk: int = 200_000,
    replace: bool = False,
    on_progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Bulk-load a whole registry (``reg``: frames ``buildings``, ``households``,
    ``people``, ``orgs``, ``care`` as made by :func:`geogrid.demo.registry.build_registry`,
    ids given, unit codes set) into an EMPTY registry, in one transaction: vectorised
    checks, the secondary indexes dropped, binary ``COPY`` of every table (people sealed
    and encoded in ``workers`` processes while the database copies the previous chunk),
    indexes rebuilt, unit counts from the registry. ``replace`` empties the registry first.

    Returns counts and seconds per step.

    Raises
    ------
    Conflict  the registry is not empty (and not ``replace``)
    InvalidInput  a generated record fails a check
    """
    say = on_progress or (lambda _m: None)
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    _check_bulk(reg)
    times["check"] = round(time.perf_counter() - t0, 2)
    with engine.begin() as conn:
        vid = published_version_id(conn)
        if replace:
            store.truncate_registry(conn)
        elif not store.is_empty(conn):
            raise Conflict("the registry is not empty: the bulk load fills an empty registry")
        store.drop_secondary_indexes(conn)
        t = time.perf_counter()
        b = reg.buildings
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
                "addr_grams": grams_arrow(b["address"].to_numpy(dtype=object), normalised=True),
            }
        )
        store.copy_into(conn, "reg_building", bt.schema, [bt])
        h = reg.households
        dw = h[["building_id", "room"]].drop_duplicates().reset_index(drop=True)
        dw_id = np.arange(1, len(dw) + 1, dtype=np.int64)
        dt_ = pa.table(
            {
                "id": pa.array(dw_id, pa.int64()),
                "building_id": pa.array(dw["building_id"], pa.int64()),
                "room": pa.array(dw["room"], pa.string()),
            }
        )
        store.copy_into(conn, "reg_dwelling", dt_.schema, [dt_])
        key = pd.MultiIndex.from_frame(dw)
        h_dw = dw_id[key.get_indexer(pd.MultiIndex.from_frame(h[["building_id", "room"]]))]
        ht = pa.table(
            {
                "id": pa.array(h["id"], pa.int64()),
                "ref": pa.array(h["ref"], pa.string()),
                "building_id": pa.array(h["building_id"], pa.int64()),
                "dwelling_id": pa.array(h_dw, pa.int64()),
                "address": pa.array(h["address"], pa.string()),
                **_codes_arrays(h, vid),
                "addr_grams": grams_arrow(h["address"].to_numpy(dtype=object), normalised=True),
            }
        )
        store.copy_into(conn, "reg_household", ht.schema, [ht])
        times["buildings_households"] = round(time.perf_counter() - t, 2)
        say(
            f"registry: {len(b)} buildings, {len(h)} households in {times['buildings_households']} s"
        )
        t = time.perf_counter()
        p = reg.people
        cols = ["id", "household_id", "building_id", "name", "sex", "birth_date", "id_number",
                "phone", "relation", "residence", *ATTRIBUTION_COLUMNS]  # fmt: skip
        _BULK.update(columns={c: p[c].to_numpy() for c in cols}, vault=vault, version_id=vid)
        bounds = [(i, min(i + chunk, len(p))) for i in range(0, len(p), chunk)]
        try:
            if workers > 1 and len(bounds) > 1:
                # forked workers read the people from _BULK: nothing is pickled but bounds
                ctx = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                    store.copy_into(
                        conn, "reg_person", _PERSON_SCHEMA, pool.map(_person_slice, bounds)
                    )
            else:
                store.copy_into(conn, "reg_person", _PERSON_SCHEMA, map(_person_slice, bounds))
        finally:
            _BULK.clear()
        copied = store.stage_rows(conn, "reg_person")
        if copied != len(p):  # pragma: no cover - a lost chunk would be a loader bug
            raise RuntimeError(f"{copied} of {len(p)} people copied")
        times["people"] = round(time.perf_counter() - t, 2)
        say(f"registry: {len(p)} people sealed and copied in {times['people']} s")
        t = time.perf_counter()
        o = reg.orgs
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
                "addr_grams": grams_arrow((o["name"] + o["address"]).to_numpy(dtype=object),
                                          normalised=True),
            }
        )  # fmt: skip
        store.copy_into(conn, "reg_org", ot.schema, [ot])
        c = reg.care
        ct = pa.table(
            {
                "person_id": pa.array(c["person_id"], pa.int64()),
                "group_code": pa.array(c["group_code"], pa.string()),
                "visit_every_days": pa.array(c["visit_every_days"].astype(np.int32), pa.int32()),
                "since": pa.array(np.asarray(c["since"]).astype("datetime64[D]"), pa.date32()),
            }
        )
        store.copy_into(conn, "reg_care", ct.schema, [ct])
        times["orgs_care"] = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        store.create_secondary_indexes(conn)
        store.reset_identities(conn)
        times["indexes"] = round(time.perf_counter() - t, 2)
        say(f"registry: indexes built in {times['indexes']} s")
        units = refresh_unit_counts(conn, complete=True)
        audit.record(
            conn,
            actor=None,
            action="registry.bulk_load",
            resource="registry",
            ids=[],
            detail={"records": int(len(b) + len(h) + len(p) + len(o)), "care": int(len(c))},
        )
    t = time.perf_counter()
    with engine.begin() as conn:
        store.analyze_registry(conn)
    times["analyze"] = round(time.perf_counter() - t, 2)
    records = int(len(reg.buildings) + len(reg.households) + len(reg.people) + len(reg.orgs))
    seconds = round(time.perf_counter() - t0, 2)
    return {
        "records": records,
        "buildings": int(len(reg.buildings)),
        "households": int(len(reg.households)),
        "people": int(len(reg.people)),
        "orgs": int(len(reg.orgs)),
        "care": int(len(reg.care)),
        "units_updated": units,
        "seconds": seconds,
        "rows_per_s": round(records / seconds) if seconds else None,
        "steps": times,
    }

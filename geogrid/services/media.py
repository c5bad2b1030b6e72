"""Photos and videos from the field: upload (whole or in resumable chunks), read, attach.

Files are stored by content hash: the client names the SHA-256 of the bytes it sends
(``PUT /media/{sha256}``) and the server checks it, so a retry or a second upload of the
same photo stores nothing new. Where they live is a :class:`MediaStore`:

- :class:`LocalMediaStore` (the default): ``<settings.home>/media/ab/cd/<sha256>`` (the
  first two pairs of hex digits as folders) and its thumbnail ``<sha256>.thumb.jpg``
  beside it; every file is written to a temporary file in the same folder, flushed, then
  renamed over the final name (atomic on POSIX), so a reader never sees half a file.
- :class:`S3MediaStore` (``GEOGRID_MEDIA_STORE=s3``, ``GEOGRID_MEDIA_S3_BUCKET``, optional
  ``GEOGRID_MEDIA_S3_ENDPOINT`` for MinIO/OSS/COS and ``GEOGRID_MEDIA_S3_PREFIX``): objects
  ``<prefix><sha256>`` through boto3 (imported only when used; credentials from boto3's
  own environment and files). It is written to the same protocol but **not tested
  here** (no object store offline); boto3 is not a dependency of the project.

Resumable uploads send ``Content-Range: bytes first-last/total`` chunks; they are appended
to ``<home>/media/partial/<sha256>`` (always on local disk) under a file lock, and
``HEAD /media/{sha256}`` tells the offset to resume from. When the last byte arrives the
whole file is checked (hash, type, size) exactly as a one-piece upload.

Who may read a file: its uploaders, and callers who may see the personal fields of an
owner it is attached to (:func:`geogrid.store.media.may_read`); anybody else gets 404.
Every read is written to the audit trail (photos are personal data).
Other modules attach files with :func:`attach` inside their own transaction.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine

from geogrid.core import media as core
from geogrid.core.accounts import UNIT_ROLES, Account
from geogrid.core.scope import Scope
from geogrid.errors import Conflict, Forbidden, InvalidInput, NotFound
from geogrid.services import audit
from geogrid.settings import Settings
from geogrid.store import media as store
from geogrid.store.engine import connection, transaction

__all__ = [
    "MediaStore",
    "LocalMediaStore",
    "S3MediaStore",
    "MediaFile",
    "UploadOffsetMismatch",
    "media_store",
    "partial_path",
    "upload",
    "upload_state",
    "prune_partials",
    "PARTIAL_TTL",
    "read",
    "attach",
    "media_of",
    "describe",
    "MEDIA_URL",
]

log = logging.getLogger("geogrid.media")

Bind = Engine | Connection

#: where a file is served (``{sha256}``); its thumbnail is ``…/thumb``
MEDIA_URL = "/media/{sha256}"

#: roles that upload media (those that act on incidents; planners, leaders and analysts
#: do not)
_UPLOADERS = frozenset({"admin", *UNIT_ROLES})


class UploadOffsetMismatch(Conflict):
    """A chunk that does not start where the stored part ends (HTTP 409, with the offset
    to resume from)."""

    def __init__(self, sha256: str, offset: int, first: int):
        self.upload_offset = int(offset)
        super().__init__(
            f"the upload of {sha256} has {offset} bytes: send the chunk starting at byte "
            f"{offset} (this one starts at {first}; HEAD /media/{sha256} tells the offset)"
        )

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["upload_offset"] = self.upload_offset
        return d


@dataclass(frozen=True)
class MediaFile:
    """A stored file to serve: a local ``path``, or its bytes (``data``)."""

    mime: str
    size: int
    path: Path | None = None
    data: bytes | None = None


class MediaStore(Protocol):
    """Where files are kept, by content hash."""

    def put_file(self, sha256: str, source: Path) -> None:
        """Move a complete local file (on the same disk as the partial folder) in."""

    def put_bytes(self, name: str, data: bytes) -> None:
        """Store small bytes (a thumbnail) under ``name`` (``<sha256>.thumb.jpg``)."""

    def get(self, name: str) -> MediaFile | None:
        """The stored file ``name`` (a sha256 or a thumbnail name), None if missing."""


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class LocalMediaStore:
    """Files under ``root`` (``<home>/media``): ``ab/cd/<sha256>``."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, name: str) -> Path:
        return self.root / name[:2] / name[2:4] / name

    def put_file(self, sha256: str, source: Path) -> None:
        final = self.path(sha256)
        final.parent.mkdir(parents=True, exist_ok=True)
        with open(source, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(source, final)

    def put_bytes(self, name: str, data: bytes) -> None:
        _atomic_write(self.path(name), data)

    def get(self, name: str) -> MediaFile | None:
        p = self.path(name)
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            return None
        mime = "image/jpeg" if name.endswith(".thumb.jpg") else "application/octet-stream"
        return MediaFile(mime=mime, size=size, path=p)


class S3MediaStore:
    """Objects ``<prefix><name>`` in an S3-compatible bucket, through boto3 (optional,
    imported lazily; not tested offline)."""

    def __init__(self, bucket: str, endpoint: str | None = None, prefix: str = "media/"):
        import boto3  # optional dependency, only for deployments that choose S3

        self.bucket = bucket
        self.prefix = prefix
        self.client = boto3.client("s3", endpoint_url=endpoint)

    def put_file(self, sha256: str, source: Path) -> None:
        self.client.upload_file(str(source), self.bucket, self.prefix + sha256)
        os.unlink(source)

    def put_bytes(self, name: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.prefix + name, Body=data)

    def get(self, name: str) -> MediaFile | None:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.prefix + name)
        except self.client.exceptions.NoSuchKey:
            return None
        data = obj["Body"].read()
        return MediaFile(mime="application/octet-stream", size=len(data), data=data)


def media_store(settings: Settings) -> MediaStore:
    """The store the settings name (``media_store``: local or s3)."""
    if settings.media_store == "local":
        return LocalMediaStore(settings.home / "media")
    if settings.media_store == "s3":
        if not settings.media_s3_bucket:
            raise InvalidInput("GEOGRID_MEDIA_S3_BUCKET", None, "a bucket name for the s3 store")
        return S3MediaStore(
            settings.media_s3_bucket, settings.media_s3_endpoint, settings.media_s3_prefix
        )
    raise InvalidInput("GEOGRID_MEDIA_STORE", settings.media_store, "local or s3")


def partial_path(settings: Settings, sha256: str) -> Path:
    """Where the received part of a resumable upload is kept."""
    return settings.home / "media" / "partial" / sha256


def _thumb_name(sha256: str) -> str:
    return f"{sha256}.thumb.jpg"


def describe(row: dict[str, Any]) -> dict[str, Any]:
    """A file's row as the API answers it."""
    sha = row["sha256"]
    return {
        "sha256": sha,
        "mime": row["mime"],
        "size_bytes": int(row["size_bytes"]),
        "width": row["width"],
        "height": row["height"],
        "duration_s": row.get("duration_s"),
        "exif": {
            "lon": row["exif_lon"],
            "lat": row["exif_lat"],
            "taken_at": row["exif_taken_at"],
        },
        "uploaded_at": row.get("uploaded_at"),
        "url": MEDIA_URL.format(sha256=sha),
        "thumb_url": MEDIA_URL.format(sha256=sha) + "/thumb" if row.get("thumb") else None,
    }


def _may_upload(actor: Account | None) -> None:
    if actor is not None and actor.role not in _UPLOADERS:
        raise Forbidden(
            f"role {actor.role!r} may not upload media: workers and admins who act on incidents may"
        )


def _declared_limit(settings: Settings, content_type: str | None) -> int:
    declared = (content_type or "").split(";")[0].strip().lower()
    return core.limit_for(declared, settings.media_image_limit, settings.media_video_limit)


def _check_total(size: int, settings: Settings, content_type: str | None) -> None:
    limit = _declared_limit(settings, content_type)
    if size > limit:
        raise core.MediaTooLarge(
            "body",
            size,
            f"at most {limit} bytes for this type",
            message=f"the file has {size} bytes: at most {limit} are accepted for "
            f"{content_type or 'an image'} (images {settings.media_image_limit}, videos "
            f"{settings.media_video_limit})",
        )


def _sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _process(data: bytes, settings: Settings) -> tuple[core.MediaInfo, bytes | None]:
    """Type, size limits, pixel size, EXIF and thumbnail of a complete file."""
    mime = core.sniff(data[: core.SNIFF_BYTES])
    core.check_size(len(data), mime, settings.media_image_limit, settings.media_video_limit)
    if mime not in core.IMAGE_TYPES:
        return core.MediaInfo(mime=mime, duration_s=core.video_duration(data, mime)), None
    info = core.read_image(data, mime, zone=settings.city.timezone)
    return info, core.thumbnail(data)


def _finish(
    bind: Bind,
    settings: Settings,
    sha256: str,
    data: bytes,
    actor: Account | None,
    *,
    source: Path | None = None,
) -> tuple[int, dict[str, Any]]:
    """Check and store a complete file; (201 new | 200 known, its description)."""
    got = _sha256_of(data)
    if got != sha256:
        if source is not None:
            with contextlib.suppress(OSError):
                source.unlink()
        raise InvalidInput(
            "sha256",
            sha256,
            f"the SHA-256 of the body (the body received hashes to {got})",
        )
    uploader = actor.id if actor is not None else None
    known = store.media_row(bind, sha256)
    if known is None:
        info, thumb = _process(data, settings)
        files = media_store(settings)
        if thumb is not None:
            files.put_bytes(_thumb_name(sha256), thumb)
        if source is not None:
            files.put_file(sha256, source)
        else:
            files.put_bytes(sha256, data)
        values = {
            "sha256": sha256,
            "mime": info.mime,
            "size_bytes": len(data),
            "width": info.width,
            "height": info.height,
            "exif_lon": info.exif_lon,
            "exif_lat": info.exif_lat,
            "exif_taken_at": info.exif_taken_at,
            "duration_s": info.duration_s,
            "thumb": thumb is not None,
        }
    else:
        values = {"sha256": sha256}
        if source is not None:
            with contextlib.suppress(OSError):
                source.unlink()
    with transaction(bind) as c:
        new = store.insert_media(c, values, uploader) if known is None else False
        if known is not None and uploader is not None:
            store.add_uploader(c, sha256, uploader)
        audit.record(
            c,
            actor=actor,
            action="media.upload",
            resource="media",
            ids=[sha256],
            detail={"new": new},
        )
        row = store.media_row(c, sha256)
    assert row is not None
    return (201 if new else 200), describe(row)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield f
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def upload(
    bind: Bind,
    settings: Settings,
    sha256: str,
    body: bytes,
    *,
    content_type: str | None = None,
    content_range: str | None = None,
    actor: Account | None = None,
) -> tuple[int, dict[str, Any]]:
    """Receive a file, whole or one chunk of it.

    Returns
    -------
    (status, answer): 201 and the file's description when it is new, 200 when the same
    bytes were stored already, 202 ``{"sha256", "received"}`` for a chunk that is not the
    last.

    Raises
    ------
    InvalidInput : a bad sha256 or Content-Range, a body that does not hash to ``sha256``
    (400); :class:`~geogrid.core.media.UnsupportedMediaType` (415);
    :class:`~geogrid.core.media.MediaTooLarge` (413); :class:`UploadOffsetMismatch` (409);
    Forbidden : a role that does not upload.
    """
    sha = core.check_sha256(sha256)
    _may_upload(actor)
    rng = core.parse_content_range(content_range)
    if rng is None:
        _check_total(len(body), settings, content_type)
        if not body:
            raise InvalidInput("body", "(empty)", "the bytes of a photo or video")
        return _finish(bind, settings, sha, body, actor)
    _check_total(rng.total, settings, content_type)
    if len(body) != rng.length:
        raise InvalidInput(
            "Content-Range",
            content_range,
            f"the range of the {len(body)} bytes sent (bytes {rng.first}-"
            f"{rng.first + len(body) - 1}/{rng.total})",
        )
    part = partial_path(settings, sha)
    with _locked(part) as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        if rng.first > size:
            raise UploadOffsetMismatch(sha, size, rng.first)
        if size > rng.total:  # a part of another length: start again
            f.truncate(0)
            size = 0
            if rng.first > 0:
                raise UploadOffsetMismatch(sha, 0, rng.first)
        tail = body[size - rng.first :]
        if tail:
            f.write(tail)
            f.flush()
            size += len(tail)
        if size < rng.total:
            return 202, {"sha256": sha, "received": size}
        f.seek(0)
        data = f.read()
    return _finish(bind, settings, sha, data, actor, source=part)


#: a partial upload untouched this long is dropped by :func:`prune_partials`
PARTIAL_TTL = timedelta(days=7)


def prune_partials(settings: Settings, older_than: timedelta = PARTIAL_TTL) -> int:
    """Delete the parts of resumable uploads untouched for ``older_than`` (a phone that
    never came back); returns how many. Run hourly by the service."""
    folder = settings.home / "media" / "partial"
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for p in folder.glob("*") if folder.is_dir() else ():
        try:
            if p.is_file() and p.stat().st_mtime < cutoff:
                p.unlink()
                removed += 1
        except FileNotFoundError:  # finished or pruned meanwhile
            continue
    if removed:
        log.info("%d stale partial upload(s) removed", removed)
    return removed


def upload_state(
    bind: Bind, settings: Settings, sha256: str, *, actor: Account | None
) -> dict[str, Any]:
    """``complete`` (stored and readable by the actor) and ``offset`` (bytes of a partial
    upload received, to resume from)."""
    sha = core.check_sha256(sha256)
    with connection(bind) as c:
        complete = store.may_read(c, sha, Scope.of(actor) if actor else Scope.system())
    if complete:
        row = store.media_row(bind, sha)
        return {"complete": True, "offset": int(row["size_bytes"]) if row else 0}
    try:
        offset = partial_path(settings, sha).stat().st_size
    except FileNotFoundError:
        offset = 0
    return {"complete": False, "offset": offset}


def read(
    bind: Bind,
    settings: Settings,
    sha256: str,
    *,
    actor: Account | None,
    thumb: bool = False,
) -> MediaFile:
    """A file (or its thumbnail) the actor may read; NotFound otherwise (also when it is
    outside the caller's units: it does not exist for them)."""
    sha = core.check_sha256(sha256)
    missing = NotFound(f"no media {sha} (or it is not attached to anything you may see)")
    scope = Scope.of(actor) if actor else Scope.system()
    with transaction(bind) as c:
        if not store.may_read(c, sha, scope):
            raise missing
        row = store.media_row(c, sha)
        if row is None:
            raise missing
        # a photo is personal data (faces, plates, doors): every read is audited
        audit.record_read(c, scope, "media", [sha], ["thumbnail" if thumb else "file"])
    if thumb and not row["thumb"]:
        raise NotFound(f"media {sha} has no thumbnail ({row['mime']}: images have one)")
    found = media_store(settings).get(_thumb_name(sha) if thumb else sha)
    if found is None:
        log.warning("media %s is recorded but its file is missing", sha)
        raise missing
    mime = "image/jpeg" if thumb else str(row["mime"])
    return MediaFile(mime=mime, size=found.size, path=found.path, data=found.data)


# --------------------------------------------------------------------------- owners
def attach(
    conn: Connection,
    sha256s: Iterable[str],
    owner_kind: str,
    owner_id: int,
    actor: Account | int | None,
    *,
    role: str = "attachment",
    parameter: str = "media",
) -> list[str]:
    """Attach uploaded files to an owner (an incident, service entry, dispute or patrol) in
    the caller's transaction; returns the sha256s (in the order given, without repeats).

    ``actor`` (an Account) must have uploaded each file or be able to read it already;
    a file that was not uploaded (completely), or that the actor may not use, is refused
    as InvalidInput naming ``parameter`` (the same message for both: nothing is revealed).
    """
    kind = core.check_owner_kind(owner_kind)
    the_role = core.check_role(role)
    shas: list[str] = []
    for s in sha256s:
        sha = core.check_sha256(s, parameter)
        if sha not in shas:
            shas.append(sha)
    if not shas:
        return []
    known = store.media_rows(conn, shas)
    scope = Scope.of(actor) if isinstance(actor, Account) else Scope.system()
    for sha in shas:
        if sha not in known or not store.may_read(conn, sha, scope):
            raise InvalidInput(
                parameter,
                sha,
                "the sha256 of a file uploaded completely with PUT /media/{sha256} (this "
                "one is not, or is not yours to use)",
            )
    actor_id = actor.id if isinstance(actor, Account) else actor
    store.insert_links(
        conn, shas, owner_kind=kind, owner_id=int(owner_id), role=the_role, added_by=actor_id
    )
    return shas


def media_of(
    bind: Bind, owner_kind: str, owner_ids: Sequence[int]
) -> dict[int, list[dict[str, Any]]]:
    """owner id → its files: sha256, role, mime, width, height, url, thumb_url, added_at
    (the caller decides who may see them)."""
    kind = core.check_owner_kind(owner_kind)
    out: dict[int, list[dict[str, Any]]] = {}
    for oid, rows in store.links_of(bind, kind, owner_ids).items():
        out[oid] = [
            {
                "sha256": r["sha256"],
                "role": r["role"],
                "mime": r["mime"],
                "width": r["width"],
                "height": r["height"],
                "url": MEDIA_URL.format(sha256=r["sha256"]),
                "thumb_url": MEDIA_URL.format(sha256=r["sha256"]) + "/thumb"
                if r["thumb"]
                else None,
                "added_at": r["added_at"],
            }
            for r in rows
        ]
    return out

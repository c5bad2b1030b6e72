"""Photos and short videos from the field, stored by content hash.

- ``PUT /media/{sha256}`` — the raw bytes (Content-Type image/jpeg, image/png, image/webp,
  video/mp4, video/webm or video/quicktime). Whole: 201 (new) or 200 (stored already).
  Resumable: send ``Content-Range: bytes first-last/total`` chunks; each but the last is
  answered 202 ``{received}``; ``HEAD /media/{sha256}`` says where to resume
  (``Upload-Offset``). The type is sniffed from the bytes (a renamed executable → 415);
  images ≤ 10 MB, videos ≤ 50 MB (413); a body that does not hash to ``sha256`` → 400.
- ``GET /media/{sha256}``, ``GET /media/{sha256}/thumb`` — only to its uploaders and to
  callers who may see a record it is attached to (404 for everybody else).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from api.auth import AccountDep
from api.deps import ContextDep
from api.errors import error_response
from api.json import GeogridJSONResponse, jsonable
from api.models.common import ErrorBody, error_responses
from api.models.media import ChunkOut, MediaOut
from geogrid.core.media import ALLOWED_TYPES, MediaTooLarge, UnsupportedMediaType
from geogrid.services import media
from geogrid.services.media import MediaFile, UploadOffsetMismatch

__all__ = ["router"]

router = APIRouter(tags=["media"])

Sha256 = Annotated[
    str,
    Path(
        description="SHA-256 of the file's bytes (64 hexadecimal digits)",
        examples=["3f0a1c5b9d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"],
        min_length=1,
        max_length=128,
    ),
]

_UPLOAD_BODY = {
    "required": True,
    "description": "the file's bytes (or one chunk of them, with Content-Range)",
    "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in ALLOWED_TYPES},
}
_UPLOAD_ERRORS: dict[int | str, dict[str, Any]] = {
    **error_responses(400, 401, 403, 409),
    413: {"model": ErrorBody, "description": "larger than its type's limit"},
    415: {"model": ErrorBody, "description": "not a photo or video of an accepted type"},
}
_SERVED = {
    200: {
        "description": "the file",
        "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in ALLOWED_TYPES},
    },
    **error_responses(400, 401, 404),
}
_CACHE = {"Cache-Control": "private, max-age=86400", "X-Content-Type-Options": "nosniff"}


@router.put(
    "/media/{sha256}",
    status_code=201,
    response_model=MediaOut,
    summary="Upload a photo or video (whole or in resumable chunks)",
    responses={
        200: {"model": MediaOut, "description": "the same bytes were stored already"},
        202: {"model": ChunkOut, "description": "a chunk was stored; send the next"},
        **_UPLOAD_ERRORS,
    },
    openapi_extra={"requestBody": _UPLOAD_BODY},
)
async def upload_media(
    ctx: ContextDep,
    account: AccountDep,
    request: Request,
    sha256: Sha256,
    content_range: Annotated[
        str | None,
        Header(
            alias="Content-Range",
            description="`bytes first-last/total` for one chunk of a resumable upload",
            examples=["bytes 0-1048575/5242880"],
        ),
    ] = None,
) -> Response:
    """Store a file named by its SHA-256 (checked against the bytes). A retry, or the same
    photo sent again, stores nothing new (200)."""
    body = await request.body()
    try:
        status, answer = await run_in_threadpool(
            media.upload,
            ctx.engine,
            ctx.settings,
            sha256,
            body,
            content_type=request.headers.get("content-type"),
            content_range=content_range,
            actor=account,
        )
    except UnsupportedMediaType as exc:
        return error_response(exc.to_dict(), 415)
    except MediaTooLarge as exc:
        return error_response(exc.to_dict(), 413)
    except UploadOffsetMismatch as exc:
        return error_response(exc.to_dict(), 409, {"Upload-Offset": str(exc.upload_offset)})
    return GeogridJSONResponse(jsonable(answer), status_code=status)


@router.head(
    "/media/{sha256}",
    summary="Is a file stored (or how much of it)?",
    response_class=Response,
    responses={
        200: {
            "description": "stored, and yours to read (no body: the headers of the file)",
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
        **error_responses(400, 401),
        404: {
            "model": ErrorBody,
            "description": "not stored, or not yours to read (no body; `Upload-Offset`: the "
            "bytes of a partial upload received, to resume from)",
        },
    },
)
def media_state(ctx: ContextDep, account: AccountDep, sha256: Sha256) -> Response:
    """200 when the file is stored and the caller may read it; else 404 with
    ``Upload-Offset``, the bytes of a resumable upload received so far (0: none)."""
    state = media.upload_state(ctx.engine, ctx.settings, sha256, actor=account)
    headers = {"Upload-Offset": str(state["offset"])}
    return Response(status_code=200 if state["complete"] else 404, headers=headers)


def _serve(found: MediaFile) -> Response:
    if found.path is not None:
        return FileResponse(found.path, media_type=found.mime, headers=_CACHE)
    return Response(found.data or b"", media_type=found.mime, headers=_CACHE)


@router.get(
    "/media/{sha256}",
    summary="A photo or video",
    response_class=Response,
    responses=_SERVED,
)
def get_media(ctx: ContextDep, account: AccountDep, sha256: Sha256) -> Response:
    """The file, to its uploaders and to callers who may see a record it is attached to
    (404 for everybody else)."""
    return _serve(media.read(ctx.engine, ctx.settings, sha256, actor=account))


@router.get(
    "/media/{sha256}/thumb",
    summary="A photo's thumbnail (320 px JPEG)",
    response_class=Response,
    responses={
        200: {
            "description": "the thumbnail (no EXIF: the GPS position is stripped)",
            "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
        },
        **error_responses(400, 401, 404),
    },
)
def get_thumbnail(ctx: ContextDep, account: AccountDep, sha256: Sha256) -> Response:
    """The photo's thumbnail, upright, 320 px on its longer side, without EXIF (404 for
    videos and for callers who may not see the photo)."""
    return _serve(media.read(ctx.engine, ctx.settings, sha256, actor=account, thumb=True))

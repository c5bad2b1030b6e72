"""HTTP validation caching, written once: ``ETag`` + ``Cache-Control`` on an answer, and
``304 Not Modified`` when the request's ``If-None-Match`` names the tag (RFC 9110 §13.1.2:
weak comparison, ``*`` matches anything).

Used by the vector and heat-map tiles (``api/routes/tiles.py``) and by the static files of
the web page (``api/routes/web.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import Response

__all__ = ["etag_matches", "etag_response"]


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header value names ``etag`` (weak comparison).

    >>> etag_matches('"a", W/"b"', '"b"'), etag_matches('"a"', '"b"'), etag_matches("*", '"b"')
    (True, False, True)
    >>> etag_matches(None, '"b"')
    False
    """
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True

    def opaque(tag: str) -> str:
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag

    want = opaque(etag)
    return any(opaque(t) == want for t in if_none_match.split(","))


def etag_response(
    request: Request,
    data: bytes,
    etag: str,
    media_type: str | None,
    cache_control: str,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """``data`` with ``ETag: etag`` and ``Cache-Control: cache_control`` (plus ``headers``),
    or an empty ``304`` with the same validators when ``If-None-Match`` names ``etag``.

    Parameters
    ----------
    request : Request
        The request (its ``If-None-Match`` header is read).
    data : bytes
        The body of a 200 answer.
    etag : str
        The entity tag, quoted (``"…"``), strong unless it starts with ``W/``.
    media_type : str or None
        ``Content-Type`` of the body.
    cache_control : str
        ``Cache-Control`` value, e.g. ``public, max-age=5, must-revalidate``.
    headers : mapping, optional
        Further headers of both answers (e.g. ``Last-Modified``).
    """
    h = {**(headers or {}), "ETag": etag, "Cache-Control": cache_control}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=h)
    return Response(content=data, media_type=media_type, headers=h)

"""Photos and short videos from the field (pure): what is accepted, how a file's type is
told from its bytes, what is read from it (size, EXIF position and time), thumbnails,
resumable chunks, and the media vocabulary (owner kinds, roles).

- **Type** is sniffed from the bytes with :mod:`filetype` (the ``Content-Type`` header and
  the name are not trusted): JPEG, PNG, WebP, MP4, WebM, QuickTime. Anything else — an
  executable renamed ``photo.jpg`` — is :class:`UnsupportedMediaType` (HTTP 415).
- **Size**: images at most ``media_image_limit`` bytes, videos ``media_video_limit``
  (settings; 10 MB and 50 MB by default) → :class:`MediaTooLarge` (HTTP 413).
- **EXIF**: the GPS position (WGS84 degrees, as phones write it) and ``DateTimeOriginal``
  (with ``OffsetTimeOriginal`` when present, else read in the city's zone) with Pillow.
- **Thumbnail**: 320 px on the longer side, JPEG, EXIF orientation applied and no EXIF
  kept (the GPS position is stripped).
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

from geogrid.errors import InvalidInput

__all__ = [
    "IMAGE_TYPES",
    "VIDEO_TYPES",
    "ALLOWED_TYPES",
    "OWNER_KINDS",
    "MEDIA_ROLES",
    "INCIDENT_ROLES",
    "THUMB_SIZE",
    "SNIFF_BYTES",
    "UnsupportedMediaType",
    "MediaTooLarge",
    "MediaInfo",
    "ContentRange",
    "check_sha256",
    "check_owner_kind",
    "check_role",
    "check_size",
    "MAX_PIXELS",
    "sniff",
    "kind_of",
    "limit_for",
    "parse_content_range",
    "read_image",
    "video_duration",
    "thumbnail",
]

#: image types accepted (MIME types as sniffed)
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
#: video types accepted
VIDEO_TYPES = ("video/mp4", "video/webm", "video/quicktime")
ALLOWED_TYPES = IMAGE_TYPES + VIDEO_TYPES
#: what media can be attached to (``media_link.owner_kind``)
OWNER_KINDS = ("incident", "service_entry", "dispute", "patrol")
#: the role of a file for its owner: an incident's report photo, before/after the work,
#: a note's photo; ``attachment`` for the other owners
INCIDENT_ROLES = ("report", "before", "after", "note")
MEDIA_ROLES = (*INCIDENT_ROLES, "attachment")
#: longer side of a thumbnail (pixels)
THUMB_SIZE = 320
#: bytes read to sniff a type
SNIFF_BYTES = 8192
#: the most pixels an image may have (a phone's camera has at most ~50 MP; a larger
#: one is a decompression bomb more likely than a photo)
MAX_PIXELS = 60_000_000

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_RANGE = re.compile(r"^bytes (\d{1,15})-(\d{1,15})/(\d{1,15})$")


class UnsupportedMediaType(InvalidInput):
    """The bytes are not an accepted photo or video (HTTP 415)."""


class MediaTooLarge(InvalidInput):
    """The file is larger than its type's limit (HTTP 413)."""


@dataclass(frozen=True)
class MediaInfo:
    """What is read from a file: its type, pixel size and EXIF position/time."""

    mime: str
    width: int | None = None
    height: int | None = None
    exif_lon: float | None = None
    exif_lat: float | None = None
    exif_taken_at: datetime | None = None
    duration_s: float | None = None

    @property
    def is_image(self) -> bool:
        return self.mime in IMAGE_TYPES


@dataclass(frozen=True)
class ContentRange:
    """``Content-Range: bytes first-last/total`` of a chunk (inclusive bounds)."""

    first: int
    last: int
    total: int

    @property
    def length(self) -> int:
        return self.last - self.first + 1


def check_sha256(value: Any, parameter: str = "sha256") -> str:
    """A SHA-256 digest as 64 lower-case hex digits, or InvalidInput.

    >>> check_sha256("AB" * 32) == "ab" * 32
    True
    """
    text = str(value).strip().lower() if isinstance(value, str) else ""
    if not _SHA256.match(text):
        raise InvalidInput(
            parameter, str(value)[:80], "the SHA-256 of the file: 64 hexadecimal digits"
        )
    return text


def check_owner_kind(value: Any) -> str:
    """One of :data:`OWNER_KINDS`."""
    if value not in OWNER_KINDS:
        raise InvalidInput("owner_kind", value, "one of " + ", ".join(OWNER_KINDS))
    return str(value)


def check_role(value: Any) -> str:
    """One of :data:`MEDIA_ROLES`."""
    if value not in MEDIA_ROLES:
        raise InvalidInput("role", value, "one of " + ", ".join(MEDIA_ROLES))
    return str(value)


def sniff(head: bytes) -> str:
    """The MIME type of a file from its first bytes, when it is an accepted type.

    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(32))
    'image/png'
    >>> sniff(b"MZ\\x90\\x00" + bytes(64))
    Traceback (most recent call last):
    ...
    geogrid.core.media.UnsupportedMediaType: body='application/x-msdownload' is not valid: \
expected a photo or video: image/jpeg, image/png, image/webp, video/mp4, video/webm, \
video/quicktime
    """
    kind = filetype.guess(head[:SNIFF_BYTES]) if head else None
    mime = kind.mime if kind is not None else None
    if mime not in ALLOWED_TYPES:
        raise UnsupportedMediaType(
            "body",
            mime or "unknown",
            "a photo or video: " + ", ".join(ALLOWED_TYPES),
        )
    return str(mime)


def kind_of(mime: str) -> str:
    """``image`` or ``video``.

    >>> kind_of("video/webm")
    'video'
    """
    return "video" if mime.startswith("video/") else "image"


def limit_for(mime: str, image_limit: int, video_limit: int) -> int:
    """The size limit (bytes) of a type: videos ``video_limit``, the rest ``image_limit``."""
    return video_limit if kind_of(mime) == "video" else image_limit


def check_size(size: int, mime: str, image_limit: int, video_limit: int) -> None:
    """MediaTooLarge when ``size`` exceeds the limit of ``mime``'s kind."""
    limit = limit_for(mime, image_limit, video_limit)
    if size > limit:
        raise MediaTooLarge(
            "body",
            size,
            f"at most {limit} bytes for {'a video' if kind_of(mime) == 'video' else 'an image'}",
            message=f"the file has {size} bytes: {kind_of(mime)}s may have at most {limit}",
        )


def parse_content_range(value: str | None) -> ContentRange | None:
    """A ``Content-Range`` header (None when absent), or InvalidInput.

    >>> parse_content_range("bytes 0-99/1000")
    ContentRange(first=0, last=99, total=1000)
    >>> parse_content_range("bytes 5-1/10")
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: Content-Range='bytes 5-1/10' is not valid: expected \
bytes FIRST-LAST/TOTAL with FIRST <= LAST < TOTAL (e.g. bytes 0-1048575/5242880)
    """
    if value is None:
        return None
    m = _RANGE.match(value.strip())
    allowed = "bytes FIRST-LAST/TOTAL with FIRST <= LAST < TOTAL (e.g. bytes 0-1048575/5242880)"
    if not m:
        raise InvalidInput("Content-Range", value[:100], allowed)
    first, last, total = (int(g) for g in m.groups())
    if not first <= last < total:
        raise InvalidInput("Content-Range", value[:100], allowed)
    return ContentRange(first, last, total)


def _degrees(values: Any, ref: Any, negative: str) -> float | None:
    try:
        d, m, s = (float(v) for v in values)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    deg = d + m / 60.0 + s / 3600.0
    if not math.isfinite(deg):
        return None
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if str(ref or "").strip().upper() == negative:
        deg = -deg
    return deg


def _taken_at(exif_ifd: Any, zone: str) -> datetime | None:
    raw = exif_ifd.get(36867)  # DateTimeOriginal "YYYY:MM:DD HH:MM:SS"
    if not isinstance(raw, str):
        return None
    try:
        naive = datetime.strptime(raw.strip().rstrip("\x00"), "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None
    offset = exif_ifd.get(36881)  # OffsetTimeOriginal "+08:00"
    if isinstance(offset, str) and re.match(r"^[+-]\d{2}:\d{2}$", offset.strip()):
        try:
            return datetime.fromisoformat(naive.isoformat() + offset.strip())
        except ValueError:
            pass
    return naive.replace(tzinfo=ZoneInfo(zone))


def read_image(data: bytes, mime: str, *, zone: str = "Asia/Shanghai") -> MediaInfo:
    """Pixel size and EXIF position/time of an image (``zone``: the zone of an EXIF time
    without an offset — the city's). UnsupportedMediaType when it cannot be decoded."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise UnsupportedMediaType(
                    "body", f"{width}x{height}", f"an image of at most {MAX_PIXELS} pixels"
                )
            exif = img.getexif()
            gps = exif.get_ifd(0x8825)
            detail = exif.get_ifd(0x8769)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise UnsupportedMediaType(
            "body", mime, f"a readable {mime} image (this one cannot be decoded)"
        ) from None
    lat = _degrees(gps.get(2), gps.get(1), "S") if gps else None
    lon = _degrees(gps.get(4), gps.get(3), "W") if gps else None
    if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        lat = lon = None
    return MediaInfo(
        mime=mime,
        width=int(width),
        height=int(height),
        exif_lon=lon,
        exif_lat=lat,
        exif_taken_at=_taken_at(detail, zone) if detail else None,
    )


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the ISO-BMFF boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        header = 8
        if size == 1 and pos + 16 <= end:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            return
        yield kind, pos + header, pos + size
        pos += size


def video_duration(data: bytes, mime: str) -> float | None:
    """Seconds of an MP4/QuickTime video, from its ``moov/mvhd`` box (None when it cannot
    be read, and for WebM).

    >>> mvhd = (bytes(4) + bytes(8) + (1000).to_bytes(4, "big") + (12500).to_bytes(4, "big")
    ...         + bytes(80))
    >>> box = lambda kind, payload: (8 + len(payload)).to_bytes(4, "big") + kind + payload
    >>> video_duration(box(b"ftyp", b"isom") + box(b"moov", box(b"mvhd", mvhd)), "video/mp4")
    12.5
    """
    if mime not in ("video/mp4", "video/quicktime"):
        return None
    for kind, a, b in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for inner, p, q in _boxes(data, a, b):
            if inner != b"mvhd" or q - p < 20:
                continue
            version = data[p]
            if version == 1 and q - p >= 32:
                scale = int.from_bytes(data[p + 20 : p + 24], "big")
                length = int.from_bytes(data[p + 24 : p + 32], "big")
            else:
                scale = int.from_bytes(data[p + 12 : p + 16], "big")
                length = int.from_bytes(data[p + 16 : p + 20], "big")
            return round(length / scale, 3) if scale else None
    return None


def thumbnail(data: bytes, size: int = THUMB_SIZE) -> bytes:
    """A JPEG thumbnail (``size`` px on the longer side) of an image, turned upright by its
    EXIF orientation, with no EXIF at all (the GPS position is not copied)."""
    with Image.open(io.BytesIO(data)) as img:
        upright = ImageOps.exif_transpose(img)
        upright.thumbnail((size, size))
        if upright.mode not in ("RGB", "L"):
            background = Image.new("RGB", upright.size, (255, 255, 255))
            rgba = upright.convert("RGBA")
            background.paste(rgba, mask=rgba.getchannel("A"))
            upright = background
        out = io.BytesIO()
        upright.save(out, format="JPEG", quality=80, optimize=True)
    return out.getvalue()

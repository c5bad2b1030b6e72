"""The answers of ``/media`` (photos and videos stored by content hash)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["Exif", "MediaOut", "ChunkOut", "MediaRef"]

_SHA = "3f0a1c5b9d2e4f6a8b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a"


class Exif(ApiModel):
    """What the file's EXIF data says (photos only; null when absent)."""

    lon: float | None = Field(None, description="GPS longitude, WGS84 degrees")
    lat: float | None = Field(None, description="GPS latitude, WGS84 degrees")
    taken_at: datetime | None = Field(None, description="when the photo was taken (UTC)")


class MediaOut(ApiModel):
    """A stored photo or video."""

    sha256: str = Field(description="SHA-256 of the bytes (the file's name)", examples=[_SHA])
    mime: str = Field(description="the type sniffed from the bytes", examples=["image/jpeg"])
    size_bytes: int = Field(description="size in bytes", examples=[812_345])
    width: int | None = Field(None, description="pixels (images)", examples=[4032])
    height: int | None = Field(None, description="pixels (images)", examples=[3024])
    duration_s: float | None = Field(
        None, description="seconds (MP4/QuickTime videos, from their header)", examples=[12.5]
    )
    exif: Exif = Field(default_factory=Exif, description="EXIF position and time")
    uploaded_at: datetime | None = Field(None, description="first stored at")
    url: str = Field(description="where it is served", examples=[f"/media/{_SHA}"])
    thumb_url: str | None = Field(
        None, description="its 320 px JPEG thumbnail (images)", examples=[f"/media/{_SHA}/thumb"]
    )


class ChunkOut(ApiModel):
    """A chunk of a resumable upload was stored; more are expected."""

    sha256: str = Field(description="the file being uploaded", examples=[_SHA])
    received: int = Field(
        description="bytes received so far (resume from here)", examples=[1_048_576]
    )


class MediaRef(ApiModel):
    """A file attached to a record (an incident, a note…)."""

    sha256: str = Field(description="SHA-256 of the file", examples=[_SHA])
    role: str = Field(description="report, before, after, note or attachment", examples=["after"])
    mime: str | None = Field(None, description="its type", examples=["image/jpeg"])
    width: int | None = Field(None, description="pixels (images)")
    height: int | None = Field(None, description="pixels (images)")
    url: str = Field(description="where it is served", examples=[f"/media/{_SHA}"])
    thumb_url: str | None = Field(None, description="its thumbnail (images)")
    added_at: datetime | None = Field(None, description="when it was attached")

"""Media (issue 13): photos and videos stored by content hash over real HTTP on the small
city — type sniffing (a renamed executable is refused), size limits, EXIF position and
time, thumbnails without GPS, resumable chunks, and who may fetch a photo."""

from __future__ import annotations

import hashlib
import io
import os
import random
import time
from datetime import UTC, datetime

import httpx
import pytest
import small_city
from conftest import LiveServer
from PIL import Image
from small_city import CENTRES, GRIDS
from sqlalchemy import text

from geogrid.settings import Settings


def _jpeg(lon: float, lat: float, size=(800, 600), colour="red", orientation: int = 1) -> bytes:
    """A JPEG with GPS position, time and orientation written with Pillow's own EXIF."""
    img = Image.new("RGB", size, colour)
    exif = Image.Exif()
    exif[0x0112] = orientation

    def dms(v: float) -> tuple[float, float, float]:
        d = int(v)
        m = int((v - d) * 60)
        s = round(((v - d) * 60 - m) * 60, 4)
        return (float(d), float(m), s)

    exif[0x8825] = {1: "N", 2: dms(lat), 3: "E", 4: dms(lon)}
    exif[0x8769] = {36867: "2026:05:01 09:30:00", 36881: "+08:00"}
    buf = io.BytesIO()
    img.save(buf, "JPEG", exif=exif, quality=90)
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def city():
    with small_city.build() as c:
        yield c


@pytest.fixture(scope="module")
def client(city, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    # small limits so the 413s need no big bodies
    settings = Settings(
        home=home, rate_limits=False, media_image_limit=300_000, media_video_limit=600_000
    )
    srv = LiveServer(city.url, settings)
    try:
        with httpx.Client(base_url=srv.base, timeout=60) as http:
            http.home = home  # type: ignore[attr-defined]
            yield http
    finally:
        srv.stop()


def _put(client, city, who, data, ctype="image/jpeg", sha=None, headers=None):
    return client.put(
        f"/media/{sha or _sha(data)}",
        content=data,
        headers={"Content-Type": ctype, **city.auth(who), **(headers or {})},
    )


def test_upload_reads_exif_and_stores_by_hash(client, city):
    lon, lat = CENTRES[GRIDS[0]]
    data = _jpeg(lon, lat, orientation=6)
    sha = _sha(data)
    r = _put(client, city, "w1", data)
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["sha256"] == sha and got["mime"] == "image/jpeg"
    assert (got["width"], got["height"], got["size_bytes"]) == (800, 600, len(data))
    assert got["exif"]["lon"] == pytest.approx(lon, abs=1e-5)
    assert got["exif"]["lat"] == pytest.approx(lat, abs=1e-5)
    taken = datetime.fromisoformat(got["exif"]["taken_at"])
    assert taken == datetime(2026, 5, 1, 1, 30, tzinfo=UTC)
    # stored under <home>/media/ab/cd/<sha256>, whole
    path = client.home / "media" / sha[:2] / sha[2:4] / sha
    assert path.read_bytes() == data
    # the same bytes again: nothing new (200)
    assert _put(client, city, "w1", data).status_code == 200
    # the uploader reads it back, and its thumbnail: upright, 320 px, no EXIF (no GPS)
    assert client.get(f"/media/{sha}", headers=city.auth("w1")).content == data
    t = client.get(f"/media/{sha}/thumb", headers=city.auth("w1"))
    assert t.status_code == 200 and t.headers["content-type"] == "image/jpeg"
    thumb = Image.open(io.BytesIO(t.content))
    assert thumb.size == (240, 320)  # orientation 6: turned upright
    assert not dict(thumb.getexif()) and 0x8825 not in thumb.getexif()
    head = client.head(f"/media/{sha}", headers=city.auth("w1"))
    assert head.status_code == 200


def test_type_and_size_limits(client, city):
    exe = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(2000)
    r = _put(client, city, "w1", exe, ctype="image/jpeg")  # a renamed executable
    assert r.status_code == 415, r.text
    assert "photo or video" in r.json()["message"]
    text = b"<html><script>alert(1)</script></html>" * 10
    assert _put(client, city, "w1", text).status_code == 415
    # a body whose hash is not the name: 400
    data = _jpeg(*CENTRES[GRIDS[0]], colour="blue")
    r = _put(client, city, "w1", data, sha="0" * 64)
    assert r.status_code == 400 and r.json()["parameter"] == "sha256"
    assert _put(client, city, "w1", data, sha="not-a-hash").status_code == 400
    # too large for an image (limit 300 kB here) — refused by the body limit: 413
    noise = Image.frombytes("RGB", (400, 400), random.Random(13).randbytes(400 * 400 * 3))
    buf = io.BytesIO()
    noise.save(buf, "PNG")
    big = buf.getvalue()
    assert 300_000 < len(big) < 600_000
    assert _put(client, city, "w1", big, ctype="image/png").status_code == 413
    # …also when it claims to be a video: past the body limit of videos, the sniffed
    # type's own limit applies
    r = _put(client, city, "w1", big, ctype="video/mp4")
    assert r.status_code == 413, r.text
    # roles that do not act on incidents do not upload
    assert _put(client, city, "leader", data).status_code == 403
    assert client.put(f"/media/{_sha(data)}", content=data).status_code == 401


def test_resumable_chunks(client, city):
    data = _jpeg(*CENTRES[GRIDS[0]], size=(1200, 900), colour="green")
    sha = _sha(data)
    n = len(data)
    cut = n // 3
    h = client.head(f"/media/{sha}", headers=city.auth("w1"))
    assert h.status_code == 404 and h.headers["Upload-Offset"] == "0"
    r = _put(
        client, city, "w1", data[:cut], sha=sha, headers={"Content-Range": f"bytes 0-{cut - 1}/{n}"}
    )
    assert r.status_code == 202 and r.json()["received"] == cut
    h = client.head(f"/media/{sha}", headers=city.auth("w1"))
    assert h.status_code == 404 and h.headers["Upload-Offset"] == str(cut)
    # a chunk that skips ahead: 409 with the offset to resume from
    r = _put(
        client,
        city,
        "w1",
        data[cut + 10 :],
        sha=sha,
        headers={"Content-Range": f"bytes {cut + 10}-{n - 1}/{n}"},
    )
    assert r.status_code == 409 and r.headers["Upload-Offset"] == str(cut)
    # a retried chunk overlapping what is stored is fine; the last one completes it
    r = _put(
        client,
        city,
        "w1",
        data[cut - 5 :],
        sha=sha,
        headers={"Content-Range": f"bytes {cut - 5}-{n - 1}/{n}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["width"] == 1200
    assert client.get(f"/media/{sha}", headers=city.auth("w1")).content == data
    assert not (client.home / "media" / "partial" / sha).exists()
    bad = _put(client, city, "w1", b"x", sha=sha, headers={"Content-Range": "bytes 9-1/5"})
    assert bad.status_code == 400


def test_only_callers_who_see_the_incident_fetch_the_photo(client, city):
    lon, lat = CENTRES[GRIDS[0]]
    data = _jpeg(lon, lat, colour="yellow")
    sha = _sha(data)
    assert _put(client, city, "w1", data).status_code == 201
    # before it is attached, only its uploader reads it
    assert client.get(f"/media/{sha}", headers=city.auth("community")).status_code == 404
    r = client.post(
        "/incidents",
        json={"category": "garbage", "lon": lon, "lat": lat, "media": [sha], "accuracy_m": 6.5},
        headers=city.auth("w1"),
    )
    assert r.status_code == 201, r.text
    inc = r.json()
    assert inc["accuracy_m"] == 6.5
    assert [(m["sha256"], m["role"]) for m in inc["media"]] == [(sha, "report")]
    assert inc["media"][0]["thumb_url"] == f"/media/{sha}/thumb"
    for who in ("w1", "community", "street", "district", "admin"):
        got = client.get(f"/media/{sha}", headers=city.auth(who))
        assert got.status_code == 200, who
        assert client.get(f"/media/{sha}/thumb", headers=city.auth(who)).status_code == 200
    for who in ("w2", "w3", "leader", "analyst", "planner"):  # another grid's worker…
        assert client.get(f"/media/{sha}", headers=city.auth(who)).status_code == 404, who
        assert client.get(f"/media/{sha}/thumb", headers=city.auth(who)).status_code == 404
        assert client.head(f"/media/{sha}", headers=city.auth(who)).status_code == 404
    assert client.get(f"/media/{sha}").status_code == 401
    with city.engine.connect() as c:  # every read in the audit trail, with its reader
        readers = (
            c.execute(
                text(
                    "SELECT DISTINCT actor_id FROM audit_log WHERE action = 'media.read' "
                    "AND :s = ANY(resource_ids)"
                ),
                {"s": sha},
            )
            .scalars()
            .all()
        )
    assert city.accounts["community"].id in readers and city.accounts["w2"].id not in readers
    # the list shows the media to the incident's units only
    mine = client.get("/incidents", headers=city.auth("w1")).json()
    assert [m["sha256"] for m in next(i for i in mine if i["id"] == inc["id"])["media"]] == [sha]
    masked = client.get("/incidents", headers=city.auth("leader")).json()
    assert next(i for i in masked if i["id"] == inc["id"])["media"] is None
    # a worker cannot attach a photo they never uploaded and cannot see
    other = client.post(
        "/incidents",
        json={
            "category": "garbage",
            "lon": CENTRES[GRIDS[1]][0],
            "lat": CENTRES[GRIDS[1]][1],
            "media": [sha],
        },
        headers=city.auth("w2"),
    )
    assert other.status_code == 400 and other.json()["parameter"] == "media"
    unknown = client.post(
        "/incidents",
        json={"category": "garbage", "lon": lon, "lat": lat, "media": ["a" * 64]},
        headers=city.auth("w1"),
    )
    assert unknown.status_code == 400
    # a second uploader of the same bytes may use them (they proved they hold them)
    assert _put(client, city, "w2", data).status_code == 200
    assert client.get(f"/media/{sha}", headers=city.auth("w2")).status_code == 200


def _mp4(seconds: float, pad: int = 3000) -> bytes:
    """A minimal MP4 (ftyp, moov/mvhd with the duration, mdat) that sniffs as video/mp4."""

    def box(kind: bytes, payload: bytes) -> bytes:
        return (8 + len(payload)).to_bytes(4, "big") + kind + payload

    mvhd = bytes(12) + (1000).to_bytes(4, "big") + int(seconds * 1000).to_bytes(4, "big")
    return (
        box(b"ftyp", b"isom" + bytes(4) + b"isomiso2avc1mp41")
        + box(b"moov", box(b"mvhd", mvhd + bytes(80)))
        + box(b"mdat", random.Random(seconds).randbytes(pad))
    )


def test_a_short_video(client, city):
    data = _mp4(12.5)
    r = _put(client, city, "w1", data, ctype="video/mp4")
    assert r.status_code == 201, r.text
    got = r.json()
    assert got["mime"] == "video/mp4" and got["duration_s"] == 12.5
    assert got["thumb_url"] is None and got["width"] is None
    sha = got["sha256"]
    assert client.get(f"/media/{sha}", headers=city.auth("w1")).content == data
    assert client.get(f"/media/{sha}/thumb", headers=city.auth("w1")).status_code == 404
    # a video over the video limit (600 kB here) is refused, even sent in chunks
    big = _mp4(3.0, pad=700_000)
    first = big[:100_000]
    r = _put(
        client,
        city,
        "w1",
        first,
        ctype="video/mp4",
        sha=_sha(big),
        headers={"Content-Range": f"bytes 0-{len(first) - 1}/{len(big)}"},
    )
    assert r.status_code == 413, r.text


def test_stale_partial_uploads_are_pruned(tmp_path):
    from datetime import timedelta

    from geogrid.services.media import partial_path, prune_partials

    settings = Settings(home=tmp_path)
    old, fresh = partial_path(settings, "a" * 64), partial_path(settings, "b" * 64)
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x" * 10)
    fresh.write_bytes(b"y" * 10)
    week_ago = time.time() - timedelta(days=8).total_seconds()
    os.utime(old, (week_ago, week_ago))
    assert prune_partials(settings) == 1
    assert not old.exists() and fresh.exists()
    assert prune_partials(Settings(home=tmp_path / "none")) == 0

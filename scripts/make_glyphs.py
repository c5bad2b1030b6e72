"""Make the map's label glyphs: MapLibre SDF glyph ranges (``{start}-{end}.pbf``) of a font.

The web page labels units in Chinese. MapLibre draws CJK ideographs with the browser's own
font (``localIdeographFontFamily``); every other character (digits, Latin, punctuation)
comes from these signed-distance-field glyph ranges, made once from the font the project
installs (``fonts-wqy-microhei``) and committed under ``api/static/fonts/<stack>/``::

    pip install --target /tmp/ft freetype-py
    PYTHONPATH=/tmp/ft .venv/bin/python scripts/make_glyphs.py \
        /usr/share/fonts/truetype/wqy/wqy-microhei.ttc api/static/fonts/wqy-microhei

The encoding follows the glyph PBF schema MapLibre reads (``glyphs.proto`` of the Mapbox
font tools): 24 px em, a 3 px buffer, SDF radius 8 px and cutoff 0.25 — the values of
``fontnik``. The distance field is the Euclidean distance to the outline of the glyph's
anti-aliased coverage (scipy's exact EDT on a 4x supersampled rendering).
"""

from __future__ import annotations

import sys
from pathlib import Path

import freetype
import numpy as np
from scipy.ndimage import distance_transform_edt

SIZE = 24  # px per em
BUFFER = 3  # px around each bitmap
RADIUS = 8.0  # px of distance encoded
CUTOFF = 0.25
SUPER = 4  # supersampling of the coverage before the distance transform
#: MapLibre places a glyph's top this far below its bearing (px at 24 px/em), as it does
#: for the CJK glyphs it draws itself (``glyphTop / 2 - 27.5`` in its TinySDF path)
TOP_SHIFT = 27
#: the ranges made: Latin and digits, general punctuation, CJK punctuation, fullwidth forms
RANGES = (0, 8192, 12288, 65280)


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number: int, wire: int, payload: bytes | int) -> bytes:
    key = _varint((number << 3) | wire)
    if wire == 0:
        assert isinstance(payload, int)
        return key + _varint(payload)
    assert isinstance(payload, bytes)
    return key + _varint(len(payload)) + payload


def _zigzag(n: int) -> int:
    return (n << 1) ^ (n >> 63)


def _sdf(coverage: np.ndarray) -> np.ndarray:
    """The SDF bytes of a supersampled coverage bitmap (0–1), padded by the buffer."""
    pad = BUFFER * SUPER
    inside = np.pad(coverage >= 0.5, pad)
    outer = distance_transform_edt(~inside)
    inner = distance_transform_edt(inside)
    dist = (outer - inner) / SUPER  # px at 24 px/em, positive outside
    # sample at the centre of each output pixel
    h, w = dist.shape[0] // SUPER, dist.shape[1] // SUPER
    dist = dist[: h * SUPER, : w * SUPER].reshape(h, SUPER, w, SUPER).mean(axis=(1, 3))
    value = np.round(255 - 255 * (dist / RADIUS + CUTOFF))
    return np.clip(value, 0, 255).astype(np.uint8)


def _glyph(face: freetype.Face, code: int) -> bytes | None:
    if not face.get_char_index(code):
        return None
    face.set_pixel_sizes(0, SIZE * SUPER)
    face.load_char(code, freetype.FT_LOAD_RENDER)
    g = face.glyph
    bm = g.bitmap
    advance = round(g.advance.x / 64 / SUPER)
    fields = [_field(1, 0, code)]
    if bm.width and bm.rows:
        cov = np.array(bm.buffer, dtype=np.float64).reshape(bm.rows, bm.pitch)[:, : bm.width] / 255
        # align the supersampled bitmap to whole output pixels
        left, top = g.bitmap_left, g.bitmap_top
        lpad = left % SUPER
        tpad = (-top) % SUPER
        cov = np.pad(cov, ((tpad, 0), (lpad, 0)))
        rpad = (-cov.shape[1]) % SUPER
        bpad = (-cov.shape[0]) % SUPER
        cov = np.pad(cov, ((0, bpad), (0, rpad)))
        sdf = _sdf(cov)
        width = cov.shape[1] // SUPER
        height = cov.shape[0] // SUPER
        fields += [
            _field(2, 2, sdf.tobytes()),
            _field(3, 0, width),
            _field(4, 0, height),
            _field(5, 0, _zigzag((left - lpad) // SUPER)),
            _field(6, 0, _zigzag((top + tpad) // SUPER - TOP_SHIFT)),
        ]
    else:
        fields += [_field(3, 0, 0), _field(4, 0, 0), _field(5, 0, 0), _field(6, 0, 0)]
    fields.append(_field(7, 0, advance))
    return b"".join(fields)


def make_range(face: freetype.Face, name: str, start: int) -> bytes:
    """The PBF of the glyphs ``start``–``start + 255`` of ``face`` (fontstack ``name``)."""
    end = start + 255
    stack = _field(1, 2, name.encode()) + _field(2, 2, f"{start}-{end}".encode())
    for code in range(start, end + 1):
        glyph = _glyph(face, code)
        if glyph is not None:
            stack += _field(3, 2, glyph)
    return _field(1, 2, stack)


def main(font: str, out: str) -> None:
    """Write the ranges of :data:`RANGES` of ``font`` into the folder ``out``."""
    face = freetype.Face(font, 0)
    target = Path(out)
    target.mkdir(parents=True, exist_ok=True)
    for start in RANGES:
        path = target / f"{start}-{start + 255}.pbf"
        path.write_bytes(make_range(face, target.name, start))
        print(path, path.stat().st_size)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

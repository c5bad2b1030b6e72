"""Character grams for partial search of Chinese names and addresses.

``pg_trgm`` makes no trigrams of CJK characters in some locales, and a two-character name
has no trigram at all; the registry stores instead, per searchable text, the array of its
characters and adjacent character pairs (``text[]`` with a GIN index). A query of one
character looks for that unigram, a longer one for all of its bigrams (``@>``), and the
text itself is rechecked with ``LIKE``.

>>> text_grams("王 小明")
['小', '小明', '明', '王', '王小']
>>> query_grams("小明"), query_grams("明"), query_grams("玉林市 一环路")
(['小明'], ['明'], ['一环', '市一', '林市', '玉林', '环路'])
>>> grams_lists(["李丽丽", None]) == [text_grams("李丽丽"), []]
True
>>> arr = grams_arrow(["王 小明", None, "Ａ1"])
>>> [sorted(set(v)) for v in arr.to_pylist()] == [text_grams("王 小明"), [], text_grams("Ａ1")]
True
>>> grams_arrow(["王小明", None, "", "a", "é1"], normalised=True).to_pylist()
[['王', '小', '明', '王小', '小明'], [], [], ['a'], ['é', '1', 'é1']]
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from geogrid.core.registry.ids import arrow_strings

__all__ = ["normalise_text", "text_grams", "query_grams", "grams_lists", "grams_arrow"]


def normalise_text(text: str) -> str:
    """NFKC, lower-case, whitespace removed: what grams are made of."""
    return "".join(unicodedata.normalize("NFKC", text).lower().split())


def text_grams(text: str | None) -> list[str]:
    """The sorted distinct unigrams and bigrams of a text's normal form."""
    if not text:
        return []
    t = normalise_text(text)
    return sorted(set(t) | {t[i : i + 2] for i in range(len(t) - 1)})


def query_grams(query: str) -> list[str]:
    """The grams a text must contain to contain the query (sorted, distinct)."""
    t = normalise_text(query)
    if len(t) <= 1:
        return [t] if t else []
    return sorted({t[i : i + 2] for i in range(len(t) - 1)})


def grams_lists(texts: Iterable[str | None]) -> list[list[str]]:
    """:func:`text_grams` of many texts (missing → ``[]``)."""
    return [text_grams(t) if isinstance(t, str) else [] for t in texts]


def grams_arrow(
    texts: Sequence[str | None] | np.ndarray | pd.Series | pa.Array,
    *,
    normalised: bool = False,
    chunk: int = 250_000,
) -> pa.ListArray:
    """The grams of many texts as an Arrow ``list<string>`` array, vectorised with NumPy
    down to the UTF-8 bytes (the bulk loaders' form of :func:`text_grams`: the same grams
    per text, in text order and possibly repeated, which a GIN index and ``@>`` do not
    mind). ``normalised``: the texts are already in :func:`normalise_text` form (skips
    that step, and the grams are cut from the texts' UTF-8 bytes, an Arrow-backed Series
    read without a copy)."""
    if normalised:
        whole = _large_strings(texts)
        parts = [_grams_utf8(whole.slice(i, chunk)) for i in range(0, max(len(whole), 1), chunk)]
        return pa.concat_arrays(parts) if len(parts) > 1 else parts[0]
    arr = np.asarray(texts, dtype=object)
    parts = [
        _grams_chunk(arr[i : i + chunk], normalised) for i in range(0, max(len(arr), 1), chunk)
    ]
    return pa.concat_arrays(parts) if len(parts) > 1 else parts[0]


def _large_strings(texts: Sequence[str | None] | np.ndarray | pd.Series | pa.Array) -> pa.Array:
    """Texts as one Arrow ``large_string`` array (an Arrow-backed Series without a copy),
    missing ones as ``""``."""
    if isinstance(texts, np.ndarray | list | tuple):
        texts = np.asarray(texts, dtype=object)
    return arrow_strings(texts).fill_null("")


def _grams_utf8(arr: pa.Array) -> pa.ListArray:
    """The grams of texts in normal form straight from their UTF-8 bytes: a character
    starts at every byte that is not a continuation byte (``10xxxxxx``); a row's unigrams
    are its characters' byte ranges, its bigrams two adjacent ones; the grams' bytes are
    gathered with one NumPy index (no decoding to code points and back)."""
    n = len(arr)
    offs = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    base = int(offs[0]) if n else 0
    data = arr.buffers()[2]
    raw = (
        np.frombuffer(data, dtype=np.uint8)[base : int(offs[-1])]
        if n and data is not None
        else np.zeros(0, dtype=np.uint8)
    )
    offs = offs - base
    lead = (raw & 0xC0) != 0x80
    cstart = np.flatnonzero(lead)  # byte start of every character
    cend = np.append(cstart[1:], len(raw))  # … and its end (rows are contiguous)
    cum = np.concatenate([[0], np.cumsum(lead)])
    nchars = cum[offs[1:]] - cum[offs[:-1]]
    first = cum[offs[:-1]]  # index of each row's first character
    ngrams = np.where(nchars > 0, 2 * nchars - 1, 0)
    goffs = np.concatenate([[0], np.cumsum(ngrams)])
    nc = len(cstart)
    row = np.repeat(np.arange(n), nchars)
    k = np.arange(nc) - first[row]  # rank of the character in its row
    gstart = np.empty(int(goffs[-1]), dtype=np.int64)
    glen = np.empty(int(goffs[-1]), dtype=np.int64)
    upos = goffs[:-1][row] + k
    gstart[upos] = cstart
    glen[upos] = cend - cstart
    pair = k < nchars[row] - 1  # a character followed by another in its row
    j = np.flatnonzero(pair)
    bpos = goffs[:-1][row[j]] + nchars[row[j]] + k[j]
    gstart[bpos] = cstart[j]
    glen[bpos] = cend[j + 1] - cstart[j]
    ends = np.cumsum(glen)
    idx = np.repeat(gstart - (ends - glen), glen) + np.arange(int(ends[-1]) if len(ends) else 0)
    values = pa.StringArray.from_buffers(
        len(glen),
        pa.py_buffer(np.concatenate([[0], ends]).astype(np.int32)),
        pa.py_buffer(np.ascontiguousarray(raw[idx])),
    )
    return pa.ListArray.from_arrays(pa.array(goffs.astype(np.int32), pa.int32()), values)


def _utf8(cps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UTF-8 bytes of code points (0 = none) and each one's byte length."""
    cp = cps.astype(np.uint32)
    n = np.select([cp == 0, cp < 0x80, cp < 0x800, cp < 0x10000], [0, 1, 2, 3], 4)
    ends = np.cumsum(n)
    start = ends - n
    out = np.zeros(int(ends[-1]) if len(ends) else 0, dtype=np.uint8)
    for k, lead in ((1, 0x00), (2, 0xC0), (3, 0xE0), (4, 0xF0)):
        sel = n == k
        if not sel.any():
            continue
        c, s0 = cp[sel], start[sel]
        out[s0] = (lead | (c >> (6 * (k - 1)))) & 0xFF
        for j in range(1, k):
            out[s0 + j] = 0x80 | ((c >> (6 * (k - 1 - j))) & 0x3F)
    return out, n


def _grams_chunk(texts: np.ndarray, normalised: bool) -> pa.ListArray:
    n = len(texts)
    ser = pd.Series(texts, dtype=object).fillna("").astype(str)
    if not normalised:
        ser = ser.str.normalize("NFKC").str.lower().str.replace(r"\s+", "", regex=True)
    lens = ser.str.len().to_numpy(dtype=np.int64)
    w = int(max(lens.max(initial=0), 1))
    m = ser.to_numpy(dtype=f"U{w}").view(np.uint32).reshape(n, w)
    pairs = np.zeros((n, 2 * w - 1, 2), dtype=np.uint32)
    pairs[:, :w, 0] = m  # unigrams
    pairs[:, w:, 0] = m[:, :-1]  # bigrams
    pairs[:, w:, 1] = m[:, 1:]
    cols = np.arange(w)[None, :]
    mask = np.concatenate([cols < lens[:, None], cols[:, : w - 1] < (lens - 1)[:, None]], axis=1)
    grams = pairs[mask]  # (g, 2) code points in text order
    data, nbytes = _utf8(grams.reshape(-1))
    per_gram = nbytes.reshape(-1, 2).sum(axis=1)
    str_offsets = np.concatenate([[0], np.cumsum(per_gram)]).astype(np.int32)
    values = pa.StringArray.from_buffers(len(grams), pa.py_buffer(str_offsets), pa.py_buffer(data))
    offsets = np.concatenate([[0], np.cumsum(mask.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values)

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
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

__all__ = ["normalise_text", "text_grams", "query_grams", "grams_lists"]


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

"""Residents' evaluation of their grid worker (群众测评): criteria, answers and voters
(pure; the workflow is :mod:`geogrid.services.evaluation`).

A round is held per grid (e.g. each quarter): a link/QR posted in the grid, or paper forms
keyed in by staff. Residents score each criterion the centre defines 1–5
(:data:`DEFAULT_CRITERIA`: known to residents, responsive, solved problems, attitude;
a deployment may replace them with the ``evaluation_criteria`` setting). The round keeps a
copy of its criteria, so changing them later does not change old rounds.

One answer per household and round. The voter is identified by a household reference
(户号) or a phone number, normalised (:func:`voter_key`) and hashed with HMAC-SHA256 under
the round's random salt (:func:`voter_hash`); the hash is stored with a UNIQUE constraint
on (round, hash), the identifier never. Different salts make the same household unlinkable
across rounds. A household that answers once with its reference and once with a phone is
two voters: the form asks for the household reference first.

>>> crit = criteria_of(None)
>>> list(crit)
['known_to_residents', 'responsive', 'solved_problems', 'attitude']
>>> check_scores({"known_to_residents": 5, "responsive": 4, "solved_problems": 4,
...               "attitude": 5}, crit)
{'known_to_residents': 5, 'responsive': 4, 'solved_problems': 4, 'attitude': 5}
>>> mean_score({"a": 5, "b": 4})
4.5
>>> voter_key(household_ref=" yl-0012 3 ")
'h:YL-00123'
>>> voter_key(phone="+86 139-1234-5678")
'p:13912345678'
>>> voter_hash(b"salt", "p:13912345678") == voter_hash(b"salt", voter_key(phone="13912345678"))
True
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any, Final

from geogrid.errors import InvalidInput

__all__ = [
    "DEFAULT_CRITERIA",
    "SOURCES",
    "SALT_BYTES",
    "criteria_of",
    "criteria_to_stored",
    "criteria_from_stored",
    "check_scores",
    "mean_score",
    "voter_key",
    "voter_hash",
    "new_salt",
]

#: the centre's criteria: code → {"zh": …, "en": …}
DEFAULT_CRITERIA: Final[dict[str, dict[str, str]]] = {
    "known_to_residents": {"zh": "群众知晓网格员", "en": "known to residents"},
    "responsive": {"zh": "反映问题及时回应", "en": "responsive"},
    "solved_problems": {"zh": "帮助解决实际问题", "en": "solved problems"},
    "attitude": {"zh": "服务态度", "en": "attitude"},
}
#: where an answer came from
SOURCES: Final[tuple[str, ...]] = ("link", "paper")
SALT_BYTES: Final[int] = 32
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def criteria_of(configured: Mapping[str, Any] | None) -> dict[str, dict[str, str]]:
    """The criteria: ``configured`` (code → {"zh", "en"} or a 2-list) checked, else the
    defaults."""
    if not configured:
        return {k: dict(v) for k, v in DEFAULT_CRITERIA.items()}
    out: dict[str, dict[str, str]] = {}
    for code, names in configured.items():
        if not isinstance(code, str) or not _CODE.match(code):
            raise InvalidInput("criteria", code, "codes of lower-case letters, digits and _")
        if isinstance(names, Mapping):
            zh, en = names.get("zh"), names.get("en")
        elif isinstance(names, list | tuple) and len(names) == 2:
            zh, en = names
        else:
            zh = en = None
        if not (isinstance(zh, str) and zh and isinstance(en, str) and en):
            raise InvalidInput(f"criteria.{code}", names, '{"zh": "…", "en": "…"}')
        out[code] = {"zh": zh, "en": en}
    return out


def criteria_to_stored(criteria: Mapping[str, Mapping[str, str]]) -> list[dict[str, str]]:
    """Criteria as a list (JSONB objects do not keep key order; the centre's order does
    matter on the form).

    >>> criteria_from_stored(criteria_to_stored({"b": {"zh": "乙", "en": "B"},
    ...                                          "a": {"zh": "甲", "en": "A"}}))
    {'b': {'zh': '乙', 'en': 'B'}, 'a': {'zh': '甲', 'en': 'A'}}
    """
    return [{"code": k, "zh": v["zh"], "en": v["en"]} for k, v in criteria.items()]


def criteria_from_stored(value: Any) -> dict[str, dict[str, str]]:
    """Criteria in order from their stored list (or an older mapping)."""
    if isinstance(value, Mapping):
        return {str(k): dict(v) for k, v in value.items()}
    return {str(c["code"]): {"zh": str(c["zh"]), "en": str(c["en"])} for c in value or []}


def check_scores(scores: Any, criteria: Mapping[str, Any]) -> dict[str, int]:
    """The scores of every criterion, each an integer 1–5 (InvalidInput naming the
    criterion otherwise; unknown criteria are refused too)."""
    if not isinstance(scores, Mapping):
        raise InvalidInput("scores", scores, "an object: criterion → score 1–5")
    unknown = sorted(set(scores) - set(criteria))
    if unknown:
        raise InvalidInput("scores", ",".join(map(str, unknown)), "one of " + ", ".join(criteria))
    out: dict[str, int] = {}
    for code in criteria:
        v = scores.get(code)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 5:
            raise InvalidInput(f"scores.{code}", v, "an integer from 1 to 5")
        out[code] = v
    return out


def mean_score(scores: Mapping[str, int]) -> float:
    """The mean of an answer's scores (1–5)."""
    return sum(scores.values()) / len(scores)


def voter_key(household_ref: Any = None, phone: Any = None) -> str:
    """The normalised identifier of a voter: ``h:`` + the household reference (spaces
    removed, upper case), else ``p:`` + the phone's digits (a +86/0086 prefix removed).
    InvalidInput when neither is usable."""
    if household_ref not in (None, ""):
        if not isinstance(household_ref, str):
            raise InvalidInput("household_ref", household_ref, "text")
        ref = re.sub(r"\s+", "", household_ref).upper()
        if not 1 <= len(ref) <= 64:
            raise InvalidInput("household_ref", "(hidden)", "1 to 64 characters")
        return "h:" + ref
    if phone not in (None, ""):
        if not isinstance(phone, str | int) or isinstance(phone, bool):
            raise InvalidInput("phone", "(hidden)", "a phone number")
        digits = re.sub(r"\D", "", str(phone))
        if digits.startswith("0086"):
            digits = digits[4:]
        elif digits.startswith("86") and len(digits) == 13:
            digits = digits[2:]
        if not 7 <= len(digits) <= 15:
            raise InvalidInput("phone", "(hidden)", "a phone number of 7 to 15 digits")
        return "p:" + digits
    raise InvalidInput("household_ref", None, "a household reference (户号) or a phone number")


def voter_hash(salt: bytes, key: str) -> bytes:
    """HMAC-SHA256 of a voter key under the round's salt (32 bytes)."""
    return hmac.new(salt, key.encode("utf-8"), hashlib.sha256).digest()


def new_salt() -> bytes:
    """A round's random salt."""
    return secrets.token_bytes(SALT_BYTES)

"""Disputes (矛盾纠纷): a case with parties, a cause, mediation sessions and an outcome.

Pure vocabulary, checks and the masking of a dispute's personal fields; the SQL is in
:mod:`geogrid.store.disputes`, the workflows in :mod:`geogrid.services.disputes`.

Statuses
--------
``open`` (recorded) → ``mediating`` (after the first mediation session) → one of the
final outcomes: ``resolved`` (调解成功, settled), ``referred`` (移交, handed to the
court, police, labour arbitration …) or ``agreement`` (签订协议, a signed mediation
agreement). An outcome may be recorded straight from ``open`` (settled on the spot); a
final dispute takes no more sessions.

>>> check_outcome("agreement")
'agreement'
>>> next_status("open", session=True), next_status("mediating", outcome="referred")
('mediating', 'referred')
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final

from geogrid.core.masking import MASKED, mask_name, mask_phone, mask_text
from geogrid.errors import Conflict, InvalidInput

__all__ = [
    "DISPUTE_STATUSES",
    "OPEN_DISPUTE_STATUSES",
    "OUTCOMES",
    "DISPUTE_CATEGORIES",
    "PARTY_ROLES",
    "DISPUTE_PERSONAL",
    "SESSION_PERSONAL",
    "MAX_PARTIES",
    "check_outcome",
    "check_dispute_category",
    "check_dispute_statuses",
    "check_parties",
    "check_text",
    "next_status",
    "redact_dispute",
]

#: every status, in lifecycle order
DISPUTE_STATUSES: Final[tuple[str, ...]] = (
    "open",
    "mediating",
    "resolved",
    "referred",
    "agreement",
)
#: statuses that still take sessions and an outcome
OPEN_DISPUTE_STATUSES: Final[tuple[str, ...]] = ("open", "mediating")
#: outcome → (Chinese name, English name); each is also the final status it leads to
OUTCOMES: Final[dict[str, tuple[str, str]]] = {
    "resolved": ("调解成功", "resolved by mediation"),
    "referred": ("移交处理", "referred to another body"),
    "agreement": ("签订调解协议", "mediation agreement signed"),
}
#: category → (Chinese name, English name)
DISPUTE_CATEGORIES: Final[dict[str, tuple[str, str]]] = {
    "neighbour": ("邻里纠纷", "neighbours"),
    "family": ("婚姻家庭纠纷", "marriage and family"),
    "property": ("物业纠纷", "property management"),
    "land": ("土地山林纠纷", "land and forest"),
    "labour": ("劳资纠纷", "wages and labour"),
    "debt": ("债务纠纷", "debts"),
    "damage": ("损害赔偿纠纷", "damages"),
    "other": ("其他纠纷", "other"),
}
#: the role of a party in a dispute
PARTY_ROLES: Final[tuple[str, ...]] = ("applicant", "respondent", "other")
#: personal fields of a dispute (parties' names and phones; free text that may name them)
DISPUTE_PERSONAL: Final[tuple[str, ...]] = ("parties", "cause", "outcome_note")
#: personal fields of a mediation session
SESSION_PERSONAL: Final[tuple[str, ...]] = ("note",)
MAX_PARTIES: Final[int] = 20
_TEXT_MAX = 4000
_PHONE = re.compile(r"^\+?[0-9][0-9 -]{4,19}$")


def check_text(
    value: Any, parameter: str, *, required: bool = True, max_chars: int = _TEXT_MAX
) -> str | None:
    """Free text of 1–``max_chars`` characters (trimmed); None when not ``required`` and
    empty."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput(parameter, value, f"a text of 1-{max_chars} characters")
        return None
    if (
        not isinstance(value, str)
        or len(value.strip()) > max_chars
        or any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value)
    ):
        raise InvalidInput(parameter, value, f"a text of 1-{max_chars} printable characters")
    return value.strip()


def check_outcome(value: Any, parameter: str = "outcome") -> str:
    """An outcome code of :data:`OUTCOMES`."""
    if value not in OUTCOMES:
        raise InvalidInput(parameter, value, "one of " + ", ".join(OUTCOMES))
    return str(value)


def check_dispute_category(value: Any, parameter: str = "category") -> str:
    """A category code of :data:`DISPUTE_CATEGORIES` (or its Chinese name).

    >>> check_dispute_category("邻里纠纷")
    'neighbour'
    """
    if value in DISPUTE_CATEGORIES:
        return str(value)
    by_zh = {zh: code for code, (zh, _) in DISPUTE_CATEGORIES.items()}
    if isinstance(value, str) and value.strip() in by_zh:
        return by_zh[value.strip()]
    raise InvalidInput(parameter, value, "one of " + ", ".join(DISPUTE_CATEGORIES))


def check_dispute_statuses(values: Any, parameter: str = "status") -> list[str]:
    """Statuses of :data:`DISPUTE_STATUSES`."""
    out = [str(v) for v in values]
    bad = [v for v in out if v not in DISPUTE_STATUSES]
    if bad:
        raise InvalidInput(parameter, ",".join(bad), "one of " + ", ".join(DISPUTE_STATUSES))
    return out


def check_parties(values: Any, parameter: str = "parties") -> list[dict[str, Any]]:
    """The parties of a dispute: 1–20 mappings with ``name`` (required, 1–50 printable
    characters), ``phone`` (optional digits, spaces, dashes, a leading +), ``role``
    (applicant, respondent or other; default other) and ``note`` (optional).

    >>> check_parties([{"name": " 王五 ", "phone": "138-1234-5678", "role": "applicant"}])
    [{'name': '王五', 'phone': '138-1234-5678', 'role': 'applicant', 'note': None}]
    """
    if not isinstance(values, list | tuple) or not 1 <= len(values) <= MAX_PARTIES:
        raise InvalidInput(parameter, values, f"a list of 1-{MAX_PARTIES} parties")
    out: list[dict[str, Any]] = []
    for i, p in enumerate(values):
        where = f"{parameter}[{i}]"
        if not isinstance(p, Mapping):
            raise InvalidInput(where, p, "an object with name, phone, role, note")
        name = p.get("name")
        if (
            not isinstance(name, str)
            or not 1 <= len(name.strip()) <= 50
            or any(unicodedata.category(ch)[0] == "C" for ch in name)
        ):
            raise InvalidInput(f"{where}.name", name, "a name of 1-50 printable characters")
        phone = p.get("phone")
        if phone in ("", None):
            phone = None
        elif not isinstance(phone, str) or not _PHONE.match(phone.strip()):
            raise InvalidInput(f"{where}.phone", phone, "a phone number (digits, spaces, -, +)")
        else:
            phone = phone.strip()
        role = p.get("role") or "other"
        if role not in PARTY_ROLES:
            raise InvalidInput(f"{where}.role", role, "one of " + ", ".join(PARTY_ROLES))
        note = check_text(p.get("note"), f"{where}.note", required=False, max_chars=500)
        out.append({"name": name.strip(), "phone": phone, "role": role, "note": note})
    return out


def next_status(status: str, *, session: bool = False, outcome: str | None = None) -> str:
    """The status after a mediation session (``session``) or an ``outcome`` is recorded.

    Raises Conflict when the dispute is already final.

    >>> next_status("agreement", session=True)
    Traceback (most recent call last):
    ...
    geogrid.errors.Conflict: the dispute is closed ('agreement'): it takes no more sessions or outcomes
    """
    if status not in OPEN_DISPUTE_STATUSES:
        raise Conflict(f"the dispute is closed ({status!r}): it takes no more sessions or outcomes")
    if outcome is not None:
        return check_outcome(outcome)
    if session:
        return "mediating"
    return status


def redact_dispute(d: Mapping[str, Any]) -> dict[str, Any]:
    """A dispute (with optional ``sessions``) as staff outside its units see it: parties'
    names and phones masked, free text with contact details masked, session notes
    :data:`~geogrid.core.masking.MASKED`.

    >>> redact_dispute({"parties": [{"name": "王五", "phone": "13812345678", "role": "other",
    ...                 "note": "x"}], "cause": "王五 13812345678 噪音", "outcome_note": None,
    ...                 "sessions": [{"note": "谈话", "mediator_id": 7}]})["parties"]
    [{'name': '王*', 'phone': '138****5678', 'role': 'other', 'note': '***'}]
    """
    out = dict(d)
    out["parties"] = [
        {
            **p,
            "name": mask_name(p.get("name")),
            "phone": mask_phone(p.get("phone")),
            "note": MASKED if p.get("note") else None,
        }
        for p in d.get("parties") or []
    ]
    names = [p.get("name") for p in d.get("parties") or [] if p.get("name")]
    for key in ("cause", "outcome_note"):
        if d.get(key):
            out[key] = _mask_names(mask_text(str(d[key])) or "", names)
    if "sessions" in d:
        out["sessions"] = [
            {**s, "note": MASKED if s.get("note") else None} for s in d.get("sessions") or []
        ]
    return out


def _mask_names(text: str, names: list[str]) -> str:
    """``text`` with the parties' names masked wherever they are written in it."""
    for n in sorted(names, key=len, reverse=True):
        masked = mask_name(n)
        if masked:
            text = text.replace(n, masked)
    return text

"""Masking of personal data (names, phones, ID numbers, e-mails, staff references, free text).

The services show a personal field in clear only where the caller's scope allows it
(:meth:`geogrid.core.scope.Scope.personal_clear`); everywhere else they pass it through
these functions. Masks keep enough to tell records apart on a screen (the surname, a
phone's prefix and last four digits) and nothing that identifies a person.

>>> mask_name("张三"), mask_phone("13812341234"), mask_email("li.mei@example.com")
('张*', '138****1234', 'l*****@example.com')
>>> mask_text("请联系 13812341234 或 li@example.com，身份证 45090219800101123X")
'请联系 138****1234 或 l*@example.com，身份证 45**************3X'
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "MASK_CHAR",
    "MASKED",
    "PHONE_RE",
    "ID_NUMBER_RE",
    "EMAIL_RE",
    "mask_name",
    "mask_phone",
    "mask_id_number",
    "mask_email",
    "mask_ref",
    "mask_text",
    "is_masked",
    "INCIDENT_PERSONAL",
    "INCIDENT_STAFF_REFS",
    "EVENT_PERSONAL",
    "REGISTER_PERSONAL",
    "redact_event",
    "redact_incident",
    "redact_register_row",
]

MASK_CHAR: Final[str] = "*"
#: what a personal field without a useful partial mask becomes (e.g. a staff note)
MASKED: Final[str] = "***"

#: a mainland ID number (18 characters, last may be X) — matched before phones
ID_NUMBER_RE: Final[re.Pattern[str]] = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
#: mobile (1[3-9] + 9 digits, optional +86) or landline (0 + 2–3 digit area code, 7–8 digits)
PHONE_RE: Final[re.Pattern[str]] = re.compile(
    r"(?<!\d)(?:(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}|0\d{2,3}[- ]?\d{7,8})(?!\d)"
)
EMAIL_RE: Final[re.Pattern[str]] = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def mask_name(name: str | None) -> str | None:
    """A person's name with all but the first character masked (word by word for names
    written with spaces).

    >>> mask_name("张三"), mask_name("欧阳娜娜"), mask_name("Li Mei"), mask_name(None)
    ('张*', '欧***', 'L* M**', None)
    """
    if name is None:
        return None
    words = str(name).split(" ")
    return " ".join(w[:1] + MASK_CHAR * (len(w) - 1) if w else w for w in words)


def mask_phone(phone: str | None) -> str | None:
    """A phone number with the middle digits masked: the first three and last four digits
    stay (``138****1234``); short numbers keep only their last two digits. Separators are
    dropped.

    >>> mask_phone("138-1234-1234"), mask_phone("0775-2345678"), mask_phone("12345")
    ('138****1234', '077****5678', '***45')
    """
    if phone is None:
        return None
    digits = re.sub(r"\D", "", str(phone))
    if len(digits) >= 13 and digits.startswith("86"):
        digits = digits[2:]
    if len(digits) < 8:
        return MASK_CHAR * max(len(digits) - 2, 1) + digits[-2:]
    return digits[:3] + MASK_CHAR * (len(digits) - 7) + digits[-4:]


def mask_id_number(number: str | None) -> str | None:
    """An ID number with all but the first two and last two characters masked.

    >>> mask_id_number("45090219800101123X")
    '45**************3X'
    """
    if number is None:
        return None
    s = str(number)
    if len(s) <= 4:
        return MASK_CHAR * len(s)
    return s[:2] + MASK_CHAR * (len(s) - 4) + s[-2:]


def mask_email(email: str | None) -> str | None:
    """An e-mail address with the local part masked but its first character.

    >>> mask_email("x@y.cn")
    'x@y.cn'
    """
    if email is None:
        return None
    local, sep, domain = str(email).partition("@")
    if not sep:
        return mask_name(local)
    return local[:1] + MASK_CHAR * (len(local) - 1) + "@" + domain


def mask_ref(ref: str | None) -> str | None:
    """A staff reference (e.g. an employee number) with all but its first two characters
    masked.

    >>> mask_ref("YL-W-00421")
    'YL********'
    """
    if ref is None:
        return None
    s = str(ref)
    return s[:2] + MASK_CHAR * max(len(s) - 2, 0)


def mask_text(text: str | None) -> str | None:
    """Free text (a description, a note) with contact details masked: ID numbers, phone
    numbers and e-mail addresses found by pattern are replaced by their masks; the rest of
    the text stays (the moderated description of a public report).

    >>> mask_text("电话0775-2345678，手机 +86 138 1234 1234")
    '电话077****5678，手机 138****1234'
    >>> mask_text(None) is None
    True
    """
    if text is None:
        return None
    s = ID_NUMBER_RE.sub(lambda m: mask_id_number(m.group(0)) or "", str(text))
    s = PHONE_RE.sub(lambda m: mask_phone(m.group(0)) or "", s)
    return EMAIL_RE.sub(lambda m: mask_email(m.group(0)) or "", s)


def is_masked(value: str | None) -> bool:
    """Does ``value`` look masked (contains :data:`MASK_CHAR`)? None counts as masked.

    >>> is_masked("张*"), is_masked("张三"), is_masked(None)
    (True, False, True)
    """
    return value is None or MASK_CHAR in str(value)


# --------------------------------------------------------------------------- records
#: personal fields of an incident as the services return it (clear only where the caller's
#: scope allows; masked for other staff; absent — None — for anonymous callers)
INCIDENT_PERSONAL: Final[tuple[str, ...]] = ("description", "last_note", "address")
#: account references of an incident: kept for staff, None for anonymous callers
INCIDENT_STAFF_REFS: Final[tuple[str, ...]] = ("reporter_id", "assignee_id", "source_id")
#: personal fields of a history event
EVENT_PERSONAL: Final[tuple[str, ...]] = ("actor_name", "note", "data")
#: personal fields of a register row (level=worker)
REGISTER_PERSONAL: Final[tuple[str, ...]] = ("worker_name", "ref")


def _mask_data(data: object) -> object:
    """String values of an event's facts with contact details masked (recursively)."""
    if isinstance(data, dict):
        return {k: _mask_data(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_mask_data(v) for v in data]
    if isinstance(data, str):
        return mask_text(data)
    return data


def redact_event(event: dict[str, object]) -> dict[str, object]:
    """A history event with its personal fields masked: the actor's name (``李*``), the note
    (:data:`MASKED`: staff notes may hold dispute details) and contact details in its facts.

    >>> redact_event({"actor_name": "李梅", "note": "与邻居纠纷", "data": {"tel": "13812341234"}})
    {'actor_name': '李*', 'note': '***', 'data': {'tel': '138****1234'}}
    """
    out = dict(event)
    name = out.get("actor_name")
    out["actor_name"] = mask_name(str(name)) if name is not None else None
    out["note"] = MASKED if out.get("note") is not None else None
    out["data"] = _mask_data(out.get("data"))
    return out


def redact_incident(incident: dict[str, object], *, public: bool) -> dict[str, object]:
    """An incident with its personal fields masked (staff outside the record's units) or
    the public view (``public``: an anonymous caller).

    Staff get the description and address with contact details masked (:func:`mask_text`),
    the latest note as :data:`MASKED` and the history's events through
    :func:`redact_event`. The public view keeps the moderated description and address
    (contact details masked) and drops notes, history and account references.

    >>> inc = {"description": "漏水 13812341234", "last_note": "王五说", "address": "江滨路",
    ...        "reporter_id": 4, "assignee_id": 5, "source_id": None,
    ...        "history": [{"actor_name": "王五", "note": "x", "data": None}]}
    >>> staff = redact_incident(inc, public=False)
    >>> staff["description"], staff["last_note"], staff["history"][0]["actor_name"]
    ('漏水 138****1234', '***', '王*')
    >>> pub = redact_incident(inc, public=True)
    >>> pub["last_note"], pub["reporter_id"], pub["history"]
    (None, None, None)
    """
    out = dict(incident)
    for f in ("description", "address"):
        v = out.get(f)
        out[f] = mask_text(str(v)) if v is not None else None
    if public:
        out["last_note"] = None
        for f in INCIDENT_STAFF_REFS:
            if f in out:
                out[f] = None
        if "history" in out:
            out["history"] = None
        return out
    out["last_note"] = MASKED if out.get("last_note") is not None else None
    hist = out.get("history")
    if isinstance(hist, list):
        out["history"] = [redact_event(dict(e)) for e in hist]
    return out


def redact_register_row(row: dict[str, object]) -> dict[str, object]:
    """A register row with the worker's name and staff number masked.

    >>> redact_register_row({"worker_name": "李梅", "ref": "YL-W-00421", "reported": 3})
    {'worker_name': '李*', 'ref': 'YL********', 'reported': 3}
    """
    out = dict(row)
    name, ref = out.get("worker_name"), out.get("ref")
    out["worker_name"] = mask_name(str(name)) if name is not None else None
    out["ref"] = mask_ref(str(ref)) if ref is not None else None
    return out

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

"""Residents' satisfaction with handled incidents and the follow-up (回访) queue: the
vocabulary and the rules (pure; the workflow is :mod:`geogrid.services.satisfaction` and
:mod:`geogrid.services.follow_up`).

Links
-----
When an incident is resolved its reporter gets a one-time link ``/s/{token}``: the token
is :func:`geogrid.core.accounts.new_token` (256 random bits) and only its SHA-256 is
stored (:func:`geogrid.core.accounts.hash_token`), so the database never holds a usable
link. A link expires after ``survey_link_days``; issuing a new link for the same incident
revokes the older unanswered ones; a link takes one answer.

Answers
-------
``solved`` is ``yes`` (解决了), ``partly`` (部分解决) or ``no`` (没有解决); ``score`` 1–5;
an optional comment. What an answer does to a resolved incident
(:func:`verdict`): "not solved" or a score at or below ``reopen_max_score`` reopens it
(resolved → in_progress, when reopening is on); "solved" with a score at or above
``close_min_score`` closes it (the resident is the verifier of a resident's report);
anything else leaves it resolved for the staff to decide (and a follow-up call).

Follow-up sampling
------------------
Every dissatisfied answer (:func:`dissatisfied`), every incident of a dispute category
and a share of the other closed incidents (default 10 %, configurable per category) are
queued for a call or visit. The share is drawn deterministically from a hash of the
incident id (:func:`sampled`), so the same incidents are chosen on every run and anyone
can reproduce the sample.

>>> verdict("no", 4)
'reopen'
>>> verdict("yes", 5)
'close'
>>> verdict("partly", 3)
'keep'
>>> verdict("yes", 2)
'reopen'
>>> verdict("yes", 2, SatisfactionRules(reopen=False))
'keep'
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from geogrid.errors import Conflict, InvalidInput

__all__ = [
    "SOLVED",
    "SOLVED_NAMES",
    "SOURCES",
    "FOLLOW_UP_REASONS",
    "FOLLOW_UP_REASON_NAMES",
    "SCORES",
    "SatisfactionRules",
    "FollowUpRules",
    "check_answer",
    "verdict",
    "dissatisfied",
    "sampled",
    "follow_up_reason",
    "from_follow_up",
    "LinkExpired",
    "LinkAnswered",
]

#: was the problem solved? code → (中文, English)
SOLVED_NAMES: Final[dict[str, tuple[str, str]]] = {
    "yes": ("解决了", "solved"),
    "partly": ("部分解决", "partly solved"),
    "no": ("没有解决", "not solved"),
}
SOLVED: Final[tuple[str, ...]] = tuple(SOLVED_NAMES)
#: where a satisfaction answer came from
SOURCES: Final[tuple[str, ...]] = ("link", "follow_up")
#: why an incident is in the follow-up queue, code → (中文, English)
FOLLOW_UP_REASON_NAMES: Final[dict[str, tuple[str, str]]] = {
    "dissatisfied": ("群众不满意", "the resident was not satisfied"),
    "dispute": ("矛盾纠纷", "a dispute"),
    "sample": ("抽样回访", "sampled"),
}
FOLLOW_UP_REASONS: Final[tuple[str, ...]] = tuple(FOLLOW_UP_REASON_NAMES)
#: the satisfaction scale
SCORES: Final[tuple[int, ...]] = (1, 2, 3, 4, 5)
#: the longest comment kept (characters)
MAX_COMMENT: Final[int] = 2000

Verdict = Literal["reopen", "close", "keep"]


@dataclass(frozen=True)
class SatisfactionRules:
    """What an answer does (settings ``satisfaction_*``).

    reopen : reopen a resolved incident on a dissatisfied answer
    reopen_max_score : scores at or below this are dissatisfied
    close_min_score : "solved" with at least this score closes the incident
    """

    reopen: bool = True
    reopen_max_score: int = 2
    close_min_score: int = 3


@dataclass(frozen=True)
class FollowUpRules:
    """The follow-up sample (settings ``follow_up_*``).

    rate : the share of other closed incidents sampled (0–1)
    rates : per-category shares overriding ``rate``
    dispute_categories : categories always followed up
    due_days : days a follow-up is due after it is queued
    """

    rate: float = 0.10
    rates: Mapping[str, float] | None = None
    dispute_categories: tuple[str, ...] = ("dispute",)
    due_days: float = 7.0

    def rate_for(self, category: str) -> float:
        """The sampled share of ``category``'s closed incidents.

        >>> FollowUpRules(rates={"garbage": 0.5}).rate_for("garbage")
        0.5
        >>> FollowUpRules().rate_for("garbage")
        0.1
        """
        if self.rates and category in self.rates:
            return float(self.rates[category])
        return float(self.rate)


def check_answer(solved: Any, score: Any, comment: Any = None) -> tuple[str, int, str | None]:
    """``(solved, score, comment)`` checked; InvalidInput naming the field otherwise.

    >>> check_answer("partly", 4, "  ok ")
    ('partly', 4, 'ok')
    >>> check_answer("maybe", 4)
    Traceback (most recent call last):
    ...
    geogrid.errors.InvalidInput: solved='maybe' is not valid: expected one of yes, partly, no
    """
    if solved not in SOLVED:
        raise InvalidInput("solved", solved, "one of " + ", ".join(SOLVED))
    if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
        raise InvalidInput("score", score, "an integer from 1 to 5")
    text: str | None = None
    if comment is not None:
        if not isinstance(comment, str):
            raise InvalidInput("comment", comment, "text")
        text = comment.strip() or None
        if text is not None and len(text) > MAX_COMMENT:
            raise InvalidInput("comment", f"{len(text)} characters", f"at most {MAX_COMMENT}")
    return solved, score, text


def dissatisfied(solved: str, score: int, rules: SatisfactionRules = SatisfactionRules()) -> bool:
    """Is this answer a dissatisfied one ("not solved", or a low score)?

    >>> dissatisfied("partly", 2), dissatisfied("partly", 3), dissatisfied("no", 5)
    (True, False, True)
    """
    return solved == "no" or score <= rules.reopen_max_score


def verdict(solved: str, score: int, rules: SatisfactionRules = SatisfactionRules()) -> Verdict:
    """What an answer does to a resolved incident: ``reopen``, ``close`` or ``keep``."""
    if dissatisfied(solved, score, rules):
        return "reopen" if rules.reopen else "keep"
    if solved == "yes" and score >= rules.close_min_score:
        return "close"
    return "keep"


def sampled(incident_id: int, rate: float) -> bool:
    """Is the incident in a ``rate`` sample? Deterministic: the first 8 bytes of
    SHA-256(``"follow-up:" + id``) read as a fraction of 2⁶⁴, below ``rate``.

    >>> sum(sampled(i, 0.1) for i in range(1, 10_001))
    914
    >>> sampled(7, 0.0), sampled(7, 1.0)
    (False, True)
    """
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"follow-up:{int(incident_id)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def follow_up_reason(incident_id: int, category: str, rules: FollowUpRules) -> str | None:
    """Why a closed incident is followed up (``dispute`` or ``sample``), or None.
    Dissatisfied answers are queued when they are given.

    >>> follow_up_reason(1, "dispute", FollowUpRules())
    'dispute'
    >>> follow_up_reason(1, "garbage", FollowUpRules(rate=1.0))
    'sample'
    >>> follow_up_reason(1, "garbage", FollowUpRules(rate=0.0)) is None
    True
    """
    if category in rules.dispute_categories:
        return "dispute"
    if sampled(incident_id, rules.rate_for(category)):
        return "sample"
    return None


def from_follow_up(satisfied: bool, score: int | None) -> tuple[str, int]:
    """The ``(solved, score)`` a reached follow-up call counts as in the satisfaction
    figures: the score given, else 4 when satisfied and 2 when not.

    >>> from_follow_up(True, None), from_follow_up(False, 1)
    (('yes', 4), ('no', 1))
    """
    if score is not None and (isinstance(score, bool) or score not in SCORES):
        raise InvalidInput("score", score, "an integer from 1 to 5")
    return ("yes" if satisfied else "no"), int(
        score if score is not None else (4 if satisfied else 2)
    )


class LinkExpired(Conflict):
    """A satisfaction or evaluation link past its time (or replaced by a newer one)."""


class LinkAnswered(Conflict):
    """A one-time link that was answered already."""

"""Request and response models of residents' satisfaction, follow-ups and evaluation rounds
(issue 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.models.common import ApiModel

__all__ = [
    "SatisfactionLink",
    "Survey",
    "SurveyAnswerIn",
    "SurveyAnswer",
    "FollowUp",
    "FollowUpIn",
    "FollowUpDone",
    "EvaluationRoundIn",
    "EvaluationRound",
    "EvaluationRoundCreated",
    "PublicRound",
    "EvaluationIn",
    "EvaluationAnswer",
]


class SatisfactionLink(ApiModel):
    incident_id: int
    url: str = Field(description="the public page of the link (/s/{token})")
    token: str = Field(description="the link's secret (shown once; only its SHA-256 is kept)")
    qr_svg: str = Field(description="the QR code of the url, inline SVG")
    expires_at: datetime


class Survey(ApiModel):
    incident_id: int
    category: str
    category_zh: str | None = None
    category_en: str | None = None
    status: str
    reported_at: datetime
    resolved_at: datetime | None = None
    grid_name: str | None = None
    expires_at: datetime
    answered: bool
    choices: dict[str, dict[str, str]]


class SurveyAnswerIn(ApiModel):
    solved: str = Field(description="yes, partly or no", examples=["yes"])
    score: int = Field(description="satisfaction 1–5", examples=[5])
    comment: str | None = Field(
        default=None, max_length=2000, description="the comment", examples=["清理干净了，谢谢"]
    )


class SurveyAnswer(ApiModel):
    incident_id: int
    solved: str
    score: int
    verdict: str = Field(description="reopen, close or keep: what the answer did")
    status: str = Field(description="the incident's status after the answer")


class FollowUp(ApiModel):
    id: int
    incident_id: int
    reason: str
    reason_zh: str
    reason_en: str
    created_at: datetime
    due_at: datetime
    done_at: datetime | None = None
    overdue: bool
    staff_id: int | None = None
    reached: bool | None = None
    satisfied: bool | None = None
    score: int | None = None
    note: str | None = None
    category: str
    status: str
    grid_code: str | None = None
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    resident_solved: str | None = None
    resident_score: int | None = None
    resident_comment: str | None = None


class FollowUpIn(ApiModel):
    reached: bool = Field(description="was the resident reached?", examples=[True])
    satisfied: bool | None = Field(
        default=None, description="required when reached", examples=[True]
    )
    score: int | None = Field(
        default=None, description="1–5 (default 4 satisfied, 2 not)", examples=[4]
    )
    note: str | None = Field(
        default=None, max_length=2000, description="what was heard", examples=["电话回访，群众满意"]
    )


class FollowUpDone(ApiModel):
    id: int
    incident_id: int
    reached: bool
    satisfied: bool | None = None
    score: int | None = None
    done_at: datetime
    verdict: str | None = None
    status: str


class EvaluationRoundIn(ApiModel):
    grid_code: str = Field(description="the grid (15 digits)", examples=["450902001001001"])
    label: str = Field(description="e.g. 2026年第二季度", examples=["2026年第二季度"])
    opens_at: datetime | None = Field(
        default=None, description="default now", examples=["2026-10-01T00:00:00+08:00"]
    )
    closes_at: datetime | None = Field(
        default=None,
        description="default opens_at + 30 days",
        examples=["2026-10-31T00:00:00+08:00"],
    )


class PublicRound(ApiModel):
    id: int
    grid_code: str
    grid_name: str | None = None
    label: str
    opens_at: datetime
    closes_at: datetime
    open: bool
    criteria: dict[str, dict[str, str]]


class EvaluationRound(PublicRound):
    community_code: str | None = None
    street_code: str | None = None
    district_code: str | None = None
    worker_ids: list[int]
    answers: int
    mean_score: float | None = None
    criterion_means: dict[str, float]
    created_at: datetime


class EvaluationRoundCreated(EvaluationRound):
    url: str
    token: str
    qr_svg: str


class EvaluationIn(ApiModel):
    household_ref: str | None = Field(
        default=None, description="户号 (household reference)", examples=["YL-0012-0301"]
    )
    phone: str | None = Field(
        default=None,
        description="a phone number (when no household reference; the example is a placeholder)",
        examples=["13800000000"],
    )
    scores: dict[str, Any] = Field(
        description="criterion → 1–5",
        examples=[{"known_to_residents": 5, "responsive": 4, "solved_problems": 4, "attitude": 5}],
    )
    comment: str | None = Field(
        default=None, max_length=2000, description="the comment", examples=["很负责"]
    )


class EvaluationAnswer(ApiModel):
    id: int
    round_id: int
    scores: dict[str, int]
    mean_score: float
    source: str

"""Request and response models of the worker's file and the year-end review (issue 14)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from api.models.common import ApiModel

__all__ = ["WorkerBrief", "WorkerFile", "WorkerRecordIn", "WorkerRecord", "Review"]


class WorkerBrief(ApiModel):
    id: int
    name: str
    ref: str | None = None
    active: bool
    grids: list[dict[str, Any]]


class WorkerFile(ApiModel):
    year: int
    worker: dict[str, Any] = Field(description="basic information, grids and units")
    grids_over_time: list[dict[str, Any]] = Field(
        description="plan staffing decisions naming the worker"
    )
    teams: list[dict[str, Any]] = Field(default=[], description="the worker's teams and roles")
    months: list[dict[str, Any]] = Field(description="each month's register row")
    incidents: dict[str, Any]
    satisfaction: dict[str, Any]
    evaluations: list[dict[str, Any]]
    records: list[dict[str, Any]] = Field(description="trainings, awards, notes, complaints")
    review: dict[str, Any] | None = Field(
        default=None, description="the year-end review's components"
    )


class WorkerRecordIn(ApiModel):
    kind: str = Field(description="training, award, note or complaint", examples=["training"])
    title: str = Field(max_length=200, description="what it was", examples=["矛盾纠纷调解培训"])
    at: datetime | None = Field(
        default=None, description="when (default now)", examples=["2026-05-12T09:00:00+08:00"]
    )
    detail: str | None = Field(
        default=None, max_length=4000, description="details", examples=["区综治中心组织，4学时"]
    )
    verified: bool = Field(
        default=False, examples=[False], description="a complaint found true (counts in the review)"
    )


class WorkerRecord(ApiModel):
    id: int
    account_id: int
    kind: str
    at: datetime
    title: str
    detail: str | None = None
    verified: bool
    created_at: datetime


class Review(ApiModel):
    year: int
    unit: str | None = None
    scheme: dict[str, Any]
    median_activity_rate: float | None = None
    workers: list[dict[str, Any]] = Field(description="one row per worker, every component shown")
    shortlist: list[int] = Field(description="account ids on the outstanding-worker shortlist")

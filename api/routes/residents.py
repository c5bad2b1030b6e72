"""Residents close the loop (issue 14): satisfaction links and the public survey, the
follow-up queue, evaluation rounds (群众测评) and their public form.

Public (no account): ``GET /s/{token}`` and ``GET /e/{token}`` (small phone pages, Chinese
first, no external assets: ``api/static/survey/``), ``GET``/``POST /satisfaction/{token}``,
``GET``/``POST /evaluations/{token}``. They are rate-limited per IP in their own request
class (``public_form`` in ``rate_limits_anonymous``). A token that does not exist is 404;
an expired or replaced link is 409 ``LinkExpired``; an answered link 409 ``LinkAnswered``.
The pages are sent with ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``
(the token is in the address).
"""

from __future__ import annotations

from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.responses import HTMLResponse

from api.auth import AccountDep
from api.deps import EngineDep
from api.models.common import error_responses
from api.models.idempotency import IdempotencyKeyHeader
from api.models.residents import (
    EvaluationAnswer,
    EvaluationIn,
    EvaluationRound,
    EvaluationRoundCreated,
    EvaluationRoundIn,
    FollowUp,
    FollowUpDone,
    FollowUpIn,
    PublicRound,
    SatisfactionLink,
    Survey,
    SurveyAnswer,
    SurveyAnswerIn,
)
from geogrid.services import evaluation, follow_up, satisfaction

__all__ = ["router"]

router = APIRouter(tags=["residents"])

_PAGES = FsPath(__file__).resolve().parent.parent / "static" / "survey"
_EXAMPLE_TOKEN = "x" * 43
_BIGINT = 2**63 - 1
Token = Annotated[
    str,
    Path(min_length=1, max_length=200, description="the link's token", examples=[_EXAMPLE_TOKEN]),
]
IncidentId = Annotated[int, Path(ge=1, le=_BIGINT, description="incident id", examples=[1024])]
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'",
}


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _page(name: str) -> HTMLResponse:
    return HTMLResponse((_PAGES / name).read_text(encoding="utf-8"), headers=_PAGE_HEADERS)


# --------------------------------------------------------------------------- satisfaction
@router.post(
    "/incidents/{incident_id}/satisfaction-link",
    status_code=status.HTTP_201_CREATED,
    response_model=SatisfactionLink,
    summary="Issue (or reissue) an incident's satisfaction link and QR code",
    responses=error_responses(400, 401, 403, 404, 409),
)
def issue_satisfaction_link(
    request: Request,
    engine: EngineDep,
    account: AccountDep,
    incident_id: IncidentId,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A new one-time link for the resident (older unanswered links stop working): staff
    who may act on the incident; the incident must be resolved or closed."""
    return satisfaction.issue_link(
        engine, incident_id, account, base_url=_base(request), idempotency_key=idempotency_key
    )


@router.get("/s/{token}", include_in_schema=False)
def survey_page(token: str) -> HTMLResponse:
    """The resident's satisfaction page (the token is read by the page's script)."""
    return _page("satisfaction.html")


@router.get(
    "/satisfaction/{token}",
    response_model=Survey,
    summary="A satisfaction link's incident (public fields)",
    responses=error_responses(404, 409),
)
def get_survey(engine: EngineDep, token: Token) -> dict[str, Any]:
    """The incident's public fields (category, status, times, grid name) and the choices;
    404 for an unknown link, 409 for an expired or answered one."""
    return satisfaction.survey(engine, token)


@router.post(
    "/satisfaction/{token}",
    response_model=SurveyAnswer,
    summary="Answer a satisfaction link (once)",
    responses=error_responses(400, 404, 409),
)
def post_survey(
    engine: EngineDep,
    token: Token,
    body: SurveyAnswerIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Solved (yes/partly/no), satisfaction 1–5 and a comment. "Not solved" or a low score
    reopens the incident; "solved" with a good score closes it. A retry with the same
    ``Idempotency-Key`` returns the first answer."""
    return satisfaction.answer(
        engine,
        token,
        solved=body.solved,
        score=body.score,
        comment=body.comment,
        idempotency_key=idempotency_key,
    )


# --------------------------------------------------------------------------- follow-ups
@router.get(
    "/follow-ups",
    response_model=list[FollowUp],
    summary="The follow-up (回访) queue",
    responses=error_responses(400, 401, 403),
)
def list_follow_ups(
    engine: EngineDep,
    account: AccountDep,
    done: Annotated[
        bool | None,
        Query(description="false: open (default); true: done; all=true for both", examples=[False]),
    ] = False,
    all_: Annotated[
        bool, Query(alias="all", description="both open and done", examples=[False])
    ] = False,
    limit: Annotated[
        int, Query(ge=1, le=1000, description="at most this many", examples=[200])
    ] = 200,
    offset: Annotated[
        int, Query(ge=0, le=1_000_000, description="skip this many first", examples=[0])
    ] = 0,
) -> list[dict[str, Any]]:
    """Incidents to call or visit in the caller's units, open ones by due time first
    (community/street/district admins and admin)."""
    return follow_up.queue(engine, account, done=None if all_ else done, limit=limit, offset=offset)


@router.post(
    "/follow-ups/{follow_up_id}",
    response_model=FollowUpDone,
    summary="Record a follow-up call or visit",
    responses=error_responses(400, 401, 403, 404, 409),
)
def record_follow_up(
    engine: EngineDep,
    account: AccountDep,
    follow_up_id: Annotated[int, Path(ge=1, le=_BIGINT, description="follow-up id", examples=[1])],
    body: FollowUpIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """Reached or not, satisfied or not, a score and a note; a reached resident's answer
    feeds the satisfaction figures."""
    return follow_up.record(
        engine,
        follow_up_id,
        account,
        reached=body.reached,
        satisfied=body.satisfied,
        score=body.score,
        note=body.note,
        idempotency_key=idempotency_key,
    )


# --------------------------------------------------------------------------- evaluation
@router.post(
    "/evaluation-rounds",
    status_code=status.HTTP_201_CREATED,
    response_model=EvaluationRoundCreated,
    summary="Open an evaluation round (群众测评) for a grid",
    responses=error_responses(400, 401, 403, 404, 409),
)
def create_round(
    request: Request,
    engine: EngineDep,
    account: AccountDep,
    body: EvaluationRoundIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A round with its link and QR code (community/street/district admins of the grid,
    admin)."""
    return evaluation.create_round(
        engine,
        account,
        grid_code=body.grid_code,
        label=body.label,
        opens_at=body.opens_at,
        closes_at=body.closes_at,
        base_url=_base(request),
        idempotency_key=idempotency_key,
    )


@router.get(
    "/evaluation-rounds",
    response_model=list[EvaluationRound],
    summary="Evaluation rounds with their results",
    responses=error_responses(400, 401, 403),
)
def list_rounds(
    engine: EngineDep,
    account: AccountDep,
    grid: Annotated[
        str | None, Query(description="only this grid's rounds", examples=["450902001001001"])
    ] = None,
) -> list[dict[str, Any]]:
    return evaluation.list_rounds(engine, account, grid_code=grid)


@router.post(
    "/evaluation-rounds/{round_id}/paper",
    status_code=status.HTTP_201_CREATED,
    response_model=EvaluationAnswer,
    summary="Key in a paper evaluation form",
    responses=error_responses(400, 401, 403, 404, 409),
)
def key_paper_form(
    engine: EngineDep,
    account: AccountDep,
    round_id: Annotated[int, Path(ge=1, le=_BIGINT, description="round id", examples=[1])],
    body: EvaluationIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """One household's paper form (409 when the household answered the round)."""
    return evaluation.paper(
        engine,
        round_id,
        account,
        household_ref=body.household_ref,
        phone=body.phone,
        scores=body.scores,
        comment=body.comment,
        idempotency_key=idempotency_key,
    )


@router.get("/e/{token}", include_in_schema=False)
def evaluation_page(token: str) -> HTMLResponse:
    """The residents' evaluation page of a round."""
    return _page("evaluation.html")


@router.get(
    "/evaluations/{token}",
    response_model=PublicRound,
    summary="An evaluation round's public fields",
    responses=error_responses(404),
)
def get_round(engine: EngineDep, token: Token) -> dict[str, Any]:
    return evaluation.public_round(engine, token)


@router.post(
    "/evaluations/{token}",
    status_code=status.HTTP_201_CREATED,
    response_model=EvaluationAnswer,
    summary="Answer an evaluation round (one answer per household)",
    responses=error_responses(400, 404, 409),
)
def post_evaluation(
    engine: EngineDep,
    token: Token,
    body: EvaluationIn,
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, Any]:
    """A household's scores (household reference or phone, hashed with the round's salt;
    never stored in clear). 409 when the household answered already or the round is
    closed."""
    return evaluation.submit(
        engine,
        token,
        household_ref=body.household_ref,
        phone=body.phone,
        scores=body.scores,
        comment=body.comment,
        idempotency_key=idempotency_key,
    )

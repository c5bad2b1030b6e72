"""The base-information registry's reads (issue 15): search people, one person / household /
building, organisations, the care list of a grid, aggregates, export, and the map's
address search.

Who reads what (:mod:`geogrid.core.registry_access`): workers read their grids' records,
community/street/district admins their subtree's, admin every record — names and
addresses in clear, ID numbers and phones masked in lists and decrypted in one person's
record; leaders, analysts and planners read aggregates only (counts below k suppressed);
anonymous callers only the address search's buildings and units. A record outside the
caller's units answers 404. Every clear read is written to the audit trail.

ID numbers and phones are searched with ``POST /registry/search`` (a JSON body), never
in a query string, so they never reach an access log.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from api.auth import AccountDep, OptionalAccountDep
from api.deps import ContextDep
from api.models.common import error_responses
from api.models.registry import (
    Aggregates,
    Building,
    CareList,
    GeocodeMatch,
    Household,
    OrgPage,
    PersonPage,
    PersonRecord,
    PersonSearch,
)
from geogrid.core.hierarchy import Level
from geogrid.core.scope import Scope
from geogrid.services import registry, registry_care

__all__ = ["router"]

router = APIRouter(prefix="/registry", tags=["registry"])

_ID = {"ge": 1, "le": 2**63 - 1}
PersonId = Annotated[int, Path(**_ID, description="person id", examples=[1])]
HouseholdId = Annotated[int, Path(**_ID, description="household id", examples=[1])]
BuildingId = Annotated[int, Path(**_ID, description="building id", examples=[1])]
Reason = Annotated[
    str | None,
    Query(
        max_length=200,
        description="why the record is read (written to the audit trail)",
        examples=["季度走访核对"],
    ),
]
Unit = Annotated[
    str | None,
    Query(
        max_length=15,
        description="only this unit (code of any level: 6, 9, 12 or 15 digits)",
        examples=["450902001"],
    ),
]
Limit = Annotated[int, Query(ge=1, le=500, description="at most this many", examples=[50])]
Offset = Annotated[
    int, Query(ge=0, le=10_000_000, description="skip this many first", examples=[0])
]
_READ = error_responses(400, 401, 403)


@router.get(
    "/people",
    response_model=PersonPage,
    summary="Search people by name or address",
    responses=_READ,
)
def people(
    ctx: ContextDep,
    account: AccountDep,
    name: Annotated[
        str | None, Query(max_length=100, description="part of a name", examples=["张"])
    ] = None,
    address: Annotated[
        str | None,
        Query(
            max_length=100,
            description="part of an address or building name",
            examples=["江滨路"],
        ),
    ] = None,
    unit: Unit = None,
    limit: Limit = 50,
    offset: Offset = 0,
    reason: Reason = None,
) -> dict[str, Any]:
    """People of the caller's units whose name or address contains the text given (ID
    numbers and phones: ``POST /registry/search``; nothing given: every person of the
    caller's units). Names in clear, ID numbers and phones masked; paged (``more`` says a
    next page exists)."""
    return registry.search_people(
        ctx.engine,
        scope=Scope.of(account),
        name=name,
        address=address,
        unit=unit,
        limit=limit,
        offset=offset,
        reason=reason,
        settings=ctx.settings,
    )


@router.post(
    "/search",
    response_model=PersonPage,
    summary="Search people (also by ID number or phone)",
    responses=_READ,
)
def search(ctx: ContextDep, account: AccountDep, body: PersonSearch) -> dict[str, Any]:
    """Search people of the caller's units by name, address (partial), ID number or phone
    (exact, through the keyed blind index: the number is never stored or logged in
    clear). A read, though a POST: the numbers stay out of URLs and access logs."""
    return registry.search_people(
        ctx.engine,
        scope=Scope.of(account),
        name=body.name,
        id_number=body.id_number,
        phone=body.phone,
        address=body.address,
        unit=body.unit,
        limit=body.limit,
        offset=body.offset,
        reason=body.reason,
        settings=ctx.settings,
    )


@router.get(
    "/people/{person_id}",
    response_model=PersonRecord,
    summary="One person's record",
    responses=error_responses(400, 401, 403, 404),
)
def person(
    ctx: ContextDep, account: AccountDep, person_id: PersonId, reason: Reason = None
) -> dict[str, Any]:
    """One person with the ID number and phone in clear and their care groups (404 outside
    the caller's units). The read is audited, with the reason if given."""
    return registry.get_person(
        ctx.engine, person_id, scope=Scope.of(account), reason=reason, settings=ctx.settings
    )


@router.get(
    "/households/{household_id}",
    response_model=Household,
    summary="One household with its members",
    responses=error_responses(400, 401, 403, 404),
)
def household(
    ctx: ContextDep, account: AccountDep, household_id: HouseholdId, reason: Reason = None
) -> dict[str, Any]:
    """One household with its members (ID numbers and phones masked); 404 outside the
    caller's units."""
    return registry.get_household(
        ctx.engine, household_id, scope=Scope.of(account), reason=reason, settings=ctx.settings
    )


@router.get(
    "/buildings/{building_id}",
    response_model=Building,
    summary="One building with its households",
    responses=error_responses(400, 401, 403, 404),
)
def building(ctx: ContextDep, account: AccountDep, building_id: BuildingId) -> dict[str, Any]:
    """One building: its name, address, floors, use, counts of households, people and
    organisations, and its households; 404 outside the caller's units."""
    return registry.get_building(ctx.engine, building_id, scope=Scope.of(account))


@router.get(
    "/orgs",
    response_model=OrgPage,
    summary="Search organisations",
    responses=_READ,
)
def orgs(
    ctx: ContextDep,
    account: AccountDep,
    name: Annotated[
        str | None,
        Query(max_length=100, description="part of the name or address", examples=["超市"]),
    ] = None,
    uscc: Annotated[
        str | None,
        Query(
            max_length=18,
            description="unified social credit code, exact",
            examples=["91450900MA5XXXXXX0"],
        ),
    ] = None,
    kind: Annotated[
        str | None, Query(max_length=50, description="kind, as imported", examples=["商店"])
    ] = None,
    unit: Unit = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Organisations of the caller's units (shops, companies, schools …), paged."""
    return registry.search_orgs(
        ctx.engine,
        scope=Scope.of(account),
        name=name,
        uscc=uscc,
        kind=kind,
        unit=unit,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/care",
    response_model=CareList,
    summary="The care list of a grid",
    responses=_READ,
)
def care(
    ctx: ContextDep,
    account: AccountDep,
    grid: Annotated[
        str,
        Query(max_length=15, description="grid code (15 digits)", examples=["450902001001001"]),
    ],
    overdue_only: Annotated[bool, Query(description="only the people overdue for a visit")] = False,
) -> dict[str, Any]:
    """People in care groups (elderly living alone, left-behind children, people with
    disabilities, low income, key groups) of a grid with their last visit (the latest
    service-register entry naming them or their household), the next one due, and who
    is overdue — overdue first."""
    return registry_care.grid_care(
        ctx.engine, Scope.of(account), grid, overdue_only=overdue_only, settings=ctx.settings
    )


@router.get(
    "/aggregates/{level}",
    response_model=Aggregates,
    summary="Registry counts per unit",
    responses=_READ,
)
def aggregates(
    ctx: ContextDep,
    account: AccountDep,
    level: Annotated[Level, Path(description="the level of the rows", examples=["grid"])],
    unit: Unit = None,
) -> dict[str, Any]:
    """Population, households, floating population and care-group counts per unit of a
    level, from the registry, inside the caller's units (the city for city-wide roles).
    For leaders, analysts and planners counts from 1 to k − 1 are null (k: the
    ``registry_k`` setting, default 5)."""
    return registry.aggregates(
        ctx.engine, level, scope=Scope.of(account), unit=unit, settings=ctx.settings
    )


@router.get(
    "/export",
    summary="Export people as CSV (admins, with a reason)",
    response_class=Response,
    responses={
        200: {
            "content": {"text/csv": {"schema": {"type": "string", "contentMediaType": "text/csv"}}},
            "description": "UTF-8 CSV with a BOM, one person a row",
        },
        **_READ,
    },
)
def export(
    ctx: ContextDep,
    account: AccountDep,
    reason: Annotated[
        str,
        Query(
            min_length=1,
            max_length=200,
            description="why the data is exported (written to the audit trail)",
            examples=["年度核查"],
        ),
    ],
    unit: Unit = None,
) -> Response:
    """The people of the caller's units (or of ``unit``) with ID numbers and phones in
    clear: community/street/district admins and admin only; the export is audited with
    its reason and every id."""
    body = registry.export_people_csv(
        ctx.engine, scope=Scope.of(account), reason=reason, unit=unit, settings=ctx.settings
    )
    return Response(
        body.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="registry-people.csv"'},
    )


@router.get(
    "/geocode",
    response_model=list[GeocodeMatch],
    summary="Find an address or building on the map",
    responses=error_responses(400, 401),
)
def geocode(
    ctx: ContextDep,
    account: OptionalAccountDep,
    q: Annotated[
        str,
        Query(
            min_length=1,
            max_length=100,
            description="part of a building's name or address, or a unit's name or code",
            examples=["江滨"],
        ),
    ],
    limit: Annotated[int, Query(ge=1, le=50, description="at most this many")] = 10,
) -> list[dict[str, Any]]:
    """Offline geocoding from the registry's own addresses: buildings (name, address) and
    units for everyone — a building's address is on its door, not personal — plus the
    households of the caller's units for staff who read records. Each match has a point
    and, where known, a bounding box."""
    return registry.geocode(ctx.engine, q, scope=Scope.of(account), limit=limit)

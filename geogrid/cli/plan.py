"""``geogrid plan``: boundary plans (create, edit, undo/redo, auto-partition, impact,
diff, staffing, publish)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from geogrid.cli._output import FormatOpt, print_rows
from geogrid.errors import GeogridError, InvalidInput, TopologyError
from geogrid.services import plans
from geogrid.services.context import AppContext

plan_app = typer.Typer(
    help="Boundary plans: redraw the grids of some communities.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _ctx() -> AppContext:
    """The service context on the configured database (``GEOGRID_DATABASE_URL``)."""
    return AppContext.open()


def _fail(exc: GeogridError) -> NoReturn:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    if isinstance(exc, TopologyError):
        for f in exc.findings[:20]:
            d = f.to_dict() if hasattr(f, "to_dict") else f
            err.print(f"  {d['kind']}: {', '.join(d['codes'])} — {d['message']}", highlight=False)
    raise typer.Exit(2) from None


def _json(obj: object) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str, indent=1) + "\n")


@plan_app.command("create")
def create(
    communities: Annotated[str, typer.Option(help="comma-separated community codes")],
    name: Annotated[str, typer.Option(help="plan name")],
    author: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create a plan on the published version."""

    try:
        p = plans.create_plan(_ctx(), communities.split(","), name, author=author)
    except GeogridError as exc:
        _fail(exc)
    console.print(
        f"plan {p['id']} '{p['name']}' on version {p['base_version_id']}: "
        f"{', '.join(p['community_codes'])}"
    )


@plan_app.command("list")
def list_cmd(fmt: FormatOpt = "table") -> None:
    """List plans."""
    rows = [
        {
            "id": p["id"],
            "name": p["name"],
            "status": p["status"],
            "base": p["base_version_id"],
            "communities": p["community_codes"],
            "edits": p["edits"],
            "author": p["author"] or "",
        }
        for p in plans.list_plans(_ctx())
    ]
    columns = ["id", "name", "status", "base", "communities", "edits", "author"]
    try:
        print_rows(rows, fmt, columns=columns, console=console)
    except GeogridError as exc:
        _fail(exc)


@plan_app.command("show")
def show(plan_id: int) -> None:
    """A plan and its edits (JSON)."""

    try:
        _json(plans.get_plan(_ctx(), plan_id))
    except GeogridError as exc:
        _fail(exc)


@plan_app.command("edit")
def edit(
    plan_id: int,
    kind: Annotated[str, typer.Argument(help="split, merge, move_edge, reassign, rename")],
    params: Annotated[str, typer.Argument(help="JSON object, or @file.json")],
    author: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Apply one edit (validated; refused with its reason)."""

    if params.startswith("@") and not Path(params[1:]).is_file():
        _fail(InvalidInput("params", params, "JSON, or @FILE naming an existing JSON file"))
    text = Path(params[1:]).read_text() if params.startswith("@") else params
    try:
        res = plans.add_edit(_ctx(), plan_id, kind, json.loads(text), author=author)
    except json.JSONDecodeError as exc:
        err.print(f"[bold red]error:[/] params is not JSON: {exc}")
        raise typer.Exit(2) from None
    except GeogridError as exc:
        _fail(exc)
    console.print(res)


@plan_app.command("undo")
def undo_cmd(plan_id: int) -> None:

    try:
        console.print(plans.undo(_ctx(), plan_id))
    except GeogridError as exc:
        _fail(exc)


@plan_app.command("redo")
def redo_cmd(plan_id: int) -> None:

    try:
        console.print(plans.redo(_ctx(), plan_id))
    except GeogridError as exc:
        _fail(exc)


@plan_app.command("autopartition")
def autopartition_cmd(
    plan_id: int,
    n: Annotated[int | None, typer.Option(help="number of grids")] = None,
    target: Annotated[float | None, typer.Option(help="maximum load per grid")] = None,
    load: Annotated[str, typer.Option(help="households or load_index")] = "households",
    communities: Annotated[str | None, typer.Option(help="comma-separated; default all")] = None,
    cell_m: Annotated[float, typer.Option(help="cell size, metres")] = 75.0,
) -> None:
    """Re-cut communities into balanced, contiguous grids (one undoable edit)."""

    try:
        res = plans.autopartition_plan(
            _ctx(),
            plan_id,
            n=n,
            target=target,
            load=load,
            communities=communities.split(",") if communities else None,
            cell_m=cell_m,
        )
    except GeogridError as exc:
        _fail(exc)
    t = Table(title="balance")
    for c in ("community", "grids", "max/min", "CV", "target reached", "cells"):
        t.add_column(c)
    for c, b in res["balance"].items():
        t.add_row(
            c,
            str(b["n"]),
            f"{b['max_min_ratio'] or float('inf'):.2f}",
            f"{b['cv']:.3f}",
            str(b["reached"]),
            str(b["cells"]),
        )
    console.print(t)


@plan_app.command("impact")
def impact_cmd(
    plan_id: int,
    start: Annotated[str | None, typer.Option(help="window start (default end - 365 d)")] = None,
    end: Annotated[str | None, typer.Option(help="window end (default now)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json")] = "table",
) -> None:
    """Plan metrics side by side with the published grids."""

    try:
        rep = plans.impact(_ctx(), plan_id, start=start, end=end)
    except GeogridError as exc:
        _fail(exc)
    if fmt == "json":
        _json(rep)
        return
    t = Table(title=f"plan {plan_id}: grids")
    cols = (
        "code",
        "households",
        "population",
        "incidents",
        "load_index",
        "area_m2",
        "polsby_popper",
        "parts",
    )
    for c in cols:
        t.add_column(c)
    for r in rep["plan"]["grids"]:
        t.add_row(*(f"{r[c]:,.2f}" if isinstance(r[c], float) else str(r[c]) for c in cols))
    console.print(t)
    s = Table(title="totals")
    s.add_column("metric")
    s.add_column("published")
    s.add_column("plan")
    for k, v in rep["plan"]["totals"].items():
        s.add_row(k, f"{rep['published']['totals'][k]:,.3f}", f"{v:,.3f}")
    console.print(s)


@plan_app.command("diff")
def diff_cmd(
    plan_id: int,
    geojson: Annotated[Path | None, typer.Option(help="write the changed grids here")] = None,
) -> None:
    """New/removed/changed grids, incidents and workers that change grid."""

    try:
        d = plans.diff(_ctx(), plan_id)
    except GeogridError as exc:
        _fail(exc)
    if geojson:
        geojson.write_text(json.dumps(d["geojson"], ensure_ascii=False))
    d.pop("geojson")
    d["incidents"].pop("ids")
    _json(d)


@plan_app.command("publish")
def publish_cmd(plan_id: int, author: Annotated[str | None, typer.Option()] = None) -> None:
    """Validate and publish the plan as a new boundary version (one transaction)."""

    try:
        res = plans.publish_plan(_ctx(), plan_id, author=author)
    except GeogridError as exc:
        _fail(exc)
    console.print(
        f"published plan {plan_id} as version {res['version_id']}: "
        f"{res['grids']} grids, {res['incidents_reattributed']:,} incidents "
        f"re-attributed, {len(res['workers_needing_decision'])} worker(s) need a "
        f"decision ({res['seconds']} s)"
    )
    for w in res["workers_needing_decision"]:
        console.print(f"  account {w['account_id']}: {w['from']} → {w['to']} ({w['reason']})")


def _pairs(values: list[str], option: str, left: str, right: str) -> list[tuple[str, str]]:
    out = []
    for v in values:
        a, sep, b = v.partition("=")
        if not sep or not a or not b:
            raise InvalidInput(option, v, f"{left}={right}")
        out.append((a, b))
    return out


def _account(value: str, option: str) -> int:
    if not value.isdigit():
        raise InvalidInput(option, value, "a worker account id")
    return int(value)


@plan_app.command("staffing")
def staffing_cmd(
    plan_id: int,
    assign: Annotated[
        list[str] | None, typer.Option(help="GRID=ACCOUNT_ID: the worker also works the grid")
    ] = None,
    move: Annotated[
        list[str] | None, typer.Option(help="ACCOUNT_ID=GRID: the worker works only this grid")
    ] = None,
    vacant: Annotated[list[str] | None, typer.Option(help="GRID: vacant on purpose")] = None,
    release: Annotated[
        list[str] | None, typer.Option(help="ACCOUNT_ID: left with no grid on purpose")
    ] = None,
) -> None:
    """Every grid's workers after the plan; with options, replace the staffing decisions
    (a plan is published only when no grid is left with no worker and no worker with no
    grid, unless decided)."""

    try:
        decisions = (
            [
                {"action": "assign", "grid": g, "account_id": _account(a, "--assign")}
                for g, a in _pairs(assign or [], "--assign", "GRID", "ACCOUNT_ID")
            ]
            + [
                {"action": "move", "grid": g, "account_id": _account(a, "--move")}
                for a, g in _pairs(move or [], "--move", "ACCOUNT_ID", "GRID")
            ]
            + [{"action": "vacancy", "grid": g} for g in vacant or []]
            + [{"action": "release", "account_id": _account(a, "--release")} for a in release or []]
        )
        ctx = _ctx()
        if decisions:
            st = plans.set_staffing(ctx, plan_id, decisions)
        else:
            st = plans.get_staffing(ctx, plan_id)
    except GeogridError as exc:
        _fail(exc)
    t = Table("grid", "name", "workers after the plan")
    for g in st["grids"]:
        names = ", ".join(f"{w['name']} ({w['account_id']})" for w in g["workers"])
        t.add_row(g["code"], g["name"] or "", names or ("vacant" if g["vacant"] else "—"))
    console.print(t)
    for i in st["issues"]:
        console.print(f"  to decide: {i['message']}", highlight=False)
    console.print("ready to publish" if st["ready"] else "publishing is blocked until decided")


def register(app: typer.Typer) -> None:
    app.add_typer(plan_app, name="plan")

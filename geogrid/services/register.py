"""The grid worker's monthly register (社区网格员为民服务事项登记表) of a month: read the
month's rows from the store — incidents and the daily service register's entries — and lay
them out with :func:`geogrid.core.register.register_frame` (the definitions are in
:mod:`geogrid.core.register`); export it in the form's tabular layout as Excel
(:func:`register_xlsx`, openpyxl) or PDF (:func:`register_pdf`, reportlab with the
WenQuanYi Micro Hei font embedded)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.utils import get_column_letter
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from sqlalchemy import Connection, Engine

from geogrid.core.hierarchy import level_of_code
from geogrid.core.masking import REGISTER_PERSONAL, mask_name, mask_ref
from geogrid.core.register import (
    check_register_level,
    register_frame,
    register_table,
    register_title,
)
from geogrid.core.scope import Scope
from geogrid.core.timewindow import month_bounds
from geogrid.errors import GeogridError
from geogrid.services import audit
from geogrid.settings import get_settings
from geogrid.store.workflow import register_rows

__all__ = ["PDF_FONT", "monthly_register", "register_xlsx", "register_pdf", "export_register"]

#: the Chinese font embedded in the PDF (a TrueType collection; scripts/setup.sh installs it)
PDF_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")


def monthly_register(
    engine: Engine | Connection,
    month: str,
    level: str = "worker",
    *,
    scope: Scope,
    tz: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    unit: str | None = None,
) -> pd.DataFrame:
    """The register of a month, per worker or rolled up to a level, inside the caller's
    scope: the workers with a grid in the caller's units (every worker for city-wide
    roles; none for anonymous callers). Workers' names and staff numbers are clear for
    the caller's own units and for admins, masked for planners, leaders and analysts; a
    clear read is written to the audit trail.

    Parameters
    ----------
    engine : Engine or Connection
    month : str
        ``YYYY-MM``: the calendar month in time zone ``tz``.
    level : {"worker", "community", "street", "district"}
    scope : Scope
        The caller's scope (:class:`geogrid.core.scope.Scope`).
    tz : str, optional
        IANA time zone of the month's bounds (default: ``settings.city.timezone``).
    limit, offset : int, optional
        A page: ``limit`` rows (None: all) from row ``offset`` of the register's order.
    unit : str, optional
        Only the rows inside this unit (a worker whose first grid is inside it; a unit
        whose code is inside it), within the caller's scope.

    Returns
    -------
    DataFrame as :func:`geogrid.core.register.register_frame`.

    Raises
    ------
    InvalidInput
        A malformed month or an unknown level.
    """
    check_register_level(level)
    start, end = month_bounds(month, tz or get_settings().city.timezone)
    workers, reported, handled, units, entries = register_rows(engine, start, end, scope=scope)
    frame = register_frame(month, workers, reported, handled, units, level, entries)
    if unit is not None:
        level_of_code(unit, "unit")
        col = "code" if level != "worker" else "grid_codes"
        frame = frame[frame[col].astype(str).str.startswith(unit)].reset_index(drop=True)
    stop = None if limit is None else offset + limit
    frame = frame.iloc[offset:stop].reset_index(drop=True)
    if "worker_name" not in frame.columns or frame.empty:
        return frame
    # the store returned only the workers inside a units scope: all of them are clear
    if scope.kind == "units" or scope.personal_clear({}):
        audit.record_read(
            engine,
            scope,
            "register",
            frame["worker_id"].tolist(),
            list(REGISTER_PERSONAL),
            {"month": month},
        )
        return frame
    frame["worker_name"] = frame["worker_name"].map(
        lambda v: mask_name(str(v)) if pd.notna(v) else None
    )
    frame["ref"] = frame["ref"].map(lambda v: mask_ref(str(v)) if pd.notna(v) else None)
    return frame


def _unit_name(engine: Engine | Connection, unit: str | None, frame: pd.DataFrame) -> str | None:
    if unit is None:
        return None
    if "code" in frame.columns:
        hit = frame.loc[frame["code"] == unit, "name"]
        if len(hit):
            return str(hit.iloc[0])
    return unit


def register_xlsx(
    frame: pd.DataFrame, month: str, level: str, title_unit: str | None = None
) -> bytes:
    """The register as an Excel workbook in the form's layout: the title, the Chinese
    headers, one row per worker (or unit) and a 合计 row."""
    head, rows = register_table(frame, level)
    wb = Workbook()
    ws = wb.active
    ws.title = f"{month} 登记表"
    ws.append([register_title(month, title_unit)])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(head))
    ws.cell(1, 1).font = Font(bold=True, size=14)
    ws.cell(1, 1).alignment = Alignment(horizontal="center")
    ws.append(head)
    for r in rows:
        ws.append(r)
    thin = Side(style="thin")
    for row in ws.iter_rows(min_row=2, max_row=ws.max_row):
        for cell in row:
            cell.border = Border(left=thin, right=thin, top=thin, bottom=thin)
            cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
    for cell in ws[2]:
        cell.font = Font(bold=True)
    for cell in ws[ws.max_row]:
        cell.font = Font(bold=True)
    for i, h in enumerate(head, start=1):
        ws.column_dimensions[get_column_letter(i)].width = max(6, min(20, 2.2 * len(h) + 2))
    ws.freeze_panes = "B3"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def register_pdf(
    frame: pd.DataFrame, month: str, level: str, title_unit: str | None = None
) -> bytes:
    """The register as a PDF (A4 landscape) in the form's layout, with the Chinese font
    (:data:`PDF_FONT`) embedded."""
    if not PDF_FONT.is_file():
        raise GeogridError(
            f"the PDF export needs the Chinese font {PDF_FONT} (fonts-wqy-microhei: "
            "scripts/setup.sh installs it)"
        )
    if "WQYMicroHei" not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont("WQYMicroHei", str(PDF_FONT), subfontIndex=0))
    head, rows = register_table(frame, level)
    small = ParagraphStyle("cell", fontName="WQYMicroHei", fontSize=6.5, leading=8)
    title = ParagraphStyle("title", fontName="WQYMicroHei", fontSize=13, leading=16, alignment=1)
    data = [[Paragraph(h, small) for h in head]] + [
        [Paragraph(str(v), small) for v in r] for r in rows
    ]
    page = landscape(A4)
    width = page[0] - 20 * mm

    # column widths in proportion to the widest cell (a CJK character counts 1, others
    # 0.6), between 2 and 9 characters; long cells wrap
    def _w(v: object) -> float:
        return sum(1.0 if ord(ch) > 0x2E80 else 0.6 for ch in str(v))

    weights = [min(9.0, max(2.0, _w(head[i]), *(_w(r[i]) for r in rows))) for i in range(len(head))]
    unit = width / sum(weights)
    table = Table(data, colWidths=[w * unit for w in weights], repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONTNAME", (0, 0), (-1, -1), "WQYMicroHei"),
                ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("LEFTPADDING", (0, 0), (-1, -1), 1.5),
                ("RIGHTPADDING", (0, 0), (-1, -1), 1.5),
            ]
        )
    )
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=page,
        leftMargin=10 * mm,
        rightMargin=10 * mm,
        topMargin=10 * mm,
        bottomMargin=10 * mm,
        title=register_title(month, title_unit),
        author="geogrid",
    )
    doc.build([Paragraph(register_title(month, title_unit), title), Spacer(1, 4 * mm), table])
    return buf.getvalue()


def export_register(
    engine: Engine | Connection,
    month: str,
    level: str = "worker",
    *,
    scope: Scope,
    fmt: str,
    unit: str | None = None,
    tz: str | None = None,
) -> bytes:
    """The register of a month (as :func:`monthly_register`: scoped, masked and audited the
    same way) as ``xlsx`` or ``pdf`` bytes."""
    frame = monthly_register(engine, month, level, scope=scope, tz=tz, unit=unit)
    name = _unit_name(engine, unit, frame)
    if fmt == "xlsx":
        return register_xlsx(frame, month, level, name)
    if fmt == "pdf":
        return register_pdf(frame, month, level, name)
    raise ValueError(f"unknown export format {fmt!r}")

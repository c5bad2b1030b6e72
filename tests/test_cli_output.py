"""geogrid.cli._output: one listing printer for every command (table that wraps, JSON, CSV)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from geogrid.cli._output import FORMATS, check_format, print_rows
from geogrid.errors import InvalidInput

LONG_CODE = "450902001001001450902001001001"
MESSAGE = (
    "1.2e+06 m² of the outline is covered by no district unit, which is a long message that "
    "cannot fit in one line of an 80 column terminal"
)
ROWS = [
    {"code": LONG_CODE, "n": np.int64(3), "when": datetime(2026, 3, 1, 8, tzinfo=UTC),
     "share": float("nan"), "codes": ["450902", "450903"], "message": MESSAGE},
    {"code": "450903", "n": np.int64(0), "when": None, "share": 0.25, "codes": [],
     "message": "短"},
]  # fmt: skip


def test_table_wraps_instead_of_cutting_at_80_columns():
    console = Console(width=80, record=True, file=io.StringIO())
    print_rows(ROWS, "table", title="2 row(s)", console=console)
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    # cells fold over lines: read each column back down the body lines
    body = [line.split("│") for line in text.splitlines() if line.startswith("│")]
    column = ["".join(cells[i].strip() for cells in body) for i in (1, 6)]
    assert column[0] == LONG_CODE + "450903"
    assert "".join(column[1].split()) == "".join(MESSAGE.split()) + "短"


def test_json_and_csv_go_to_stdout_whole(capsys):
    print_rows(ROWS, "json")
    data = json.loads(capsys.readouterr().out)
    assert data[0]["code"] == LONG_CODE and data[0]["n"] == 3
    assert data[0]["when"] == "2026-03-01T08:00:00+00:00" and data[0]["share"] is None
    assert data[0]["codes"] == ["450902", "450903"] and data[1]["when"] is None
    frame = pd.DataFrame(ROWS).assign(geometry=None)
    print_rows(frame, "csv", columns=["code", "n", "message"])
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["code", "n", "message"] and rows[1] == [LONG_CODE, "3", MESSAGE]
    print_rows(frame, "json")  # a geometry column is left out
    assert "geometry" not in json.loads(capsys.readouterr().out)[0]


def test_unknown_format_is_refused():
    assert FORMATS == ("table", "json", "csv") and check_format("csv") == "csv"
    with pytest.raises(InvalidInput, match="--format"):
        print_rows(ROWS, "xml")

"""One exception tree for geogrid.

Every error geogrid raises on purpose derives from :class:`GeogridError`. The API maps
each class to an HTTP status once (``api/errors.py``); the CLI prints the message.
Messages name the parameter, the value received and what is allowed; for files, the
file, row and field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "GeogridError",
    "InvalidInput",
    "FileInputError",
    "RowError",
    "NotFound",
    "Conflict",
    "TopologyError",
    "Unauthorized",
    "Forbidden",
    "Locked",
    "DatabaseUnavailable",
]


class GeogridError(Exception):
    """Base of every error geogrid raises on purpose."""

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": str(self)}


class InvalidInput(GeogridError, ValueError):
    """A parameter has a value that is not allowed.

    Parameters
    ----------
    parameter : name of the parameter (query parameter, option, field)
    value : the value received
    allowed : what would have been accepted, in words
    """

    def __init__(self, parameter: str, value: Any, allowed: str, message: str | None = None):
        self.parameter = parameter
        self.value = value
        self.allowed = allowed
        super().__init__(message or f"{parameter}={value!r} is not valid: expected {allowed}")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d.update(parameter=self.parameter, value=_jsonable(self.value), allowed=self.allowed)
        return d


@dataclass
class RowError:
    """One refused row of an input file (row numbers are 1-based data rows)."""

    file: str
    row: int | None
    field: str | None
    message: str
    value: Any = None

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "row": self.row,
            "field": self.field,
            "message": self.message,
            "value": _jsonable(self.value),
        }


class FileInputError(GeogridError, ValueError):
    """An input file was refused; ``errors`` lists every bad row found."""

    def __init__(self, file: str, errors: list[RowError] | str, *, limit: int = 20):
        if isinstance(errors, str):
            errors = [RowError(file, None, None, errors)]
        self.file = file
        self.errors = errors
        shown = "\n".join(f"  {e}" for e in errors[:limit])
        more = f"\n  … and {len(errors) - limit} more" if len(errors) > limit else ""
        super().__init__(f"{file}: {len(errors)} problem(s), nothing was written\n{shown}{more}")

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["errors"] = [e.to_dict() for e in self.errors]
        return d


class NotFound(GeogridError, LookupError):
    """The thing asked for does not exist."""


class Conflict(GeogridError):
    """The request conflicts with the stored state (e.g. a transition not allowed)."""


@dataclass
class _TopologyDetail:
    kind: str
    codes: list[str] = field(default_factory=list)


class TopologyError(GeogridError, ValueError):
    """A boundary edit or import would break the partition (findings attached)."""

    def __init__(self, message: str, findings: list[Any] | None = None):
        self.findings = findings or []
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["findings"] = [f.to_dict() if hasattr(f, "to_dict") else f for f in self.findings]
        return d


class Unauthorized(GeogridError):
    """No or an unknown bearer token."""


class Forbidden(GeogridError):
    """The account may not do this (role or unit scope)."""


class Locked(GeogridError):
    """Sign-in is locked for a while after repeated failures (``retry_after`` seconds)."""

    def __init__(self, message: str, retry_after: int):
        self.retry_after = max(1, int(retry_after))
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        d = super().to_dict()
        d["retry_after"] = self.retry_after
        return d


class DatabaseUnavailable(GeogridError):
    """The database cannot be reached or PostGIS is missing."""


def _jsonable(value: Any) -> Any:
    """A value that JSON can carry (NaN and infinities become their text)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)

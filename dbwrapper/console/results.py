"""What a console run gave, statement by statement, as a page, JSON and CSV show it."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

#: How a SQL NULL reads in a result (a CSV leaves the field empty).
NULL = "NULL"


def as_text(value: object) -> str | None:
    """A value of a result as the console shows it: ``None`` for NULL, bytes as ``\\x`` hex,
    times in ISO 8601, everything else as the driver's Python value prints."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\x" + bytes(value).hex()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


@dataclass
class Result:
    """One statement's outcome: rows (capped), or rows affected, or the server's error."""

    statement: str
    #: The line of the console's text the statement starts on.
    line: int
    columns: list[str] = field(default_factory=list)
    rows: list[list[str | None]] = field(default_factory=list)
    #: Rows the statement returned beyond those shown (the row or byte cap).
    more_rows: int = 0
    #: Why rows were left out: the row cap or the byte cap, in words.
    cut: str = ""
    #: What the server said it did (``INSERT 0 3``, ``3 rows affected``), for a statement without rows.
    status: str = ""
    #: The server's error, with the line and column of the console's text it points at, if it did.
    error: str = ""
    error_line: int | None = None
    error_column: int | None = None
    seconds: float = 0.0

    @property
    def has_rows(self) -> bool:
        return bool(self.columns)

    @property
    def summary(self) -> str:
        """``1,000 rows (4,000 more not shown)``, ``INSERT 0 3``, ``error: ...``."""
        if self.error:
            return f"error: {self.error}"
        if not self.has_rows:
            return self.status or "done"
        shown = len(self.rows)
        said = f"{shown:,} row{'s' if shown != 1 else ''}"
        return f"{said} ({self.more_rows:,} more not shown: {self.cut})" if self.more_rows else said

    def json(self) -> dict[str, object]:
        return {
            "statement": self.statement, "line": self.line, "columns": self.columns, "rows": self.rows,
            "more_rows": self.more_rows, "cut": self.cut, "status": self.status, "error": self.error,
            "error_line": self.error_line, "error_column": self.error_column, "seconds": round(self.seconds, 4),
            "summary": self.summary,
        }


@dataclass
class Run:
    """A console run: its results in order, and what was left of the text when it stopped."""

    id: int
    results: list[Result] = field(default_factory=list)
    #: Statements not run, because one before them failed or the run was cancelled.
    not_run: int = 0
    #: Said once the run ended, about the whole run (a transaction left open was rolled back).
    note: str = ""

    @property
    def summary(self) -> str:
        """``3 statements: 2 ran, 1 failed, 1 not run``."""
        failed = sum(1 for r in self.results if r.error)
        total = len(self.results) + self.not_run
        parts = [f"{len(self.results) - failed} ran"]
        if failed:
            parts.append(f"{failed} failed")
        if self.not_run:
            parts.append(f"{self.not_run} not run")
        return f"{total} statement{'s' if total != 1 else ''}: {', '.join(parts)}"

    def json(self) -> dict[str, object]:
        return {"id": self.id, "summary": self.summary, "not_run": self.not_run, "note": self.note,
                "results": [result.json() for result in self.results]}


def csv_text(result: Result) -> str:
    """``result``'s rows as CSV (RFC 4180, a header row first); NULL is an empty field."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(result.columns)
    writer.writerows(["" if value is None else value for value in row] for row in result.rows)
    return out.getvalue()

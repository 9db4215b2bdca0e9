"""Class rosters: the trainees' user names out of a CSV file, as an LMS or a spreadsheet exports it.

A roster is rarely written for dbwrapper. Moodle, Canvas, Google Classroom and Teams export a
header row and several columns (Canvas: ``Student,ID,SIS User ID,SIS Login ID,Section``, the
full name first), Excel starts a UTF-8 file with a byte-order mark and, in much of Europe,
separates cells with ``;``. So:

- the first row is a header when its first cell is a word such exports head a column with
  (:data:`HEADER_WORDS`, any case) or is not a user name at all (``First Name``, ``E-mail``);
- the logins are the column a header names so (:data:`LOGIN_HEADERS`, the most specific
  first: Canvas's ``SIS Login ID`` before its ``Student``), else the first column;
- blank rows, rows with nothing in that column (Canvas's ``Points Possible``) and a name
  seen before are left out, and said so; a cell that is not a user name refuses the whole
  roster, naming every such row, before anything is made.

What was read is a :class:`Roster`: the names, and the rows left out with the reason, for the
page that asks the instructor to confirm it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass

from dbwrapper.accounts import USER_NAME, USER_NAME_RULE
from dbwrapper.errors import InvalidInput

MAX_ROSTER = 500

#: Column headers that name the logins, the most specific first (lower case, single spaces).
LOGIN_HEADERS = (
    "sis login id", "login id", "login", "username", "user name", "userid", "user", "trainee", "student",
)
#: What a first row may start with to be a header, beside anything that is no user name.
HEADER_WORDS = frozenset({
    *LOGIN_HEADERS, "students", "trainees", "name", "names", "email", "e-mail", "email address", "id",
    "user id", "sis user id", "id number", "first name", "firstname", "last name", "lastname", "surname",
    "full name", "display name", "section",
})
#: How many bad rows an error names before it counts the rest.
NAMED_BAD_ROWS = 10


@dataclass(frozen=True)
class Skipped:
    """A row of the roster that names nobody: its number (from 1), why, and what it held."""

    row: int
    reason: str
    text: str


@dataclass(frozen=True)
class Roster:
    """The trainees a roster names, in its order, and what it holds besides."""

    names: list[str]
    #: Where the names were read: ``the column "SIS Login ID"``, ``the first column``.
    column: str
    skipped: list[Skipped]


def _words(cell: str) -> str:
    """A header cell as :data:`HEADER_WORDS` spell it: ``SIS  Login ID`` → ``sis login id``."""
    return " ".join(cell.lower().split())


def _delimiter(text: str) -> str:
    """``,``, or the ``;`` or tab that separates the first line's cells when it has no comma."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    return next((delimiter for delimiter in ",;\t" if delimiter in first), ",")


def _is_header(row: list[str]) -> bool:
    return _words(row[0]) in HEADER_WORDS or not USER_NAME.fullmatch(row[0])


def _login_column(header: list[str]) -> int:
    """The column of logins of a roster whose first row is ``header``: by its header, else the first."""
    words = [_words(cell) for cell in header]
    return next((words.index(login) for login in LOGIN_HEADERS if login in words), 0)


def _rows(text: str) -> list[list[str]]:
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")), delimiter=_delimiter(text), strict=True)
    try:
        return [[cell.strip() for cell in row] for row in reader]
    except csv.Error as error:  # a quote left open, say
        raise InvalidInput(f"The roster is not a CSV file: {error}, on line {reader.line_num}.") from None


def read_roster(text: str) -> Roster:
    """The trainees of a CSV roster (see the module's docstring for what is read and what is left out).

    Raises :class:`InvalidInput` naming the rows whose login is not a user name, and for a
    roster that names nobody or more than :data:`MAX_ROSTER`.
    """
    rows = _rows(text)
    first = next((row for row in rows if any(row)), None)
    header = first if first is not None and _is_header(first) else None
    column = _login_column(header) if header is not None else 0
    where = f'the column "{header[column]}"' if header is not None else "the first column"
    names: dict[str, int] = {}  # the row each was first seen on
    skipped: list[Skipped] = []
    bad: list[str] = []
    for number, row in enumerate(rows, start=1):
        login = row[column] if column < len(row) else ""
        shown = ", ".join(cell for cell in row if cell)
        if row is header:
            skipped.append(Skipped(number, "a header", shown))
        elif not any(row):
            skipped.append(Skipped(number, "blank", shown))
        elif not login:
            skipped.append(Skipped(number, f"nothing in {where}", shown))
        elif not USER_NAME.fullmatch(login):
            bad.append(f"row {number} ({login})")
        elif login in names:
            skipped.append(Skipped(number, f"{login} again (row {names[login]})", shown))
        else:
            names[login] = number
    if bad:
        more = f" and {len(bad) - NAMED_BAD_ROWS} more" if len(bad) > NAMED_BAD_ROWS else ""
        raise InvalidInput(
            f"{len(bad)} row(s) of the roster hold no user name in {where}: {', '.join(bad[:NAMED_BAD_ROWS])}"
            f"{more}. A user name is {USER_NAME_RULE}. Correct or delete those rows and upload the roster "
            "again (a header row may name the column of logins: login, username or SIS Login ID)."
        )
    return Roster(within_limit(list(names)), where, skipped)


def check_names(names: Iterable[str], field: str | None = None) -> list[str]:
    """Trainee names given as a list (the JSON API, the page's confirmation), held to a roster's
    rules: user names, each once, 1 to :data:`MAX_ROSTER` of them; ``field`` is the one to blame."""
    found = list(dict.fromkeys(name.strip() for name in names if name.strip()))
    if bad := [name for name in found if not USER_NAME.fullmatch(name)]:
        raise InvalidInput(
            f"Not user names: {', '.join(repr(name) for name in bad[:NAMED_BAD_ROWS])}. "
            f"A user name is {USER_NAME_RULE}.", field,
        )
    return within_limit(found, field)


def within_limit(names: list[str], field: str | None = None) -> list[str]:
    if not names:
        raise InvalidInput("The roster names no trainee: one user name per row, in the first column "
                           "or in a column headed login, username or SIS Login ID.", field)
    if len(names) > MAX_ROSTER:
        raise InvalidInput(f"A roster holds at most {MAX_ROSTER} trainees; this one names {len(names)}.", field)
    return names

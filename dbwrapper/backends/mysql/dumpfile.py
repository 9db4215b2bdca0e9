"""Reading a mysqldump file: the tables it creates and the rows it holds.

MySQL cannot share the snapshot mysqldump dumps with another session, so an
archive's rows are counted in the file itself, and its manifest says what the
archive holds even if the database's owner was writing meanwhile.
"""

from __future__ import annotations

import mmap
import re

#: How a dump's CREATE TABLE and INSERT statements start their lines, before the table's name.
CREATE_TABLE = b"CREATE TABLE `"
INSERT_INTO = b"INSERT INTO `"
#: How MariaDB's mysqldump starts the rows of an INSERT statement: one per line.
ROWS_ON_LINES = b" VALUES\n"
#: In an INSERT that holds its rows on one line (Oracle MySQL's mysqldump), a quoted
#: value (skipped whole, whatever parentheses it holds) or the start of a row.
VALUE_OR_ROW = re.compile(rb"'(?:[^'\\]|\\.)*'|\(", re.DOTALL)


def tables_in_dump(dump: bytes | mmap.mmap) -> dict[str, int | None]:
    """Each table a mysqldump file creates, with the rows its INSERT statements hold.

    One walk through the file with the bytes' own search, never line by line:
    MariaDB's mysqldump writes a line per row. Each table's CREATE TABLE and
    INSERT statements start lines, and no value holds a raw line break
    (mysqldump writes \\n), so such a statement's rows are its line breaks.
    Oracle MySQL's mysqldump writes a statement per line instead, whose rows a
    small tokenizer counts.
    """
    tables: dict[str, int | None] = {}
    at = 0
    while True:
        insert = _line_starting(dump, INSERT_INTO, at)
        statements = len(dump) if insert == -1 else insert
        create = _line_starting(dump, CREATE_TABLE, at, statements)
        while create != -1:  # tables made before these rows, or with none at all
            name, after = _dumped_name(dump, create + len(CREATE_TABLE))
            tables.setdefault(name, 0)
            create = _line_starting(dump, CREATE_TABLE, after, statements)
        if insert == -1:
            return tables
        name, values = _dumped_name(dump, insert + len(INSERT_INTO))
        rows, at = _statement_rows(dump, values)
        tables[name] = (tables.get(name) or 0) + rows


def _line_starting(dump: bytes | mmap.mmap, prefix: bytes, start: int, end: int | None = None) -> int:
    """Where the first line from ``start`` (before ``end``) that starts with ``prefix`` begins, or -1."""
    if start == 0 and dump[: len(prefix)] == prefix:
        return 0
    at = dump.find(b"\n" + prefix, max(start - 1, 0), len(dump) if end is None else end)
    return -1 if at == -1 else at + 1


def _dumped_name(dump: bytes | mmap.mmap, start: int) -> tuple[str, int]:
    """The backquoted name in a dump that starts at ``start`` (after its opening
    backquote), and where the text after its closing backquote begins."""
    end = start
    while (end := dump.find(b"`", end)) != -1 and dump[end + 1:end + 2] == b"`":
        end += 2  # a backquote inside the name, doubled
    end = len(dump) if end == -1 else end
    return dump[start:end].replace(b"``", b"`").decode("utf-8", errors="replace"), end + 1


def _statement_rows(dump: bytes | mmap.mmap, values: int) -> tuple[int, int]:
    """The rows of the INSERT statement whose " VALUES" starts at ``values``, and where it ends."""
    if dump[values:values + len(ROWS_ON_LINES)] != ROWS_ON_LINES:  # Oracle MySQL's: all on one line
        end = dump.find(b"\n", values)
        end = len(dump) if end == -1 else end
        return sum(1 for token in VALUE_OR_ROW.finditer(dump, values, end) if token.group() == b"("), end
    # A row per line. The statement ends where the next one begins if the line
    # before that is a last row, "(...);"; otherwise (the table's last statement)
    # at the first line that ends with ";".
    end = dump.find(b"\n" + INSERT_INTO, values)
    if end == -1 or not _is_last_row(dump, dump.rfind(b"\n", values, end) + 1, end):
        end = dump.find(b";\n", values)
        end = len(dump) if end == -1 else end
    return dump[values:end].count(b"\n"), end


def _is_last_row(dump: bytes | mmap.mmap, start: int, end: int) -> bool:
    """Whether the line from ``start`` to ``end`` is an INSERT's last row, "(...);"."""
    return dump[start:start + 1] == b"(" and dump[end - 2:end] == b");"

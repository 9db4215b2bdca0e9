"""Archives: a database dumped to disk by its engine's own tool, with a manifest beside it.

The seed's "archive to disk" with ``pg_dump``, made safe: the tools run with
argument lists and passwords in their environment; an archive is written
under a temporary name and renamed only once it is complete; and it counts as
an archive only when the tool succeeded and the archive lists every table the
database had, its SHA-256 written in the manifest. Before anything depends on
it ("archive and drop" drops, a restore restores), :meth:`Archives.verify`
reads it back: the SHA-256 must still be the manifest's, every table still in it.

On disk: ``<archive_dir>/<backend>/<database>/<UTC time><suffix>`` and the
manifest ``… .json`` beside it. The archive's id is that path without suffix,
relative to the archive directory, e.g. ``postgres/alice_7001/20261126T231700_042000Z``.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend
from dbwrapper.config import Settings
from dbwrapper.embedded import service_data_dir
from dbwrapper.errors import Forbidden, InvalidInput, Refused
from dbwrapper.names import validate_name
from dbwrapper.service import DatabaseService, Outcome
from dbwrapper.tools import ToolFailed, find_tool, run_tool

MANIFEST_FORMAT = 1
#: UTC to the microsecond: a restore's safety archive follows its archive within a second.
STAMP = "%Y%m%dT%H%M%S_%fZ"
ARCHIVE_ID = re.compile(r"(?P<backend>[a-z]+)/(?P<name>[a-z_][a-z0-9_]{0,62})/(?P<stamp>\d{8}T\d{6}_\d{6}Z)")


@dataclass(frozen=True)
class Manifest:
    """What an archive holds, written beside it as JSON."""

    format: int
    id: str
    engine: str
    server_version: str
    database: str
    owner: str
    created_at: str
    size_bytes: int
    sha256: str
    tables: dict[str, int]
    file: str



def fsync_file(path: Path) -> None:
    """Make sure a file another process wrote is on the disk, not only in the page cache."""
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def write_durably(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all or nothing: a temporary file, fsync, rename."""
    partial = path.with_name(f".{path.name}.partial")
    with partial.open("w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(partial, path)


class Archives:
    """Archive, verify, list and restore databases, for actors the service authorises."""

    def __init__(self, service: DatabaseService, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.directory = (settings.archive_dir or service_data_dir() / "archives").expanduser()

    # -- tools --------------------------------------------------------------------

    def _tool(self, name: str) -> str:
        path = find_tool(name, self.settings.tools)
        if path is None:
            raise ToolFailed(
                f"{name} was not found: install it, or set {name} = \"/path/to/{name}\" in the "
                "[dbwrapper] section of app.conf."
            )
        return path

    def missing_tools(self) -> list[str]:
        """The tools the configured backends need that cannot be found (said at start)."""
        needed = [
            tool
            for backend in self.service.backends()
            for tool in (backend.dump_tool, backend.restore_tool)
        ]
        return [tool for tool in needed if find_tool(tool, self.settings.tools) is None]

    # -- archiving ------------------------------------------------------------------

    def archive(self, actor: Actor, db_type: object, name: str | None, *, drop: bool = False) -> Manifest:
        """Dump a database to disk; with ``drop``, verify it and then drop the database.

        The archive's checksum and table list come from one read of the file the
        tool wrote, and every table must be in it. Before a drop, the file is read
        back once more and must still match (:meth:`verify`). A failed or
        unverifiable archive leaves no file behind and, with ``drop``, the
        database untouched.
        """
        backend, name = self.service.resolve(actor, db_type, name)
        action = "archive and drop" if drop else "archive"
        with self.service.audited(actor, action, f"{backend.kind}:{name}") as entry:
            record = self.service.authorize(actor, backend, name)
            if record is None:
                raise Refused(f"{name} is not a database dbwrapper manages on {backend.label}.")
            manifest = self._dump(backend, name, record.owner)
            if drop:
                self.verify(manifest)  # read back from the disk before anything is dropped
            entry.detail = manifest.id
        if drop:
            self.service.destroy(actor, backend.kind, name)
        return manifest

    def _dump(self, backend: Backend, name: str, owner: str) -> Manifest:
        tool = self._tool(backend.dump_tool)
        created = datetime.now(UTC)
        folder = self.directory / backend.kind / name
        folder.mkdir(parents=True, exist_ok=True)
        stamp = created.strftime(STAMP)
        path = folder / f"{stamp}{backend.archive_suffix}"
        if path.exists():
            raise ToolFailed(f"An archive {path.name} of {name} already exists; try again.")
        # Under its final name only once it is complete, on the disk, and holds every table.
        partial = folder / f".{path.name}.partial"
        try:
            expected = backend.dump(tool, name, str(partial))
            # The file reaches the disk while it is scanned: one waits on the disk,
            # the other on a core, so an archive costs little more than the bare dump.
            with ThreadPoolExecutor(max_workers=1) as syncing:
                synced = syncing.submit(fsync_file, partial)
                digest, found = backend.scan_archive(self._tool(backend.restore_tool), str(partial))
                synced.result()
            if missing := expected.keys() - found.keys():
                raise ToolFailed(f"The archive of {name} lacks the tables {', '.join(sorted(missing))}.")
            # Each table's rows as counted in the dump's snapshot, or else in the file.
            counted = {table: rows for table, rows in (*found.items(), *expected.items()) if rows is not None}
            tables = {table: counted[table] for table in expected}
            os.replace(partial, path)
        except OSError as error:
            raise ToolFailed(f"The archive of {name} could not be written: {error.strerror}.") from error
        finally:
            partial.unlink(missing_ok=True)  # gone already once renamed
        manifest = Manifest(
            format=MANIFEST_FORMAT, id=f"{backend.kind}/{name}/{stamp}", engine=backend.kind,
            server_version=backend.server_version(), database=name, owner=owner,
            created_at=created.isoformat(timespec="seconds"), size_bytes=path.stat().st_size,
            sha256=digest, tables=tables, file=path.name,
        )
        try:
            write_durably(folder / f"{stamp}.json", json.dumps(asdict(manifest), indent=2))
        except OSError as error:
            path.unlink(missing_ok=True)
            raise ToolFailed(f"The manifest of {name} could not be written: {error.strerror}.") from error
        return manifest

    def _paths(self, manifest: Manifest) -> tuple[Path, Path]:
        folder = self.directory / manifest.engine / manifest.database
        return folder / manifest.file, folder / f"{manifest.id.rsplit('/', 1)[1]}.json"

    def verify(self, manifest: Manifest) -> None:
        """The archive is whole: its checksum is the manifest's and it lists every table."""
        path, _ = self._paths(manifest)
        if not path.is_file():
            raise ToolFailed(f"The archive file of {manifest.id} is missing.")
        backend = self.service.engines.backend(manifest.engine)
        digest, tables = backend.scan_archive(self._tool(backend.restore_tool), str(path))
        if digest != manifest.sha256:
            raise ToolFailed(f"The archive {manifest.id} does not match its checksum; it is damaged.")
        missing = manifest.tables.keys() - tables.keys()
        if missing:
            raise ToolFailed(f"The archive {manifest.id} lacks the tables {', '.join(sorted(missing))}.")

    # -- reading ----------------------------------------------------------------------

    def load(self, archive_id: str) -> Manifest:
        match = ARCHIVE_ID.fullmatch(archive_id or "")
        if match is None:
            raise InvalidInput(f"{archive_id!r} is not an archive id (backend/database/UTC time).")
        path = self.directory / match["backend"] / match["name"] / f"{match['stamp']}.json"
        try:
            return Manifest(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InvalidInput(f"There is no archive {archive_id}.") from None

    def list(self, actor: Actor) -> list[Manifest]:
        """Archives, newest first: all of them for an instructor, their own for a trainee."""
        manifests = [
            Manifest(**json.loads(path.read_text(encoding="utf-8")))
            for path in self.directory.glob("*/*/*.json")
        ]
        if not actor.is_instructor:
            manifests = [m for m in manifests if m.owner == actor.name]
        return sorted(manifests, key=lambda m: m.id.rsplit("/", 1)[1], reverse=True)

    # -- restoring --------------------------------------------------------------------

    def restore(self, actor: Actor, archive_id: str, into: str | None = None) -> Outcome:
        """Restore an archive into a new database ``into``, or over its original.

        Over the original, what the database holds now is archived first, so a
        restore loses nothing either. The restored row counts must match the
        manifest's.
        """
        manifest = self.load(archive_id)
        if not actor.is_instructor and manifest.owner != actor.name:
            raise Forbidden(f"The archive {archive_id} belongs to someone else.")
        self.verify(manifest)
        backend = self.service.engines.backend(manifest.engine)
        target = manifest.database if into is None else validate_name(into)
        owner = self.service.registry.user(manifest.owner) or actor.user
        record = self.service.registry.database(backend.kind, target)
        if record is not None and into is not None:
            raise Refused(f"{target} already exists; restore into a new name, or over the original.")
        if record is not None:
            self.archive(actor, backend.kind, target)  # keep what is there now
        with self.service.audited(actor, "restore", f"{backend.kind}:{target}") as entry:
            entry.detail = manifest.id
            if record is None:
                self.service.create(actor, backend.kind, target, owner=owner)
                record = self.service.registry.database(backend.kind, target)
                assert record is not None
            else:
                backend.recreate_database(target, record.login)
            path, _ = self._paths(manifest)
            argv, from_stdin = backend.restore_command(
                self._tool(backend.restore_tool), target, str(path), record.login
            )
            run_tool(
                argv, backend.tool_env(), stdin_path=str(path) if from_stdin else None, timeout=backend.deadlines.long
            )
            restored = backend.table_counts(target)
            if restored != manifest.tables:
                raise ToolFailed(
                    f"{target} was restored from {manifest.id} but its row counts differ from the "
                    f"manifest's ({restored} against {manifest.tables}); it is left as restored."
                )
        return self.service.describe(actor, backend, target, f"Restored {target} from {manifest.id}.")

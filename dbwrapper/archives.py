"""Archives: a database dumped to disk by its engine's own tool, with a manifest beside it.

The seed's "archive to disk" with ``pg_dump``, made safe: the tools run with
argument lists and passwords in their environment, *as the database's own
login* (so nothing its owner put in it runs with more rights than theirs); an
archive is written under a temporary name and renamed only once it is
complete; and it counts as an archive only when the tool succeeded and the
archive lists every table the database had, its SHA-256 written in the
manifest. Before anything depends on it ("archive and drop" drops, a restore
restores), :meth:`Archives.verify` reads it back: the SHA-256 must still be the
manifest's, every table still in it.

On disk: ``<archive_dir>/<backend>/<database>/<UTC time><suffix>`` and the
manifest ``… .json`` beside it, readable by the service's user only (an archive
holds a whole database). The archive's id is that path without suffix,
relative to the archive directory, e.g. ``postgres/alice_7001/20261126T231700_042000Z``.

An archive belongs to the user its manifest names, *and whose account existed
when it was made*: a trainee who joins later under a removed trainee's name
does not inherit their archives.
"""

from __future__ import annotations

import json
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from dbwrapper.accounts import Actor
from dbwrapper.backends import Backend
from dbwrapper.backends.base import Login
from dbwrapper.config import Settings
from dbwrapper.embedded import service_data_dir
from dbwrapper.errors import Forbidden, InvalidInput, Refused
from dbwrapper.names import validate_name
from dbwrapper.quotas import Quota
from dbwrapper.registry import DatabaseRecord, User
from dbwrapper.registry.store import as_utc
from dbwrapper.service import DatabaseService, Outcome
from dbwrapper.tools import ToolFailed, find_tool

#: 2: ``created_at`` to the microsecond (format 1 had seconds), see :func:`belongs_to`; and
#: ``registry``, the id of the registry whose archive it is.
MANIFEST_FORMAT = 2
#: UTC to the microsecond: a restore's safety archive follows its archive within a second.
STAMP = "%Y%m%dT%H%M%S_%fZ"
ARCHIVE_ID = re.compile(r"(?P<backend>[a-z]+)/(?P<name>[a-z_][a-z0-9_]{0,62})/(?P<stamp>\d{8}T\d{6}_\d{6}Z)")
#: Archive directories and files are the service's user's alone.
PRIVATE_DIRECTORY = 0o700
PRIVATE_FILE = 0o600
#: A trainee's archives (instructors, and the expiry job, have no limit).
ARCHIVES = Quota("archive", "delete one first", past_it="a restore")


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
    #: The registry whose archive it is (the instance id its databases' markers carry): every
    #: dbwrapper an OS user runs keeps its archives in the same place by default. Empty in
    #: archives of format 1, made when one registry was all there was.
    registry: str = ""


def belongs_to(manifest: Manifest, user: User) -> bool:
    """Whether the archive is ``user``'s: it names them, and their account is older than it.

    Names are reused: a trainee removed at the end of one course and a new one
    of the same name in the next are two people. Archives of format 1 give
    their time in whole seconds, so the account's is rounded down likewise.
    """
    since = as_utc(user.created_at)
    assert since is not None
    if manifest.format < 2:
        since = since.replace(microsecond=0)
    return manifest.owner == user.name and since <= datetime.fromisoformat(manifest.created_at)


def fsync_file(path: Path) -> None:
    """Make sure a file another process wrote is on the disk, not only in the page cache."""
    with path.open("rb") as stream:
        os.fsync(stream.fileno())


def write_durably(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` all or nothing, for this user only: a temporary file, fsync, rename."""
    partial = path.with_name(f".{path.name}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
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
        #: How many archives a trainee may keep (instructors, and the expiry job, have no limit).
        self.quota = settings.archive_quota
        self._registry: str | None = None

    # -- tools --------------------------------------------------------------------

    def _tool(self, name: str) -> str:
        path = find_tool(name, self.settings.tools)
        if path is None:
            raise ToolFailed(
                f"{name} was not found: install it, or set {name} = \"/path/to/{name}\" in the "
                "[dbwrapper] section of app.conf."
            )
        return path

    def _restore_tools(self, backend: Backend) -> dict[str, str]:
        return {tool: self._tool(tool) for tool in backend.client.restore_tools}

    def missing_tools(self) -> list[str]:
        """The tools the configured backends need that cannot be found (said at start)."""
        needed = {
            tool: None
            for backend in self.service.backends()
            for tool in (backend.client.dump_tool, *backend.client.restore_tools, backend.client.client_tool)
        }
        return [tool for tool in needed if find_tool(tool, self.settings.tools) is None]

    # -- archiving ------------------------------------------------------------------

    def archive(self, actor: Actor, db_type: object, name: str | None, *, drop: bool = False) -> Manifest:
        """Dump a database to disk; with ``drop``, verify it and then drop the database.

        The archive's checksum and table list come from one read of the file the
        tool wrote, and every table must be in it. Before a drop, the file is read
        back once more and must still match (:meth:`verify`). A failed or
        unverifiable archive leaves no file behind and, with ``drop``, the
        database untouched. A trainee keeps at most :attr:`quota` archives.
        """
        return self._archive(actor, db_type, name, drop=drop, room=0)

    def _archive(self, actor: Actor, db_type: object, name: str | None, *, drop: bool, room: int) -> Manifest:
        """:meth:`archive`, a trainee keeping at most their quota and ``room`` more."""
        backend, name = self.service.resolve(actor, db_type, name)
        action = "archive and drop" if drop else "archive"
        with self.service.audited(actor, action, f"{backend.db_type}:{name}") as entry:
            backend, record = self.service.managed(actor, backend.db_type, name)
            self.service.check_idle(backend, record)  # mid-revert it holds nothing: what it held is set aside
            owner = self.service.registry.user(record.owner)
            assert owner is not None  # a record's owner cannot be removed while it exists
            if actor.is_instructor:
                # No quota to keep; and a long dump must not hold the owner's other work
                # (creates, snapshots) behind their lock.
                manifest = self._dump(backend, record)
            else:
                kept = partial(self._kept, owner)
                with self.service.quotas.room_for(actor, owner, ARCHIVES, self.quota, kept, room=room):
                    manifest = self._dump(backend, record)
            if drop:
                self.verify(manifest)  # read back from the disk before anything is dropped
            entry.detail = manifest.id
        if drop:
            self.service.destroy(actor, backend.db_type, name)
        return manifest

    def _kept(self, owner: User) -> int:
        """How many archives ``owner`` keeps, for their quota."""
        return sum(1 for manifest in self._manifests() if belongs_to(manifest, owner))

    def _folder(self, backend: Backend, name: str) -> Path:
        """``<archive_dir>/<backend>/<name>``, made if need be, each level this user's only.

        The top is made private again every time, which also covers archives
        an earlier release left readable by others.
        """
        folder = self.directory / backend.db_type / name
        for level in (self.directory, folder.parent, folder):
            level.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)
        self.directory.chmod(PRIVATE_DIRECTORY)
        return folder

    def _dump(self, backend: Backend, record: DatabaseRecord) -> Manifest:
        name = record.name
        tool = self._tool(backend.client.dump_tool)
        created = datetime.now(UTC)
        folder = self._folder(backend, name)
        stamp = created.strftime(STAMP)
        path = folder / f"{stamp}{backend.client.archive_suffix}"
        if path.exists():
            raise ToolFailed(f"An archive {path.name} of {name} already exists; try again.")
        # Under its final name only once it is complete, on the disk, and holds every table.
        partial = folder / f".{path.name}.partial"
        try:
            expected = backend.client.dump(tool, name, str(partial), Login(record.login, record.password))
            # The file reaches the disk while it is scanned: one waits on the disk,
            # the other on a core, so an archive costs little more than the bare dump.
            with ThreadPoolExecutor(max_workers=1) as syncing:
                synced = syncing.submit(fsync_file, partial)
                digest, found = backend.client.scan_archive(self._restore_tools(backend), str(partial))
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
            format=MANIFEST_FORMAT, id=f"{backend.db_type}/{name}/{stamp}", engine=backend.db_type,
            server_version=backend.catalog.server_version(), database=name, owner=record.owner,
            created_at=created.isoformat(), size_bytes=path.stat().st_size,
            sha256=digest, tables=tables, file=path.name, registry=self._registry_id(),
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
        backend = self.service.servers.backend(manifest.engine)
        digest, tables = backend.client.scan_archive(self._restore_tools(backend), str(path))
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
            manifest = Manifest(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            manifest = None
        if manifest is None or not self._ours(manifest):
            raise InvalidInput(f"There is no archive {archive_id}.")
        return manifest

    def _manifests(self) -> list[Manifest]:
        """This registry's archives (another registry's may be in the same directory)."""
        found = [Manifest(**json.loads(path.read_text(encoding="utf-8"))) for path in self.directory.glob("*/*/*.json")]
        return [manifest for manifest in found if self._ours(manifest)]

    def _ours(self, manifest: Manifest) -> bool:
        return manifest.registry in ("", self._registry_id())

    def _registry_id(self) -> str:
        """This registry's id, read once: it never changes."""
        if self._registry is None:
            self._registry = self.service.registry.instance_id()
        return self._registry

    def list(self, actor: Actor, of: DatabaseRecord | None = None) -> list[Manifest]:
        """Archives, newest first: all of them for an instructor, their own for a trainee; with
        ``of``, only that database's."""
        manifests = self._manifests()
        if of is not None:
            manifests = [m for m in manifests if (m.engine, m.database) == (of.db_type, of.name)]
        if not actor.is_instructor:
            manifests = [m for m in manifests if belongs_to(m, actor.user)]
        return sorted(manifests, key=lambda m: m.id.rsplit("/", 1)[1], reverse=True)

    def delete(self, actor: Actor, archive_id: str) -> Manifest:
        """Remove an archive (its file, then its manifest): its owner's or an instructor's to do."""
        manifest = self.owned(actor, archive_id)
        with self.service.audited(actor, "delete archive", f"{manifest.engine}:{manifest.database}") as entry:
            entry.detail = manifest.id
            path, manifest_path = self._paths(manifest)
            try:
                path.unlink(missing_ok=True)
                manifest_path.unlink()
            except OSError as error:
                raise ToolFailed(f"The archive {manifest.id} could not be removed: {error.strerror}.") from error
        return manifest

    def owned(self, actor: Actor, archive_id: str) -> Manifest:
        """The archive ``archive_id``, if ``actor`` may use it: its owner, or an instructor."""
        manifest = self.load(archive_id)
        if not actor.is_instructor and not belongs_to(manifest, actor.user):
            raise Forbidden(f"The archive {archive_id} belongs to someone else.")
        return manifest

    # -- restoring --------------------------------------------------------------------

    def restore(self, actor: Actor, archive_id: str, into: str | None = None) -> Outcome:
        """Restore an archive into a new database ``into``, or over its original.

        Over the original, what the database holds now is archived first (even
        past the quota), so a restore loses nothing either. The restored row
        counts must match the manifest's. A failed restore into a new database
        leaves nothing behind: neither the database nor its record.
        """
        manifest = self.owned(actor, archive_id)
        self.verify(manifest)
        backend = self.service.servers.backend(manifest.engine)
        target = manifest.database if into is None else validate_name(into)
        named = self.service.registry.user(manifest.owner)
        owner = named if named is not None and belongs_to(manifest, named) else actor.user
        record = self.service.registry.database(backend.db_type, target)
        if record is not None and into is not None:
            raise Refused(f"{target} already exists; restore into a new name, or over the original.")
        kept = None
        if record is not None:
            self.service.check_writable(actor, record)
            # What is there now, kept past the quota once: a restore is not refused for want
            # of room, but restoring again and again does not fill the disk.
            kept = self._archive(actor, backend.db_type, target, drop=False, room=1)
        with self.service.audited(actor, "restore", f"{backend.db_type}:{target}") as entry:
            entry.detail = manifest.id
            if record is None:
                created = self.service.create(actor, backend.db_type, target, owner=owner)
                made = self.service.registry.database(backend.db_type, target)
                if not created.changed or made is None:
                    raise Refused(
                        f"{target} exists on {backend.label} but dbwrapper does not manage it; restore "
                        "into another name."
                    )
                try:
                    self._restore(backend, manifest, made)
                except BaseException:
                    self.service.remove(backend, made, None)
                    raise
            else:
                backend.creation.recreate_database(target, record.login)
                try:
                    self._restore(backend, manifest, record)
                except ToolFailed as error:
                    assert kept is not None
                    raise ToolFailed(f"{error} What {target} held before is in the archive {kept.id}.") from error
        return self.service.describe(actor, backend, target, f"Restored {target} from {manifest.id}.")

    def _restore(self, backend: Backend, manifest: Manifest, record: DatabaseRecord) -> None:
        """Restore ``manifest``'s archive into the empty database of ``record``, as its own login."""
        path, _ = self._paths(manifest)
        login = Login(record.login, record.password)
        backend.client.restore(self._restore_tools(backend), record.name, login, str(path))
        restored = backend.catalog.table_counts(record.name, login)
        if restored != manifest.tables:
            raise ToolFailed(
                f"{record.name} was restored from {manifest.id} but its row counts differ from the "
                f"manifest's ({restored} against {manifest.tables})."
            )

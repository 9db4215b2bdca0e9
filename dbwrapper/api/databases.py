"""Databases, their snapshots and archives, and the servers they live on, as resources."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dbwrapper.api import fields
from dbwrapper.api.fields import iso
from dbwrapper.api.replies import accepted, created, gone, ok
from dbwrapper.api.routing import PREFIX, Call, Reply, Route
from dbwrapper.archives import Manifest
from dbwrapper.backends import Backend
from dbwrapper.errors import DbWrapperError, InvalidInput, NotFound
from dbwrapper.registry import DatabaseRecord
from dbwrapper.registry.models import Snapshot
from dbwrapper.service import Credentials

if TYPE_CHECKING:
    from dbwrapper.api.handling import Api


def database_path(db_type: str, name: str) -> str:
    return f"{PREFIX}/databases/{db_type}/{name}"


def credentials_json(credentials: Credentials) -> dict[str, Any]:
    return {
        "login": credentials.login.name,
        "password": credentials.login.password,
        "url": credentials.url,
        "command": credentials.command,
    }


def database_json(api: Api, call: Call, backend: Backend, name: str, record: DatabaseRecord | None,
                  size: int | None) -> dict[str, Any]:
    """A database: where, whose, until when, how big; and how its owner (or an instructor) connects."""
    body: dict[str, Any] = {
        "db_type": backend.db_type, "name": name, "managed": record is not None,
        "owner": record.owner if record else None, "course": record.course if record else None,
        "created_at": iso(record.created_at) if record else None,
        "expires_at": iso(record.expires_at) if record else None,
        "size_bytes": size, "credentials": None,
        "read_only": api.runtime.read_only.applies(record) if record is not None else False,
        "links": {"self": database_path(backend.db_type, name)},
    }
    if record is not None:
        body["links"]["snapshots"] = database_path(backend.db_type, name) + "/snapshots"
        if record.course is not None:
            body["links"]["reset"] = database_path(backend.db_type, name) + "/reset"
        if call.actor.is_instructor or record.owner == call.actor.name:
            login = api.runtime.service.shown_login(call.actor, record)
            body["credentials"] = credentials_json(Credentials(backend, name, login, record.expires_at))
    return body


def managed(api: Api, call: Call, db_type: str, name: str | None) -> tuple[Backend, DatabaseRecord]:
    """The managed database named in the path, if the actor may see it; a 404 otherwise."""
    service = api.runtime.service
    backend, name = service.resolve(call.actor, db_type, name)
    record = service.authorize(call.actor, backend, name)
    if record is None:
        raise NotFound(f"There is no database {name} that dbwrapper manages on {backend.label}.")
    return backend, record


def list_databases(api: Api, call: Call) -> Reply:
    service = api.runtime.service
    wanted = call.query.get("db_type")
    db_types = [service.servers.backend(wanted).db_type] if wanted else service.servers.db_types
    databases = []
    for db_type in db_types:
        listing = service.listing(call.actor, db_type)
        records = {db.name: db for db in service.registry.databases(db_type)}
        databases += [database_json(api, call, listing.backend, db.name, records.get(db.name), db.info.size_bytes)
                      for db in listing.databases]
    return ok({"databases": databases})


def get_database(api: Api, call: Call, db_type: str, name: str) -> Reply:
    backend, record = managed(api, call, db_type, name)
    return ok(database_json(api, call, backend, record.name, record, backend.catalog.database_size(record.name)))


def create_database(api: Api, call: Call) -> Reply:
    body = call.fields()
    owner_name = fields.text(body, "owner", None)
    if owner_name not in (None, call.actor.name):  # before the name is looked up: it says who exists
        call.actor.require_instructor("create databases for someone else")
    owner = api.runtime.accounts.get(owner_name) if owner_name is not None else None
    outcome = api.runtime.service.create(
        call.actor, fields.text(body, "db_type"), fields.text(body, "name", None), owner=owner,
        course=fields.text(body, "course", None),
    )
    record = api.runtime.service.registry.database(outcome.backend.db_type, outcome.name)
    reply = {**database_json(api, call, outcome.backend, outcome.name, record, None), "summary": outcome.summary}
    return created(reply, database_path(outcome.backend.db_type, outcome.name), changed=outcome.changed)


def update_database(api: Api, call: Call, db_type: str, name: str) -> Reply:
    """Move the expiry (``expires_at``, ``null``: keep it for ever), switch read-only mode
    (``read_only``); instructors only."""
    body = call.fields()
    if "expires_at" not in body and "read_only" not in body:
        raise InvalidInput("Give expires_at (a time, or null to keep it for ever), read_only (true or false), "
                           "or both.", "expires_at")
    when = None if body.get("expires_at") is None else fields.moment(body["expires_at"], "expires_at")
    backend, record = managed(api, call, db_type, name)
    if "read_only" in body:
        if not isinstance(body["read_only"], bool):
            raise InvalidInput("read_only is true or false.", "read_only")
        api.runtime.read_only.switch_database(call.actor, backend.db_type, record.name, body["read_only"])
    if "expires_at" in body:
        api.runtime.expiry.set(call.actor, backend.db_type, record.name, when)
    return get_database(api, call, backend.db_type, record.name)


def delete_database(api: Api, call: Call, db_type: str, name: str) -> Reply:
    outcome = api.runtime.service.destroy(call.actor, db_type, name)
    if not outcome.changed:
        raise NotFound(outcome.summary)
    return gone()


# -- snapshots ---------------------------------------------------------------------------------


def snapshot_json(backend: Backend, record: DatabaseRecord, snapshot: Snapshot) -> dict[str, Any]:
    path = f"{database_path(backend.db_type, record.name)}/snapshots/{snapshot.id}"
    return {
        "id": snapshot.id, "label": snapshot.label, "taken_at": iso(snapshot.taken_at),
        "size_bytes": snapshot.size_bytes, "links": {"self": path, "revert": path + "/revert"},
    }


def list_snapshots(api: Api, call: Call, db_type: str, name: str) -> Reply:
    backend, record, found = api.runtime.snapshots.list(call.actor, db_type, name)
    return ok({"snapshots": [snapshot_json(backend, record, s) for s in found]})


def find_snapshot(
    api: Api, call: Call, db_type: str, name: str, snapshot: str,
) -> tuple[Backend, DatabaseRecord, Snapshot]:
    backend, record, found = api.runtime.snapshots.list(call.actor, db_type, name)
    for candidate in found:
        if str(candidate.id) == snapshot:
            return backend, record, candidate
    raise NotFound(f"{record.name} has no snapshot {snapshot}.")


def get_snapshot(api: Api, call: Call, db_type: str, name: str, snapshot: str) -> Reply:
    return ok(snapshot_json(*find_snapshot(api, call, db_type, name, snapshot)))


def take_snapshot(api: Api, call: Call, db_type: str, name: str) -> Reply:
    body = call.fields()
    label = fields.text(body, "label", "")
    backend, record = managed(api, call, db_type, name)  # a wrong name is a 404 now, not a failed operation
    snapshots = api.runtime.snapshots

    def work(step: Any) -> dict[str, Any]:
        snapshot, summary = snapshots.take(call.actor, backend.db_type, record.name, label)
        step.advance(1, record.name)
        return {"snapshot": snapshot_json(backend, record, snapshot), "summary": summary}

    target = f"{backend.db_type}:{record.name}"
    return accepted(api.runtime.operations.start(call.actor, "snapshot", target, 1, work))


def revert_snapshot(api: Api, call: Call, db_type: str, name: str, snapshot: str) -> Reply:
    backend, record, chosen = find_snapshot(api, call, db_type, name, snapshot)
    snapshots = api.runtime.snapshots

    def work(step: Any) -> dict[str, Any]:
        summary = snapshots.revert(call.actor, backend.db_type, record.name, chosen.id)
        step.advance(1, record.name)
        return {"database": database_path(backend.db_type, record.name), "summary": summary}

    target = f"{backend.db_type}:{record.name}"
    return accepted(api.runtime.operations.start(call.actor, "revert", target, 1, work))


def reset_database(api: Api, call: Call, db_type: str, name: str) -> Reply:
    """Put a course's database back to the course's start (an operation), keeping what it
    held as a snapshot; a database made for no course is a 400 now, not a failed operation."""
    backend, record = managed(api, call, db_type, name)
    snapshots = api.runtime.snapshots
    snapshots.check_reset(call.actor, backend.db_type, record.name)

    def work(step: Any) -> dict[str, Any]:
        summary = snapshots.reset(call.actor, backend.db_type, record.name)
        step.advance(1, record.name)
        return {"database": database_path(backend.db_type, record.name), "summary": summary}

    target = f"{backend.db_type}:{record.name}"
    return accepted(api.runtime.operations.start(call.actor, "reset", target, 1, work))


def delete_snapshot(api: Api, call: Call, db_type: str, name: str, snapshot: str) -> Reply:
    backend, record, chosen = find_snapshot(api, call, db_type, name, snapshot)
    api.runtime.snapshots.delete(call.actor, backend.db_type, record.name, chosen.id)
    return gone()


# -- archives ----------------------------------------------------------------------------------


def archive_path(manifest: Manifest) -> str:
    return f"{PREFIX}/archives/{manifest.id}"


def archive_json(manifest: Manifest) -> dict[str, Any]:
    return {
        "id": manifest.id, "db_type": manifest.engine, "database": manifest.database, "owner": manifest.owner,
        "created_at": manifest.created_at, "size_bytes": manifest.size_bytes, "sha256": manifest.sha256,
        "tables": manifest.tables, "server_version": manifest.server_version,
        "links": {"self": archive_path(manifest), "restore": archive_path(manifest) + "/restore"},
    }


def list_archives(api: Api, call: Call) -> Reply:
    return ok({"archives": [archive_json(m) for m in api.runtime.archives.list(call.actor)]})


def find_archive(api: Api, call: Call, db_type: str, name: str, stamp: str) -> Manifest:
    archive_id = f"{db_type}/{name}/{stamp}"
    for manifest in api.runtime.archives.list(call.actor):
        if manifest.id == archive_id:
            return manifest
    raise NotFound(f"There is no archive {archive_id} of yours.")


def get_archive(api: Api, call: Call, db_type: str, name: str, stamp: str) -> Reply:
    return ok(archive_json(find_archive(api, call, db_type, name, stamp)))


def create_archive(api: Api, call: Call) -> Reply:
    """Archive a database to disk (``drop``: then drop it, once the archive is verified)."""
    body = call.fields()
    drop = fields.flag(body, "drop")
    backend, record = managed(api, call, fields.text(body, "db_type"), fields.text(body, "name", None))
    archives = api.runtime.archives

    def work(step: Any) -> dict[str, Any]:
        manifest = archives.archive(call.actor, backend.db_type, record.name, drop=drop)
        step.advance(1, record.name)
        return {"archive": archive_json(manifest)}

    kind = "archive and drop" if drop else "archive"
    return accepted(api.runtime.operations.start(call.actor, kind, f"{backend.db_type}:{record.name}", 1, work))


def restore_archive(api: Api, call: Call, db_type: str, name: str, stamp: str) -> Reply:
    body = call.fields()
    into = fields.text(body, "into", None)
    manifest = find_archive(api, call, db_type, name, stamp)
    archives = api.runtime.archives

    def work(step: Any) -> dict[str, Any]:
        outcome = archives.restore(call.actor, manifest.id, into)
        step.advance(1, outcome.name)
        return {"database": database_path(outcome.backend.db_type, outcome.name), "summary": outcome.summary}

    target = f"{manifest.engine}:{into or manifest.database}"
    return accepted(api.runtime.operations.start(call.actor, "restore", target, 1, work))


def delete_archive(api: Api, call: Call, db_type: str, name: str, stamp: str) -> Reply:
    api.runtime.archives.delete(call.actor, find_archive(api, call, db_type, name, stamp).id)
    return gone()


# -- servers -----------------------------------------------------------------------------------


def server_json(call: Call, backend: Backend) -> dict[str, Any]:
    """A server and whether it answers now (its gate and deadlines bound the asking). Where it
    is, and why it does not answer, name its super-user: for instructors only."""
    try:
        version, health, detail = backend.catalog.server_version(), "up", None
    except DbWrapperError as error:
        version, health, detail = None, "unavailable", str(error)
    if not call.actor.is_instructor:
        detail = detail and f"The {backend.label} server does not answer now; try again in a few seconds."
    return {"db_type": backend.db_type, "label": backend.label,
            "where": backend.where if call.actor.is_instructor else None, "version": version,
            "health": health, "detail": detail, "links": {"self": f"{PREFIX}/servers/{backend.db_type}"}}


def list_servers(api: Api, call: Call) -> Reply:
    return ok({"servers": [server_json(call, backend) for backend in api.runtime.service.backends()]})


def get_server(api: Api, call: Call, db_type: str) -> Reply:
    try:
        backend = api.runtime.service.servers.backend(db_type)
    except DbWrapperError as error:
        raise NotFound(str(error)) from None
    return ok(server_json(call, backend))


DB = "/databases/{db_type}/{name}"
ARCHIVE = "/archives/{db_type}/{name}/{stamp}"
ROUTES = [
    Route("GET", "/databases", list_databases, "The databases you may see (an instructor: every one on the servers)",
          response="DatabaseList", query={"db_type": ({"type": "string"}, "Only this server's")}),
    Route("POST", "/databases", create_database, "Create a database with its own login, unless it exists",
          request="DatabaseCreate", response="Database", status=201, errors=(403, 409)),
    Route("GET", DB, get_database, "A database, with how its owner connects", response="Database", errors=(403, 404)),
    Route("PATCH", DB, update_database, "Move a database's expiry, switch its read-only mode (instructors)",
          request="DatabaseUpdate",
          response="Database", errors=(403, 404, 412)),
    Route("DELETE", DB, delete_database, "Drop a database and its login", status=204, errors=(403, 404, 409, 412)),
    Route("GET", DB + "/snapshots", list_snapshots, "A database's snapshots, newest first", response="SnapshotList",
          errors=(403, 404)),
    Route("POST", DB + "/snapshots", take_snapshot, "Take a snapshot (an operation)", request="SnapshotCreate",
          response="Operation", status=202, errors=(403, 404, 409)),
    Route("GET", DB + "/snapshots/{snapshot}", get_snapshot, "A snapshot", response="Snapshot", errors=(403, 404)),
    Route("DELETE", DB + "/snapshots/{snapshot}", delete_snapshot, "Delete a snapshot", status=204,
          errors=(403, 404, 412)),
    Route("POST", DB + "/snapshots/{snapshot}/revert", revert_snapshot,
          "Give the database the snapshot's content again, keeping what it held as a snapshot (an operation)",
          request="Empty", response="Operation", status=202, errors=(403, 404, 409)),
    Route("POST", DB + "/reset", reset_database,
          "Give a course's database the course's starting content again, keeping what it held as a snapshot "
          "(an operation)", request="Empty", response="Operation", status=202, errors=(400, 403, 404, 409)),
    Route("GET", "/archives", list_archives, "The archives you may see, newest first", response="ArchiveList"),
    Route("POST", "/archives", create_archive, "Archive a database to disk, and drop it if asked (an operation)",
          request="ArchiveCreate", response="Operation", status=202, errors=(403, 404, 409)),
    Route("GET", ARCHIVE, get_archive, "An archive's manifest", response="Archive", errors=(404,)),
    Route("DELETE", ARCHIVE, delete_archive, "Delete an archive", status=204, errors=(403, 404, 412)),
    Route("POST", ARCHIVE + "/restore", restore_archive,
          "Restore an archive into a new database, or over its original (an operation)",
          request="ArchiveRestore", response="Operation", status=202, errors=(403, 404, 409)),
    Route("GET", "/servers", list_servers, "The database servers and whether they answer", response="ServerList"),
    Route("GET", "/servers/{db_type}", get_server, "A database server and whether it answers", response="Server",
          errors=(404,)),
]

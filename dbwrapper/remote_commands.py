"""The command line's commands, run on a service through its JSON API (``--server``).

Each handler takes the same arguments as its local twin in :mod:`dbwrapper.cli`, asks
the API, and prints with the same functions, from what the API answers. It acts as
the user whose token it holds, so ``--as`` has no meaning here; and what the API does
not offer (reconciling, purging, serving) is refused, as it runs only beside the
servers.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import datetime
from typing import Any

from dbwrapper import cli
from dbwrapper.api.fields import iso
from dbwrapper.auditing import AUDIT_PAGE
from dbwrapper.backends import DatabaseInfo
from dbwrapper.classes import ClassReport
from dbwrapper.errors import InvalidInput
from dbwrapper.formatting import human_expiry
from dbwrapper.registry import AuditEntry, User
from dbwrapper.registry.models import ApiToken, Snapshot
from dbwrapper.remote import PREFIX, Client, RemoteError, segment
from dbwrapper.service import Listed
from dbwrapper.snapshots import describe

#: What runs only on the service's machine, and why; by command, or by command and action.
LOCAL_ONLY = {
    ("serve", None): "it is the service",
    ("reconcile", None): "it compares the registry with the servers themselves",
    ("expiry", "purge"): "the service's own job purges what is due",
    ("token", "create"): "a token cannot make tokens; make one on the service's /account/ page",
}


def moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def action(args: argparse.Namespace) -> str | None:
    """A command's action (``snapshot take``: ``take``), ``None`` for a command without any."""
    return getattr(args, f"{args.command}_command", None)


def named(args: argparse.Namespace) -> str:
    """``--name``: the name template is the service's, so a remote command cannot fill it."""
    if args.name is None:
        raise InvalidInput("With --server, give --name: the service's name template is not known here.", "name")
    return str(args.name)


def database_path(db_type: str, name: str) -> str:
    return f"/databases/{segment(db_type)}/{segment(name)}"


def archive_path(archive_id: str) -> str:
    """An archive's id is ``db_type/name/stamp``, three segments of its path."""
    return "/archives/" + "/".join(segment(part) for part in archive_id.split("/"))


def below_prefix(path: str) -> str:
    return path.removeprefix(PREFIX)


# -- databases ---------------------------------------------------------------------------------


def print_server_databases(client: Client, db_type: str, mine: str | None = None) -> None:
    """:func:`cli.print_listing` of what the API lists on the server of ``db_type``."""
    server = client.get(f"/servers/{segment(db_type)}")
    found = client.get("/databases", db_type=server["db_type"])["databases"]
    listed = [Listed(DatabaseInfo(db["name"], db["size_bytes"], db["managed"]), db["owner"]) for db in found]
    cli.print_databases(server["label"], server["where"], listed, mine)


def print_connection(database: dict[str, Any]) -> None:
    if credentials := database["credentials"]:
        cli.print_connection(credentials["command"], credentials["password"], credentials["url"])


def report(client: Client, summary: str, path: str) -> None:
    """:func:`cli.report` of the database at ``path``: the summary, how to connect, the server's listing."""
    database = client.get(below_prefix(path))
    print(summary)
    print_connection(database)
    print_server_databases(client, database["db_type"], mine=database["name"])


def run_database_command(args: argparse.Namespace, client: Client) -> None:
    if args.command == "list":
        print_server_databases(client, args.db_type)
    elif args.command == "create":
        fields = {"db_type": args.db_type, "name": args.name, "course": args.course}
        made = client.send("POST", "/databases", {k: v for k, v in fields.items() if v is not None}).body
        print(made["summary"])
        print_connection(made)
        print_server_databases(client, made["db_type"], mine=made["name"])
    else:
        name = named(args)
        server = client.get(f"/servers/{segment(args.db_type)}")
        try:
            client.send("DELETE", database_path(server["db_type"], name))
            print(f"Dropped {name} from {server['label']}.")
        except RemoteError as error:  # as here: there was nothing to drop, and that is no failure
            if error.http_status != 404:
                raise
            print(error)
        print_server_databases(client, server["db_type"], mine=name)


# -- archives and snapshots --------------------------------------------------------------------


def run_archive_command(args: argparse.Namespace, client: Client) -> None:
    if args.archive_command == "create":
        body = {"db_type": args.db_type, "name": named(args), "drop": args.drop}
        made = client.follow(client.send("POST", "/archives", body))["archive"]
        cli.print_archived(made["database"], made["id"], made["size_bytes"], len(made["tables"]), args.drop)
    elif args.archive_command == "list":
        for found in client.get("/archives")["archives"]:
            cli.print_archive(found["id"], found["owner"], found["size_bytes"])
    elif args.archive_command == "delete":
        client.send("DELETE", archive_path(args.archive))
        print(f"Deleted the archive {args.archive}.")
    else:
        body = {"into": args.into} if args.into else {}
        done = client.follow(client.send("POST", archive_path(args.archive) + "/restore", body))
        report(client, done["summary"], done["database"])


def snapshot_of(found: dict[str, Any]) -> Snapshot:
    """A snapshot as the API shows it, for :func:`cli.print_snapshots` and ``describe``."""
    return Snapshot(id=found["id"], label=found["label"], taken_at=moment(found["taken_at"]),
                    size_bytes=found["size_bytes"])


def run_snapshot_command(args: argparse.Namespace, client: Client) -> None:
    snapshots = database_path(args.db_type, named(args)) + "/snapshots"
    if args.snapshot_command == "take":
        print(client.follow(client.send("POST", snapshots, {"label": args.label}))["summary"])
    elif args.snapshot_command == "list":
        cli.print_snapshots(args.name, [snapshot_of(s) for s in client.get(snapshots)["snapshots"]])
    elif args.snapshot_command == "revert":
        print(client.follow(client.send("POST", f"{snapshots}/{segment(args.snapshot)}/revert", {}))["summary"])
    else:
        chosen = snapshot_of(client.get(f"{snapshots}/{segment(args.snapshot)}"))
        client.send("DELETE", f"{snapshots}/{chosen.id}")
        print(f"Deleted the snapshot {describe(chosen)} of {args.name}.")


# -- expiry, courses, the pool, classes -------------------------------------------------------


def run_expiry_command(args: argparse.Namespace, client: Client) -> None:
    if args.expiry_command == "list":
        found = [db for db in client.get("/databases")["databases"] if db["managed"] and db["expires_at"]]
        for db in sorted(found, key=lambda db: datetime.fromisoformat(db["expires_at"])):
            cli.print_expiring(db["db_type"], db["name"], db["owner"], moment(db["expires_at"]))
    else:
        when = cli.new_expiry(args)
        body = {"expires_at": when.isoformat() if when else None}
        changed = client.send("PATCH", database_path(args.db_type, args.name), body).body
        print(f"{changed['name']} now expires: {human_expiry(moment(changed['expires_at']))}")


def run_course_command(args: argparse.Namespace, client: Client) -> None:
    if args.course_command == "list":
        for course in client.get("/courses")["courses"]:
            cli.print_course(course["name"], course["db_types"], course["description"])
        return
    if args.postgres_from or args.mysql_from:
        raise local_only("course add --postgres-from/--mysql-from", "it copies a database as it is on its server")
    body = {"name": args.name, "description": args.description,
            **{f"{db_type}_sql": sql for db_type, sql in cli.course_files(args).items()}}
    print(f"Added the course {client.send('POST', '/courses', body).body['name']}.")


def run_pool_command(args: argparse.Namespace, client: Client) -> None:
    if args.pool_command == "list":
        for course in client.get("/courses")["courses"]:
            cli.print_pool(course["name"], course["ready_copies"])
        return
    started = client.send("POST", f"/courses/{segment(args.course)}/copies",
                          {"db_type": args.db_type, "count": args.count})
    done = client.follow(started, lambda done, total, _: cli.progress_bar(done, total, args.course))
    cli.print_made(done["made"], args)


def run_class_command(args: argparse.Namespace, client: Client) -> None:
    body = {"course": args.course, "db_type": args.db_type, "trainees": cli.roster_names(args.roster)}
    made = ClassReport.from_json(client.follow(client.send("POST", "/classes", body), cli.progress_bar))
    label = client.get(f"/servers/{segment(made.db_type)}")["label"]
    cli.write_class_report(made, label, client.server, args.sheet)


# -- people ------------------------------------------------------------------------------------


def run_audit_command(args: argparse.Namespace, client: Client) -> None:
    """The API's audit log pages by the last entry seen: page N is N-1 ``next`` links on."""
    filters = cli.audit_filter(args)
    query = {name: value for name, value in (
        ("user", filters.actor), ("target", filters.target), ("action", filters.action),
        ("since", iso(filters.since)), ("until", iso(filters.until)),
    ) if value}
    answer = client.get("/audit", **query, limit=str(AUDIT_PAGE))
    for _ in range(args.page - 1):
        following = answer["links"]["next"]
        answer = client.get(following.removeprefix(PREFIX)) if following else {"entries": [], "links": {"next": None}}
    entries = [
        AuditEntry(at=moment(e["at"]), actor=e["actor"], action=e["action"], target=e["target"],
                   outcome=e["outcome"], detail=e["detail"])
        for e in answer["entries"]
    ]
    cli.print_audit(entries, args.page, older=answer["links"]["next"] is not None)


def run_user_command(args: argparse.Namespace, client: Client) -> None:
    if args.user_command == "list":
        for user in client.get("/users")["users"]:
            cli.print_user(User(name=user["name"], role=user["role"], quota=user["quota"]), len(user["databases"]))
    elif args.user_command == "add":
        fields = {"name": args.name, "role": args.role, "quota": args.quota}
        added = client.send("POST", "/users", {k: v for k, v in fields.items() if v is not None}).body
        cli.print_added(User(name=added["name"], role=added["role"], quota=added["quota"]), added["password"])
    elif args.user_command == "remove":
        client.send("DELETE", f"/users/{segment(args.name)}")
        print(f"Removed {args.name}.")
    else:
        changed = client.send("PATCH", f"/users/{segment(args.name)}", {"password": None}).body
        print(f"New password for {args.name}: {changed['password']}")


def token_of(found: dict[str, Any]) -> ApiToken:
    return ApiToken(id=found["id"], name=found["name"], created_at=moment(found["created_at"]),
                    last_used_at=moment(found["last_used_at"]))


def run_token_command(args: argparse.Namespace, client: Client) -> None:
    me = client.get("/me")["name"]
    if args.user != me:
        raise InvalidInput(f"With --server, a token manages its own user's tokens, {me}'s; {args.user}'s are "
                           "managed on the service's machine.", "user")
    if args.token_command == "list":
        for found in client.get("/me/tokens")["tokens"]:
            cli.print_token(token_of(found))
    else:
        token = token_of(client.get(f"/me/tokens/{args.id}"))
        client.send("DELETE", f"/me/tokens/{args.id}")
        cli.print_revoked(token, args)


#: Each command's remote handler; create, destroy and list are run_database_command's.
COMMANDS: dict[str, Callable[[argparse.Namespace, Client], None]] = {
    "user": run_user_command,
    "token": run_token_command,
    "archive": run_archive_command,
    "snapshot": run_snapshot_command,
    "expiry": run_expiry_command,
    "course": run_course_command,
    "class": run_class_command,
    "pool": run_pool_command,
    "audit": run_audit_command,
}


def local_only(what: str, why: str) -> InvalidInput:
    return InvalidInput(f"dbwrapper {what} runs only on the service's machine ({why}); run it there, "
                        "without --server.")


def run_remote(args: argparse.Namespace) -> None:
    """Run the parsed command on ``--server`` (or ``$DBWRAPPER_SERVER``) with its token."""
    step = action(args)
    if why := LOCAL_ONLY.get((args.command, step)):
        raise local_only(" ".join(filter(None, (args.command, step))), why)
    if getattr(args, "actor", None):
        raise InvalidInput("With --server you act as your token's user; --as is for the service's machine.", "as")
    client = Client(args.server or os.environ[cli.SERVER_VARIABLE],
                    args.token or os.environ.get(cli.TOKEN_VARIABLE, ""))
    COMMANDS.get(args.command, run_database_command)(args, client)

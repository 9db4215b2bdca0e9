"""The ``dbwrapper`` command: run the service, manage databases and users.

The database commands call the same service layer as the web pages, so what
the command line does and what a page does cannot drift apart. Whoever runs
the command line already holds the servers' super-user URLs, so it acts as an
instructor (the first instructor unless ``--as`` names another user); the
audit log records it as coming from the command line.

With ``--server`` (or ``DBWRAPPER_SERVER``) the same commands go to a service's
JSON API instead, as the user whose API token it is (:mod:`dbwrapper.remote_commands`);
they print with the same functions, so both say the same thing.
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dbwrapper.accounts import ROLES, Actor
from dbwrapper.auditing import AUDIT_PAGE, AuditFilter
from dbwrapper.classes import ClassReport
from dbwrapper.config import Settings, load_settings
from dbwrapper.errors import DbWrapperError, InvalidInput, Refused, RegistryInUse
from dbwrapper.formatting import Templates, credentials_sheet, human_expiry, human_size, utc_text
from dbwrapper.registry import AuditEntry, User
from dbwrapper.registry.models import ApiToken, Snapshot
from dbwrapper.rosters import read_roster
from dbwrapper.runtime import Runtime
from dbwrapper.service import Credentials, Listed, Listing, Outcome
from dbwrapper.snapshots import describe

#: The environment variables that send the commands to a service, as ``--server`` and ``--token`` do.
SERVER_VARIABLE = "DBWRAPPER_SERVER"
TOKEN_VARIABLE = "DBWRAPPER_TOKEN"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbwrapper",
        description="A real database for every trainee, on PostgreSQL or MySQL/MariaDB.",
    )
    parser.add_argument(
        "--server", metavar="URL", help=f"run the command on this dbwrapper service, through its API "
        f"(default: ${SERVER_VARIABLE}; without either, here, with the servers' super-user URLs)",
    )
    parser.add_argument(
        "--token", help=f"the API token to use with --server; prefer ${TOKEN_VARIABLE}, as a command "
        "line is visible to every user of this machine",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, help="the app.conf to read (default: ./app.conf if present)"
    )
    acting = argparse.ArgumentParser(add_help=False, parents=[common])
    acting.add_argument("--as", dest="actor", help="act as this user (default: the first instructor)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the web service")
    serve.add_argument(
        "--host", help="address to listen on (default 127.0.0.1); beyond this machine, "
        "the embedded PostgreSQL listens there too",
    )
    serve.add_argument("--port", type=int, help="port to listen on (default 7001)")

    for name, text in (
        ("create", "create a database, with its own login, unless it exists"),
        ("destroy", "drop a database this service created, and its login"),
        ("list", "list the databases on a server"),
    ):
        command = commands.add_parser(name, parents=[acting], help=text)
        command.add_argument("--db-type", required=True, help="postgres or mysql")
        if name != "list":
            command.add_argument("--name", help="database name (default: from the name template)")
        if name == "create":
            command.add_argument("--course", help="start with this course's content")

    archive = commands.add_parser("archive", help="archive databases to disk and restore them")
    archive_commands = archive.add_subparsers(dest="archive_command", required=True, metavar="ACTION")
    create = archive_commands.add_parser("create", parents=[acting], help="archive a database")
    create.add_argument("--db-type", required=True, help="postgres or mysql")
    create.add_argument("--name", help="database name (default: from the name template)")
    create.add_argument("--drop", action="store_true", help="drop it once the archive is verified")
    archive_commands.add_parser("list", parents=[acting], help="list the archives")
    restore = archive_commands.add_parser("restore", parents=[acting], help="restore an archive")
    restore.add_argument("archive", help="the archive's id, as 'archive list' shows it")
    restore.add_argument("--into", help="a new database to restore into (default: over the original)")
    delete = archive_commands.add_parser("delete", parents=[acting], help="delete an archive")
    delete.add_argument("archive", help="the archive's id, as 'archive list' shows it")

    snapshot = commands.add_parser("snapshot", help="snapshots of a database, to revert to")
    snapshot_commands = snapshot.add_subparsers(dest="snapshot_command", required=True, metavar="ACTION")
    for action, text in (
        ("take", "snapshot a database now (its open sessions are ended)"),
        ("list", "list a database's snapshots, newest first"),
        ("revert", "give a database a snapshot's content again; what it held becomes a snapshot"),
        ("delete", "delete a snapshot"),
    ):
        command = snapshot_commands.add_parser(action, parents=[acting], help=text)
        command.add_argument("--db-type", required=True, help="postgres or mysql")
        command.add_argument("--name", help="database name (default: from the name template)")
        if action == "take":
            command.add_argument("--label", default="", help="a few words to recognise it by")
        elif action != "list":
            command.add_argument("snapshot", help="the snapshot's number, as 'snapshot list' shows it")

    expiry = commands.add_parser("expiry", help="when databases expire, and purging them")
    expiry_commands = expiry.add_subparsers(dest="expiry_command", required=True, metavar="ACTION")
    expiry_commands.add_parser("list", parents=[acting], help="databases by expiry, soonest first")
    change = expiry_commands.add_parser("set", parents=[acting], help="set when a database expires")
    change.add_argument("--db-type", required=True, help="postgres or mysql")
    change.add_argument("--name", required=True, help="database name")
    when = change.add_mutually_exclusive_group(required=True)
    when.add_argument("--days", type=float, help="expire this many days from now")
    when.add_argument("--permanent", action="store_true", help="never expire")
    expiry_commands.add_parser("purge", parents=[acting], help="purge what is due now, as the job would")

    course = commands.add_parser("course", help="courses: what new databases start with")
    course_commands = course.add_subparsers(dest="course_command", required=True, metavar="ACTION")
    course_commands.add_parser("list", parents=[acting], help="list the courses")
    add_course = course_commands.add_parser(
        "add", parents=[acting], help="define a course from SQL files or from existing databases"
    )
    add_course.add_argument("name")
    add_course.add_argument("--description", default="")
    for db_type, label in (("postgres", "PostgreSQL"), ("mysql", "MySQL/MariaDB")):
        source = add_course.add_mutually_exclusive_group()
        source.add_argument(f"--{db_type}-sql", type=Path, help=f"SQL the {label} databases start with")
        source.add_argument(f"--{db_type}-from", metavar="DATABASE",
                            help=f"a {label} database whose content, as it is now, they start with")

    pool = commands.add_parser("pool", help="ready copies of the courses, for handing out by renaming")
    pool_commands = pool.add_subparsers(dest="pool_command", required=True, metavar="ACTION")
    pool_commands.add_parser("list", parents=[acting], help="how many ready copies each course has")
    fill = pool_commands.add_parser(
        "fill", parents=[acting], help="prepare ready copies of a course now, before a class"
    )
    fill.add_argument("--course", required=True)
    fill.add_argument("--db-type", required=True, help="postgres or mysql")
    fill.add_argument("--count", type=int, required=True, help="how many ready copies to have (the class size)")

    klass = commands.add_parser("class", help="provision a whole class from a roster")
    class_commands = klass.add_subparsers(dest="class_command", required=True, metavar="ACTION")
    provision = class_commands.add_parser(
        "provision", parents=[acting], help="an account and a course database per trainee in a CSV roster"
    )
    provision.add_argument("roster", type=Path, help="CSV file, one trainee user name per row")
    provision.add_argument("--course", required=True)
    provision.add_argument("--db-type", required=True, help="postgres or mysql")
    provision.add_argument("--sheet", type=Path, help="where to write the printable credentials sheet")

    audit = commands.add_parser("audit", parents=[acting], help="the audit log, newest first, filtered")
    # --as is who runs the command; --actor, whose actions to show.
    audit.add_argument("--actor", dest="by", metavar="USER", help="only what this user did")
    audit.add_argument("--target", help="only this target (postgres:alice_7001) or database name")
    audit.add_argument("--action", help="only this action (create, destroy, snapshot, expiry...)")
    audit.add_argument("--since", metavar="TIME", help="from this time on (2026-12-08 09:00, UTC unless zoned)")
    audit.add_argument("--until", metavar="TIME", help="before this time")
    audit.add_argument("--page", type=int, default=1, help=f"which page of {AUDIT_PAGE} entries (1: the newest)")

    commands.add_parser(
        "reconcile", parents=[common],
        help="make the registry match the servers, settling what a crash left half-done "
             "(the service does this when it starts; refused while a service or command runs)",
    )

    user = commands.add_parser("user", help="manage users").add_subparsers(
        dest="user_command", required=True, metavar="ACTION"
    )
    add = user.add_parser("add", parents=[common], help="add a user (the password is generated)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="trainee")
    add.add_argument("--quota", type=int, help="databases the user may own")
    user.add_parser("list", parents=[common], help="list the users")
    remove = user.add_parser("remove", parents=[common], help="remove a user who owns no databases")
    remove.add_argument("name")
    password = user.add_parser("set-password", parents=[common], help="set a new generated password")
    password.add_argument("name")

    token = commands.add_parser("token", help="personal API tokens, for scripts").add_subparsers(
        dest="token_command", required=True, metavar="ACTION"
    )
    make_token = token.add_parser("create", parents=[acting], help="make a token for a user (shown once)")
    make_token.add_argument("user")
    make_token.add_argument("--name", required=True, help="what the token is for (1 to 64 characters)")
    token.add_parser("list", parents=[acting], help="list a user's tokens").add_argument("user")
    revoke = token.add_parser("revoke", parents=[acting], help="revoke a user's token; it stops working at once")
    revoke.add_argument("user")
    revoke.add_argument("id", type=int, help="the token's id, as 'token list' shows it")
    return parser


def print_listing(listing: Listing, mine: str | None = None) -> None:
    print_databases(listing.backend.label, listing.backend.where, listing.databases, mine)


def print_databases(label: str, where: str | None, databases: Sequence[Listed], mine: str | None = None) -> None:
    """A plain table: name, size, owner, and whether this service created it; ``where`` the
    server is, when the asker may know (the API tells instructors only)."""
    print(f"Databases on {label} ({where}):" if where else f"Databases on {label}:")
    width = max((len(db.name) for db in databases), default=8)
    for db in databases:
        marks = " ".join(
            mark
            for mark, on in (
                ("dbwrapper", db.info.managed),
                (f"owner={db.owner}", db.owner),
                ("<- this one", db.name == mine),
            )
            if on
        )
        print(f"  {db.name:<{width}}  {human_size(db.info.size_bytes):>12}  {marks}".rstrip())


def print_credentials(credentials: Credentials) -> None:
    print_connection(credentials.command, credentials.login.password, credentials.url)


def print_connection(command: str, password: str, url: str) -> None:
    print(f"Connect with:   {command}")
    print(f"Password:       {password}")
    print(f"SQLAlchemy URL: {url}")


def report(outcome: Outcome, listing: Listing) -> None:
    """What a create, destroy or restore did, how to connect, and the server's databases after."""
    print(outcome.summary)
    if outcome.credentials is not None:
        print_credentials(outcome.credentials)
    print_listing(listing, mine=outcome.name)


def cli_actor(args: argparse.Namespace, runtime: Runtime) -> Actor:
    """The instructor the command line acts as: ``--as``, or the first instructor."""
    actor = Actor(runtime.accounts.get(args.actor or runtime.settings.first_instructor), via="cli")
    actor.require_instructor("use the command line")
    return actor


def run_database_command(args: argparse.Namespace, runtime: Runtime) -> None:
    actor = cli_actor(args, runtime)
    service = runtime.service
    if args.command == "list":
        print_listing(service.listing(actor, args.db_type))
    else:
        if args.command == "create":
            outcome = service.create(actor, args.db_type, args.name, course=args.course)
        else:
            outcome = service.destroy(actor, args.db_type, args.name)
        report(outcome, service.listing(actor, outcome.backend.db_type))


def run_archive_command(args: argparse.Namespace, runtime: Runtime) -> None:
    actor = cli_actor(args, runtime)
    archives = runtime.archives
    if args.archive_command == "create":
        manifest = archives.archive(actor, args.db_type, args.name, drop=args.drop)
        print_archived(manifest.database, manifest.id, manifest.size_bytes, len(manifest.tables), args.drop)
    elif args.archive_command == "list":
        for manifest in archives.list(actor):
            print_archive(manifest.id, manifest.owner, manifest.size_bytes)
    elif args.archive_command == "delete":
        print(f"Deleted the archive {archives.delete(actor, args.archive).id}.")
    else:
        outcome = archives.restore(actor, args.archive, args.into)
        report(outcome, runtime.service.listing(actor, outcome.backend.db_type))


def print_archived(database: str, archive_id: str, size_bytes: int, tables: int, dropped: bool) -> None:
    print(f"Archived {database} as {archive_id} ({human_size(size_bytes)}; all {tables} tables in it).")
    if dropped:
        print(f"Dropped {database}.")


def print_archive(archive_id: str, owner: str, size_bytes: int) -> None:
    print(f"  {archive_id:<56} {owner:<16} {human_size(size_bytes):>10}")


def run_snapshot_command(args: argparse.Namespace, runtime: Runtime) -> None:
    actor = cli_actor(args, runtime)
    snapshots = runtime.snapshots
    if args.snapshot_command == "take":
        print(snapshots.take(actor, args.db_type, args.name, args.label)[1])
    elif args.snapshot_command == "list":
        _, record, found = snapshots.list(actor, args.db_type, args.name)
        print_snapshots(record.name, found)
    elif args.snapshot_command == "revert":
        print(snapshots.revert(actor, args.db_type, args.name, args.snapshot))
    else:
        print(snapshots.delete(actor, args.db_type, args.name, args.snapshot))


def print_snapshots(database: str, found: Sequence[Snapshot]) -> None:
    print(f"Snapshots of {database}:" if found else f"{database} has no snapshots.")
    for snapshot in found:
        print(f"  {snapshot.id:>5}  {describe(snapshot):<60} {human_size(snapshot.size_bytes):>10}")


def run_expiry_command(args: argparse.Namespace, runtime: Runtime) -> None:
    actor = cli_actor(args, runtime)
    if args.expiry_command == "list":
        for db in runtime.expiry.expiring():
            print_expiring(db.db_type, db.name, db.owner, db.expires_at)
    elif args.expiry_command == "set":
        expires_at = new_expiry(args)
        runtime.expiry.set(actor, args.db_type, args.name, expires_at)
        print(f"{args.name} now expires: {human_expiry(expires_at)}")
    else:
        purged = runtime.purger.run_once()
        print(f"Purged {', '.join(purged)}." if purged else "Nothing was purged.")


def new_expiry(args: argparse.Namespace) -> datetime | None:
    """When ``expiry set`` asks for: ``--days`` from now, or never (``--permanent``)."""
    return None if args.permanent else datetime.now(UTC) + timedelta(days=args.days)


def print_expiring(db_type: str, name: str, owner: str, expires_at: datetime | None) -> None:
    print(f"  {db_type}:{name:<40} {owner:<16} {human_expiry(expires_at)}")


def run_course_command(args: argparse.Namespace, runtime: Runtime) -> None:
    actor = cli_actor(args, runtime)
    if args.course_command == "list":
        for course in runtime.courses.all():
            print_course(course.name, [db_type for db_type in ("postgres", "mysql") if course.sql(db_type)],
                         course.description)
        return
    databases = {db_type: db for db_type in ("postgres", "mysql") if (db := getattr(args, f"{db_type}_from"))}
    added = runtime.courses.add_from(actor, args.name, args.description, course_files(args), databases)
    print(f"Added the course {added.name}.")


def course_files(args: argparse.Namespace) -> dict[str, str]:
    """The SQL of ``course add --postgres-sql/--mysql-sql``, by engine."""
    files: dict[str, str] = {}
    for db_type in ("postgres", "mysql"):
        if path := getattr(args, f"{db_type}_sql"):
            try:
                files[db_type] = path.read_text(encoding="utf-8")
            except OSError as error:
                raise InvalidInput(f"Cannot read {error.filename}: {error.strerror}.") from error
    return files


def print_course(name: str, offered: Sequence[str], description: str) -> None:
    print(f"  {name:<24} {', '.join(offered):<16} {description}")


def progress_bar(done: int, total: int, name: str) -> None:
    """``[########............]  8/20 alice`` on one line of standard error."""
    width = 30
    filled = width * done // max(total, 1)
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name:<32}", end="",
          file=sys.stderr, flush=True)
    if done == total:
        print(file=sys.stderr)


def run_pool_command(args: argparse.Namespace, runtime: Runtime) -> None:
    actor = cli_actor(args, runtime)
    if args.pool_command == "list":
        for course in runtime.courses.all():
            print_pool(course.name, runtime.courses.ready_spares(course.name))
        return
    made = runtime.preparations.prepare(
        actor, args.db_type, args.course, args.count,
        lambda done, total: progress_bar(done, total, args.course),
    )
    print_made(made, args)


def print_pool(course: str, spares: dict[str, int]) -> None:
    ready = ", ".join(f"{db_type} {count}" for db_type, count in spares.items())
    print(f"  {course:<24} ready copies: {ready or '–'}")


def print_made(made: int, args: argparse.Namespace) -> None:
    print(f"Made {made} copies of {args.course}; at least {args.count} are ready on {args.db_type}.")


def run_class_command(args: argparse.Namespace, runtime: Runtime) -> None:
    actor = cli_actor(args, runtime)
    report = runtime.classes.provision(actor, roster_names(args.roster), args.course, args.db_type, progress_bar)
    backend = runtime.servers.backend(args.db_type)
    write_class_report(report, backend.label, service_address(runtime.settings), args.sheet)


def roster_names(roster: Path) -> list[str]:
    """The trainees of the roster file; says which rows it leaves out (a header, blank rows)."""
    try:
        read = read_roster(roster.read_text(encoding="utf-8"))
    except OSError as error:
        raise InvalidInput(f"Cannot read the roster {roster}: {error.strerror}.") from error
    except UnicodeDecodeError:
        raise InvalidInput(f"The roster {roster} is not UTF-8 text; save it as UTF-8.") from None
    for skipped in read.skipped:
        print(f"  row {skipped.row} left out, {skipped.reason}: {skipped.text}")
    print(f"{len(read.names)} trainee(s), from {read.column} of {roster}.")
    return read.names


def service_address(settings: Settings) -> str:
    """Where trainees open this machine's service, for the sheet: the address it listens on,
    or this machine's name when it listens on every interface."""
    host = socket.getfqdn() if settings.host in ("", "0.0.0.0", "::") else settings.host
    return f"http://{f'[{host}]' if ':' in host else host}:{settings.port}"


def write_class_report(report: ClassReport, label: str, address: str, sheet: Path | None) -> None:
    """The credentials sheet (``sheet``, or a name of its own), then a line per row of the
    roster; :class:`Refused` if a row failed. ``address`` is the service's, where trainees log in."""
    sheet = sheet or Path(f"credentials-{report.course}-{report.db_type}.html")
    # It holds passwords: this user's only from the moment it exists.
    descriptor = os.open(sheet, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as written:
        os.fchmod(written.fileno(), 0o600)  # an existing file keeps its mode otherwise
        written.write(credentials_sheet(Templates(), report, label, address, standalone=True))
    for done in report.done:
        print(f"  {done.user:<32} {done.note}")
    for user, reason in report.failed:
        print(f"  {user:<32} FAILED: {reason}")
    print(f"{len(report.done)} provisioned, {len(report.failed)} failed; credentials sheet: {sheet}")
    if report.failed:
        raise Refused(f"{len(report.failed)} row(s) of the roster failed; see above.")


def run_user_command(args: argparse.Namespace, runtime: Runtime) -> None:
    accounts = runtime.accounts
    who = f"{getpass.getuser()} (cli)"
    if args.user_command == "list":
        for user in accounts.users():
            print_user(user, len(accounts.registry.databases(owner=user)))
    elif args.user_command == "add":
        print_added(*accounts.add(args.name, args.role, quota=args.quota, by=who))
    elif args.user_command == "remove":
        accounts.remove(args.name, by=who)
        print(f"Removed {args.name}.")
    else:
        print(f"New password for {args.name}: {accounts.set_password(args.name, by=who)}")


def print_added(user: User, password: str) -> None:
    print(f"Added {user.role} {user.name}; password: {password}")


def print_user(user: User, owned: int) -> None:
    print(f"  {user.name:<32} {user.role:<10} quota {user.quota:<3} owns {owned}")


def run_token_command(args: argparse.Namespace, runtime: Runtime) -> None:
    actor = cli_actor(args, runtime)
    accounts = runtime.accounts
    if args.token_command == "create":
        token, secret = accounts.create_token(actor, args.user, args.name)
        print(f"Made token {token.id} ({token.name}) for {args.user}; shown this once, only its hash is kept:")
        print(secret)
    elif args.token_command == "list":
        for found in accounts.tokens(actor, args.user):
            print_token(found)
    else:
        print_revoked(accounts.revoke_token(actor, args.user, args.id), args)


def print_token(token: ApiToken) -> None:
    used = utc_text(token.last_used_at) if token.last_used_at else "never"
    print(f"  {token.id:>5}  {token.name:<64}  made {utc_text(token.created_at)}  last used {used}")


def print_revoked(token: ApiToken, args: argparse.Namespace) -> None:
    print(f"Revoked token {args.id} ({token.name}) of {args.user}.")


def audit_filter(args: argparse.Namespace) -> AuditFilter:
    """``audit``'s filters; a page number below 1 is refused."""
    if args.page < 1:
        raise InvalidInput(f"--page is 1 or more, not {args.page}.")
    return AuditFilter.typed(actor=args.by, target=args.target, action=args.action, since=args.since,
                             until=args.until)


def run_audit_command(args: argparse.Namespace, runtime: Runtime) -> None:
    cli_actor(args, runtime)
    filters = audit_filter(args)
    entries = runtime.accounts.registry.audit_entries(
        AUDIT_PAGE + 1, offset=(args.page - 1) * AUDIT_PAGE, **filters.criteria(),
    )
    print_audit(entries[:AUDIT_PAGE], args.page, older=len(entries) > AUDIT_PAGE)


def print_audit(entries: Sequence[AuditEntry], page: int, *, older: bool) -> None:
    """One line per entry, newest first; then how to see older ones, if there are."""
    if not entries:
        print("No audit entries match.")
    for entry in entries:
        print(f"  {utc_text(entry.at, seconds=True)}  {entry.actor:<24} {entry.action:<16} {entry.target:<40} "
              f"{entry.outcome:<9} {entry.detail}".rstrip())
    if older:
        print(f"Older entries: --page {page + 1}")


def run_reconcile_command(args: argparse.Namespace, runtime: Runtime) -> None:
    # Starting reconciled already, if no other process was at work on the registry;
    # with one at work, reconciling would destroy its work in progress.
    done = runtime.reconciled
    if done is None:
        where = runtime.servers.registry.url.render_as_string(hide_password=True)
        raise RegistryInUse(
            f"A dbwrapper service or command is at work on this registry ({where}), "
            "so nothing was reconciled: that could destroy its work in progress. Stop the service "
            "first (and let running commands finish), then run dbwrapper reconcile again."
        )
    unreachable = done.unreachable
    print(f"Could not reach {', '.join(unreachable)}." if unreachable else "The registry matches the servers.")


#: Each command's handler; create, destroy and list are run_database_command's.
COMMANDS: dict[str, Callable[[argparse.Namespace, Runtime], None]] = {
    "user": run_user_command,
    "token": run_token_command,
    "archive": run_archive_command,
    "snapshot": run_snapshot_command,
    "expiry": run_expiry_command,
    "course": run_course_command,
    "class": run_class_command,
    "pool": run_pool_command,
    "reconcile": run_reconcile_command,
    "audit": run_audit_command,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.server or os.environ.get(SERVER_VARIABLE):
            # Imported here: it prints with this module's functions, and a local command needs no HTTP.
            from dbwrapper.remote_commands import run_remote

            run_remote(args)
            return 0
        settings = load_settings(args.config)
        if args.command == "serve":
            from dbwrapper.web.app import serve

            serve(settings.with_server(args.host, args.port))
            return 0
        runtime = Runtime(settings)
        runtime.start()
        try:
            COMMANDS.get(args.command, run_database_command)(args, runtime)
        finally:
            runtime.stop()
    except DbWrapperError as error:
        print(f"dbwrapper: {error}", file=sys.stderr)
        return error.exit_code
    return 0

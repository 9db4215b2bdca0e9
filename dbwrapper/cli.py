"""The ``dbwrapper`` command: run the service, or create, destroy and list databases.

The database commands call the same service layer as the web pages, so what
the command line does and what a page does cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from dbwrapper.config import Settings, load_settings
from dbwrapper.engines import Engines
from dbwrapper.errors import DbWrapperError
from dbwrapper.service import DatabaseService, Listing, Outcome
from dbwrapper.web.pages import human_size


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dbwrapper",
        description="A real database for every trainee, on PostgreSQL or MySQL/MariaDB.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, help="the app.conf to read (default: ./app.conf if present)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the web service")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 7001)")

    for name, text in (
        ("create", "create a database unless it exists"),
        ("destroy", "drop a database this service created"),
        ("list", "list the databases on a server"),
    ):
        command = commands.add_parser(name, parents=[common], help=text)
        command.add_argument("--db-type", required=True, help="postgres or mysql")
        if name != "list":
            command.add_argument("--name", help="database name (default: from the name template)")
    return parser


def print_listing(listing: Listing, mine: str | None = None) -> None:
    """A plain table: name, size, and whether this service created it."""
    print(f"Databases on {listing.backend.label} ({listing.backend.where}):")
    width = max((len(db.name) for db in listing.databases), default=8)
    for db in listing.databases:
        marks = " ".join(
            mark for mark, on in (("dbwrapper", db.managed), ("<- yours", db.name == mine)) if on
        )
        print(f"  {db.name:<{width}}  {human_size(db.size_bytes):>12}  {marks}".rstrip())


def report(outcome: Outcome) -> None:
    print(outcome.summary)
    print_listing(outcome.listing, mine=outcome.name)


def run_command(args: argparse.Namespace, settings: Settings) -> None:
    engines = Engines(settings)
    service = DatabaseService(engines)
    engines.start()
    try:
        if args.command == "list":
            print_listing(service.list(args.db_type), mine=service.default_name())
        elif args.command == "create":
            outcome = service.create(args.db_type, args.name)
            report(outcome)
            print(f"Connect with: {outcome.backend.client_command(outcome.name)}")
        else:
            report(service.destroy(args.db_type, args.name))
    finally:
        engines.stop()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        if args.command == "serve":
            from dbwrapper.web.app import serve

            serve(settings.with_server(args.host, args.port))
        else:
            run_command(args, settings)
    except DbWrapperError as error:
        print(f"dbwrapper: {error}", file=sys.stderr)
        return error.exit_code
    return 0

"""How fast a course database is provisioned, snapshotted, reverted and archived.

Run from the repository root::

    .venv/bin/python bench/lifecycle.py [--iterations 5] [--rows 600000]

For PostgreSQL and MySQL/MariaDB alike, with a course database of about 70 MB
(``--rows`` rows of a generated table plus the franchise tables), it measures
in one run, through dbwrapper's service (registry writes included) and against
the raw operation on the same servers:

* provisioning a seeded database from the warm pool (a spare renamed), by a
  copy made on the server (PostgreSQL: ``CREATE DATABASE ... TEMPLATE``; MySQL:
  ``INSERT ... SELECT``), and an empty one; against restoring the same content
  from a dump (``pg_restore`` of a custom-format dump; ``mysqldump | mysql``);
* taking a snapshot and reverting to it, against a bare clone (PostgreSQL: the
  raw ``CREATE DATABASE ... TEMPLATE`` with dbwrapper's strategy; MySQL: the
  backend's server-side copy, which is what a clone is there);
* archiving (dump, checksum, manifest, verification), against the bare dump
  tool writing the same file;
* on PostgreSQL, the raw clone with ``STRATEGY FILE_COPY`` and ``WAL_LOG``,
  which chose dbwrapper's :data:`~dbwrapper.backends.postgresql.creation.CLONE_STRATEGY`.

Each line is the median of ``--iterations`` runs, the compared operations
alternating so that drift (caches, checkpoints, a busy disk) hits both alike.
The targets are ratios of things measured side by side, so the machine's speed
cancels out. The servers are those named by ``DBWRAPPER_POSTGRES_URL`` and
``DBWRAPPER_MYSQL_URL``, or else throwaway ones from ``tests/servers.py``. The
script always exits 0 once it has measured: it reports, it does not judge.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dbwrapper.accounts import Actor  # noqa: E402
from dbwrapper.backends.base import Backend, Login, Source  # noqa: E402
from dbwrapper.backends.mysql.catalog import tables_and_views  # noqa: E402
from dbwrapper.backends.mysql.creation import rename_tables  # noqa: E402
from dbwrapper.backends.postgresql import CLONE_STRATEGY  # noqa: E402
from dbwrapper.config import DB_TYPES, DEFAULT_FIRST_INSTRUCTOR, Settings, env_var  # noqa: E402
from dbwrapper.copies import CourseCopies  # noqa: E402
from dbwrapper.courses import SAMPLES  # noqa: E402
from dbwrapper.errors import InvalidInput  # noqa: E402
from dbwrapper.passwords import generate_password  # noqa: E402
from dbwrapper.runtime import Runtime  # noqa: E402
from dbwrapper.tools import find_tool, run_tool, tool_environment  # noqa: E402
from tests.servers import SERVERS, free_port  # noqa: E402

COURSE = "bench_lifecycle"
NAME = "bench_lc"
#: The targets: pool vs dump restore (at least), pool vs empty (at most), archive vs bare dump (at most).
POOL_VS_RESTORE_MIN = 10.0
POOL_VS_EMPTY_MAX = 2.0
ARCHIVE_VS_DUMP_MAX = 1.1

#: A table of generated rows that makes the course about 70 MB with --rows 350000;
#: the same rows on both engines, built from a ten-row table so MySQL needs no
#: recursion limit.
BULK_SQL = {
    "postgres": """
CREATE TABLE deliveries (
    id      integer PRIMARY KEY,
    store   integer NOT NULL,
    code    char(32) NOT NULL,
    note    char(32) NOT NULL
);
INSERT INTO deliveries
SELECT n, n % 40 + 1, md5(n::text), md5((n * 7)::text) FROM generate_series(1, {rows}) AS n;
CREATE INDEX deliveries_by_code ON deliveries (code);
""",
    "mysql": """
CREATE TABLE digits (d INTEGER PRIMARY KEY);
INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), (8), (9);
CREATE TABLE deliveries (
    id      INTEGER PRIMARY KEY,
    store   INTEGER NOT NULL,
    code    CHAR(32) NOT NULL,
    note    CHAR(32) NOT NULL,
    INDEX deliveries_by_code (code)
) ENGINE=InnoDB;
INSERT INTO deliveries
SELECT n, n % 40 + 1, MD5(n), MD5(n * 7) FROM (
    SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 100000 * g.d + 1 AS n
    FROM digits a, digits b, digits c, digits e, digits f, digits g
) AS numbers WHERE n <= {rows};
DROP TABLE digits;
""",
}


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def median(values: list[float]) -> float:
    return statistics.median(values)


class EngineBench:
    """The measurements of one engine, on one backend of an in-process runtime."""

    def __init__(self, runtime: Runtime, kind: str, iterations: int, workdir: Path) -> None:
        self.runtime = runtime
        self.backend: Backend = runtime.servers.backend(kind)
        self.db_type = kind
        self.iterations = iterations
        self.workdir = workdir
        self.actor = Actor(runtime.accounts.get(DEFAULT_FIRST_INSTRUCTOR), via="bench")
        self.pool = CourseCopies(runtime.servers, pool_size=1)
        self.results: dict[str, float] = {}
        #: The raw operations the service's are measured against run as the server's super-user.
        self.superuser = Login(self.backend.url.username or "", self.backend.url.password or "")

    # -- helpers ----------------------------------------------------------------------

    def destroy(self, name: str = NAME) -> None:
        self.runtime.service.destroy(self.actor, self.db_type, name)

    def drop(self, name: str) -> None:
        """Drop a database the bench made, marked as dbwrapper's or not (the raw clones are not)."""
        with self.backend.admin_connection() as connection:
            self.backend.creation.drop(connection, name)

    def tool(self, name: str) -> str:
        found = find_tool(name, self.runtime.settings.tools)
        assert found, f"{name} is needed: install it"
        return found

    def size_mb(self, name: str) -> float:
        """The database's size; MySQL's statistics are refreshed first, as they lag a bulk load."""
        if self.db_type == "mysql":
            with self.backend.admin_connection() as connection:
                for table in ("stores", "items", "stock", "orders", "deliveries"):
                    connection.exec_driver_sql(f"ANALYZE TABLE {self.backend.quote(name)}.{table}").all()
        return (self.backend.catalog.database_size(name) or 0) / 2**20

    def record(self, label: str, samples: list[float]) -> None:
        self.results[label] = median(samples)

    # -- the measurements ----------------------------------------------------------------

    def run(self, sql: str) -> None:
        started = time.perf_counter()
        master = self.runtime.service.copies.master(self.backend, COURSE, sql)
        self.results["load the course from SQL, once"] = (time.perf_counter() - started) * 1000
        self.results["course size (MB)"] = self.size_mb(master.name)
        self.provisioning(master.name, sql)
        self.snapshots(master.name)
        self.archives()
        if self.db_type == "postgres":
            self.strategies(master.name)

    def provisioning(self, master: str, sql: str) -> None:
        dump = self.workdir / f"{self.db_type}.dump"
        if self.db_type == "postgres":
            run_tool(self.backend.client.dump_command(self.tool("pg_dump"), master, str(dump), self.superuser),
                     self.backend.client.tool_env(), timeout=self.backend.deadlines.long)
        pool, copy, empty, restore = [], [], [], []
        for _ in range(self.iterations):
            self.pool.top_up(self.backend, COURSE, sql)  # untimed: the background job's work
            pool.append(timed(lambda: self.runtime.service.create(self.actor, self.db_type, NAME, course=COURSE)))
            self.destroy()
            copy.append(timed(lambda: self.runtime.service.create(self.actor, self.db_type, NAME, course=COURSE)))
            self.destroy()
            empty.append(timed(lambda: self.runtime.service.create(self.actor, self.db_type, NAME)))
            self.destroy()
            restore.append(timed(lambda: self.restore_from_dump(master, dump)))
            self.drop(NAME)
        self.record("provision from the warm pool", pool)
        self.record("provision by server-side copy", copy)
        self.record("provision an empty database", empty)
        self.record("restore from a dump", restore)
        if self.db_type == "mysql":
            self.raw_moves(master)

    def raw_moves(self, master: str) -> None:
        """MySQL: the bare RENAME TABLE a handout cannot do without (MySQL cannot rename a
        database), moving the course's tables from one database to another and back."""
        self.bare_clone(master, "bench_lc_a")
        self.backend.create_database("bench_lc_b")
        with self.backend.admin_connection() as connection:
            tables, _ = tables_and_views(connection, "bench_lc_a")
            moves = []
            for turn in range(self.iterations):
                source, target = ("bench_lc_a", "bench_lc_b") if turn % 2 == 0 else ("bench_lc_b", "bench_lc_a")
                moves.append(timed(partial(rename_tables, connection, source, target, tables)))
        self.drop("bench_lc_a")
        self.drop("bench_lc_b")
        self.record("bare RENAME TABLE of the course's tables", moves)

    def restore_from_dump(self, master: str, dump: Path) -> None:
        """What provisioning would cost without dbwrapper's copies: the content replayed from a dump."""
        self.backend.create_database(NAME)
        env = tool_environment(self.backend.client.tool_env())  # the tools' minimal environment
        if self.db_type == "postgres":
            subprocess.run([self.tool("pg_restore"), "--no-owner", f"--dbname={NAME}", str(dump)],
                           env=env, check=True)
            return
        dump_argv = self.backend.client.dump_command(self.tool("mysqldump"), master, "/dev/stdout", self.superuser)
        restore_argv = self.backend.client.script_command(self.tool("mysql"), NAME, self.superuser)
        with subprocess.Popen(dump_argv, env=env, stdout=subprocess.PIPE) as dumping:
            subprocess.run(restore_argv, env=env, stdin=dumping.stdout, check=True)
        assert dumping.returncode == 0

    def bare_clone(self, source: str, target: str, strategy: str = CLONE_STRATEGY) -> None:
        """PostgreSQL: the raw CREATE DATABASE ... TEMPLATE, with dbwrapper's strategy unless
        another is asked for. MySQL has no such statement: its clone is the server-side copy."""
        if self.db_type == "mysql":
            self.backend.create_database(target, source=Source(source, source))
            return
        clause = f" STRATEGY {strategy}"
        with self.backend.admin_connection() as connection:
            connection.exec_driver_sql(
                f"CREATE DATABASE {self.backend.quote(target)} TEMPLATE {self.backend.quote(source)}{clause}"
            )

    def snapshots(self, master: str) -> None:
        self.runtime.service.create(self.actor, self.db_type, NAME, course=COURSE)
        snapshots = self.runtime.snapshots
        take, revert, bare = [], [], []
        for _ in range(self.iterations):
            started = time.perf_counter()
            snapshot, _ = snapshots.take(self.actor, self.db_type, NAME)
            take.append((time.perf_counter() - started) * 1000)
            revert.append(timed(partial(snapshots.revert, self.actor, self.db_type, NAME, snapshot.id)))
            bare.append(timed(lambda: self.bare_clone(NAME, "bench_lc_bare")))
            self.drop("bench_lc_bare")
            for kept in snapshots.list(self.actor, self.db_type, NAME)[2]:
                snapshots.delete(self.actor, self.db_type, NAME, kept.id)
        self.record("take a snapshot", take)
        self.record("revert to a snapshot", revert)
        self.record("bare clone", bare)
        self.destroy()

    def archives(self) -> None:
        self.runtime.service.create(self.actor, self.db_type, NAME, course=COURSE)
        archive, bare = [], []
        target = self.workdir / f"bare-{self.db_type}"
        # The bare tool runs as the archive's does: as the database's own login.
        record = self.runtime.service.registry.database(self.db_type, NAME)
        assert record is not None
        login = Login(record.login, record.password)
        for _ in range(self.iterations):
            archive.append(timed(lambda: self.runtime.archives.archive(self.actor, self.db_type, NAME)))
            argv = self.backend.client.dump_command(self.tool(self.backend.client.dump_tool), NAME, str(target), login)
            run = partial(run_tool, argv, self.backend.client.tool_env(login), timeout=self.backend.deadlines.long)
            bare.append(timed(run))
            target.unlink()
        self.record("archive (dump, counts, checksum, manifest)", archive)
        self.record("bare dump tool", bare)
        self.destroy()

    def strategies(self, master: str) -> None:
        file_copy, wal_log = [], []
        for _ in range(self.iterations):
            file_copy.append(timed(lambda: self.bare_clone(master, "bench_lc_fc", "FILE_COPY")))
            wal_log.append(timed(lambda: self.bare_clone(master, "bench_lc_wal", "WAL_LOG")))
            self.drop("bench_lc_fc")
            self.drop("bench_lc_wal")
        self.record("raw clone, STRATEGY FILE_COPY", file_copy)
        self.record("raw clone, STRATEGY WAL_LOG", wal_log)


def course_sql(kind: str, rows: int) -> str:
    franchise = (SAMPLES / "franchise" / f"{kind}.sql").read_text(encoding="utf-8")
    return franchise + BULK_SQL[kind].format(rows=rows)


def make_runtime(stack: ExitStack, workdir: Path) -> Runtime:
    urls = {
        kind: os.environ.get(env_var(kind)) or stack.enter_context(SERVERS[kind]())
        for kind in DB_TYPES
    }
    settings = Settings(port=free_port(), backend_urls=urls, embedded=False, archive_dir=workdir / "archives",
                        pool_size=0, expiry_check_seconds=24 * 3600)
    os.environ.setdefault("DBWRAPPER_INSTRUCTOR_PASSWORD", generate_password())
    runtime = Runtime(settings)
    runtime.start()
    stack.callback(runtime.stop)
    return runtime


def add_course(runtime: Runtime, rows: int) -> dict[str, str]:
    sql = {kind: course_sql(kind, rows) for kind in DB_TYPES}
    actor = Actor(runtime.accounts.get(DEFAULT_FIRST_INSTRUCTOR), via="bench")
    with suppress(InvalidInput):  # an earlier run on the same servers added it
        runtime.courses.add(actor, COURSE, f"franchise plus {rows} deliveries (bench)", sql)
    return sql


def print_report(results: dict[str, dict[str, float]], args: argparse.Namespace) -> None:
    kinds = list(results)
    print(f"\nMedians of {args.iterations} iterations, compared operations alternating (ms unless said).\n")
    print(f"{'':46}" + "".join(f"{kind:>14}" for kind in kinds))
    labels = list(dict.fromkeys(label for result in results.values() for label in result))
    for label in labels:
        cells = "".join(
            f"{results[kind][label]:>14.1f}" if label in results[kind] else f"{'–':>14}" for kind in kinds
        )
        print(f"{label:46}{cells}")
    print("\nRatios and targets")
    for kind, r in results.items():
        pool = r["provision from the warm pool"]
        rows = [
            (f"{kind}: dump restore / pool (>= {POOL_VS_RESTORE_MIN:g})",
             r["restore from a dump"] / pool, r["restore from a dump"] / pool >= POOL_VS_RESTORE_MIN),
            (f"{kind}: pool / empty create (<= {POOL_VS_EMPTY_MAX:g})",
             pool / r["provision an empty database"], pool / r["provision an empty database"] <= POOL_VS_EMPTY_MAX),
            (f"{kind}: archive / bare dump (<= {ARCHIVE_VS_DUMP_MAX:g})",
             r["archive (dump, counts, checksum, manifest)"] / r["bare dump tool"],
             r["archive (dump, counts, checksum, manifest)"] / r["bare dump tool"] <= ARCHIVE_VS_DUMP_MAX),
            (f"{kind}: server-side copy / dump restore", r["provision by server-side copy"]
             / r["restore from a dump"], None),
            (f"{kind}: snapshot / bare clone", r["take a snapshot"] / r["bare clone"], None),
            (f"{kind}: revert / bare clone", r["revert to a snapshot"] / r["bare clone"], None),
        ]
        if kind == "mysql":
            # What a handout can cost at the least, as it must also move the tables.
            floor = (r["provision an empty database"] + r["bare RENAME TABLE of the course's tables"])
            rows.append((f"{kind}: (empty create + bare RENAME TABLE) / empty create",
                         floor / r["provision an empty database"], None))
        if kind == "postgres":
            rows.append((f"{kind}: FILE_COPY / WAL_LOG", r["raw clone, STRATEGY FILE_COPY"]
                         / r["raw clone, STRATEGY WAL_LOG"], None))
        for label, ratio, ok in rows:
            print(f"  {label:52}{ratio:>8.2f}x  {'' if ok is None else ('PASS' if ok else 'MISS')}")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=5, help="timed runs of each operation")
    parser.add_argument("--rows", type=int, default=350_000, help="generated rows (350000: about 70 MB)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="dbwrapper-bench-") as directory, ExitStack() as stack:
        workdir = Path(directory)
        runtime = make_runtime(stack, workdir)
        sql = add_course(runtime, args.rows)
        results = {}
        for kind in DB_TYPES:
            bench = EngineBench(runtime, kind, args.iterations, workdir)
            bench.run(sql[kind])
            results[kind] = bench.results
    print_report(results, args)


if __name__ == "__main__":
    main()

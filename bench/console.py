"""What the SQL console's round trip costs beside the same query on a held connection.

Run from the repository root::

    .venv/bin/python bench/console.py [--iterations 200]

For PostgreSQL and MySQL/MariaDB alike, in one process and one run, alternating the paths
compared so that drift hits both alike, it measures medians of:

* ``POST /api/v1/databases/{db_type}/{name}/console`` with ``SELECT 1``, and with a query of
  1,000 rows (two columns), as the console's script sends them (a keep-alive connection and a
  bearer token);
* the same two queries on a connection held open with the database's own login (SQLAlchemy,
  rows fetched), the raw operation the console exists to run; and ``SELECT 1`` on a new
  connection of that login, opened and closed around it, as the console opens one per run
  (see README, Performance: why it does);
* ``GET`` of a trivial CherryPy handler mounted in the same server, with the same token: the
  HTTP round trip any answer costs.

Targets (the issue's): the console's ``SELECT 1`` within 1.5x of the held connection's plus the
trivial round trip; its 1,000 rows within 2x of the held connection's 1,000 rows. Ratios compare
things measured side by side, so the machine's speed cancels out. The script reports; it does
not judge (it exits 0 once it has measured). Servers: as ``bench/create_overhead.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.api import ApiClient, fresh, service_with_token, timed  # noqa: E402
from bench.create_overhead import (  # noqa: E402
    TRIVIAL_PATH,
    WARMUP_ITERATIONS,
    verdict,
)
from dbwrapper.config import DB_TYPES  # noqa: E402
from dbwrapper.db import Deadlines, one_off_engine, with_driver  # noqa: E402

#: Two columns of 1,000 rows, on each engine.
THOUSAND_ROWS = {
    "postgres": "SELECT g, md5(g::text) FROM generate_series(1, 1000) AS g",
    "mysql": "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 1000) "
             "SELECT n, MD5(n) FROM s",
}
SELECT_ONE_RATIO_MAX = 1.5
THOUSAND_ROWS_RATIO_MAX = 2.0


def measure(port: int, token: str, db_type: str, iterations: int) -> dict[str, float]:
    """Median milliseconds of each path, alternating their order."""
    api = ApiClient(port, token)
    name = fresh()
    database = api.create(db_type, name)[1]
    path = f"/databases/{db_type}/{name}/console"
    url = with_driver(make_url(database["credentials"]["url"]))
    # The new connections are made as the console makes its own: dbwrapper's driver settings.
    held, unpooled = create_engine(url), one_off_engine(url, Deadlines())
    times: dict[str, list[float]] = {}
    try:
        with held.connect() as connection:
            def direct(sql: str) -> Callable[[], object]:
                return lambda: connection.exec_driver_sql(sql).fetchall()

            def console(sql: str) -> Callable[[], object]:
                return lambda: api.send("POST", path, {"sql": sql})

            def trivial() -> object:
                api.connection.request("GET", TRIVIAL_PATH, headers=api.headers)
                return api.connection.getresponse().read()

            def fresh_connection() -> object:
                with unpooled.connect() as own:
                    return own.exec_driver_sql("SELECT 1").fetchall()

            paths = {
                "held SELECT 1": direct("SELECT 1"), "fresh SELECT 1": fresh_connection,
                "console SELECT 1": console("SELECT 1"),
                "held 1000 rows": direct(THOUSAND_ROWS[db_type]), "console 1000 rows": console(THOUSAND_ROWS[db_type]),
                "trivial": trivial,
            }
            (rows,) = api.send("POST", path, {"sql": THOUSAND_ROWS[db_type]})[1]["results"]
            assert len(rows["rows"]) == 1000 and not rows["more_rows"], rows["summary"]
            for i in range(WARMUP_ITERATIONS + iterations):
                order = list(paths.items()) if i % 2 == 0 else list(reversed(paths.items()))
                row = {label: timed(step) for label, step in order}
                if i >= WARMUP_ITERATIONS:
                    for label, seconds in row.items():
                        times.setdefault(label, []).append(seconds)
    finally:
        held.dispose()
        unpooled.dispose()
        api.destroy(db_type, name)
        api.close()
    return {label: statistics.median(values) * 1000 for label, values in times.items()}


def print_report(results: dict[str, dict[str, float]], iterations: int) -> None:
    print(f"\nMedians (ms) of {iterations} iterations after {WARMUP_ITERATIONS} warm-up.\n")
    print(f"{'':40}" + "".join(f"{db_type:>14}" for db_type in results))
    rows: list[tuple[str, Callable[[dict[str, float]], float]]] = [
        ("held connection: SELECT 1", lambda r: r["held SELECT 1"]),
        ("new connection: SELECT 1", lambda r: r["fresh SELECT 1"]),
        ("trivial handler round trip", lambda r: r["trivial"]),
        ("console: SELECT 1", lambda r: r["console SELECT 1"]),
        ("  console / (held + trivial)", lambda r: r["console SELECT 1"] / (r["held SELECT 1"] + r["trivial"])),
        ("  console / (new + trivial)", lambda r: r["console SELECT 1"] / (r["fresh SELECT 1"] + r["trivial"])),
        ("held connection: 1,000 rows", lambda r: r["held 1000 rows"]),
        ("console: 1,000 rows", lambda r: r["console 1000 rows"]),
        ("  console / held", lambda r: r["console 1000 rows"] / r["held 1000 rows"]),
        ("  console / (held + trivial)", lambda r: r["console 1000 rows"] / (r["held 1000 rows"] + r["trivial"])),
    ]
    for label, value in rows:
        print(f"{label:40}" + "".join(f"{value(r):>14.2f}" for r in results.values()))
    print("\nTargets")
    for db_type, r in results.items():
        one = r["console SELECT 1"] / (r["held SELECT 1"] + r["trivial"])
        many = r["console 1000 rows"] / r["held 1000 rows"]
        print(f"  {db_type}: SELECT 1 <= {SELECT_ONE_RATIO_MAX}x (held + trivial)".ljust(52)
              + f"{one:>8.2f}x  {verdict(one <= SELECT_ONE_RATIO_MAX)}")
        print(f"  {db_type}: 1,000 rows <= {THOUSAND_ROWS_RATIO_MAX:g}x held".ljust(52)
              + f"{many:>8.2f}x  {verdict(many <= THOUSAND_ROWS_RATIO_MAX)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200, help="timed iterations per engine")
    args = parser.parse_args()
    with service_with_token() as (_, port, token):
        results = {db_type: measure(port, token, db_type, args.iterations) for db_type in DB_TYPES}
    print_report(results, args.iterations)


if __name__ == "__main__":
    main()

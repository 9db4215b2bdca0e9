"""Every database's login may hold at most ``login_connection_limit`` connections at once.

So one trainee's runaway script cannot take a shared server's connections from
the class or from dbwrapper itself: the login's next connection is refused,
in the server's own words, and the service's work on that database goes on.
The limit holds for every login the service makes: trainees', the warm pool's
spares' (and after a handout renames one), the course masters', and logins
given to an adopted database.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from dbwrapper.accounts import Actor
from dbwrapper.backends.base import Login
from dbwrapper.copies import as_source
from tests.test_copies import copies, franchise_master  # noqa: F401 (copies: a fixture)
from tests.test_isolation import shown_credentials


@pytest.fixture
def db_name(unmanaged_name: str) -> str:
    """These tests work beneath the service, on the backend's own calls: their databases are
    no registry's, made and dropped behind the service's back on purpose (see unmanaged_name)."""
    return unmanaged_name


#: What each server says to the connection one past the limit.
REFUSAL = {
    "postgres": 'too many connections for role "{login}"',
    "mysql": "User '{login}' has exceeded the 'max_user_connections' resource (current value: {limit})",
}


def limit_of(admin: Engine, db_type: str, login: str) -> set[int]:
    """The connection limit the server holds for ``login`` (MySQL: for each of its host rows)."""
    query = {
        "postgres": "SELECT rolconnlimit FROM pg_catalog.pg_roles WHERE rolname = :login",
        "mysql": "SELECT max_user_connections FROM mysql.user WHERE User = :login",
    }[db_type]
    with admin.connect() as connection:
        return {int(limit) for limit in connection.execute(text(query), {"login": login}).scalars()}


def take_away_the_limit(admin: Engine, db_type: str, login: str) -> None:
    """As a login made before there were limits has it."""
    with admin.connect() as connection:
        if db_type == "postgres":
            connection.exec_driver_sql(f'ALTER ROLE "{login}" CONNECTION LIMIT -1')
        else:
            hosts = connection.execute(text("SELECT Host FROM mysql.user WHERE User = :login"), {"login": login})
            for host in list(hosts.scalars()):
                connection.execute(text("ALTER USER :login@:host WITH MAX_USER_CONNECTIONS 0"),
                                   {"login": login, "host": host})


def trainee_database(trainee, db_type: str) -> dict[str, str]:
    """A trainee's new database, and the credentials their page shows."""
    page = trainee().get("/dbi/create_my_db", params={"db_type": db_type})
    assert page.status_code == 200, page.text
    return shown_credentials(page.text)


def test_the_connection_past_a_logins_limit_is_refused(runtime, trainee, db_type):
    shown = trainee_database(trainee, db_type)
    limit = runtime.settings.login_connection_limit
    login = make_url(shown["url"]).username
    engine = create_engine(shown["url"], poolclass=NullPool)
    try:
        with ExitStack() as held:
            for _ in range(limit):
                held.enter_context(engine.connect())
            with pytest.raises(DBAPIError) as refused:
                engine.connect()
            assert REFUSAL[db_type].format(login=login, limit=limit) in str(refused.value.orig)
        with engine.connect() as again:  # closed, they count no more
            assert again.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_the_service_works_on_a_database_whose_login_holds_connections(runtime, trainee, db_type, rows):
    shown = trainee_database(trainee, db_type)
    name = make_url(shown["url"]).database
    owner = runtime.service.registry.database(db_type, name).owner
    # Two short of the limit: an archive may use two connections of the login's own
    # (PostgreSQL's pg_dump, and the session whose snapshot it shares) once it runs as it.
    held = runtime.settings.login_connection_limit - 2
    engine = create_engine(shown["url"], poolclass=NullPool)
    try:
        with ExitStack() as stack:
            sessions = [stack.enter_context(engine.connect()) for _ in range(held)]
            sessions[0].execute(text("CREATE TABLE boxes (n INTEGER)"))
            sessions[0].execute(text("INSERT INTO boxes VALUES (1), (2)"))
            sessions[0].commit()
            manifest = runtime.archives.archive(Actor(runtime.accounts.get(owner)), db_type, name)
            assert manifest.tables == {"boxes": 2}
            assert rows(db_type, name) == {"boxes": 2}
            assert name in {info.name for info in runtime.servers.backend(db_type).list_databases(fresh=True)}
    finally:
        engine.dispose()


def test_every_login_the_service_makes_has_the_limit(runtime, trainee, db_type, copies, admin, db_name):
    backend = runtime.servers.backend(db_type)
    limit = {runtime.settings.login_connection_limit}
    shown = trainee_database(trainee, db_type)
    assert limit_of(admin[db_type], db_type, make_url(shown["url"]).username) == limit

    master = franchise_master(runtime, db_type)
    assert limit_of(admin[db_type], db_type, master.name) == limit
    copies.top_up(backend, "franchise", runtime.service.course_sql("franchise", backend))
    (spare,) = runtime.service.registry.copies(db_type, "franchise", "spare")
    assert limit_of(admin[db_type], db_type, spare.name) == limit
    # A spare made before there were limits: the handout gives the trainee's login its limit.
    take_away_the_limit(admin[db_type], db_type, spare.name)
    login = Login(db_name, "a-password-for-the-handout")
    try:
        assert backend.creation.give_spare(as_source(spare), db_name, login)
        assert limit_of(admin[db_type], db_type, db_name) == limit
        # So does a login given to a database that is adopted.
        take_away_the_limit(admin[db_type], db_type, db_name)
        backend.creation.adopt_database(db_name, login)
        assert limit_of(admin[db_type], db_type, db_name) == limit
    finally:
        backend.drop_database(db_name, db_name, registered=True)

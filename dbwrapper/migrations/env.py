"""Alembic's entry point, run only through :meth:`dbwrapper.registry.Registry.upgrade`.

The registry hands over an open connection in ``config.attributes``, so the
migrations run on the same engine (and URL) the service uses.
"""

from alembic import context

from dbwrapper.registry.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()

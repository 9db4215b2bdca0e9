"""Alembic migrations of the registry; :meth:`dbwrapper.registry.Registry.upgrade` runs them."""

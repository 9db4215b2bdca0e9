"""The registry: the service's own records in a control database (see :mod:`.base`)."""

from __future__ import annotations

from dbwrapper.registry.audit import AuditLog
from dbwrapper.registry.base import READ_CACHE_SECONDS, Store, as_utc
from dbwrapper.registry.console import ConsoleRecords
from dbwrapper.registry.copies import CopyRecords
from dbwrapper.registry.databases import DatabaseRecord, DatabaseRecords
from dbwrapper.registry.idempotency import IdempotencyRecords
from dbwrapper.registry.login_failures import LoginFailureRecords
from dbwrapper.registry.operations import OperationRecords
from dbwrapper.registry.readers import ReaderRecords
from dbwrapper.registry.sessions import SessionRecords
from dbwrapper.registry.tokens import TokenRecords
from dbwrapper.registry.users import UserRecords

__all__ = ["READ_CACHE_SECONDS", "DatabaseRecord", "Registry", "Store", "as_utc"]


class Registry(UserRecords, DatabaseRecords, CopyRecords, AuditLog, OperationRecords, TokenRecords,
               SessionRecords, LoginFailureRecords, IdempotencyRecords, ConsoleRecords, ReaderRecords):
    """The control database: who may log in, which databases exist for whom, what happened.

    One class per kind of record, all on one :class:`~dbwrapper.registry.base.Store`.
    """

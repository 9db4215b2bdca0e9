"""The service's own records, in a control database: users, databases, the audit log."""

from dbwrapper.registry.models import AuditEntry, Course, CourseCopy, ManagedDatabase, Snapshot, User
from dbwrapper.registry.store import DatabaseRecord, Registry

__all__ = ["AuditEntry", "Course", "CourseCopy", "DatabaseRecord", "ManagedDatabase", "Registry", "Snapshot", "User"]

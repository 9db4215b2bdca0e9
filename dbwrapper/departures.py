"""Removing a user who still owns databases: each is archived and dropped, or destroyed, first.

:meth:`Accounts.remove <dbwrapper.accounts.Accounts.remove>` removes only a user who owns
nothing, so that nothing is ever dropped by accident. Here the instructor has said what
becomes of the databases: archived and then dropped, as the expiry job does (the archive is
verified first, so a failed archive drops nothing), or destroyed. Their archives stay, for
instructors to restore: an archive whose owner is gone is nobody else's
(see :func:`~dbwrapper.archives.belongs_to`).
"""

from __future__ import annotations

from dataclasses import dataclass

from dbwrapper.accounts import Accounts, Actor
from dbwrapper.archives import Archives
from dbwrapper.errors import InvalidInput
from dbwrapper.registry import DatabaseRecord, User
from dbwrapper.service import DatabaseService

#: What may become of a leaving user's databases.
FATES = ("archive", "destroy")


@dataclass(frozen=True)
class Departures:
    """Remove users, and first what they own, as an instructor says."""

    accounts: Accounts
    service: DatabaseService
    archives: Archives

    def check(self, actor: Actor, name: str) -> tuple[User, list[DatabaseRecord]]:
        """The user a removal would remove, checked as it checks them, and the databases they
        own now (for a confirmation page)."""
        actor.require_instructor("remove users")
        user = self.accounts.check_remove(name)
        self.service.registry.refresh()  # another process may have given them one a moment ago
        return user, self.service.registry.databases(owner=user)

    def remove(self, actor: Actor, name: str, databases: str | None = None) -> str:
        """Remove the user ``name``; with ``databases`` (``archive`` or ``destroy``: see
        :data:`FATES`), what they own first. A sentence saying what was done.

        Without ``databases``, a user who owns a database is refused, as by :meth:`Accounts.remove`.
        Each database is done on its own: if one fails, the ones before stay done (the audit
        log has them), and the user stays with the rest.
        """
        if databases is not None and databases not in FATES:
            raise InvalidInput(f"Unknown choice {databases!r} for the user's databases; valid: {', '.join(FATES)}.")
        user, owned = self.check(actor, name)
        done = []
        for db in owned if databases is not None else []:
            if databases == "archive":
                manifest = self.archives.archive(actor, db.db_type, db.name, drop=True)
                done.append(f"Archived {db.name} as {manifest.id} and dropped it.")
            else:
                done.append(self.service.destroy(actor, db.db_type, db.name).summary)
        self.accounts.remove(user.name, by=actor.name)
        return " ".join([*done, f"Removed {user.name}."])

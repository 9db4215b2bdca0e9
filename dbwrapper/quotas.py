"""How many databases, snapshots and archives a trainee may keep: one rule for all three.

A quota is checked and then used under its owner's lock, so that two requests
at once cannot both pass it: this process's lock, and the registry's, which
every process serving it shares (:meth:`~dbwrapper.registry.users.UserRecords.holding`).
Instructors have none. Where work must keep one more than the quota (what a
revert or a restore replaces is kept, once), ``room`` says so; doing it again
and again still cannot fill the server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from dbwrapper.accounts import Actor
from dbwrapper.errors import Refused
from dbwrapper.registry import User


@dataclass(frozen=True)
class Quota:
    """A limit on one kind of thing a user keeps."""

    #: What is counted, in the singular: ``snapshot``.
    what: str
    #: What to do when it is reached, in the refusal's words: ``delete one first``.
    advice: str
    #: The work that may keep one past it (``a revert``), in the refusal's words.
    past_it: str = ""

    def check(self, owner: User, kept: int, limit: int, room: int = 0) -> None:
        """Refuse one more beyond ``limit`` (and ``room``), naming the quota and what to do."""
        if kept >= limit + room:
            extra = f" and the one {self.past_it} may keep past it" if room else ""
            raise Refused(
                f"{owner.name} already keeps {kept} {self.what}(s), their quota of {limit}{extra}; {self.advice}."
            )


class Quotas:
    """The per-user locks under which quotas are checked and used: this process's, then
    ``across``, the lock every process shares."""

    def __init__(self, across: Callable[[User], AbstractContextManager[None]]) -> None:
        self._locks: dict[int, threading.Lock] = {}
        self._guard = threading.Lock()
        self._across = across

    @contextmanager
    def room_for(
        self, actor: Actor, owner: User, quota: Quota, limit: int, kept: Callable[[], int], *, room: int = 0,
    ) -> Iterator[None]:
        """Hold ``owner``'s lock while checking that they keep fewer than ``limit`` (plus ``room``)
        of ``quota``'s kind, counted by ``kept``, and while the block makes one more."""
        with self._guard:
            lock = self._locks.setdefault(owner.id, threading.Lock())
        if actor.is_instructor:  # no quota: nothing to count, nothing to wait for
            yield
            return
        with lock, self._across(owner):
            quota.check(owner, kept(), limit, room)
            yield

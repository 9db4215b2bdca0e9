"""Settling what a process that ended left, while the other processes work on.

Reconciling (:mod:`dbwrapper.reconcile`) settles what a crash left only at a lone start,
because beside a live process, unfinished work looks just like work in progress. A record
that names the process at work on it can be settled sooner, once that process is known to
have ended. Each process holds, from its start to its stop, a lock of its own
(:func:`~dbwrapper.registry.joblock.process_lock`, named for the id its records carry):
a PostgreSQL advisory lock, which the server frees only when the holding session ends
(the process died, even by ``kill -9``; a process frozen by ``SIGSTOP`` keeps its session,
and so its lock), or ``flock`` on a file, which the kernel frees when the process ends.
Another process that can take that lock knows its holder ended, and what it left under
way never will be finished. The settle job (one of :meth:`Runtime.jobs
<dbwrapper.runtime.Runtime.jobs>`, so in one process at a time) then

* records the ended process's running operations as ``interrupted``, with how far they got;
* drops the databases it recorded and never made ready, with their logins, and forgets
  them, each audited as ``settled``.

A lock found free once is not enough: a live process whose session was cut (the registry's
server restarted) takes its lock again within :data:`~dbwrapper.registry.lock.LOCK_CHECK_SECONDS`.
So a process counts as ended only once its lock was found free at every run for
:data:`SETTLE_AFTER_SECONDS` (which also leaves a statement it had sent, a ``CREATE
DATABASE`` say, the time to end on the server before its database is dropped).

Records that name no process (made before migration 0010) are left to reconciling, as
before. A registry that cannot be asked settles nothing more: :meth:`Settler.run` stops at
the first question it cannot ask (which the job logs), and the next run starts again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from dbwrapper.errors import DbWrapperError
from dbwrapper.joblog import log as job_log
from dbwrapper.registry import AuditEntry, DatabaseRecord
from dbwrapper.registry.joblock import process_ended
from dbwrapper.registry.lock import LOCK_CHECK_SECONDS
from dbwrapper.service import DatabaseService

#: How often the settle job runs.
SETTLE_SECONDS = 3.0
#: How long a process's lock must be found free, at every run, before its work is settled:
#: longer than a live process takes to take its lock again.
SETTLE_AFTER_SECONDS = 2 * LOCK_CHECK_SECONDS
ACTOR = "dbwrapper (settle)"

#: This job's lines in the log.
log = partial(job_log, "SETTLE")


class Settler:
    """Settles the work of the processes that ended (see the module)."""

    def __init__(self, service: DatabaseService, clock: Callable[[], float] = time.monotonic) -> None:
        self.service = service
        self._clock = clock
        #: The processes whose lock was found free at every run since, and since when.
        self._ended_since: dict[str, float] = {}

    def run(self) -> None:
        """Settle what the processes that ended left; for the settle job. Raises at the first
        question the registry does not answer; a database whose server cannot be reached is
        logged and left for the next run."""
        registry = self.service.registry
        claims = registry.claims()
        ended = self._ended({claim.process for claim in claims if claim.process} | registry.running_processes())
        for process in sorted(ended):
            for operation in registry.interrupt_operations(process=process):
                log(f"The {operation.kind} operation {operation.id} on {operation.target} was interrupted: "
                    f"its process {process} ended after {operation.done} of {operation.total}")
        for claim in claims:
            if claim.process in ended and claim.db_type in self.service.servers.db_types:
                self._remove(claim)

    def _ended(self, processes: set[str]) -> set[str]:
        """Those of ``processes`` found ended for :data:`SETTLE_AFTER_SECONDS`: one try of each
        one's lock (never this process's own, which is alive)."""
        now = self._clock()
        registry_url, deadlines = self.service.servers.registry.url, self.service.servers.deadlines
        others = processes - {self.service.process}
        self._ended_since = {process: self._ended_since.get(process, now)
                             for process in sorted(others) if process_ended(registry_url, deadlines, process)}
        return {process for process, since in self._ended_since.items() if now - since >= SETTLE_AFTER_SECONDS}

    def _remove(self, claim: DatabaseRecord) -> None:
        """Drop what an ended process made of ``claim``, and forget it, audited."""
        backend = self.service.servers.backend(claim.db_type)
        target = f"{backend.db_type}:{claim.name}"
        why = f"left half-made by process {claim.process}, which ended"
        try:
            self.service.remove(backend, claim, AuditEntry.new(ACTOR, "settle", target, outcome="settled", detail=why))
        except DbWrapperError as error:
            log(f"Could not settle {target} ({why}) yet: {error}")
            return
        log(f"Settled {target}: {why}")

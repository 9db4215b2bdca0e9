"""Everything one process needs, started in the right order, for the web and the CLI alike."""

from __future__ import annotations

import os

from dbwrapper.accounts import Accounts
from dbwrapper.archives import Archives
from dbwrapper.classes import ClassJobs, ClassProvisioner
from dbwrapper.config import Settings
from dbwrapper.courses import Courses
from dbwrapper.engines import Engines
from dbwrapper.expiry import Purger
from dbwrapper.preparations import Preparations
from dbwrapper.reconcile import Reconciler
from dbwrapper.service import DatabaseService
from dbwrapper.snapshots import Snapshots

#: Sets the first instructor's password instead of generating one.
INSTRUCTOR_PASSWORD_VARIABLE = "DBWRAPPER_INSTRUCTOR_PASSWORD"


class Runtime:
    """The engines, the registry's users and the database service of one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engines = Engines(settings)
        self.accounts = Accounts(self.engines)
        self.courses = Courses(self.engines)
        self.service = DatabaseService(self.engines)
        self.archives = Archives(self.service, settings)
        self.snapshots = Snapshots(self.service, settings.snapshot_quota)
        self.preparations = Preparations(self.service)
        self.purger = Purger(self.service, self.archives, archive_first=settings.archive_on_expiry)
        self.reconciler = Reconciler(self.service, self.accounts, self.archives)
        self.classes = ClassProvisioner(self.service, self.accounts)
        self.class_jobs = ClassJobs(self.classes)
        self._started = False

    def start(self, *, settle_unfinished: bool = False) -> None:
        """Open the backends and the registry; make the first instructor if there is none.

        A generated first password is printed here, once: it is in no file and no log.
        Reconciling settles what a crash left half-done only with ``settle_unfinished``:
        the service says so at its start, the commands that may run beside it do not.
        Starting twice does nothing the second time.
        """
        if self._started:
            return
        self._started = True
        self.engines.start()
        for tool in self.archives.missing_tools():
            print(
                f"  dbwrapper: archives need {tool}, which was not found: install it or set "
                f"{tool} = \"/path/to/{tool}\" in app.conf's [dbwrapper] section.",
                flush=True,
            )
        self.courses.add_samples()
        password = self.accounts.bootstrap(os.environ.get(INSTRUCTOR_PASSWORD_VARIABLE))
        if password is not None:
            print(
                f"\n  First start: instructor {self.settings.first_instructor!r} was created with "
                f"password {password}\n  It is shown only now; change it with "
                f"'dbwrapper user set-password {self.settings.first_instructor}'.\n",
                flush=True,
            )
        for line in self.reconciler.run(unfinished=settle_unfinished).lines():
            print(f"  dbwrapper: reconciled the registry with the servers: {line}.", flush=True)

    def stop(self) -> None:
        self.engines.stop()
        self._started = False

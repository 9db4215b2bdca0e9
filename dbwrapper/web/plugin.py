"""Start and stop the runtime (servers, registry) with the CherryPy engine, never per request."""

from __future__ import annotations

from cherrypy.process.plugins import SimplePlugin
from cherrypy.process.wspbus import Bus

from dbwrapper.runtime import Runtime


class RuntimePlugin(SimplePlugin):
    """Opens the backends and the registry when the CherryPy engine starts; closes them when it stops."""

    def __init__(self, bus: Bus, runtime: Runtime) -> None:
        super().__init__(bus)
        self.runtime = runtime

    def start(self) -> None:
        self.bus.log("Opening the database backends and the registry.")
        # Alone on the registry, what a crash left half-done is settled before it takes
        # requests again; beside another process at work, it would be that one's work.
        self.runtime.start()
        # The registry's records of work in progress, and the settle job's audit, name it so.
        self.bus.log(f"This is process {self.runtime.process} on the registry.")
        if self.runtime.reconciled is None:
            self.bus.log("Another dbwrapper process is at work on this registry: reconciling, "
                         "which could destroy its work in progress, waits for a start with none at work.")
        for db_type in self.runtime.servers.db_types:
            self.bus.log(f"Backend {db_type}: {self.runtime.servers.backend(db_type).where}")

    # Open the backends before the HTTP server (priority 75) starts taking requests.
    start.priority = 60  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.bus.log("Closing the database backends and the registry.")
        self.runtime.stop()

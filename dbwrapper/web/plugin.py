"""Start and stop the engines with the CherryPy engine, never per request."""

from __future__ import annotations

from cherrypy.process.plugins import SimplePlugin
from cherrypy.process.wspbus import Bus

from dbwrapper.engines import Engines


class EnginesPlugin(SimplePlugin):
    """Opens the backends when the CherryPy engine starts and disposes of them when it stops."""

    def __init__(self, bus: Bus, engines: Engines) -> None:
        super().__init__(bus)
        self.engines = engines

    def start(self) -> None:
        self.bus.log("Opening the database backends.")
        self.engines.start()
        for backend in self.engines.kinds:
            self.bus.log(f"Backend {backend}: {self.engines.backend(backend).where}")

    # Open the backends before the HTTP server (priority 75) starts taking requests.
    start.priority = 60  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.bus.log("Closing the database backends.")
        self.engines.stop()

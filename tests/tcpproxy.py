"""A TCP forwarder the tests can cut or freeze, to take a database server "down", or make it hang, and back.

The server itself keeps running (it may be shared, or not ours to stop); what
the service sees is exactly what it sees when a server goes away (refused
connections and dropped sessions) or hangs (connections accepted and kept
open, and never an answer). Connections are real, end to end.
"""

from __future__ import annotations

import selectors
import socket
import threading
from pathlib import Path

from sqlalchemy.engine import URL, make_url

Target = tuple[str, int] | str  # (host, port) or a Unix socket path


def target_of(url: str | URL) -> Target:
    """Where a database URL really connects: a TCP address or a Unix socket."""
    url = make_url(url)
    if url.host:
        default = 5432 if url.get_backend_name() == "postgresql" else 3306
        return (url.host, url.port or default)
    if url.get_backend_name() == "postgresql":
        return str(Path(url.query["host"]) / f".s.PGSQL.{url.port or 5432}")
    return str(url.query["unix_socket"])


def through(url: str | URL, proxy: TcpProxy) -> str:
    """``url`` changed to connect through ``proxy``."""
    url = make_url(url)
    query = {k: v for k, v in url.query.items() if k not in ("host", "unix_socket")}
    return url.set(host="127.0.0.1", port=proxy.port, query=query).render_as_string(hide_password=False)


class TcpProxy:
    """Forward 127.0.0.1:``port`` to ``target`` until :meth:`stop`; :meth:`start` again on the same port.

    :meth:`hang` makes it a hung server until :meth:`resume`.
    """

    def __init__(self, target: Target) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._stopping = threading.Event()
        self._hung = threading.Event()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        #: Connections accepted while hung, held open and never answered.
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Close the port and every forwarded connection, as a dead server would."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        if self._listener is not None:
            self._listener.close()
        self._cut()

    def hang(self) -> None:
        """Hang as a server does that is stuck: every connection open stops getting
        answers, new ones are accepted and kept open, and nothing is forwarded."""
        self._hung.set()

    def resume(self) -> None:
        """End the hang as a hung server's usually ends, by a restart: what it held open
        is cut, unanswered, and new connections are forwarded again."""
        self._cut()
        self._hung.clear()

    def _cut(self) -> None:
        with self._lock:
            pairs, self._pairs = self._pairs, []
            held, self._held = self._held, []
        for end in [*held, *(end for pair in pairs for end in pair)]:
            end.close()

    def _connect_target(self) -> socket.socket:
        if isinstance(self.target, str):
            upstream = socket.socket(socket.AF_UNIX)
        else:
            upstream = socket.socket()
        upstream.connect(self.target)
        return upstream

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._hung.is_set():
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = self._connect_target()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Forward both ways until a side closes, then close both; or until the proxy hangs,
        then leave both open, frozen, for :meth:`resume` or :meth:`stop` to cut."""
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            try:
                while self._forward(selector.select(timeout=0.05)):
                    if self._hung.is_set():
                        return
            except (OSError, ValueError):
                pass
        client.close()
        upstream.close()

    @staticmethod
    def _forward(ready: list[tuple[selectors.SelectorKey, int]]) -> bool:
        """Pass on what arrived; ``False`` once a side has closed."""
        for key, _ in ready:
            data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            if not data:
                return False
            key.data.sendall(data)
        return True

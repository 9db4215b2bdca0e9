"""Who can reach a database server from where: what a trainee's page says about its command.

The page is read in a browser, maybe on the trainee's own machine, while the
command and URL name the database server as dbwrapper reaches it. When that is
a loopback address or a socket, they work on the service's machine only; from
anywhere else the trainee needs a tunnel, or a server address they can reach.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOCAL_NAMES = {"localhost", "localhost.localdomain", ""}


def is_local(host: str) -> bool:
    """Whether ``host`` is reached on this machine only: a loopback name or address, or a
    socket (``/path``)."""
    if host.startswith("/") or host.lower() in LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def browser_host(base: str) -> str:
    """The host in the address the browser reached the service at (``http://host:7001``)."""
    return urlsplit(base).hostname or ""


def from_elsewhere(base: str, server_host: str) -> bool:
    """Whether the page was reached from another machine (``base`` does not name this one)
    while the database server is reached on this machine only."""
    return bool(base) and not is_local(browser_host(base)) and is_local(server_host)

"""Whether ``seqgen serve`` can listen where it was asked to, checked before it says it serves.

    problem = port_problem("127.0.0.1", 8000)   # None, or one line such as
    # "port 8000 on 127.0.0.1 is already in use (another seqgen serve?); choose another with --port"

The socket is bound the way uvicorn binds its own (IPv6 when the host has a colon, and
``SO_REUSEADDR`` on, except on Windows where it would let two servers share the port), then
closed. With ``SO_REUSEADDR`` off, a port that only has connections of a just-stopped server in
TIME_WAIT would look busy although uvicorn can bind it; with it on, Linux still refuses a port
that another socket listens on. The check and the real bind are a moment apart: a port taken in
between still fails in uvicorn, as before.
"""
from __future__ import annotations

import errno
import socket
import sys


def port_problem(host: str, port: int) -> str | None:
    """One line saying why ``host:port`` cannot be listened on, or None if it can."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            if sys.platform != "win32":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host.strip("[]"), port))
    except socket.gaierror:
        return f"cannot resolve host {host!r}"
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            return (f"port {port} on {host} is already in use (another seqgen serve?); "
                    "choose another with --port")
        if err.errno == errno.EACCES:
            return f"no permission to listen on port {port} (ports below 1024 need privileges)"
        if err.errno == errno.EADDRNOTAVAIL:
            return f"{host} is not an address of this machine"
        return f"cannot listen on {host}:{port}: {err.strerror or err}"
    return None

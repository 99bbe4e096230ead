"""Who may talk to the server: the ``Host`` header must name the served address, and a browser's
cross-origin POST is refused. The API has no authentication, so these two are what keep a web page
the user happens to visit from using it.

    app.add_middleware(HostGuard, hosts=allowed_hosts(host))

- **DNS rebinding**: a page on ``evil.example`` makes its own name resolve to 127.0.0.1 and then
  calls the API as same-origin. Its requests still say ``Host: evil.example``, so only the served
  address is accepted (127.0.0.1, localhost, [::1], with any port, and what ``--host`` names);
  any other Host is a 400.
- **Cross-origin POST**: a page elsewhere can POST a form (multipart, no CORS preflight) to
  127.0.0.1. Browsers send ``Origin`` with such a request, so a POST (PUT, PATCH, DELETE) whose
  ``Origin`` is not the address the request was sent to is a 403. No ``Origin`` (curl, scripts)
  is allowed.

Bound to every address (``--host 0.0.0.0`` or ``::``), the server cannot know the names it is
reached by, so any Host is accepted; :func:`exposure_warning` is then the line to print.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD = frozenset({"0.0.0.0", "::", ""})
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def allowed_hosts(host: str) -> frozenset[str] | None:
    """The Host names accepted for a server bound to ``host``; None (any) for every address."""
    name = normal(host)
    return None if name in WILDCARD else LOCAL | {name}


def exposure_warning(host: str) -> str | None:
    """The one line to print when ``host`` exposes the API beyond this machine, or None."""
    name = normal(host)
    if name in LOCAL:
        return None
    try:
        if ipaddress.ip_address(name).is_loopback:
            return None
    except ValueError:
        pass
    where = "every network interface" if name in WILDCARD else name
    return (f"warning: serving on {where}; the API has no authentication, so anyone who can "
            "reach this port can use it (use --host 127.0.0.1 to keep it local)")


def normal(host: str) -> str:
    """A host name as compared here: lower case, no brackets, no trailing dot."""
    return host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` from a Host header (``localhost:8000``, ``[::1]:8000``); None if bad."""
    try:
        parts = urlsplit(f"//{value}")
        return normal(parts.hostname or ""), parts.port
    except ValueError:  # a bad port or bracket
        return None


def origin_matches(origin: str, host: str, scheme: str) -> bool:
    """Whether the ``Origin`` header names the same host and port the request was sent to."""
    try:
        sent, parts = split_host(host), urlsplit(origin)
        port = parts.port
    except ValueError:
        return False
    if sent is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return False  # includes "null" (sandboxed frames, file://)
    default = {"http": 80, "https": 443}
    return (normal(parts.hostname) == sent[0]
            and (port or default[parts.scheme]) == (sent[1] or default.get(scheme, 80)))


class HostGuard:
    """Refuses requests for another host (400) and cross-origin unsafe requests (403)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        host = headers.get("host")
        if host is not None and self.hosts is not None:
            parsed = split_host(host)
            if parsed is None or parsed[0] not in self.hosts:
                return await deny(400, f"this server does not answer for host {host!r}; use "
                                       "http://127.0.0.1 (or the address it was started on)",
                                  scope, receive, send)
        origin = headers.get("origin")
        if (origin is not None and scope.get("method", "GET") in UNSAFE
                and not origin_matches(origin, host or "", scope.get("scheme", "http"))):
            return await deny(403, f"cross-origin request from {origin!r} refused",
                              scope, receive, send)
        return await self.app(scope, receive, send)


async def deny(status: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    await JSONResponse({"error": message}, status)(scope, receive, send)

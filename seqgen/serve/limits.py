"""Request-size limits of the server, applied before a handler reads the body."""
from __future__ import annotations

from fastapi.responses import JSONResponse


class BodyLimit:
    """Refuses a request whose declared body is over ``limit`` bytes (413) before reading it."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length", b"0")
            if length.isdigit() and int(length) > self.limit:
                message = f"upload of {int(length):,} bytes is over the {self.limit:,}-byte limit"
                return await JSONResponse({"error": message}, 413)(scope, receive, send)
        return await self.app(scope, receive, send)

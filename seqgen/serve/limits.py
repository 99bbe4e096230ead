"""The request-body limit, answered so the client can read it: a 413 with JSON ``{"error": ...}``.

    app.add_middleware(BodyLimit, limit=10 * 1024 * 1024)

Answering before the body is read leaves the client still sending; whether it then sees the 413
or a connection reset depends on the server and the client (a server that closes the connection
with unread data in it resets it). So an over-limit body is read and thrown away, up to ``drain``
bytes (default: four times the limit, at least 64 MiB), and only then refused:

- a declared ``Content-Length`` over the limit: drained, then 413 (beyond ``drain``: 413 at once,
  with ``Connection: close``);
- ``Expect: 100-continue``: 413 at once; the client has not sent the body (the server sends
  ``100 Continue`` only when the app starts reading), so there is nothing to drain;
- a body without a declared length (chunked): counted as the app reads it; past the limit the
  rest is drained and the read fails with :class:`TooLarge`, an HTTP 413 that FastAPI passes on
  to the app's error handler (or, when raised elsewhere, this middleware answers it).
"""
from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MIB = 1024 * 1024


class TooLarge(HTTPException):
    """A request body over the limit (status 413)."""

    def __init__(self, message: str) -> None:
        super().__init__(413, message)


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with a 413 the client can read."""

    def __init__(self, app: ASGIApp, limit: int, *, drain: int | None = None) -> None:
        self.app, self.limit = app, limit
        self.drain = drain if drain is not None else max(4 * limit, 64 * MIB)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.limit:
            message = f"upload of {int(length):,} bytes is over the {self.limit:,}-byte limit"
            expects = "100-continue" in headers.get("expect", "").lower()
            drained = not expects and int(length) <= self.drain and await discard(receive,
                                                                                  self.drain)
            return await refuse(message, scope, receive, send, close=not drained)
        if length:  # a declared length within the limit: the server holds the client to it
            return await self.app(scope, receive, send)
        return await self._counted(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Runs the app on a body of unknown length, failing its read once over the limit."""
        received, started = 0, False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    if message.get("more_body", False):
                        await discard(receive, self.drain - received)
                    raise TooLarge(f"upload is over the {self.limit:,}-byte limit")
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except TooLarge as err:
            if started:
                raise
            await refuse(err.detail, scope, receive, send, close=False)


async def discard(receive: Receive, budget: int) -> bool:
    """Reads and drops the rest of a request body, up to ``budget`` bytes; whether it all came."""
    while budget >= 0:
        message = await receive()
        if message["type"] != "http.request":
            return False  # the client went away
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return budget >= 0
    return False


async def refuse(message: str, scope: Scope, receive: Receive, send: Send, *,
                 close: bool) -> None:
    headers = {"Connection": "close"} if close else None
    await JSONResponse({"error": message}, 413, headers=headers)(scope, receive, send)

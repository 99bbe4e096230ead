"""The app's last-resort answers: every failure is JSON ``{"error": ...}``, never a bare page.

    install_error_handlers(app)

- :class:`~.batching.Busy` (the model's queue is full) is a 503 with ``Retry-After``;
- :class:`~.batching.ClientGone` (the client left while waiting) is a 499, which nobody reads;
- any other exception is a 500 ``{"error": "internal error: ..."}``, logged with its traceback.

Messages go out with every character that is not valid Unicode escaped, so no text a client sent
(a lone surrogate, say) can make the error response itself fail.
"""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .batching import Busy, ClientGone

log = logging.getLogger(__name__)
CLIENT_CLOSED = 499  # nginx's "client closed request"; the client is gone and never sees it


def install_error_handlers(app: FastAPI) -> None:
    """Registers the handlers above on ``app`` (the app's own HTTP and validation handlers stay)."""
    app.add_exception_handler(Busy, busy)
    app.add_exception_handler(ClientGone, client_gone)
    app.add_exception_handler(Exception, internal_error)


def safe(message: str, limit: int = 500) -> str:
    """``message`` cut to ``limit`` characters, with anything UTF-8 cannot carry escaped."""
    message = message if len(message) <= limit else message[:limit] + "..."
    return message.encode("utf-8", "backslashreplace").decode("utf-8")


async def busy(request: Request, err: Busy) -> JSONResponse:
    return JSONResponse({"error": safe(str(err))}, 503,
                        headers={"Retry-After": str(err.retry_after)})


async def client_gone(request: Request, err: ClientGone) -> JSONResponse:
    log.info("%s %s: client disconnected; its job was cancelled", request.method,
             request.url.path)
    return JSONResponse({"error": "client disconnected"}, CLIENT_CLOSED)


async def internal_error(request: Request, err: Exception) -> JSONResponse:
    """Any exception nothing else handled: logged, and a JSON 500 naming its type."""
    log.error("internal error on %s %s", request.method, request.url.path, exc_info=err)
    detail = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
    return JSONResponse({"error": safe(f"internal error: {detail}")}, 500)

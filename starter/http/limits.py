"""The upload size limit, enforced while a body streams in, before it can fill a disk."""

from fastapi import HTTPException
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from starter.http.schemas import Problem


def too_large(limit: int) -> str:
    """What a refused upload is told."""
    return f"the upload is larger than {limit} bytes (SLIPWAY_API_MAX_UPLOAD_BYTES)"


class BodyLimit:
    """Refuse a body over `limit` bytes with 413: at once when its Content-Length says so,
    else as soon as that many bytes have arrived. `limit` is the upload limit plus what a
    multipart request carries besides its file; the message names the upload limit."""

    def __init__(self, app: ASGIApp, limit: int, upload_limit: int) -> None:
        self.app = app
        self.limit = limit
        self.message = too_large(upload_limit)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            refused = JSONResponse(Problem(detail=self.message).model_dump(), status_code=413)
            await refused(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise HTTPException(413, self.message)
            return message

        await self.app(scope, limited, send)
